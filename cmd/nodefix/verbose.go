package main

import (
	"github.com/nodefix/nodefix/internal/report"
	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/internal/trace"
	"github.com/nodefix/nodefix/internal/transport/sshtransport"
)

// traceKeepOutput is how much of each command's stdout and of its stderr
// -vvv shows: its first and last 2 KiB. A failing command says why at the
// end of its output and what it was doing at the start; a busy node's
// process listing (hundreds of KiB) is not worth the screen.
const traceKeepOutput = 4096

// verbose is what -v, -vv and -vvv switch on beyond task details: the
// command trace from -vv, its output and the connection steps from -vvv.
type verbose struct {
	level int
	log   *trace.Log // nil below -vv
}

func newVerbose(level int) verbose {
	v := verbose{level: level}
	switch {
	case level >= 3:
		v.log = trace.New(trace.Options{KeepOutput: traceKeepOutput})
	case level == 2:
		v.log = trace.New(trace.Options{})
	}
	return v
}

// steps receives the SSH dialer's connection steps (-vvv).
func (v verbose) steps() sshtransport.StepLogger {
	if v.level < 3 {
		return nil
	}
	return v.log.Step
}

func (v verbose) runnerOptions(o *runner.Options) {
	if v.log != nil {
		o.WrapNode = v.log.Wrap
	}
}

func (v verbose) humanOptions(o *report.HumanOptions) {
	o.Verbosity = v.level
	if v.log != nil {
		o.Trace = v.log.Take
	}
}
