package playbooks_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/internal/testfleet"
)

// kubeaszHosts renders testdata/kubeasz/hosts.multi-node for the fleet:
// 192.168.1.N becomes node N's address, rename (inventory host →
// k8s_nodename) edits k8s_nodename values, and the fleet's connection
// variables are added to [all:vars], as an operator's clusters/<c>/hosts
// has its own.
func kubeaszHosts(t *testing.T, f *testfleet.Fleet, rename map[int]string) (path string, names map[string]string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "kubeasz", "hosts.multi-node"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i, name := range rename {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^(192\.168\.1\.%d k8s_nodename=)'[^']*'`, i))
		if !re.MatchString(text) {
			t.Fatalf("hosts.multi-node has no k8s_nodename for 192.168.1.%d", i)
		}
		text = re.ReplaceAllString(text, "${1}'"+name+"'")
	}
	addr := regexp.MustCompile(`192\.168\.1\.(\d+)\b`)
	var missing []string
	text = addr.ReplaceAllStringFunc(text, func(s string) string {
		var i int
		fmt.Sscan(addr.FindStringSubmatch(s)[1], &i)
		if i < 1 || i > len(f.Nodes) {
			missing = append(missing, s)
			return s
		}
		return f.Nodes[i-1].Addr
	})
	if len(missing) > 0 {
		t.Fatalf("hosts.multi-node names %v, the fleet has %d nodes", missing, len(f.Nodes))
	}
	text += fmt.Sprintf("\n# the simulated fleet's connection\nansible_user=\"root\"\nansible_port=%d\n"+
		"ansible_ssh_private_key_file=\"%s\"\nansible_ssh_common_args=\"-o UserKnownHostsFile=%s\"\n"+
		"ansible_python_interpreter=\"/usr/bin/python3\"\n", f.Nodes[0].Port, f.ClientKeyFile, f.KnownHostsFile)

	// The names kubeasz computes, for the expectations.
	names = map[string]string{}
	line := regexp.MustCompile(`(?m)^(\S+) k8s_nodename='([^']*)'`)
	for _, m := range line.FindAllStringSubmatch(text, -1) {
		names[m[1]] = kubeaszName(m[1], m[2])
	}
	path = filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, names
}

// TestKubeaszPostInstall is issue 7's done-when for kubeasz: the hook,
// run with kubeasz's own arguments (a kubeasz hosts file and config.yml),
// refuses and renames nothing when two nodes would collide, even when
// --limit leaves one of them out; with unique names it gives every node its
// K8S_NODENAME, and a second run changes nothing.
func TestKubeaszPostInstall(t *testing.T) {
	requireAnsible(t)
	const nodes = 5
	f := testfleet.New(t, testfleet.Options{Nodes: nodes, Hostname: localhostNames})
	w := newWorkspace(t, nodes)
	config := kubeaszConfig(t)
	byAddr := map[string]*testfleet.Node{}
	for _, n := range f.Nodes {
		byAddr[n.Addr] = n
	}

	// 'Worker_01' on node 5 becomes worker-01, node 4's name.
	collide, _ := kubeaszHosts(t, f, map[int]string{5: "Worker_01"})
	for _, limit := range []string{"", f.Nodes[4].Addr} {
		args := []string{"-i", collide, "-e", "@" + config}
		if limit != "" {
			args = append(args, "--limit", limit)
		}
		out, rc := w.run(t, "kubeasz-post-install.yml", args...)
		if rc == 0 {
			t.Fatalf("collision (limit %q): exit 0, want a refusal:\n%s", limit, out)
		}
		want := fmt.Sprintf("hosts %s, %s would all be named \\\"worker-01\\\"", f.Nodes[3].Addr, f.Nodes[4].Addr)
		if !strings.Contains(out, want) {
			t.Errorf("collision (limit %q): the refusal does not name both hosts (%s):\n%s", limit, want, out)
		}
		for _, r := range parseRecap(t, out) {
			if r.Changed != 0 {
				t.Errorf("collision (limit %q): a host changed: %+v\n%s", limit, r, out)
			}
		}
		for name, st := range describeAll(t, f) {
			if st.Hostname != "localhost" || st.EtcHostname != "localhost" {
				t.Errorf("collision (limit %q): %s was renamed to %q (/etc/hostname %q)", limit, name, st.Hostname, st.EtcHostname)
			}
		}
	}

	hosts, names := kubeaszHosts(t, f, nil)
	out, rc := w.run(t, "kubeasz-post-install.yml", "-i", hosts, "-e", "@"+config)
	if rc != 0 {
		t.Fatalf("post-install: exit %d:\n%s", rc, out)
	}
	states := describeAll(t, f)
	for addr, want := range names {
		n := byAddr[addr]
		if st := states[n.Name]; st.Hostname != want || st.EtcHostname != want {
			t.Errorf("%s (%s) is named %q (/etc/hostname %q), want K8S_NODENAME %q", n.Name, addr, st.Hostname, st.EtcHostname, want)
		}
	}
	if len(names) != nodes {
		t.Errorf("the kubeasz hosts file names %d nodes, want %d", len(names), nodes)
	}

	out, rc = w.run(t, "kubeasz-post-install.yml", "-i", hosts, "-e", "@"+config)
	if rc != 0 {
		t.Fatalf("second post-install: exit %d:\n%s", rc, out)
	}
	recaps := parseRecap(t, out)
	for addr := range names {
		if r, ok := recaps[addr]; !ok || r.Changed != 0 || r.Failed != 0 {
			t.Errorf("second post-install: %s recap %+v (present %t), want changed=0\n%s", addr, r, ok, out)
		}
	}
}

