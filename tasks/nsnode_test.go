package tasks

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nsNode is a real local node for tests: a shell in its own UTS, mount and
// PID namespaces with overlayfs over /etc and /var, so renaming it,
// rewriting its /etc and the audit trail and job files nodefix keeps in
// /var never touch this (shared) machine. Commands enter it with
// nsenter, with the PATH a non-login SSH session has (no sbin), as root.
type nsNode struct {
	t    *testing.T
	pid  int // PID 1 of the node, as this machine sees it
	proc *exec.Cmd
}

// nsNodeOptions seed a node.
type nsNodeOptions struct {
	Hostname string // kernel hostname and /etc/hostname (default localhost)
	Hosts    string // /etc/hosts content (default: Debian's, for localhost)
	// Setup runs inside the node (as root, after /etc is an overlay)
	// before the test gets it: seed faults here.
	Setup string
}

// requireRealNodes skips a test that needs root, unshare and nsenter when
// they are missing, and fails it instead under NODEFIX_FLEET=required.
func requireRealNodes(t *testing.T) {
	t.Helper()
	missing := missingTools("unshare", "nsenter", "sh", "hostname")
	if os.Geteuid() != 0 {
		missing = append([]string{"root"}, missing...)
	}
	skipOrFail(t, "real-node test needs", missing)
}

// requireTools skips a test whose tools this machine lacks, and fails it
// under NODEFIX_FLEET=required (CI installs them).
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	skipOrFail(t, "needs", missingTools(tools...))
}

func missingTools(tools ...string) []string {
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	return missing
}

func skipOrFail(t *testing.T, what string, missing []string) {
	t.Helper()
	if len(missing) == 0 {
		return
	}
	msg := what + " " + strings.Join(missing, ", ")
	if os.Getenv("NODEFIX_FLEET") == "required" {
		t.Fatal(msg + " (NODEFIX_FLEET=required)")
	}
	t.Skip(msg)
}

const debianHosts = "127.0.0.1\tlocalhost\n127.0.1.1\tlocalhost\n\n# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n"

func newNSNode(t *testing.T, opt nsNodeOptions) *nsNode {
	t.Helper()
	requireRealNodes(t)
	if opt.Hostname == "" {
		opt.Hostname = "localhost"
	}
	if opt.Hosts == "" {
		opt.Hosts = debianHosts
	}
	dir := t.TempDir()
	for _, d := range []string{"upper", "work", "var-upper", "var-work"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hostsFile := filepath.Join(dir, "hosts.seed")
	if err := os.WriteFile(hostsFile, []byte(opt.Hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every value reaches the script as a positional parameter.
	script := `set -e
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/upper,workdir=$1/work" /etc
mount -t overlay overlay -o "lowerdir=/var,upperdir=$1/var-upper,workdir=$1/var-work" /var
hostname "$2"
printf '%s\n' "$2" >/etc/hostname
cat "$3" >/etc/hosts
rm -rf /etc/modprobe.d/nodefix-nfs.conf
eval "$4"
echo ready
exec sleep 1000000`
	cmd := exec.Command("unshare", "--uts", "--mount", "--pid", "--fork", "--mount-proc",
		"sh", "-c", script, "nsnode", dir, opt.Hostname, hostsFile, opt.Setup)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a namespaced node: %v", err)
	}
	n := &nsNode{t: t, proc: cmd}
	t.Cleanup(n.stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("namespaced node did not start: %q %v; stderr: %s", line, err, stderr.String())
	}
	// unshare --fork: the node's PID 1 is unshare's only child.
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(children))
	if len(f) != 1 {
		t.Fatalf("unshare has children %q, want exactly one", children)
	}
	n.pid, _ = strconv.Atoi(f[0])
	return n
}

func (n *nsNode) stop() {
	if n.pid > 0 {
		// Killing the namespace's PID 1 ends every process in it.
		_ = syscall.Kill(n.pid, syscall.SIGKILL)
	}
	_ = n.proc.Wait()
}

// Run implements Node.
func (n *nsNode) Run(ctx context.Context, cmd Command) (Result, error) {
	argv := append([]string{"-t", strconv.Itoa(n.pid), "--uts", "--mount", "--pid", "--"}, cmd.Argv...)
	c := exec.CommandContext(ctx, "nsenter", argv...)
	c.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", "LANG=C"}
	if cmd.Stdin != nil {
		c.Stdin = strings.NewReader(string(cmd.Stdin))
	}
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	c.WaitDelay = 5 * time.Second
	err := c.Run()
	res := Result{Stdout: []byte(stdout.String()), Stderr: []byte(stderr.String())}
	if ee, ok := err.(*exec.ExitError); ok && ctx.Err() == nil {
		res.ExitStatus = ee.ExitCode()
		return res, nil
	}
	return res, err
}

// sh runs a test-side script in the node and returns its stdout.
func (n *nsNode) sh(script string, args ...string) string {
	n.t.Helper()
	res, err := n.Run(context.Background(), Command{Argv: append([]string{"sh", "-c", script, "sh"}, args...)})
	if err != nil || res.ExitStatus != 0 {
		n.t.Fatalf("node: %s: %v, status %d, stderr %s", script, err, res.ExitStatus, res.Stderr)
	}
	return string(res.Stdout)
}

func (n *nsNode) read(path string) string { return n.sh(`cat "$1"`, path) }

func (n *nsNode) hostname() string { return strings.TrimSpace(n.sh("cat /proc/sys/kernel/hostname")) }

// snapshot is the node's naming state, to prove a run changed nothing.
func (n *nsNode) snapshot() string {
	return n.sh(`cat /proc/sys/kernel/hostname /etc/hostname /etc/hosts; ls -la /etc | grep -E 'hosts|hostname|nodefix' || true`)
}
