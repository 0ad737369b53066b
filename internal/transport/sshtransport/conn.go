package sshtransport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/melbahja/goph"
	"golang.org/x/crypto/ssh"

	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/tasks"
)

// closeWait is how long a closed session may take to be confirmed before
// the whole connection is considered stalled and closed.
const closeWait = 3 * time.Second

// Conn is one host's SSH connection. Every command runs in its own
// session on it.
type Conn struct {
	name     string
	client   *goph.Client
	become   transport.Become
	grace    time.Duration
	warnings []string

	done chan struct{} // closed when the connection has ended
	mu   sync.Mutex
	lost error
}

func newConn(name string, client *goph.Client, become transport.Become, opts Options, warnings []string) *Conn {
	c := &Conn{
		name:     name,
		client:   client,
		become:   become,
		grace:    opts.Grace,
		warnings: warnings,
		done:     make(chan struct{}),
	}
	go func() {
		err := client.Wait()
		if err == nil {
			err = errors.New("the server closed the connection")
		}
		c.setLost(err)
		close(c.done)
	}()
	if opts.KeepAlive > 0 {
		go c.keepAlive(opts.KeepAlive)
	}
	return c
}

// Run implements tasks.Node.
func (c *Conn) Run(ctx context.Context, cmd tasks.Command) (tasks.Result, error) {
	return transport.Run(ctx, c, c.become, cmd)
}

// Close ends the connection and any command still running on it.
func (c *Conn) Close() error {
	c.setLost(errors.New("connection closed by nodefix"))
	err := c.client.Close()
	<-c.done
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Lost implements transport.Lost.
func (c *Conn) Lost() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// Warnings implements transport.Warner.
func (c *Conn) Warnings() []string { return c.warnings }

func (c *Conn) setLost(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lost == nil {
		c.lost = err
	}
}

// drop closes a connection that stopped answering.
func (c *Conn) drop(why error) {
	c.setLost(why)
	_ = c.client.Close()
}

// keepAlive drops a connection whose server stops answering, so that a
// host that vanishes mid-run is reported unreachable instead of waiting
// for every command's timeout.
func (c *Conn) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		answered := make(chan struct{})
		go func() {
			_, _, _ = c.client.SendRequest("keepalive@openssh.com", true, nil)
			close(answered)
		}()
		select {
		case <-answered:
		case <-c.done:
			return
		case <-time.After(3 * every):
			c.drop(fmt.Errorf("no answer from the server for %v", 3*every))
			return
		}
	}
}

// Start implements transport.Starter: one session per command.
//
// The command line first reports the login shell's PID on stderr (the
// line is removed from what the task sees): sshd starts every command in
// a new session, so that PID is the command's process group, which
// cancellation kills through another session. sshd's own "signal" request
// cannot be relied on: sshd refuses it for root logins (no privilege
// separation child), and closing a session does not end its command.
func (c *Conn) Start(ctx context.Context, argv []string, stdout, stderr io.Writer) (transport.Process, error) {
	if err := c.Lost(); err != nil {
		return nil, fmt.Errorf("connection lost: %w", err)
	}
	line, err := transport.ShellJoin(argv)
	if err != nil {
		return nil, err
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	marker := "NODEFIX-PGID-" + nonce + "-"
	pids := newPIDWatcher(marker, stderr)
	sess, err := c.newSession(ctx)
	if err != nil {
		return nil, err
	}
	sess.Stdout, sess.Stderr = stdout, pids
	stdin, err := sess.StdinPipe()
	if err != nil {
		_ = sess.Close()
		return nil, fmt.Errorf("opening stdin: %w", err)
	}
	if err := sess.Start("echo " + marker + "$$ >&2; " + line); err != nil {
		_ = sess.Close()
		return nil, fmt.Errorf("starting %s: %w", argv[0], c.explain(err))
	}
	p := &process{c: c, ctx: ctx, sess: sess, stdin: stdin, pids: pids, waited: make(chan error, 1)}
	go func() {
		err := sess.Wait()
		pids.flush()
		p.waited <- err
	}()
	return p, nil
}

// newSession opens a session; a connection that cannot open one before
// ctx ends is stalled and is dropped.
//
// It never waits for x/crypto/ssh's NewSession past the end of the
// connection: a session opened just as the connection breaks (after the
// library has closed the channels it knew of, before it refuses new
// writes) waits for an answer that never comes, and NewSession never
// returns. Its result, if it ever comes, is closed by a goroutine left
// waiting for it.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, error) {
	type result struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := c.client.NewSession()
		ch <- result{s, err}
	}()
	abandon := func() {
		go func() {
			if r := <-ch; r.s != nil {
				_ = r.s.Close()
			}
		}()
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("opening a session: %w", c.explain(r.err))
		}
		return r.s, nil
	case <-c.done:
		abandon()
		return nil, fmt.Errorf("opening a session: %w", c.explain(io.EOF))
	case <-ctx.Done():
		c.drop(fmt.Errorf("opening a session did not complete: %w", ctx.Err()))
		abandon()
		return nil, ctx.Err()
	}
}

