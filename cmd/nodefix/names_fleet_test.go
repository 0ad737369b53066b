package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/testfleet"
)

// checkNameCases compares one nodefix run's JSON and the nodes with cases.
// The hosts are named as the YAML inventory names them, or by address
// (byAddr) as a kubeasz INI inventory does.
func checkNameCases(t *testing.T, f *testfleet.Fleet, cases []testfleet.NameCase, d jsonDoc, byAddr bool) {
	t.Helper()
	ctx := context.Background()
	for i, n := range f.Nodes {
		c := cases[i]
		key := n.Name
		if byAddr {
			key = n.Addr
		}
		h, ok := d.Hosts[key]
		if !ok || len(h.Tasks) == 0 || h.Tasks[0].Task != "hostname" {
			t.Errorf("%s (%s): no hostname task in %+v", n.Name, c.What, h)
			continue
		}
		task := h.Tasks[0]
		if task.Status != c.Status {
			t.Errorf("%s (%s): hostname %s, want %s: %s", n.Name, c.What, task.Status, c.Status, task.Msg)
		}
		for _, want := range c.MsgHas {
			if !strings.Contains(task.Msg, want) {
				t.Errorf("%s (%s): message %q lacks %q", n.Name, c.What, task.Msg, want)
			}
		}
		if got, _ := n.Hostname(ctx); got != c.Want(n.Addr) {
			t.Errorf("%s (%s): hostname %q, want %q", n.Name, c.What, got, c.Want(n.Addr))
		}
		if n.Kubelet.Flavor != "" && task.Details["node_name"] != n.Kubelet.NodeName {
			t.Errorf("%s (%s): node_name %v, want the kubelet's %s", n.Name, c.What, task.Details["node_name"], n.Kubelet.NodeName)
		}
	}
}

// Issue 11, through the CLI: every name source ends as its case says, a
// second run changes nothing, and an inventory that is wrong about a node
// (two hosts swapped, a kubeadm node given a name it does not run as)
// renames nothing on it and exits 2 with both names.
func TestFleetNamesJudgedAgainstTheNode(t *testing.T) {
	cases := testfleet.NameCases()
	f := testfleet.New(t, testfleet.NameCaseOptions(cases))
	base := []string{"-i", "", "--tasks", "hostname", "--json"}
	args := func(cmd, inv string) []string {
		a := append([]string{cmd}, base...)
		a[2] = inv
		return a
	}

	misnamed := testfleet.MisnamedCases()
	wrong := filepath.Join(t.TempDir(), "wrong.yml")
	if err := f.WriteYAMLInventory(wrong, f.InventoryWith(misnamed)); err != nil {
		t.Fatal(err)
	}
	// The wrong inventory first: the three nodes it is wrong about fail
	// and keep their names; the rest are renamed as they should be.
	r := nodefix(t, args("run", wrong)...)
	if r.code != exitcode.HostFailed {
		t.Errorf("wrong inventory: exit %d, want %d", r.code, exitcode.HostFailed)
	}
	checkNameCases(t, f, misnamed, parseJSON(t, r), false)

	// Check mode on the right inventory says what the run then does.
	r = nodefix(t, args("check", f.InventoryYAML)...)
	if r.code != exitcode.OK {
		t.Errorf("check: exit %d", r.code)
	}
	d := parseJSON(t, r)
	for i, n := range f.Nodes {
		want := cases[i].Want(n.Addr)
		if got := d.Hosts[n.Name].Tasks[0].Details["target"]; cases[i].MsgHas == nil && got != want {
			t.Errorf("check: %s target %v, want %s", n.Name, got, want)
		}
	}
	r = nodefix(t, args("run", f.InventoryYAML)...)
	if r.code != exitcode.OK {
		t.Errorf("run: exit %d", r.code)
	}
	// Renamed in the wrong run already: ok now.
	for _, i := range []int{2, 4, 6} {
		cases[i].Status = "ok"
	}
	checkNameCases(t, f, cases, parseJSON(t, r), false)

	r = nodefix(t, args("run", f.InventoryYAML)...)
	if d := parseJSON(t, r); r.code != exitcode.OK || d.Summary["changed"] != 0 {
		t.Errorf("second run: exit %d, summary %v; want 0 and nothing changed", r.code, d.Summary)
	}
}

