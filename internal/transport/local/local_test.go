package local

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/tasks"
)

func TestRun(t *testing.T) {
	c, err := New(transport.Become{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		cmd        tasks.Command
		wantOut    string
		wantErr    string
		wantStatus int
	}{
		{name: "stdout", cmd: tasks.Command{Argv: []string{"printf", "%s|", "a b", "it's", ""}}, wantOut: "a b|it's||"},
		{name: "stdin", cmd: tasks.Command{Argv: []string{"cat"}, Stdin: []byte("in\x00put")}, wantOut: "in\x00put"},
		{name: "status", cmd: tasks.Command{Argv: []string{"sh", "-c", "echo oops >&2; exit 7"}}, wantErr: "oops\n", wantStatus: 7},
		{name: "not found", cmd: tasks.Command{Argv: []string{"no-such-program-nodefix"}}, wantErr: "no-such-program-nodefix", wantStatus: 127},
		{name: "stdin unread", cmd: tasks.Command{Argv: []string{"true"}, Stdin: make([]byte, 1<<20)}},
		{name: "signalled", cmd: tasks.Command{Argv: []string{"sh", "-c", "kill -TERM $$"}}, wantStatus: 128 + 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Run(context.Background(), tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Stdout) != tc.wantOut {
				t.Errorf("stdout = %q, want %q", res.Stdout, tc.wantOut)
			}
			if !strings.Contains(string(res.Stderr), tc.wantErr) {
				t.Errorf("stderr = %q, want it to hold %q", res.Stderr, tc.wantErr)
			}
			if res.ExitStatus != tc.wantStatus {
				t.Errorf("status = %d, want %d", res.ExitStatus, tc.wantStatus)
			}
		})
	}
}

// Cancelling a command ends it and everything it started (its process
// group), by SIGTERM first.
func TestCancelEndsTheProcessGroup(t *testing.T) {
	c, _ := New(transport.Become{})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	started := time.Now()
	go func() {
		for {
			if _, err := os.Stat(dir + "/child"); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	// The trap is set before the child's pid appears, and the pid file
	// appears whole (rename): the watcher cancels as soon as it sees it.
	script := `trap 'echo term > ` + dir + `/term; kill $!; exit 1' TERM; sleep 300 & echo $! > ` + dir + `/child.tmp && mv ` + dir + `/child.tmp ` + dir + `/child; wait`
	_, err := c.Run(ctx, tasks.Command{Argv: []string{"sh", "-c", script}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if time.Since(started) > DefaultGrace {
		t.Errorf("took %v: SIGTERM was not enough?", time.Since(started))
	}
	pid, _ := os.ReadFile(dir + "/child")
	if !gone(strings.TrimSpace(string(pid)), 2*time.Second) {
		t.Errorf("child %s still runs", pid)
	}
	if _, err := os.Stat(dir + "/term"); err != nil {
		t.Errorf("the command was not sent SIGTERM first: %v", err)
	}
}

// A real sudo, as root (which needs no password), to an unprivileged user.
func TestBecomeWithRealSudo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: sudo as root asks no password")
	}
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Skip("sudo not installed")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	c, err := New(transport.Become{Enable: true, User: "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(context.Background(), tasks.Command{Argv: []string{"sh", "-c", `id -un; cat; echo "to stderr" >&2; exit 5`}, Stdin: []byte("input")})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "nobody\ninput" {
		t.Errorf("stdout = %q", got)
	}
	if got := string(res.Stderr); got != "to stderr\n" {
		t.Errorf("stderr = %q, want only the command's", got)
	}
	if res.ExitStatus != 5 {
		t.Errorf("status = %d, want 5", res.ExitStatus)
	}
}

// gone waits for a process to end (a zombie waiting for its reaper counts
// as ended).
func gone(pid string, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return true
		}
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			return true
		}
	}
	return false
}
