package main

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/metrics"
	"github.com/nodefix/nodefix/internal/report"
	"github.com/nodefix/nodefix/internal/runner"
)

// writeTextfile writes a finished run to --textfile for node_exporter and
// returns the run's own error, joined with the write's. A run that was
// refused or interrupted checked nothing whole: the file keeps the last
// complete run's metrics, whose timestamp then ages into the staleness
// alert. A file that cannot be written fails the command (exit 1,
// whatever the run found): for a monitor, metrics that silently stop are
// the worst result.
func (a *app) writeTextfile(o runOptions, command string, res runner.Result, findings []report.Finding) error {
	runErr := res.Err()
	if res.PrecheckErr != nil || res.Interrupted {
		why := "the run was interrupted"
		if res.PrecheckErr != nil {
			why = "the fleet precheck refused the run"
		}
		fmt.Fprintf(a.stderr, "nodefix: --textfile %s not written: %s; it keeps the last complete run's metrics\n", o.textfile, why)
		return runErr
	}
	doc := report.NewDocument(runInfo(o, command), res, findings)
	var buf bytes.Buffer
	err := metrics.Render(&buf, doc, metrics.Options{HostLabel: o.connection != "local"})
	if err == nil {
		err = metrics.WriteFile(o.textfile, buf.Bytes())
	}
	if err != nil {
		return errors.Join(exitcode.With(exitcode.Usage, fmt.Errorf("--textfile: %w", err)), runErr)
	}
	return runErr
}
