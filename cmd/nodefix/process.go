package main

import (
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/report"
	"github.com/nodefix/nodefix/internal/termio"
)

// processApp is the app of a real nodefix process: its environment, its
// terminal, its signals.
func processApp(stdout, stderr io.Writer) *app {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	return &app{
		stdout:     stdout,
		stderr:     stderr,
		getenv:     os.Getenv,
		prompter:   &termio.Prompter{},
		interrupts: sig,
		exit:       os.Exit,
		stopSignals: func() {
			signal.Stop(sig)
		},
	}
}

func (a *app) stop() {
	if a.stopSignals != nil {
		a.stopSignals()
	}
}

// watchInterrupts implements Ctrl-C: the first starts no new host and
// cancels the running ones (their commands are ended and their sessions
// closed), and the run ends with its partial recap and exit code 99; the
// second exits at once.
func (a *app) watchInterrupts(done <-chan struct{}, cancel func(), hr *report.Human) {
	if a.interrupts == nil {
		return
	}
	select {
	case <-done:
		return
	case <-a.interrupts:
	}
	hr.Warning("interrupted: starting no new host, cancelling the running ones (Ctrl-C again to exit at once)")
	cancel()
	select {
	case <-done:
	case <-a.interrupts:
		hr.Warning("interrupted again: exiting now; commands may still be running on the hosts that were not finished")
		a.exit(exitcode.Interrupted)
	}
}
