// Package local runs tasks on the machine nodefix runs on (`--connection
// local`, ansible_connection=local): each argv is executed directly with
// os/exec, without a shell, so nothing is quoted.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"syscall"
	"time"

	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/tasks"
)

// DefaultGrace is how long a cancelled command gets between SIGTERM and
// SIGKILL. rpm in particular must be given the chance to close its
// database: SIGKILL is what corrupts a Berkeley DB rpmdb.
const DefaultGrace = 5 * time.Second

// Conn is this machine as a host.
type Conn struct {
	become transport.Become
	grace  time.Duration
}

// New returns this machine as a connected host, with become applied to
// every command.
func New(b transport.Become) (*Conn, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &Conn{become: b, grace: DefaultGrace}, nil
}

// Run implements tasks.Node.
func (c *Conn) Run(ctx context.Context, cmd tasks.Command) (tasks.Result, error) {
	return transport.Run(ctx, starter{grace: c.grace}, c.become, cmd)
}

// Close implements transport.Conn; there is nothing to close.
func (c *Conn) Close() error { return nil }

type starter struct{ grace time.Duration }

func (s starter) Start(ctx context.Context, argv []string, stdout, stderr io.Writer) (transport.Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group: a Ctrl-C on nodefix's terminal must reach
	// nodefix only (which then ends the commands in order), and ending a
	// command must end what it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	if err := cmd.Start(); err != nil {
		_ = stdin.Close()
		if status, ok := shellStatus(err); ok {
			// What a shell (and so the ssh transport) reports for a
			// program that is missing or not executable: tasks see the
			// same result over ssh and locally.
			fmt.Fprintf(stderr, "nodefix: %s: %v\n", argv[0], err)
			return exited{status: status}, nil
		}
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	return &process{ctx: ctx, cmd: cmd, stdin: stdin, grace: s.grace}, nil
}

func shellStatus(err error) (int, bool) {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return 127, true
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.ENOEXEC):
		return 126, true
	}
	return 0, false
}

// exited is a command that could not start and has a status already.
type exited struct{ status int }

func (e exited) Stdin() io.WriteCloser { return discard{} }
func (e exited) Wait() (int, error)    { return e.status, nil }

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }

type process struct {
	ctx   context.Context
	cmd   *exec.Cmd
	stdin io.WriteCloser
	grace time.Duration
}

func (p *process) Stdin() io.WriteCloser { return p.stdin }

func (p *process) Wait() (int, error) {
	waited := make(chan error, 1)
	go func() { waited <- p.cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-p.ctx.Done():
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(p.grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-waited
		}
		return 0, p.ctx.Err()
	}
	if err == nil {
		return 0, nil
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil // as a shell reports it
		}
		return exit.ExitCode(), nil
	}
	return 0, fmt.Errorf("waiting for %s: %w", p.cmd.Path, err)
}
