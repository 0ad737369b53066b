package playbooks_test

import (
	"context"
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/internal/testfleet"
)

// Issue 13 through the playbooks: the fleet precheck covers every host
// before the first batch, nodefix_serial / nodefix_max_fail_percentage /
// nodefix_any_errors_fatal stop the batches as Ansible's own keywords
// do, and every change on a node carries the playbook run's one run id.

// playbookAudit is the part of a changes.jsonl line these tests read.
type playbookAudit struct {
	RunID      string            `json:"run_id"`
	Controller map[string]string `json:"controller"`
	Host       string            `json:"host"`
	Task       string            `json:"task"`
	Outcome    string            `json:"outcome"`
	Change     map[string]any    `json:"change"`
}

// nodeAudit reads a node's audit trail (none: no records).
func nodeAudit(t *testing.T, n *testfleet.Node) []playbookAudit {
	t.Helper()
	out, err := n.Sh(context.Background(), `[ ! -e /var/log/nodefix/changes.jsonl ] || cat /var/log/nodefix/changes.jsonl`)
	if err != nil {
		t.Fatal(err)
	}
	var recs []playbookAudit
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r playbookAudit
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: a line of changes.jsonl is not JSON: %v\n%s", n.Name, err, line)
		}
		recs = append(recs, r)
	}
	return recs
}

var runIDLine = regexp.MustCompile(`run id ([0-9a-f]{16}) \(([^@()]+)@([^()]+)\)`)

// playbookRunID is the run id the playbook printed (tasks/run-id.yml), and
// the controller it names.
func playbookRunID(t *testing.T, out string) (id, user, host string) {
	t.Helper()
	ids := map[string]bool{}
	for _, m := range runIDLine.FindAllStringSubmatch(out, -1) {
		ids[m[1]] = true
		id, user, host = m[1], m[2], m[3]
	}
	if len(ids) != 1 {
		t.Fatalf("the playbook printed %d run ids, want one:\n%s", len(ids), out)
	}
	return id, user, host
}

// thisController is who the playbooks say runs them: $USER (else the
// login of this process) on this machine.
func thisController(t *testing.T) (string, string) {
	t.Helper()
	name := os.Getenv("USER")
	if name == "" {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return name, host
}

// ranNodefix reports whether the playbook's remediation task (named
// "nodefix | hostname…") reported a result for host: Ansible prints the
// task's header, then one line per host ("changed: [node02]", "fatal:
// [node01]: FAILED! …"), until the next task or play.
func ranNodefix(out, host string) bool {
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "TASK [") || strings.HasPrefix(line, "PLAY ") || strings.HasPrefix(line, "NO MORE HOSTS"):
			in = strings.HasPrefix(line, "TASK [nodefix | hostname")
		case in:
			for _, verb := range []string{"ok", "changed", "fatal", "failed"} {
				if strings.HasPrefix(line, verb+": ["+host+"]") {
					return true
				}
			}
		}
	}
	return false
}

