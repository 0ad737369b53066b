package tasks

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// lockedScript against the real rpm of this machine: while it runs, rpm
// cannot start a transaction on the database; while another process holds
// rpm's lock, its script does not run at all; without Python it says so
// and runs unlocked.
func TestLockedScriptHoldsRPMsTransactionLock(t *testing.T) {
	requireTools(t, "rpm", "python3", "timeout")
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "db")
	if out, err := exec.Command("rpm", "--dbpath", db, "--initdb").CombinedOutput(); err != nil {
		t.Fatalf("rpm --initdb: %v %s", err, out)
	}
	lock := filepath.Join(db, ".rpm.lock")
	// rebuilddb is a transaction: it takes the lock without waiting.
	rebuild := `timeout 20 rpm --dbpath "$1" --rebuilddb 2>&1; echo "rpm exit $?"`

	noPython := t.TempDir()
	if err := os.Symlink("/bin/sh", filepath.Join(noPython, "sh")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		holdLock   bool   // this test process holds rpm's lock meanwhile
		path       string // the script's PATH; "" keeps this machine's
		body       string
		wantStatus int
		want       []string
		wantNot    []string
	}{
		{name: "free: held while the script runs, rpm's transaction refused",
			body: rebuild, want: []string{"lock held\n", "can't create transaction lock on " + lock, "rpm exit 255"}},
		{name: "held by a transaction: the script does not run",
			holdLock: true, body: `echo ran`, wantStatus: installLockBusy, want: []string{"lock busy\n"}, wantNot: []string{"ran"}},
		{name: "no Python: said so, run unlocked",
			path: noPython, body: `echo ran`, want: []string{"lock none\n", "ran\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.holdLock {
				release := holdPOSIXLock(t, lock)
				defer release()
			}
			argv := shellScript("lock-test", lockedScript, lock, tt.body, db).Argv
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			if tt.path != "" {
				cmd.Env = []string{"PATH=" + tt.path}
				cmd.Path = "/bin/sh"
			}
			out, err := cmd.CombinedOutput()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.wantStatus {
				t.Errorf("exit status %d, want %d: %s", status, tt.wantStatus, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output %q lacks %q", out, w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(string(out), w) {
					t.Errorf("output %q has %q", out, w)
				}
			}
		})
	}
	// The lock ended with the script: rpm's own transaction runs now.
	if out, err := exec.Command("timeout", "20", "rpm", "--dbpath", db, "--rebuilddb").CombinedOutput(); err != nil {
		t.Errorf("rpm --rebuilddb after the locked scripts: %v %s", err, out)
	}
}

// holdPOSIXLock takes a POSIX write lock on path, as rpm's transactions
// do, until release is called.
func holdPOSIXLock(t *testing.T, path string) (release func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		f.Close()
		t.Fatalf("locking %s: %v", path, err)
	}
	return func() { f.Close() }
}