// Issue 11: a name only a node's kubelet gives takes part in the fleet
// precheck: another host the inventory gives that name refuses the run
// before any host is touched.
func TestFleetPrecheckSeesTheKubeletsNames(t *testing.T) {
	cases := testfleet.NameCases()
	cases[5].K8sNodename = "k3s-05" // the plain host would take the k3s node's name
	f := testfleet.New(t, testfleet.NameCaseOptions(cases))
	ctx := context.Background()
	r := nodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "hostname")
	if r.code != exitcode.Usage {
		t.Errorf("exit %d, want %d (refused)", r.code, exitcode.Usage)
	}
	for _, want := range []string{`hosts node05, node06 would all be named "k3s-05"`, "node05: the node's kubelet", "node06: k8s_nodename"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("refusal lacks %q:\n%s", want, r.stderr)
		}
	}
	for i, n := range f.Nodes {
		if got, _ := n.Hostname(ctx); got != cases[i].Hostname {
			t.Errorf("%s renamed to %q by a refused run", n.Name, got)
		}
	}
}

// Issue 12: task options from the inventory (nodefix_*, templated or not)
// apply per host, over the command line's flags; a bad one refuses the run
// naming the host and variable.
func TestFleetTaskOptionsFromTheInventory(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 2, Hostname: func(int) string { return "localhost" }})
	ctx := context.Background()
	data, err := os.ReadFile(f.InventoryYAML)
	if err != nil {
		t.Fatal(err)
	}
	// node02 keeps its name, through a template as an inventory may say it.
	inv := strings.Replace(string(data), "          k8s_nodename: \"worker-02\"\n",
		"          k8s_nodename: \"worker-02\"\n          keep: true\n          nodefix_keep_hostname: \"{{ keep | bool }}\"\n", 1)
	if inv == string(data) {
		t.Fatalf("no node02 entry in the fleet's inventory:\n%s", data)
	}
	path := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(path, []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	r := nodefix(t, "run", "-i", path, "--tasks", "hostname")
	if r.code != exitcode.OK {
		t.Errorf("exit %d", r.code)
	}
	for n, want := range map[*testfleet.Node]string{f.Nodes[0]: "worker-01", f.Nodes[1]: "localhost"} {
		if got, _ := n.Hostname(ctx); got != want {
			t.Errorf("%s: hostname %q, want %q", n.Name, got, want)
		}
	}
	r = nodefix(t, "run", "-i", path, "--tasks", "hostname", "-e", "nodefix_rpm_query_max_age=banana")
	if r.code != exitcode.Usage || !strings.Contains(r.stderr, "host node01: variable nodefix_rpm_query_max_age") {
		t.Errorf("a bad option: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// Issue 11/12: with kubeasz's own arguments (-i clusters/<c>/hosts -e
// @clusters/<c>/config.yml) nodefix computes K8S_NODENAME as the cluster's
// kubeasz release did, for both released templates, and renames every node
// to the name its kubelet runs as; the other release's config.yml (a name
// the kubelet does not run as) renames nothing on that node.
func TestFleetKubeaszReleases(t *testing.T) {
	config := map[testfleet.KubeaszRelease]string{
		testfleet.Kubeasz364: filepath.Join("..", "..", "testdata", "kubeasz", "config.yml"),
		testfleet.Kubeasz35:  filepath.Join("..", "..", "testdata", "kubeasz", "config-3.5.yml"),
	}
	other := map[testfleet.KubeaszRelease]testfleet.KubeaszRelease{testfleet.Kubeasz35: testfleet.Kubeasz364, testfleet.Kubeasz364: testfleet.Kubeasz35}
	for _, installed := range []testfleet.KubeaszRelease{testfleet.Kubeasz35, testfleet.Kubeasz364} {
		t.Run("kubeasz "+string(installed), func(t *testing.T) {
			f := testfleet.New(t, testfleet.NameCaseOptions(testfleet.KubeaszCases(installed, installed)))
			for _, configured := range []testfleet.KubeaszRelease{other[installed], installed} {
				cfg, err := filepath.Abs(config[configured])
				if err != nil {
					t.Fatal(err)
				}
				r := nodefix(t, "run", "-i", f.InventoryINI, "-e", "@"+cfg, "--tasks", "hostname", "--json")
				want := exitcode.OK
				if configured != installed {
					want = exitcode.HostFailed
				}
				if r.code != want {
					t.Errorf("config.yml of %s: exit %d, want %d", configured, r.code, want)
				}
				cases := testfleet.KubeaszCases(installed, configured)
				if configured == installed {
					// The wrong run renamed the nodes both releases name alike.
					cases[0].Status, cases[1].Status = "ok", "ok"
				}
				checkNameCases(t, f, cases, parseJSON(t, r), true)
			}
		})
	}
}
