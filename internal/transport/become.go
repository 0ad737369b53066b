package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/nodefix/nodefix/inventory"
	"github.com/nodefix/nodefix/tasks"
)

// Secret is a string that never prints: passwords travel as Secrets so
// that no %v, %+v or %#v of a struct holding one can leak it into a log,
// an error or a report.
type Secret string

func (Secret) String() string   { return redacted }
func (Secret) GoString() string { return redacted }

// MarshalText keeps a Secret out of JSON and YAML too.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

const redacted = "<redacted>"

// Become is privilege escalation for every command on a host. Only sudo is
// implemented.
//
// How the password is handled, and why: every command runs as
//
//	sudo -H {-n | -S -p PROMPT} -u USER -- /bin/sh -c 'echo MARKER >&2 && exec "$@"' nodefix-become ARGV...
//
// with a PROMPT and MARKER unique to the command. Without a password sudo
// gets -n and can never prompt. With one, sudo reads it from stdin (-S);
// nodefix writes it only after PROMPT has appeared on stderr, and writes
// the command's own stdin only after MARKER has, that is once sudo has
// authenticated and started the command. So the password never reaches the
// command's stdin whatever the node's sudoers says: NOPASSWD for some
// commands only, cached credentials (timestamp_type=global), !authenticate —
// cases where probing once per connection (`sudo -n true`) and then writing
// the password blindly would leak it into the command's input. It is never
// in argv, the environment, a file, a log or a report. The marker also tells
// sudo's own refusals (a password is required, not in sudoers, wrong
// password) apart from the command's failures, which a task must not
// mistake for each other. The price is one /bin/sh exec per command.
type Become struct {
	Enable bool
	// Method is ansible_become_method; only "sudo" (or empty) works.
	Method string
	// User is who to become (empty = root).
	User string
	// Password for sudo, when it asks for one.
	Password Secret
}

// Enabled reports whether commands are wrapped.
func (b Become) Enabled() bool { return b.Enable }

// String describes b without its password.
func (b Become) String() string {
	if !b.Enable {
		return "no become"
	}
	return fmt.Sprintf("become %s via %s (password set: %t)", b.user(), b.method(), b.Password != "")
}

// GoString keeps %#v from printing the password field.
func (b Become) GoString() string { return b.String() }

func (b Become) user() string {
	if b.User == "" {
		return "root"
	}
	return b.User
}

func (b Become) method() string {
	if b.Method == "" {
		return "sudo"
	}
	return b.Method
}

// Validate refuses what nodefix cannot do.
func (b Become) Validate() error {
	if !b.Enable {
		return nil
	}
	if b.method() != "sudo" {
		return fmt.Errorf("become method %q is not supported: nodefix only implements sudo (set ansible_become_method=sudo, or run without become as a user that may run the tasks)", b.Method)
	}
	if strings.HasPrefix(b.User, "-") || strings.ContainsAny(b.User, " \t\n") {
		return fmt.Errorf("become user %q is not a user name", b.User)
	}
	return nil
}

// BecomeDefaults are the command line's become options; a host's
// inventory variables take precedence, as in Ansible.
type BecomeDefaults struct {
	Enable   bool   // -b/--become
	User     string // --become-user
	Password Secret // -K/--ask-become-pass
}

// BecomeFor resolves become for one host from its connection settings and
// the command line. ansible_become=true or -b enables it (the inventory
// cannot say "false" apart from "unset"); ansible_become_user,
// ansible_become_password and ansible_become_method win over the command
// line.
func BecomeFor(c inventory.Connection, d BecomeDefaults) (Become, error) {
	b := Become{
		Enable:   c.Become || d.Enable,
		Method:   c.BecomeMethod,
		User:     c.BecomeUser,
		Password: Secret(c.BecomePassword),
	}
	if b.User == "" {
		b.User = d.User
	}
	if b.Password == "" {
		b.Password = d.Password
	}
	return b, b.Validate()
}

// BecomeError is sudo refusing to run a command (as opposed to the command
// running and failing).
type BecomeError struct {
	User   string
	Status int
	// Reason is what sudo said, prompts removed.
	Reason string
	// WrongPassword: sudo asked again after the password was given.
	WrongPassword bool
}

func (e *BecomeError) Error() string {
	switch {
	case e.WrongPassword:
		return fmt.Sprintf("become: sudo refused the password to become %s (incorrect become password)", e.User)
	case strings.Contains(e.Reason, "a password is required"):
		return fmt.Sprintf("become: sudo needs a password to become %s: give it with -K/--ask-become-pass or ansible_become_password", e.User)
	case strings.Contains(e.Reason, "a terminal is required") || strings.Contains(e.Reason, "must have a tty"):
		return fmt.Sprintf("become: sudo on this host requires a terminal (Defaults requiretty): allow the connecting user without a tty (Defaults:USER !requiretty): %s", e.Reason)
	case e.Reason == "":
		return fmt.Sprintf("become: sudo could not run the command as %s (exit status %d)", e.User, e.Status)
	}
	return fmt.Sprintf("become: sudo could not run the command as %s (exit status %d): %s", e.User, e.Status, e.Reason)
}