// explain prefers the reason the connection was lost to the error a
// session saw because of it.
func (c *Conn) explain(err error) error {
	if lost := c.Lost(); lost != nil {
		return fmt.Errorf("connection lost: %w", lost)
	}
	return err
}

type process struct {
	c      *Conn
	ctx    context.Context
	sess   *ssh.Session
	stdin  io.WriteCloser
	pids   *pidWatcher
	waited chan error
}

func (p *process) Stdin() io.WriteCloser { return p.stdin }

// Wait returns the command's exit status. When ctx ends first, the
// command's process group is sent SIGTERM, given the grace period, then
// SIGKILL, and its session is closed; a session whose close is not
// confirmed means the connection is stalled, and the connection is closed
// too. A cancelled command is never left behind, nor its session.
func (p *process) Wait() (int, error) {
	select {
	case err := <-p.waited:
		_ = p.sess.Close()
		return p.status(err)
	case <-p.ctx.Done():
	}
	p.signal("TERM", ssh.SIGTERM)
	select {
	case <-p.waited:
		_ = p.sess.Close()
		return 0, p.ctx.Err()
	case <-time.After(p.c.grace):
	}
	p.signal("KILL", ssh.SIGKILL)
	select {
	case <-p.waited:
		_ = p.sess.Close()
		return 0, p.ctx.Err()
	case <-time.After(closeWait):
	}
	_ = p.sess.Close()
	select {
	case <-p.waited:
	case <-time.After(closeWait):
		p.c.drop(fmt.Errorf("a cancelled command did not end within %v", p.c.grace+2*closeWait))
		<-p.waited
	}
	return 0, p.ctx.Err()
}

// signal sends sig to every process of the command's session (sshd makes
// each command a session leader; the login shell's PID is the session
// id) with a small script run in another session — with become, so that
// a command running as another user is reached too. Killing the process
// group alone would miss what moved to its own group but stayed in the
// session (timeout(1) does that), and those would keep the session's
// pipes, and so the sshd session, open. Before the session id is known the
// signal goes through sshd, which refuses it for root logins.
func (p *process) signal(name string, sig ssh.Signal) {
	sid := p.pids.pid()
	if sid <= 0 {
		_ = p.sess.Signal(sig)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	_, _ = transport.Run(ctx, p.c, p.c.become, tasks.Command{Argv: []string{
		"/bin/sh", "-c", killSessionScript, "nodefix-kill", name, strconv.Itoa(sid)}})
}

// killSessionScript: $1 signal name, $2 session id. The shell's own kill
// (procps' kill(1) reads "-- -8" as signal 8). Field 6 of /proc/PID/stat
// is the session id; the command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
const killSessionScript = `sig=$1 sid=$2
kill -s "$sig" -- "-$sid" 2>/dev/null
for st in /proc/[0-9]*/stat; do
	IFS= read -r line < "$st" 2>/dev/null || continue
	set -- ${line##*) }
	[ "$4" = "$sid" ] || continue
	pid=${st#/proc/}
	kill -s "$sig" "${pid%/stat}" 2>/dev/null
done
exit 0`

func (p *process) status(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return exit.ExitStatus(), nil
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		return 0, fmt.Errorf("the command ended without an exit status: %w", p.c.explain(err))
	}
	return 0, p.c.explain(err)
}

// pidWatcher is a command's stderr: it takes the line carrying the process
// group id out of the stream and passes everything else on unchanged.
type pidWatcher struct {
	marker []byte
	out    io.Writer

	mu     sync.Mutex
	buf    []byte // held back while the marker may still come
	found  bool
	pgid   int
	closed bool
}

// pidSearchLimit: output a login shell prints before our line (a noisy
// .bashrc) is held back at most this long before it is passed on.
const pidSearchLimit = 64 << 10

func newPIDWatcher(marker string, out io.Writer) *pidWatcher {
	return &pidWatcher{marker: []byte(marker), out: out}
}

func (w *pidWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.found || w.closed {
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	i := bytes.Index(w.buf, w.marker)
	if i >= 0 {
		if nl := bytes.IndexByte(w.buf[i:], '\n'); nl >= 0 {
			w.pgid, _ = strconv.Atoi(string(w.buf[i+len(w.marker) : i+nl]))
			w.found = true
			rest := append(w.buf[:i:i], w.buf[i+nl+1:]...)
			w.buf = nil
			if _, err := w.out.Write(rest); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	if len(w.buf) > pidSearchLimit {
		w.closed = true
		buf := w.buf
		w.buf = nil
		if _, err := w.out.Write(buf); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *pidWatcher) pid() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pgid
}

// flush passes on what was held back when the command ends.
func (w *pidWatcher) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		_, _ = w.out.Write(w.buf)
		w.buf = nil
	}
	w.closed = true
}

func newNonce() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("no randomness: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
