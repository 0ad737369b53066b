// Package transport is how nodefix reaches a host: a connected host is a
// tasks.Node that can be closed. Implementations (sshtransport, local) only
// start processes; what every transport shares lives here: turning an argv
// into a remote command line (ShellJoin, the one place quoting happens),
// become (sudo) wrapping with the password fed through stdin, and the
// collection of a command's output.
package transport

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/nodefix/nodefix/tasks"
)

// Conn is a connected host. Close ends the connection and every command
// still running on it.
type Conn interface {
	tasks.Node
	Close() error
}

// Lost is implemented by connections that can break under a task (ssh).
// The runner asks after a failed task: a lost connection makes the host
// unreachable, as Ansible reports it, rather than failed.
type Lost interface {
	// Lost returns why the connection broke, or nil while it is usable.
	Lost() error
}

// Warner is implemented by connections that have something to tell the
// operator about how they were made (a host key accepted unverified or
// added to known_hosts).
type Warner interface {
	Warnings() []string
}

// Starter starts one process on a host. stdout and stderr receive the
// process's output as it comes; they are written from one goroutine each.
type Starter interface {
	Start(ctx context.Context, argv []string, stdout, stderr io.Writer) (Process, error)
}

// Process is a started command.
type Process interface {
	// Stdin is the process's standard input; closing it sends EOF.
	Stdin() io.WriteCloser
	// Wait returns the exit status once the process has ended and its
	// output is complete. When ctx ends first, the transport ends the
	// process (closing its session, not only signalling it) and Wait
	// returns ctx's error.
	Wait() (int, error)
}

// Run runs cmd on a host through s, wrapped in become when b is enabled,
// and collects its output.
func Run(ctx context.Context, s Starter, b Become, cmd tasks.Command) (tasks.Result, error) {
	if len(cmd.Argv) == 0 {
		return tasks.Result{}, errors.New("empty command")
	}
	if b.Enabled() {
		return runBecome(ctx, s, b, cmd)
	}
	var stdout, stderr bytes.Buffer
	p, err := s.Start(ctx, cmd.Argv, &stdout, &stderr)
	if err != nil {
		return tasks.Result{}, err
	}
	feed := feedStdin(p.Stdin(), cmd.Stdin)
	status, err := p.Wait()
	feed.stop(p.Stdin())
	if err != nil {
		return tasks.Result{}, err
	}
	return tasks.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitStatus: status}, nil
}

// stdinFeeder writes a command's stdin without ever blocking Wait: a
// command may exit without reading it.
type stdinFeeder struct{ done chan struct{} }

func feedStdin(w io.WriteCloser, data []byte) stdinFeeder {
	f := stdinFeeder{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		if len(data) > 0 {
			_, _ = w.Write(data) // a command that exits unread is not an error
		}
		_ = w.Close()
	}()
	return f
}

// stop makes sure the feeding goroutine is gone: closing the pipe unblocks
// a write the command never read.
func (f stdinFeeder) stop(w io.WriteCloser) {
	_ = w.Close()
	<-f.done
}