// becomeArgv wraps argv in sudo; see Become for the shape and why.
func (b Become) becomeArgv(prompt, marker string, argv []string) []string {
	a := []string{"sudo", "-H"}
	if b.Password != "" {
		a = append(a, "-S", "-p", prompt)
	} else {
		a = append(a, "-n")
	}
	a = append(a, "-u", b.user(), "--", "/bin/sh", "-c", "echo "+marker+" >&2 && exec \"$@\"", "nodefix-become")
	return append(a, argv...)
}

func runBecome(ctx context.Context, s Starter, b Become, cmd tasks.Command) (tasks.Result, error) {
	if err := b.Validate(); err != nil {
		return tasks.Result{}, err
	}
	nonce, err := newNonce()
	if err != nil {
		return tasks.Result{}, err
	}
	prompt := "[sudo via nodefix, key=" + nonce + "] password:"
	marker := "NODEFIX-BECOME-SUCCESS-" + nonce
	w := newBecomeWatcher(prompt, marker)
	var stdout bytes.Buffer
	p, err := s.Start(ctx, b.becomeArgv(prompt, marker, cmd.Argv), &stdout, w)
	if err != nil {
		return tasks.Result{}, err
	}
	done := make(chan struct{})
	feederDone := make(chan struct{})
	go func() {
		defer close(feederDone)
		feedBecome(p.Stdin(), w.events, done, b.Password, cmd.Stdin)
	}()
	status, waitErr := p.Wait()
	close(done)
	_ = p.Stdin().Close() // unblocks a write the command never read
	<-feederDone
	if waitErr != nil {
		return tasks.Result{}, waitErr
	}
	started, prompts, before, after := w.result()
	if !started {
		return tasks.Result{}, &BecomeError{
			User:          b.user(),
			Status:        status,
			Reason:        sudoReason(before, prompt),
			WrongPassword: b.Password != "" && prompts > 1,
		}
	}
	return tasks.Result{Stdout: stdout.Bytes(), Stderr: after, ExitStatus: status}, nil
}

// feedBecome answers sudo's first prompt with the password and passes the
// command's stdin once the command has started. A second prompt means the
// password was wrong: stdin is closed so that sudo gives up at once
// instead of waiting for another try.
func feedBecome(stdin io.WriteCloser, events <-chan becomeEvent, done <-chan struct{}, password Secret, input []byte) {
	defer stdin.Close()
	sent := false
	for {
		select {
		case <-done:
			return
		case ev := <-events:
			switch ev {
			case eventPrompt:
				if sent || password == "" {
					return
				}
				if _, err := io.WriteString(stdin, string(password)+"\n"); err != nil {
					return
				}
				sent = true
			case eventStarted:
				if len(input) > 0 {
					_, _ = stdin.Write(input)
				}
				return
			}
		}
	}
}

type becomeEvent int

const (
	eventPrompt becomeEvent = iota
	eventStarted
)

// becomeWatcher is the stderr of a become-wrapped command: it tells the
// feeder when sudo prompts and when the command starts, and keeps what
// sudo said apart from what the command wrote.
type becomeWatcher struct {
	prompt, markerLine []byte
	events             chan becomeEvent

	mu      sync.Mutex
	before  bytes.Buffer // sudo's output, up to the marker
	scanned int          // prompts in before[:scanned] are counted
	prompts int
	started bool
	after   bytes.Buffer // the command's stderr
}

func newBecomeWatcher(prompt, marker string) *becomeWatcher {
	return &becomeWatcher{
		prompt:     []byte(prompt),
		markerLine: []byte(marker + "\n"),
		// Few events ever happen (a prompt or two, one start); a full
		// buffer only means sudo kept prompting, which the feeder already
		// answered by closing stdin.
		events: make(chan becomeEvent, 8),
	}
}

func (w *becomeWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return w.after.Write(p)
	}
	w.before.Write(p)
	buf := w.before.Bytes()
	for {
		i := bytes.Index(buf[w.scanned:], w.prompt)
		if i < 0 {
			break
		}
		w.scanned += i + len(w.prompt)
		w.prompts++
		w.send(eventPrompt)
	}
	if i := bytes.Index(buf, w.markerLine); i >= 0 {
		w.started = true
		w.after.Write(buf[i+len(w.markerLine):])
		w.before.Truncate(i)
		w.send(eventStarted)
	}
	return len(p), nil
}

func (w *becomeWatcher) send(ev becomeEvent) {
	select {
	case w.events <- ev:
	default:
	}
}

func (w *becomeWatcher) result() (started bool, prompts int, before, after []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started, w.prompts, bytes.Clone(w.before.Bytes()), bytes.Clone(w.after.Bytes())
}

// sudoReason is what sudo printed, without our prompts.
func sudoReason(before []byte, prompt string) string {
	s := strings.ReplaceAll(string(before), prompt, "")
	var lines []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "; ")
}

func newNonce() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errors.New("become: no randomness for the sudo prompt: " + err.Error())
	}
	return hex.EncodeToString(b[:]), nil
}
