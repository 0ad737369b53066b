package report

import (
	"encoding/json"
	"io"
	"time"

	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/tasks"
)

// Document is the --json output: one document for the whole run. Its
// schema is documented in README ("JSON output"); fields are only ever
// added.
type Document struct {
	Nodefix     RunInfo            `json:"nodefix"`
	Started     time.Time          `json:"started"`
	Duration    float64            `json:"duration_seconds"`
	Interrupted bool               `json:"interrupted"`
	ExitCode    int                `json:"exit_code"`
	Hosts       map[string]HostDoc `json:"hosts"`
	Summary     Summary            `json:"summary"`
	Fleet       Fleet              `json:"fleet"`
	// Batches are the sizes of the batches the hosts ran in.
	Batches []int `json:"batches"`
	// Aborted says why the run started no further host (the failure
	// budget), null when it did not abort.
	Aborted *runner.Abort `json:"aborted"`
}

// RunInfo says what ran.
type RunInfo struct {
	Version   string   `json:"version"`
	Command   string   `json:"command"`
	CheckMode bool     `json:"check_mode"`
	DiffMode  bool     `json:"diff_mode"`
	Tasks     []string `json:"tasks"`
	// RunID names the run in the audit trail on the nodes.
	RunID string `json:"run_id"`
	// Serial, MaxFailPercentage and AnyErrorsFatal are the run's batches
	// and failure budget as given (--serial, …).
	Serial            []string `json:"serial"`
	MaxFailPercentage *float64 `json:"max_fail_percentage"`
	AnyErrorsFatal    bool     `json:"any_errors_fatal"`
}

// HostDoc is one host.
type HostDoc struct {
	// Status: ok, changed, failed, unreachable, skipped, interrupted,
	// not_run.
	Status runner.Status `json:"status"`
	// Msg: why the host is unreachable or interrupted.
	Msg      string          `json:"msg,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
	Stats    runner.Stats    `json:"stats"`
	Tasks    []tasks.Outcome `json:"tasks"`
	Duration float64         `json:"duration_seconds"`
}

// Summary counts hosts by status.
type Summary struct {
	Hosts       int `json:"hosts"`
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Unreachable int `json:"unreachable"`
	Skipped     int `json:"skipped"`
	Interrupted int `json:"interrupted"`
	NotRun      int `json:"not_run"`
}

// Fleet is what concerns the fleet rather than one host.
type Fleet struct {
	Precheck Precheck  `json:"precheck"`
	Findings []Finding `json:"findings"`
}

// Precheck is the fleet precheck's verdict.
type Precheck struct {
	OK  bool   `json:"ok"`
	Msg string `json:"msg,omitempty"`
}

// NewDocument builds the document for a finished run.
func NewDocument(info RunInfo, res runner.Result, findings []Finding) Document {
	d := Document{
		Nodefix:     info,
		Started:     res.Start.UTC(),
		Duration:    res.Duration.Seconds(),
		Interrupted: res.Interrupted,
		ExitCode:    res.ExitCode(),
		Hosts:       map[string]HostDoc{},
		Fleet:       Fleet{Precheck: Precheck{OK: res.PrecheckErr == nil}, Findings: findings},
		Batches:     res.Batches,
		Aborted:     res.Abort,
	}
	if d.Batches == nil {
		d.Batches = []int{}
	}
	if d.Nodefix.Serial == nil {
		d.Nodefix.Serial = []string{}
	}
	if d.Nodefix.Tasks == nil {
		d.Nodefix.Tasks = []string{}
	}
	if res.PrecheckErr != nil {
		d.Fleet.Precheck.Msg = res.PrecheckErr.Error()
	}
	if d.Fleet.Findings == nil {
		d.Fleet.Findings = []Finding{}
	}
	for _, h := range res.Hosts {
		outcomes := h.Outcomes
		if outcomes == nil {
			outcomes = []tasks.Outcome{}
		}
		status := h.Status()
		d.Hosts[h.Name] = HostDoc{
			Status:   status,
			Msg:      h.Msg,
			Warnings: h.Warnings,
			Stats:    h.Stats(),
			Tasks:    outcomes,
			Duration: h.Duration.Seconds(),
		}
		d.Summary.Hosts++
		switch status {
		case runner.HostOK:
			d.Summary.OK++
		case runner.HostChanged:
			d.Summary.Changed++
		case runner.HostFailed:
			d.Summary.Failed++
		case runner.HostUnreachable:
			d.Summary.Unreachable++
		case runner.HostSkipped:
			d.Summary.Skipped++
		case runner.HostInterrupted:
			d.Summary.Interrupted++
		case runner.HostNotRun:
			d.Summary.NotRun++
		}
	}
	return d
}

// WriteJSON writes d, indented, followed by a newline.
func WriteJSON(w io.Writer, d Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}
