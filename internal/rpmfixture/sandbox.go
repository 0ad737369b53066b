// Package rpmfixture makes real rpm faults for tests: real packages in a
// real rpm database, a database corrupted on disk, queries really hung
// behind a real lock, real transactions, and (clearly labelled) a fault-
// injected lossy rebuild. Every builder works through tasks.Node, so the
// same faults can be seeded on any node that runs commands: the Sandbox
// below, or a simulated fleet node (internal/testfleet).
//
// Sandbox is a stand-in node until the fleet lands: a PID and mount
// namespace (unshare) with its own /proc, overlays over /etc and /var/lib
// and a private /run, so rpm's database lives at the usual /var/lib/rpm and
// processes can be listed and killed without touching the machine's own.
package rpmfixture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodefix/nodefix/tasks"
)

// RequiredEnv is the variable that turns a missing prerequisite into a test
// failure instead of a skip (CI sets NODEFIX_FLEET=required).
const RequiredEnv = "NODEFIX_FLEET"

// SkipUnless skips t with reason when ok is false, or fails it when
// NODEFIX_FLEET=required.
func SkipUnless(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv(RequiredEnv) == "required" {
		t.Fatalf("prerequisite missing (%s=required): %s", RequiredEnv, reason)
	}
	t.Skip("skipping: " + reason)
}

// Prerequisites reports what a sandbox needs and this machine lacks, or "".
func Prerequisites() string {
	if os.Geteuid() != 0 {
		return "needs root (namespaces, mounts)"
	}
	for _, tool := range []string{"unshare", "nsenter", "rpm", "rpmbuild", "python3", "bash", "timeout", "setsid"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "needs " + tool + " on PATH"
		}
	}
	if fi, err := os.Stat("/var/lib"); err != nil || !fi.IsDir() {
		return "needs /var/lib"
	}
	return ""
}

// Sandbox is one node-like namespace. It implements tasks.Node.
type Sandbox struct {
	// Dir is the sandbox's directory on the machine; the node's
	// /var/lib lives in Dir/varlib/upper, its /etc changes in
	// Dir/etc/upper.
	Dir string
	// DBPath is the rpm database inside the sandbox (/var/lib/rpm);
	// HostDBPath is the same directory seen from the machine.
	DBPath, HostDBPath string
	// Env is the environment commands run with.
	Env []string

	init *exec.Cmd
	pid  int
}

// sandboxSetup runs inside the new namespaces before the reaper takes
// over as PID 1. $1 is the sandbox dir.
const sandboxSetup = `set -e
d=$1
mkdir -p "$d/etc/upper" "$d/etc/work" "$d/varlib/upper" "$d/varlib/work" "$d/home" "$d/tmp"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$d/etc/upper,workdir=$d/etc/work" /etc
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$d/varlib/upper,workdir=$d/varlib/work" /var/lib
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=755 tmpfs /usr/local/sbin
mkdir -p /etc/rpm /var/lib/rpm
printf '%%_dbpath /var/lib/rpm\n' > /etc/rpm/macros
rpm --initdb
echo ready
exec python3 -c '
import os, time
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
'
`

// NewSandbox starts a sandbox with an empty rpm database and tears it
// down (killing everything in it) when t ends. It skips t without the
// prerequisites (fails it under NODEFIX_FLEET=required).
func NewSandbox(t testing.TB) *Sandbox {
	t.Helper()
	reason := Prerequisites()
	SkipUnless(t, reason == "", reason)
	dir := t.TempDir()
	s := &Sandbox{
		Dir:        dir,
		DBPath:     "/var/lib/rpm",
		HostDBPath: filepath.Join(dir, "varlib", "upper", "rpm"),
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"HOME=" + filepath.Join(dir, "home"),
			"LC_ALL=C",
			"TMPDIR=" + filepath.Join(dir, "tmp"),
		},
	}
	cmd := exec.Command("unshare", "--pid", "--mount", "--fork", "--mount-proc", "--propagation", "private",
		"sh", "-c", sandboxSetup, "sh", dir)
	cmd.Env = s.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("sandbox: starting unshare: %v", err)
	}
	s.init = cmd
	t.Cleanup(s.close)
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("sandbox: setting up namespaces: %v: %s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("sandbox: setup did not finish in 30s: %s", stderr.String())
	}
	// unshare --fork: the namespace's PID 1 is unshare's only child.
	pid, err := childOf(cmd.Process.Pid)
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	s.pid = pid
	return s
}

// childOf finds the single child of pid.
func childOf(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, fmt.Errorf("finding the namespace's init: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0, fmt.Errorf("finding the namespace's init: unshare has children %q", f)
	}
	return strconv.Atoi(f[0])
}

// close kills the namespace's PID 1, which takes every process in the
// namespace with it, and unmounts nothing: the mounts die with the mount
// namespace.
func (s *Sandbox) close() {
	if s.pid > 0 {
		_ = syscall.Kill(s.pid, syscall.SIGKILL)
	}
	if s.init != nil && s.init.Process != nil {
		_ = s.init.Process.Kill()
		_ = s.init.Wait()
	}
}

// Run implements tasks.Node: argv runs inside the sandbox's namespaces.
func (s *Sandbox) Run(ctx context.Context, c tasks.Command) (tasks.Result, error) {
	if len(c.Argv) == 0 {
		return tasks.Result{}, errors.New("empty argv")
	}
	argv := append([]string{"-t", strconv.Itoa(s.pid), "--pid", "--mount", "--"}, c.Argv...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	cmd.Env = s.Env
	cmd.Stdin = bytes.NewReader(c.Stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	res := tasks.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return res, fmt.Errorf("running %q in the sandbox: %w", c.Argv[0], ctx.Err())
	case errors.As(err, &exit) && exit.Exited():
		res.ExitStatus = exit.ExitCode()
	case errors.As(err, &exit):
		// Killed by a signal: report it the way a shell would.
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitStatus = 128 + int(ws.Signal())
		} else {
			return res, fmt.Errorf("running %q in the sandbox: %w", c.Argv[0], err)
		}
	default:
		return res, fmt.Errorf("running %q in the sandbox: %w", c.Argv[0], err)
	}
	return res, nil
}
