package playbooks_test

// Shared harness: the real ansible-playbook (Debian's ansible-core) against
// the simulated fleet (internal/testfleet), with every ANSIBLE_* setting
// isolated in a temporary directory, host key checking on (the fleet's
// known_hosts), and one fork per node.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/nodename"
	"github.com/nodefix/nodefix/internal/testfleet"
)

// requireAnsible skips (or, under NODEFIX_FLEET=required, fails) without
// the fleet's prerequisites and ansible-playbook.
func requireAnsible(t *testing.T) {
	t.Helper()
	testfleet.Require(t, "ansible-playbook", "ssh")
}

// repoRoot is the module root (this file lives in playbooks/).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Dir(filepath.Dir(file))
}

// goTool finds the go command that runs this test.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no go command to build nodefix with: %v", err)
	}
	return p
}

// buildNodefix builds a static nodefix for this machine (as `make
// playbooks-library` and `make dist` do: CGO off) into dir/name.
func buildNodefix(t *testing.T, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command(goTool(t), "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/nodefix")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building nodefix: %v\n%s", err, b)
	}
	return out
}

// workspace is a copy of playbooks/ with library/nodefix built into it, as
// an operator has it after `make playbooks-library`.
type workspace struct {
	Dir string
	env []string
}

func newWorkspace(t *testing.T, forks int) *workspace {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(repoRoot(t), "playbooks")
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		if !strings.HasSuffix(path, ".yml") {
			return nil // no Go files, no stale library binary
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatalf("copying playbooks: %v", err)
	}
	buildNodefix(t, filepath.Join(dir, "library"), "nodefix")
	return &workspace{Dir: dir, env: isolatedEnv(t, dir, forks)}
}

// isolatedEnv is this process's environment for Ansible's commands run in
// dir, with every ANSIBLE_* setting of this machine replaced by dir's own.
func isolatedEnv(t *testing.T, dir string, forks int) []string {
	t.Helper()
	// Ansible reads its configuration from the environment, ./ansible.cfg
	// and ~/.ansible.cfg: an explicit empty ANSIBLE_CONFIG and no other
	// ANSIBLE_* variable make the run independent of this machine.
	home := filepath.Join(dir, ".ansible-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(home, "ansible.cfg")
	if err := os.WriteFile(cfg, []byte("[defaults]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ANSIBLE_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"ANSIBLE_CONFIG="+cfg,
		"ANSIBLE_HOME="+home,
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"),
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+filepath.Join(home, "cp"),
		"ANSIBLE_HOST_KEY_CHECKING=True",
		"ANSIBLE_FORKS="+strconv.Itoa(forks),
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_RETRY_FILES_ENABLED=False",
		"ANSIBLE_STDOUT_CALLBACK=default",
		// The machine these tests share is often loaded: no spurious
		// unreachable hosts from a slow handshake.
		"ANSIBLE_TIMEOUT=60",
	)
	return env
}

// run is one ansible-playbook run of a playbook of the workspace; it
// returns the combined output and the exit status.
func (w *workspace) run(t *testing.T, playbook string, args ...string) (string, int) {
	t.Helper()
	return w.ansible(t, "ansible-playbook", append([]string{filepath.Join(w.Dir, playbook)}, args...)...)
}

// ansible runs one of Ansible's commands (ansible-playbook, ansible-galaxy,
// ansible-doc …) in the workspace with its environment; it returns the
// combined output and the exit status.
func (w *workspace) ansible(t *testing.T, command string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, command, args...)
	cmd.Env = w.env
	cmd.Dir = w.Dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	rc := 0
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok || ctx.Err() != nil {
			t.Fatalf("%s %s: %v\n%s", command, strings.Join(args, " "), err, out)
		}
		rc = exit.ExitCode()
	}
	t.Logf("%s %s: exit %d in %s", command, strings.Join(args, " "), rc, time.Since(start).Round(time.Millisecond))
	return string(out), rc
}

// recap is one host's line of Ansible's PLAY RECAP.
type recap struct {
	OK, Changed, Unreachable, Failed, Skipped int
}

var recapLine = regexp.MustCompile(`^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)`)

// parseRecap reads PLAY RECAP from ansible-playbook's output.
func parseRecap(t *testing.T, out string) map[string]recap {
	t.Helper()
	res := map[string]recap{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "PLAY RECAP") {
			in = true
			continue
		}
		if !in {
			continue
		}
		m := recapLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
		res[m[1]] = recap{OK: n(2), Changed: n(3), Unreachable: n(4), Failed: n(5), Skipped: n(6)}
	}
	if !in {
		t.Fatalf("no PLAY RECAP in ansible-playbook's output:\n%s", out)
	}
	return res
}

// describeAll reads every node's ground truth directly (not over ssh).
func describeAll(t *testing.T, f *testfleet.Fleet) map[string]testfleet.State {
	t.Helper()
	states := map[string]testfleet.State{}
	for _, n := range f.Nodes {
		// Describe bounds itself to 15s; on a machine shared with other
		// test suites a read can miss that, which says nothing about the
		// node: read again before giving up.
		var err error
		for try := 1; try <= 3; try++ {
			var st testfleet.State
			if st, err = n.Describe(context.Background()); err == nil {
				states[n.Name] = st
				break
			}
			t.Logf("describing %s (try %d): %v", n.Name, try, err)
		}
		if err != nil {
			t.Fatalf("describing %s: %v", n.Name, err)
		}
	}
	return states
}

// kubeaszName is kubeasz's K8S_NODENAME, for the expectations only (the
// playbooks take it from Ansible, never from this).
func kubeaszName(inventoryHostname, k8sNodename string) string {
	return nodename.Derive(inventoryHostname, k8sNodename)
}

func localhostNames(int) string { return "localhost" }

// fatalLine returns Ansible's "fatal: [host]: FAILED! => …" line for host.
func fatalLine(out, host string) string {
	prefix := fmt.Sprintf("fatal: [%s]", host)
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}
