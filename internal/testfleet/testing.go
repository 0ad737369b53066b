package testfleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// EnvRequired names the variable that turns a missing prerequisite from a
// skip into a failure. .ci/run sets NODEFIX_FLEET=required.
const EnvRequired = "NODEFIX_FLEET"

// Prerequisites reports what this machine lacks to run a fleet, or nil.
func Prerequisites() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (namespaces and overlay mounts)")
	}
	for _, tool := range []string{"unshare", "nsenter", "/usr/sbin/sshd", "rpm", "rpmbuild", "openssl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("the simulated fleet needs %v (run `make deps` as root)", missing)
}

// Require skips the test when a prerequisite is missing, or fails it when
// NODEFIX_FLEET=required (so CI never passes by skipping).
func Require(t testing.TB, extra ...string) {
	t.Helper()
	err := Prerequisites()
	for _, tool := range extra {
		if _, lookErr := exec.LookPath(tool); lookErr != nil {
			err = errors.Join(err, fmt.Errorf("this test needs %s", tool))
		}
	}
	if err == nil {
		return
	}
	if os.Getenv(EnvRequired) == "required" {
		t.Fatalf("%v (%s=required)", err, EnvRequired)
	}
	t.Skipf("%v; set %s=required to make this a failure", err, EnvRequired)
}

// New starts a fleet for a test and stops it when the test ends.
func New(t testing.TB, opts Options) *Fleet {
	t.Helper()
	Require(t)
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	start := time.Now()
	f, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("starting fleet: %v", err)
	}
	t.Logf("fleet of %d nodes in %s started in %s", len(f.Nodes), f.Dir, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := f.Stop(ctx); err != nil {
			t.Errorf("stopping fleet: %v", err)
		}
	})
	return f
}
