package playbooks_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/testfleet"
	"github.com/nodefix/nodefix/tasks"
)

// TestPlaybooksSyntax: every playbook parses for ansible-playbook (no fleet
// needed, only ansible-core).
func TestPlaybooksSyntax(t *testing.T) {
	if _, err := lookAnsible(); err != nil {
		if os.Getenv(testfleet.EnvRequired) == "required" {
			t.Fatalf("%v (%s=required)", err, testfleet.EnvRequired)
		}
		t.Skipf("%v; set %s=required to make this a failure", err, testfleet.EnvRequired)
	}
	w := newWorkspace(t, 1)
	inv := filepath.Join(w.Dir, "hosts")
	if err := os.WriteFile(inv, []byte("[kube_master]\nm1\n[kube_node]\nw1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, pb := range []string{"remediate.yml", "remediate-command.yml", "kubeasz-post-install.yml", "monitor.yml"} {
		if out, rc := w.run(t, pb, "-i", inv, "--syntax-check"); rc != 0 {
			t.Errorf("%s: --syntax-check exit %d:\n%s", pb, rc, out)
		}
	}
}

// TestRemediateModule is issue 7's done-when for the binary module: check
// mode reports what would change and changes nothing (read on the nodes);
// applied, it fixes hostnames (and hung queries and a corrupted rpmdb once
// those tasks are real); applied again, changed=0 for every host in
// Ansible's own PLAY RECAP.
func TestRemediateModule(t *testing.T) {
	requireAnsible(t)
	const nodes = 5
	f := testfleet.New(t, testfleet.Options{Nodes: nodes, Hostname: localhostNames})
	ctx := context.Background()
	wedged, corrupted := f.Nodes[1], f.Nodes[2]
	wedge, err := wedged.WedgeRPMDB(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	queries, err := wedged.StartRPMQueries(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	if err := corrupted.CorruptRPMDB(ctx); err != nil {
		t.Fatal(err)
	}
	w := newWorkspace(t, nodes)
	config := kubeaszConfig(t)
	// The hung queries are seconds old when the playbook runs; the
	// default limit (10m) would call them young.
	maxAge := "nodefix_rpm_query_max_age=2s"
	before := describeAll(t, f)
	corruptedPackages := packageCount(t, corrupted)

	// Check mode: every host would change (its name), nothing does.
	out, rc := w.run(t, "remediate.yml", "-i", f.InventoryYAML, "-e", "@"+config, "-e", maxAge, "--check", "--diff")
	// In check mode the hung query is not ended, so the transaction
	// waiting behind it still holds rpm's transaction lock: rpmdb skips
	// that database, saying so (the run ends the query first; see below).
	// No node fails.
	if rc != 0 {
		t.Fatalf("check mode: exit %d, want 0:\n%s", rc, out)
	}
	recaps := parseRecap(t, out)
	for _, n := range f.Nodes {
		want := kubeaszName(n.Name, n.K8sNodename)
		if r := recaps[n.Name]; r.Changed < 1 || r.Failed != 0 || r.Unreachable != 0 {
			t.Errorf("check mode: %s recap %+v, want changed>=1 and no failure\n%s", n.Name, r, out)
		}
		if !strings.Contains(out, "+hostname: "+want) {
			t.Errorf("check mode --diff shows no rename of %s to %s:\n%s", n.Name, want, out)
		}
	}
	if !strings.Contains(out, "cannot check the rpm database now, another process holds it") {
		t.Errorf("check mode: no word from rpmdb about the held database of %s:\n%s", wedged.Name, out)
	}
	after := describeAll(t, f)
	for _, n := range f.Nodes {
		b, a := before[n.Name], after[n.Name]
		if a.Hostname != b.Hostname || a.EtcHostname != b.EtcHostname {
			t.Errorf("check mode renamed %s: before %+v, after %+v", n.Name, b, a)
		}
	}
	// The hung query (blocked on a pipe nobody reads, forever) is alive,
	// and the corrupted database still fails to verify.
	if !alive(t, wedged, wedge.ReaderPID) {
		t.Errorf("check mode: the hung rpm query %d on %s was ended", wedge.ReaderPID, wedged.Name)
	}
	if verifyDB(t, corrupted) {
		t.Errorf("check mode: the corrupted rpm database of %s verifies now", corrupted.Name)
	}

	// Applied: every node carries its K8S_NODENAME.
	out, rc = w.run(t, "remediate.yml", "-i", f.InventoryYAML, "-e", "@"+config, "-e", maxAge)
	if rc != 0 {
		t.Fatalf("apply: exit %d:\n%s", rc, out)
	}
	states := describeAll(t, f)
	for _, n := range f.Nodes {
		want := kubeaszName(n.Name, n.K8sNodename)
		st := states[n.Name]
		if st.Hostname != want || st.EtcHostname != want {
			t.Errorf("after apply %s is named %q (/etc/hostname %q), want %q", n.Name, st.Hostname, st.EtcHostname, want)
		}
		if r := parseRecap(t, out)[n.Name]; r.Changed < 1 || r.Failed != 0 {
			t.Errorf("apply: %s recap %+v, want changed", n.Name, r)
		}
		if !verifyDB(t, n) {
			t.Errorf("after apply the rpm database of %s does not verify", n.Name)
		}
	}
	for _, pid := range append([]int{wedge.ReaderPID}, queries...) {
		if alive(t, wedged, pid) {
			t.Errorf("after apply the hung rpm query %d still runs on %s", pid, wedged.Name)
		}
	}
	if got, was := packageCount(t, corrupted), corruptedPackages; got < was || got == 0 {
		t.Errorf("after the rebuild %s records %d packages, %d before", corrupted.Name, got, was)
	}

	// Again: nothing to change on any host.
	out, rc = w.run(t, "remediate.yml", "-i", f.InventoryYAML, "-e", "@"+config, "-e", maxAge)
	if rc != 0 {
		t.Fatalf("second apply: exit %d:\n%s", rc, out)
	}
	recaps = parseRecap(t, out)
	for _, n := range f.Nodes {
		if r, ok := recaps[n.Name]; !ok || r.Changed != 0 || r.Failed != 0 || r.Unreachable != 0 {
			t.Errorf("second apply: %s recap %+v (present %t), want changed=0 failed=0\n%s", n.Name, r, ok, out)
		}
	}
}

// TestRemediateModuleFailedNode: a node that fails (no iscsiadm) is failed
// in Ansible's recap with nodefix's message; the others succeed.
func TestRemediateModuleFailedNode(t *testing.T) {
	requireAnsible(t)
	const nodes = 3
	f := testfleet.New(t, testfleet.Options{Nodes: nodes, Hostname: localhostNames})
	broken := f.Nodes[1]
	if err := broken.RemoveExecutable(context.Background(), "iscsiadm"); err != nil {
		t.Fatal(err)
	}
	w := newWorkspace(t, nodes)
	out, rc := w.run(t, "remediate.yml", "-i", f.InventoryYAML, "-e", "@"+kubeaszConfig(t))
	if rc != 2 {
		t.Errorf("exit %d, want 2 (a host failed), as ansible-playbook reports it:\n%s", rc, out)
	}
	recaps := parseRecap(t, out)
	for _, n := range f.Nodes {
		r := recaps[n.Name]
		if n == broken {
			if r.Failed != 1 {
				t.Errorf("%s recap %+v, want failed=1", n.Name, r)
			}
			line := fatalLine(out, n.Name)
			if !strings.Contains(line, "longhorn-deps: missing: iscsiadm") {
				t.Errorf("%s: Ansible's failure line does not carry nodefix's message: %q\n%s", n.Name, line, out)
			}
			continue
		}
		if r.Failed != 0 || r.Changed < 1 {
			t.Errorf("%s recap %+v, want changed (renamed) and not failed", n.Name, r)
		}
	}
	// The failed node was still renamed: hostname runs before longhorn-deps.
	states := describeAll(t, f)
	for _, n := range f.Nodes {
		if want := kubeaszName(n.Name, n.K8sNodename); states[n.Name].Hostname != want {
			t.Errorf("%s is named %q, want %q", n.Name, states[n.Name].Hostname, want)
		}
	}
}

func alive(t *testing.T, n *testfleet.Node, pid int) bool {
	t.Helper()
	ok, err := n.ProcessAlive(context.Background(), pid)
	if err != nil {
		t.Fatalf("on %s: %v", n.Name, err)
	}
	return ok
}

// verifyDB runs `rpm --verifydb` on n, with time enough for a loaded
// machine (Describe's own probe gives up after 3s).
func verifyDB(t *testing.T, n *testfleet.Node) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := n.Run(ctx, tasks.Command{Argv: []string{"rpm", "--verifydb"}})
	if err != nil {
		t.Fatalf("rpm --verifydb on %s: %v", n.Name, err)
	}
	return res.ExitStatus == 0
}

func packageCount(t *testing.T, n *testfleet.Node) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := n.Sh(ctx, "rpm -qa | wc -l")
	if err != nil {
		t.Fatalf("counting packages on %s: %v", n.Name, err)
	}
	var c int
	fmt.Sscan(out, &c)
	return c
}

// kubeaszConfig is the config.yml the kubeasz tests load with -e: kubeasz's
// own from NODEFIX_KUBEASZ_CONFIG, else the stored excerpt.
func kubeaszConfig(t *testing.T) string {
	if p := os.Getenv("NODEFIX_KUBEASZ_CONFIG"); p != "" {
		return p
	}
	return filepath.Join(repoRoot(t), "testdata", "kubeasz", "config.yml")
}

func lookAnsible() (string, error) {
	p, err := exec.LookPath("ansible-playbook")
	if err != nil {
		return "", fmt.Errorf("this test needs ansible-playbook (ansible-core): %v", err)
	}
	return p, nil
}

// TestRemediateModuleWithBecome: connected as an unprivileged user, the
// playbook fixes nothing without -b (renaming needs root) and everything
// with -b and the sudo password from a vars file (never on the command
// line); the password appears nowhere in Ansible's output.
func TestRemediateModuleWithBecome(t *testing.T) {
	requireAnsible(t)
	const nodes = 2
	f := testfleet.New(t, testfleet.Options{Nodes: nodes, Hostname: localhostNames})
	w := newWorkspace(t, nodes)
	asUser := filepath.Join(w.Dir, "become.yml")
	vars := fmt.Sprintf("ansible_user: %q\nansible_become_password: %q\n", f.SudoUser, f.SudoPassword)
	if err := os.WriteFile(asUser, []byte(vars), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-i", f.InventoryYAML, "-e", "@" + kubeaszConfig(t), "-e", "@" + asUser, "-e", "nodefix_tasks=hostname"}

	out, rc := w.run(t, "remediate.yml", args...)
	if rc != 2 {
		t.Errorf("as %s without -b: exit %d, want 2 (renaming needs root):\n%s", f.SudoUser, rc, out)
	}
	for _, n := range f.Nodes {
		if line := fatalLine(out, n.Name); !strings.Contains(line, "Permission denied") || !strings.Contains(line, "nothing changed") ||
			!strings.Contains(line, `"hostname_after": "localhost"`) {
			t.Errorf("without -b %s: want nodefix's permission failure, nothing changed, still localhost; got %q", n.Name, line)
		}
	}
	for name, st := range describeAll(t, f) {
		if st.Hostname != "localhost" {
			t.Errorf("without -b %s was renamed to %q", name, st.Hostname)
		}
	}

	out, rc = w.run(t, "remediate.yml", append(args, "-b")...)
	if rc != 0 {
		t.Fatalf("as %s with -b: exit %d:\n%s", f.SudoUser, rc, out)
	}
	recaps := parseRecap(t, out)
	states := describeAll(t, f)
	for _, n := range f.Nodes {
		if r := recaps[n.Name]; r.Changed < 1 || r.Failed != 0 {
			t.Errorf("with -b: %s recap %+v, want changed", n.Name, r)
		}
		if want := kubeaszName(n.Name, n.K8sNodename); states[n.Name].Hostname != want {
			t.Errorf("with -b %s is named %q, want %q", n.Name, states[n.Name].Hostname, want)
		}
	}
	if strings.Contains(out, f.SudoPassword) {
		t.Errorf("the sudo password appears in Ansible's output:\n%s", out)
	}
}
