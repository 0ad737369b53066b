package termio

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodefix/nodefix/internal/termio/ptytest"
)

func TestReadSecretOnAPseudoTerminal(t *testing.T) {
	master, slave := ptytest.Open(t)
	before, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)

	p := &Prompter{Open: func() (io.ReadWriteCloser, int, error) {
		return nopCloser{slave}, int(slave.Fd()), nil
	}}
	var mu sync.Mutex
	var screen bytes.Buffer
	shown := func() string { mu.Lock(); defer mu.Unlock(); return screen.String() }
	done := make(chan struct{})
	go func() { // the operator: answers the prompt, keeps watching the screen
		defer close(done)
		buf := make([]byte, 128)
		answered := false
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if !answered && strings.Contains(shown(), "Secret: ") {
				answered = true
				master.WriteString("s3cret\n")
			}
			if err != nil {
				return // EIO once the terminal side is closed
			}
		}
	}()
	got, err := p.ReadSecret("Secret: ")
	if err != nil {
		t.Fatal(err)
	}
	if got != "s3cret" {
		t.Errorf("read %q", got)
	}
	after, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	slave.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the terminal did not close")
	}
	if strings.Contains(shown(), "s3cret") {
		t.Errorf("the secret was echoed: %q", shown())
	}
	if before.Lflag != after.Lflag {
		t.Errorf("terminal modes not restored: %#x, was %#x", after.Lflag, before.Lflag)
	}
}

type nopCloser struct{ *os.File }

func (nopCloser) Close() error { return nil }

func TestColorWanted(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	_, tty := ptytest.Open(t)
	var buf bytes.Buffer
	for _, tc := range []struct {
		name string
		mode string
		out  any
		env  func(string) string
		want bool
	}{
		{"auto: a terminal", "auto", tty, env(), true},
		{"auto is the default", "", tty, env(), true},
		{"auto: a buffer", "auto", &buf, env(), false},
		{"auto: NO_COLOR", "auto", tty, env("NO_COLOR", "1"), false},
		{"auto: NO_COLOR empty is unset", "auto", tty, env("NO_COLOR", ""), true},
		{"auto: ANSIBLE_NOCOLOR", "auto", tty, env("ANSIBLE_NOCOLOR", "true"), false},
		{"auto: ANSIBLE_NOCOLOR false", "auto", tty, env("ANSIBLE_NOCOLOR", "false"), true},
		{"always: a buffer", "always", &buf, env(), true},
		{"always beats NO_COLOR", "ALWAYS", &buf, env("NO_COLOR", "1", "ANSIBLE_NOCOLOR", "1"), true},
		{"never: a terminal", "never", tty, env(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseColorMode(tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Wanted(tc.out, tc.env); got != tc.want {
				t.Errorf("%s.Wanted = %v, want %v", m, got, tc.want)
			}
		})
	}
	if _, err := ParseColorMode("sometimes"); err == nil || !strings.Contains(err.Error(), "auto, always or never") {
		t.Errorf("--color sometimes: %v", err)
	}
}
