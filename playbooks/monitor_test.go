package playbooks_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/internal/promtest"
	"github.com/nodefix/nodefix/internal/testfleet"
)

// monitorUnits copies deploy/systemd next to the workspace, where
// monitor.yml looks by default (../deploy/systemd), and returns the units'
// texts by name.
func monitorUnits(t *testing.T, w *workspace) map[string]string {
	t.Helper()
	dst := filepath.Join(filepath.Dir(w.Dir), "deploy", "systemd")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	units := map[string]string{}
	for _, name := range []string{"nodefix-check.service", "nodefix-check.timer"} {
		data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		units[name] = string(data)
	}
	return units
}

// monitorInventory is a kubeasz clusters/<c>/hosts for the fleet: node 1
// an etcd member and master, node 2 a worker, node 3 an etcd member only
// (no kubelet: not a target of monitor.yml by default).
func monitorInventory(t *testing.T, f *testfleet.Fleet) string {
	t.Helper()
	if len(f.Nodes) != 3 {
		t.Fatalf("monitorInventory wants 3 nodes, the fleet has %d", len(f.Nodes))
	}
	n1, n2, n3 := f.Nodes[0].Addr, f.Nodes[1].Addr, f.Nodes[2].Addr
	text := fmt.Sprintf("[etcd]\n%s\n%s\n\n[kube_master]\n%s k8s_nodename='master-01'\n\n"+
		"[kube_node]\n%s k8s_nodename='worker-01'\n\n[harbor]\n\n[ex_lb]\n\n[chrony]\n\n"+
		"[all:vars]\nbin_dir=\"/opt/kube/bin\"\nk8s_nodename=''\n"+
		"ansible_user=\"root\"\nansible_port=%d\nansible_ssh_private_key_file=\"%s\"\n"+
		"ansible_ssh_common_args=\"-o UserKnownHostsFile=%s\"\nansible_python_interpreter=\"/usr/bin/python3\"\n",
		n1, n3, n1, n2, f.Nodes[0].Port, f.ClientKeyFile, f.KnownHostsFile)
	for _, n := range f.Nodes {
		if n.Port != f.Nodes[0].Port {
			t.Fatalf("the fleet's nodes listen on different ports (%d, %d): one ansible_port does not serve them", n.Port, f.Nodes[0].Port)
		}
	}
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// nodeFile reads a file on a node ("" and false when it does not exist).
func nodeFile(t *testing.T, n *testfleet.Node, path string) (string, bool) {
	t.Helper()
	out, err := n.Sh(context.Background(), `if [ -e "$1" ]; then echo present; cat "$1"; else echo absent; fi`, path)
	if err != nil {
		t.Fatal(err)
	}
	head, rest, _ := strings.Cut(out, "\n")
	return rest, head == "present"
}

// TestMonitorPlaybook is monitor.yml on a kubeasz cluster (hosts file
// only), run by an unprivileged user with -b: --check installs nothing; applied, every kubelet host (and no
// other) has nodefix for its architecture, the units of deploy/systemd
// pointing at the binary and the textfile directory, that directory, and
// metrics that promtool accepts from a first check, without systemd (the
// simulated nodes have none, which the playbook says); applied again,
// nothing changes.
func TestMonitorPlaybook(t *testing.T) {
	requireAnsible(t)
	promtest.RequireTools(t, promtest.Promtool)
	const nodes = 3
	f := testfleet.New(t, testfleet.Options{Nodes: nodes})
	w := newWorkspace(t, nodes)
	dist := distDir(t, w)
	units := monitorUnits(t, w)
	inv := monitorInventory(t, f)
	monitored, other := f.Nodes[:2], f.Nodes[2]

	// The binary where it goes by default; the textfile directory EL's
	// node_exporter packages use, given as an operator would (a trailing
	// slash included): the service unit must be rewritten for it.
	const (
		bin         = "/usr/local/bin/nodefix"
		textfileDir = "/var/lib/node_exporter/textfile_collector"
		service     = "/etc/systemd/system/nodefix-check.service"
		timer       = "/etc/systemd/system/nodefix-check.timer"
		prom        = textfileDir + "/nodefix.prom"
	)
	// As the README says: an unprivileged user with -b (the sudo password
	// from a vars file).
	asUser := filepath.Join(w.Dir, "become.yml")
	if err := os.WriteFile(asUser, []byte(fmt.Sprintf("ansible_user: %q\nansible_become_password: %q\n", f.SudoUser, f.SudoPassword)), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-i", inv, "-e", "@" + asUser, "-b",
		"-e", "nodefix_dist_dir=" + dist, "-e", "nodefix_textfile_dir=" + textfileDir + "/"}
	installed := []string{bin, service, timer, textfileDir, prom}
	absent := func(when string, n *testfleet.Node) {
		t.Helper()
		for _, p := range installed {
			if _, ok := nodeFile(t, n, p); ok {
				t.Errorf("%s: %s has %s", when, n.Name, p)
			}
		}
	}
	for _, n := range f.Nodes {
		absent("before any run (the fleet is not fresh)", n)
	}
	if t.Failed() {
		t.FailNow()
	}

	out, rc := w.run(t, "monitor.yml", append(args, "--check", "--diff")...)
	if rc != 0 {
		t.Fatalf("check mode: exit %d:\n%s", rc, out)
	}
	recaps := parseRecap(t, out)
	for _, n := range monitored {
		if r, ok := recaps[n.Addr]; !ok || r.Changed < 1 || r.Failed != 0 || r.Unreachable != 0 {
			t.Errorf("check mode: %s recap %+v (present %t), want changed (would install)\n%s", n.Addr, r, ok, out)
		}
	}
	if _, ok := recaps[other.Addr]; ok {
		t.Errorf("check mode: %s (etcd only, no kubelet) is a target:\n%s", other.Addr, out)
	}
	for _, n := range f.Nodes {
		absent("after --check", n)
	}

	out, rc = w.run(t, "monitor.yml", args...)
	if rc != 0 {
		t.Fatalf("apply: exit %d:\n%s", rc, out)
	}
	recaps = parseRecap(t, out)
	if _, ok := recaps[other.Addr]; ok {
		t.Errorf("apply: %s (etcd only, no kubelet) is a target:\n%s", other.Addr, out)
	}
	absent("after the run (not a kubelet host)", other)

	binData, err := os.ReadFile(filepath.Join(dist, "nodefix-linux-"+runtime.GOARCH))
	if err != nil {
		t.Fatal(err)
	}
	wantBin := fmt.Sprintf("%x", sha256.Sum256(binData))
	wantService := strings.ReplaceAll(units["nodefix-check.service"], "/var/lib/prometheus/node-exporter", textfileDir)
	for _, want := range []string{
		"\nExecStart=" + bin + " check --connection local --textfile " + prom + "\n",
		"\nReadWritePaths=" + textfileDir + " ",
		"\nConditionPathIsDirectory=" + textfileDir + "\n",
	} {
		if !strings.Contains(wantService, want) {
			t.Fatalf("deploy/systemd/nodefix-check.service has changed: the expected unit has no %q", want)
		}
	}
	for _, n := range monitored {
		if r := recaps[n.Addr]; r.Changed < 1 || r.Failed != 0 || r.Unreachable != 0 {
			t.Errorf("apply: %s recap %+v, want changed", n.Addr, r)
		}
		if !strings.Contains(out, "WARNING: systemd is not running on "+n.Addr) {
			t.Errorf("apply: no word that systemd does not run %s:\n%s", n.Addr, out)
		}
		got, err := n.Sh(context.Background(), `sha256sum "$1" | cut -d' ' -f1; stat -c %a "$1"; stat -c %F "$2"`, bin, textfileDir)
		if err != nil {
			t.Errorf("%s: %v", n.Name, err)
		} else if want := wantBin + "\n755\ndirectory\n"; got != want {
			t.Errorf("%s: %s (sha256, mode) and %s (type) are %q, want %q (nodefix-linux-%s)", n.Name, bin, textfileDir, got, want, runtime.GOARCH)
		}
		if got, _ := nodeFile(t, n, service); got != wantService {
			t.Errorf("%s: %s is\n%s\nwant deploy/systemd's with the textfile directory %s:\n%s", n.Name, service, got, textfileDir, wantService)
		}
		if got, _ := nodeFile(t, n, timer); got != units["nodefix-check.timer"] {
			t.Errorf("%s: %s is\n%s\nwant deploy/systemd's:\n%s", n.Name, timer, got, units["nodefix-check.timer"])
		}
		metrics, ok := nodeFile(t, n, prom)
		if !ok {
			t.Errorf("%s: no %s after the first check", n.Name, prom)
			continue
		}
		promtest.CheckMetrics(t, []byte(metrics))
		for _, series := range []string{"\nnodefix_last_run_timestamp_seconds ", "\nnodefix_run_info{mode=\"check\","} {
			if !strings.Contains(metrics, series) {
				t.Errorf("%s: %s has no %q:\n%s", n.Name, prom, strings.TrimSpace(series), metrics)
			}
		}
	}

	out, rc = w.run(t, "monitor.yml", args...)
	if rc != 0 {
		t.Fatalf("second apply: exit %d:\n%s", rc, out)
	}
	recaps = parseRecap(t, out)
	for _, n := range monitored {
		if r, ok := recaps[n.Addr]; !ok || r.Changed != 0 || r.Failed != 0 || r.Unreachable != 0 {
			t.Errorf("second apply: %s recap %+v (present %t), want changed=0\n%s", n.Addr, r, ok, out)
		}
	}
}