// TestRemediateBatchesAndRunID: remediate.yml with nodefix_serial and a
// failure budget on a fleet whose first host fails (no iscsiadm):
//
//   - a name clash only identify can see (a host the inventory names
//     nothing, whose kubelet runs under another host's inventory name, in
//     the last batch) stops the play before the first batch: nothing is
//     renamed anywhere;
//   - serial 1, max_fail_percentage 0: the canary fails, no other host is
//     touched, exit 2;
//   - serial 2, max_fail_percentage 0: the first batch (one failed, one
//     renamed) is the last;
//   - serial 2, any_errors_fatal: the same;
//   - serial 2 and no budget: every batch runs (so the variables above
//     are what stopped them), exit 2 for the canary;
//
// and every change a run made is on record on its node under that run's
// id, one id per playbook run, with this controller.
func TestRemediateBatchesAndRunID(t *testing.T) {
	requireAnsible(t)
	kubelets := []testfleet.Kubelet{
		{Flavor: testfleet.KubeletKubeasz, NodeName: "worker-01"},
		{Flavor: testfleet.KubeletKubeasz, NodeName: "worker-02"},
		{Flavor: testfleet.KubeletKubeasz, NodeName: "worker-03"},
		// The inventory names node04 nothing: its kubelet does.
		{Flavor: testfleet.KubeletK3s, NodeName: "worker-04"},
	}
	f := testfleet.New(t, testfleet.Options{
		Nodes:       len(kubelets),
		Hostname:    localhostNames,
		Kubelet:     func(i int, _ string) testfleet.Kubelet { return kubelets[i-1] },
		K8sNodename: func(i int) string { return map[int]string{1: "worker-01", 2: "worker-02", 3: "worker-03"}[i] },
	})
	ctx := context.Background()
	canary := f.Nodes[0]
	if err := canary.RemoveExecutable(ctx, "iscsiadm"); err != nil {
		t.Fatal(err)
	}
	w := newWorkspace(t, len(f.Nodes))
	right := f.InventoryYAML
	clash := filepath.Join(w.Dir, "clash.yml")
	hosts := f.InventoryHosts(f.Nodes)
	hosts[1].K8sNodename = "worker-04" // node04's kubelet's name
	if err := f.WriteYAMLInventory(clash, hosts); err != nil {
		t.Fatal(err)
	}
	tasks := []string{"-e", "nodefix_tasks=hostname,longhorn-deps"}
	named := func(step string, want map[string]string) {
		t.Helper()
		states := describeAll(t, f)
		for _, n := range f.Nodes {
			if got := states[n.Name].Hostname; got != want[n.Name] {
				t.Errorf("%s: %s is named %q, want %q", step, n.Name, got, want[n.Name])
			}
		}
	}
	names := map[string]string{"node01": "localhost", "node02": "localhost", "node03": "localhost", "node04": "localhost"}

	out, rc := w.run(t, "remediate.yml", append([]string{"-i", clash, "-e", "nodefix_serial=1", "-e", "nodefix_max_fail_percentage=0"}, tasks...)...)
	if rc != 2 {
		t.Errorf("clash: exit %d, want 2:\n%s", rc, out)
	}
	if want := `hosts node02, node04 would all be named \"worker-04\"`; !strings.Contains(out, want) {
		t.Errorf("clash: the precheck does not name the clash (%s):\n%s", want, out)
	}
	for _, n := range f.Nodes {
		if ranNodefix(out, n.Name) {
			t.Errorf("clash: the remediation ran on %s:\n%s", n.Name, out)
		}
		if recs := nodeAudit(t, n); len(recs) != 0 {
			t.Errorf("clash: %s has audit records: %+v", n.Name, recs)
		}
	}
	named("clash", names)

	out, rc = w.run(t, "remediate.yml", append([]string{"-i", right, "-e", "nodefix_serial=1", "-e", "nodefix_max_fail_percentage=0"}, tasks...)...)
	if rc != 2 {
		t.Errorf("canary: exit %d, want 2 (ansible-playbook's own for a failed host):\n%s", rc, out)
	}
	first, ctlUser, ctlHost := playbookRunID(t, out)
	wantUser, wantHost := thisController(t)
	if ctlUser != wantUser || ctlHost != wantHost {
		t.Errorf("the playbook names the controller %s@%s, want %s@%s", ctlUser, ctlHost, wantUser, wantHost)
	}
	if line := fatalLine(out, "node01"); !strings.Contains(line, "longhorn-deps: missing: iscsiadm") {
		t.Errorf("canary: node01's failure %q", line)
	}
	for _, n := range f.Nodes[1:] {
		if ranNodefix(out, n.Name) {
			t.Errorf("canary: the remediation ran on %s behind the failed canary:\n%s", n.Name, out)
		}
		if recs := nodeAudit(t, n); len(recs) != 0 {
			t.Errorf("canary: %s has audit records: %+v", n.Name, recs)
		}
	}
	names["node01"] = "worker-01" // hostname runs before longhorn-deps
	named("canary", names)
	recs := nodeAudit(t, canary)
	if len(recs) != 1 {
		t.Fatalf("canary: node01 has %d audit records, want 1 (its rename): %+v", len(recs), recs)
	}
	hn, _ := recs[0].Change["hostname"].(map[string]any)
	// A module is told nothing of its inventory name: a record it writes
	// names the node by the hostname it had when the module started.
	if r := recs[0]; r.RunID != first || r.Task != "hostname" || r.Outcome != "changed" || r.Host != "localhost" ||
		r.Controller["user"] != wantUser || r.Controller["host"] != wantHost || hn["old"] != "localhost" || hn["new"] != "worker-01" {
		t.Errorf("canary: node01's record %+v, want the rename under run id %s by %s@%s", r, first, wantUser, wantHost)
	}

	for _, step := range []struct {
		name string
		args []string
	}{
		{"serial 2, max_fail_percentage 0", []string{"-e", "nodefix_serial=2", "-e", "nodefix_max_fail_percentage=0"}},
		{"serial 2, any_errors_fatal", []string{"-e", "nodefix_serial=2", "-e", "nodefix_any_errors_fatal=true"}},
	} {
		out, rc = w.run(t, "remediate.yml", append(append([]string{"-i", right}, step.args...), tasks...)...)
		if rc != 2 {
			t.Errorf("%s: exit %d, want 2:\n%s", step.name, rc, out)
		}
		if !ranNodefix(out, "node02") {
			t.Errorf("%s: node02, of the first batch, did not run:\n%s", step.name, out)
		}
		for _, n := range f.Nodes[2:] {
			if ranNodefix(out, n.Name) {
				t.Errorf("%s: the remediation ran on %s, of the second batch:\n%s", step.name, n.Name, out)
			}
			if recs := nodeAudit(t, n); len(recs) != 0 {
				t.Errorf("%s: %s has audit records: %+v", step.name, n.Name, recs)
			}
		}
		names["node02"] = "worker-02"
		named(step.name, names)
	}
	second := nodeAudit(t, f.Nodes[1])
	if len(second) != 1 || second[0].RunID == first || len(second[0].RunID) != 16 {
		t.Errorf("node02's records %+v: want one rename under the id of its own run, not %s", second, first)
	}

	out, rc = w.run(t, "remediate.yml", append([]string{"-i", right, "-e", "nodefix_serial=2"}, tasks...)...)
	if rc != 2 {
		t.Errorf("serial 2, no budget: exit %d, want 2 (the canary fails again):\n%s", rc, out)
	}
	last, _, _ := playbookRunID(t, out)
	names["node03"], names["node04"] = "worker-03", "worker-04"
	named("serial 2, no budget", names)
	for _, n := range f.Nodes[2:] {
		recs := nodeAudit(t, n)
		if len(recs) != 1 || recs[0].RunID != last || recs[0].Host != "localhost" || recs[0].Task != "hostname" ||
			recs[0].Controller["user"] != wantUser || recs[0].Controller["host"] != wantHost {
			t.Errorf("serial 2, no budget: %s's records %+v, want its rename under run id %s", n.Name, recs, last)
		}
	}
	if last == first || last == second[0].RunID {
		t.Errorf("two playbook runs share the run id %s", last)
	}
}