// Issue 11/12: the post-install hook, with kubeasz's own arguments, gives
// each node the name its kubeasz release gave its kubelet, for both released
// K8S_NODENAME templates; the other release's config.yml renames nothing on
// the node it would misname, which fails with both names.
func TestKubeaszPostInstallReleases(t *testing.T) {
	requireAnsible(t)
	config := map[testfleet.KubeaszRelease]string{
		testfleet.Kubeasz364: filepath.Join(repoRoot(t), "testdata", "kubeasz", "config.yml"),
		testfleet.Kubeasz35:  filepath.Join(repoRoot(t), "testdata", "kubeasz", "config-3.5.yml"),
	}
	other := map[testfleet.KubeaszRelease]testfleet.KubeaszRelease{testfleet.Kubeasz35: testfleet.Kubeasz364, testfleet.Kubeasz364: testfleet.Kubeasz35}
	for _, installed := range []testfleet.KubeaszRelease{testfleet.Kubeasz35, testfleet.Kubeasz364} {
		t.Run("kubeasz "+string(installed), func(t *testing.T) {
			f := testfleet.New(t, testfleet.NameCaseOptions(testfleet.KubeaszCases(installed, installed)))
			w := newWorkspace(t, len(f.Nodes))
			for _, configured := range []testfleet.KubeaszRelease{other[installed], installed} {
				out, rc := w.run(t, "kubeasz-post-install.yml", "-i", f.InventoryINI, "-e", "@"+config[configured], "-e", "nodefix_tasks=hostname")
				want := 0
				if configured != installed {
					want = 2
				}
				if rc != want {
					t.Errorf("config.yml of %s: exit %d, want %d:\n%s", configured, rc, want, out)
				}
				recaps, states := parseRecap(t, out), describeAll(t, f)
				for i, c := range testfleet.KubeaszCases(installed, configured) {
					n := f.Nodes[i]
					if failed := recaps[n.Addr].Failed > 0; failed != (c.Status == "failed") {
						t.Errorf("config.yml of %s: %s (%s): recap %+v, want %s", configured, n.Name, c.What, recaps[n.Addr], c.Status)
					}
					if got := states[n.Name].Hostname; got != c.Want(n.Addr) {
						t.Errorf("config.yml of %s: %s (%s): hostname %q, want %q", configured, n.Name, c.What, got, c.Want(n.Addr))
					}
					line := strings.ReplaceAll(fatalLine(out, n.Addr), `\"`, `"`)
					for _, word := range c.MsgHas {
						if !strings.Contains(line, word) {
							t.Errorf("config.yml of %s: %s: the failure %q lacks %q", configured, n.Name, line, word)
						}
					}
				}
			}
		})
	}
}
