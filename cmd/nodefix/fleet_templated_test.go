package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/testfleet"
)

// writeTemplatedInventory writes the fleet as an inventory that reaches
// its nodes only through templates: ansible_host from each host's
// private_ip read through hostvars, ansible_user from a default, the key
// and known_hosts files from variables, and the ProxyJump to the first
// host of the bastion group (the jump host, named by its address as
// kubeasz names hosts) built from groups.
func writeTemplatedInventory(t *testing.T, f *testfleet.Fleet) string {
	t.Helper()
	jump := f.Nodes[0]
	var b strings.Builder
	fmt.Fprintf(&b, `all:
  vars:
    fleet_key: %q
    fleet_known_hosts: %q
    ansible_host: "{{ hostvars[inventory_hostname].private_ip }}"
    ansible_user: "{{ admin_user | default('root') }}"
    ansible_ssh_private_key_file: "{{ fleet_key }}"
    ansible_ssh_common_args: >-
      -o UserKnownHostsFile={{ fleet_known_hosts }}
      {%%- if inventory_hostname not in groups['bastion'] %%} -o ProxyJump={{ ansible_user }}@{{ groups['bastion'][0] }}{%%- endif %%}
  children:
    bastion:
      hosts:
        %q:
          private_ip: %s
    nodes:
      vars:
        admin_user: root
      hosts:
`, f.ClientKeyFile, f.KnownHostsFile, jump.Addr, jump.Addr)
	for _, n := range f.Nodes[1:] {
		fmt.Fprintf(&b, "        %s:\n          private_ip: %s\n", n.Name, n.Addr)
	}
	p := filepath.Join(t.TempDir(), "templated.yml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFleetTemplatedInventory: a fleet reached only through templated
// ansible_host, ansible_user and ProxyJump is remediated by nodefix run,
// and without the templated ProxyJump its nodes are unreachable.
func TestFleetTemplatedInventory(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 3, BehindJump: []int{2, 3}})
	inv := writeTemplatedInventory(t, f)
	jump := f.Nodes[0]

	r := nodefix(t, "inventory", "-i", inv, "--connection-of", "node03")
	for _, want := range []string{"address:        " + f.Nodes[2].Addr, "user:           root", "jump hosts:     root@" + jump.Addr} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("--connection-of node03: exit %d, output lacks %q:\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}

	r = nodefix(t, "run", "-i", inv, "--tasks", "longhorn-deps", "--json", "-T", "5")
	if r.code != 0 {
		t.Errorf("exit %d, want 0", r.code)
	}
	d := parseJSON(t, r)
	want := []string{jump.Addr}
	for _, n := range f.Nodes[1:] {
		want = append(want, n.Name)
	}
	if len(d.Hosts) != len(want) {
		t.Errorf("%d hosts in the result, want %d", len(d.Hosts), len(want))
	}
	for _, name := range want {
		h, ok := d.Hosts[name]
		if !ok || h.Status != "ok" || len(h.Tasks) != 1 || h.Tasks[0].Task != "longhorn-deps" {
			t.Errorf("%s: %+v, want longhorn-deps ok", name, h)
		}
	}

	// The same inventory with the ProxyJump replaced by an extra var:
	// node02 is unreachable, so the run above went through the jump host
	// the template named.
	r = nodefix(t, "run", "-i", inv, "--tasks", "longhorn-deps", "--json", "-T", "2", "-l", "node02",
		"-e", fmt.Sprintf(`{"ansible_ssh_common_args": "-o UserKnownHostsFile={{ fleet_known_hosts }}"}`))
	if d := parseJSON(t, r); r.code != exitcode.Unreachable || d.Hosts["node02"].Status != "unreachable" {
		t.Errorf("node02 reached without the jump host: exit %d", r.code)
	}
}