// TestRemediateCommandBatchesAndRunID: remediate-command.yml takes
// nodefix_serial and nodefix_max_fail_percentage too, and passes the
// playbook run's id and controller to `nodefix run`; nothing of nodefix
// is left on a node, the hosts never started included.
func TestRemediateCommandBatchesAndRunID(t *testing.T) {
	requireAnsible(t)
	const nodes = 3
	f := testfleet.New(t, testfleet.Options{Nodes: nodes, Hostname: localhostNames})
	if err := f.Nodes[0].RemoveExecutable(context.Background(), "iscsiadm"); err != nil {
		t.Fatal(err)
	}
	w := newWorkspace(t, nodes)
	dist := distDir(t, w)
	args := []string{"-i", f.InventoryYAML, "-e", "nodefix_dist_dir=" + dist, "-e", "nodefix_tasks=hostname,longhorn-deps"}
	wantUser, wantHost := thisController(t)

	out, rc := w.run(t, "remediate-command.yml", append(args, "-e", "nodefix_serial=1", "-e", "nodefix_max_fail_percentage=0")...)
	if rc != 2 {
		t.Errorf("canary: exit %d, want 2:\n%s", rc, out)
	}
	first, _, _ := playbookRunID(t, out)
	states := describeAll(t, f)
	if got := states["node01"].Hostname; got != "worker-01" {
		t.Errorf("canary: node01 is named %q, want worker-01", got)
	}
	if recs := nodeAudit(t, f.Nodes[0]); len(recs) != 1 || recs[0].RunID != first ||
		recs[0].Controller["user"] != wantUser || recs[0].Controller["host"] != wantHost {
		t.Errorf("canary: node01's records %+v, want its rename under run id %s by %s@%s", recs, first, wantUser, wantHost)
	}
	for _, n := range f.Nodes[1:] {
		if got := states[n.Name].Hostname; got != "localhost" {
			t.Errorf("canary: %s renamed to %q behind the failed canary", n.Name, got)
		}
		if recs := nodeAudit(t, n); len(recs) != 0 {
			t.Errorf("canary: %s has audit records: %+v", n.Name, recs)
		}
	}
	noBinaryLeft(t, f)

	// (serial 1 again would end at the canary: Ansible ends a play whose
	// whole batch failed.)
	out, rc = w.run(t, "remediate-command.yml", append(args, "-e", "nodefix_serial=2")...)
	if rc != 2 {
		t.Errorf("no budget: exit %d, want 2:\n%s", rc, out)
	}
	last, _, _ := playbookRunID(t, out)
	for _, n := range f.Nodes[1:] {
		recs := nodeAudit(t, n)
		// nodefix run --connection local names its one host localhost.
		if len(recs) != 1 || recs[0].RunID != last || recs[0].Host != "localhost" ||
			recs[0].Controller["user"] != wantUser || recs[0].Controller["host"] != wantHost {
			t.Errorf("no budget: %s's records %+v, want its rename under run id %s", n.Name, recs, last)
		}
	}
	if last == first {
		t.Errorf("two playbook runs share the run id %s", last)
	}
	noBinaryLeft(t, f)
}
