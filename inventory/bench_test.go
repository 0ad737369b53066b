package inventory

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// writeFleetINI writes a kubeasz-shaped INI inventory of exactly 10,000
// hosts: half from range lines, half one per line with inline variables,
// group and all vars, children.
func writeFleetINI(tb testing.TB, dir string) string {
	tb.Helper()
	p := filepath.Join(dir, "hosts")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "[etcd]\netcd[1:3].dc1.example.com\n\n[kube_master]")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(w, "master%d.dc1.example.com k8s_nodename='master-%02d' ansible_host=10.0.0.%d\n", i, i, i)
	}
	fmt.Fprintln(w, "\n[kube_node]")
	// 4,994 hosts, one per line, with inline variables of every type.
	for i := 0; i < 4994; i++ {
		fmt.Fprintf(w, "node%05d.dc1.example.com ansible_host=10.%d.%d.%d k8s_nodename='worker-%05d' mtu=1450 rack=\"r%d\" ssd=True\n",
			i, 1+i/65536, (i/256)%256, i%256, i, i%40)
	}
	// 5,000 hosts from ranges, with a stride and alphabetic ranges.
	fmt.Fprintln(w, "\n[storage]\nstor[0000:2999].dc2.example.com zone=b\nedge[0000:1998:2]-[a:b].dc3.example.com")
	fmt.Fprintln(w, "\n[k8s:children]\nkube_master\nkube_node\n\n[kube_node:vars]\nrole=worker\n\n[all:vars]\nSECURE_PORT=\"6443\"\nCONTAINER_RUNTIME=\"containerd\"\nk8s_nodename=''\nbin_dir=\"/opt/kube/bin\"\nansible_user=ops")
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestFleetINIHas10000Hosts(t *testing.T) {
	inv, err := Load(context.Background(), []string{writeFleetINI(t, t.TempDir())}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(inv.Hosts()); n != 10000 {
		t.Fatalf("generated inventory has %d hosts, want 10000", n)
	}
}

// writeTemplatedFleetINI writes a 10,000-host kubeasz-shaped inventory
// whose connection and name variables are templates, read with kubeasz's
// config.yml (-e @config.yml): per host a private_ip that ansible_host
// reads through hostvars, group-wide ansible_user with a default, a port
// from another variable, a ProxyJump to the first master, and
// K8S_NODENAME from config.yml (half the hosts with k8s_nodename set).
func writeTemplatedFleetINI(tb testing.TB, dir string) (string, []string) {
	tb.Helper()
	p := filepath.Join(dir, "hosts")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "[kube_master]")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(w, "master%d.dc1.example.com private_ip=10.0.0.%d k8s_nodename='master-%02d'\n", i, i, i)
	}
	fmt.Fprintln(w, "\n[kube_node]")
	for i := 0; i < 9997; i++ {
		name := ""
		if i%2 == 0 {
			name = fmt.Sprintf(" k8s_nodename='Worker_%05d'", i)
		}
		fmt.Fprintf(w, "node%05d.dc1.example.com private_ip=10.%d.%d.%d%s\n", i, 1+i/65536, (i/256)%256, i%256, name)
	}
	fmt.Fprintln(w, "\n[k8s:children]\nkube_master\nkube_node\n\n[kube_node:vars]\nadmin_user=ops\n\n[all:vars]")
	fmt.Fprintln(w, `k8s_nodename=''`)
	fmt.Fprintln(w, `ssh_port=22`)
	fmt.Fprintln(w, `ansible_host="{{ hostvars[inventory_hostname].private_ip }}"`)
	fmt.Fprintln(w, `ansible_user="{{ admin_user | default('root') }}"`)
	fmt.Fprintln(w, `ansible_port="{{ ssh_port }}"`)
	fmt.Fprintln(w, `ansible_ssh_common_args="-o ProxyJump=root@{{ groups['kube_master'][0] }}"`)
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	config, err := filepath.Abs("../testdata/kubeasz/config.yml")
	if err != nil {
		tb.Fatal(err)
	}
	return p, []string{"@" + config}
}

func TestTemplatedFleetINI(t *testing.T) {
	p, extra := writeTemplatedFleetINI(t, t.TempDir())
	inv, err := Load(context.Background(), []string{p}, Options{ExtraVars: extra})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(inv.Hosts()); n != 10000 {
		t.Fatalf("generated inventory has %d hosts, want 10000", n)
	}
	for name, want := range map[string][2]string{
		"master2.dc1.example.com":   {"10.0.0.2", "master-02"},
		"node00000.dc1.example.com": {"10.1.0.0", "worker-00000"},
		"node00001.dc1.example.com": {"10.1.0.1", "k8s-node00001-dc1-example-com"},
	} {
		h, _ := inv.Host(name)
		c, err := inv.Connection(h)
		if err != nil || c.Address != want[0] || c.Port != 22 || c.ProxyJump != "root@master1.dc1.example.com" {
			t.Errorf("%s: %+v, %v", name, c, err)
		}
		n, err := inv.NodeName(h)
		if err != nil || n.Name != want[1] {
			t.Errorf("%s: node name %+v, %v; want %s", name, n, err, want[1])
		}
	}
}

// resolveAll is what `nodefix run` asks of the inventory for every host:
// its connection and its node name.
func resolveAll(b *testing.B, inv *Inventory) {
	for _, h := range inv.Hosts() {
		if _, err := inv.Connection(h); err != nil {
			b.Fatal(err)
		}
		if _, err := inv.NodeName(h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInventory10kTemplated loads the templated 10,000-host
// inventory and evaluates every host's connection and node name
// (nodefix-resolve), beside ansible-inventory --list of the same
// inventory (which prints the templates without evaluating them): make
// bench-inventory prints the ratios with BenchmarkInventory10k's.
func BenchmarkInventory10kTemplated(b *testing.B) {
	p, extra := writeTemplatedFleetINI(b, b.TempDir())
	b.Run("nodefix-load", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := Load(context.Background(), []string{p}, Options{ExtraVars: extra}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nodefix-resolve", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			inv, err := Load(context.Background(), []string{p}, Options{ExtraVars: extra})
			if err != nil {
				b.Fatal(err)
			}
			resolveAll(b, inv)
		}
	})
	b.Run("ansible-inventory-list", func(b *testing.B) {
		if _, err := exec.LookPath("ansible-inventory"); err != nil {
			b.Skip("ansible-inventory not installed")
		}
		r := newAnsibleRunner(b)
		for i := 0; i < b.N; i++ {
			if _, stderr, err := r.run("-i", p, "-e", extra[0], "--list"); err != nil {
				b.Fatalf("ansible-inventory: %v\n%s", err, stderr)
			}
		}
	})
}

// BenchmarkInventory10k loads the 10,000-host INI inventory and prints
// --list, with nodefix and with the real ansible-inventory, side by side
// in one run (make bench-inventory prints the ratio); nodefix-resolve
// also evaluates every host's connection and node name, none of them
// templated (the engine's fast path).
func BenchmarkInventory10k(b *testing.B) {
	p := writeFleetINI(b, b.TempDir())
	b.Run("nodefix-resolve", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			inv, err := Load(context.Background(), []string{p}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			resolveAll(b, inv)
		}
	})
	b.Run("nodefix-load", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := Load(context.Background(), []string{p}, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nodefix-list", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			inv, err := Load(context.Background(), []string{p}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := inv.ListJSON(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ansible-inventory-list", func(b *testing.B) {
		if _, err := exec.LookPath("ansible-inventory"); err != nil {
			b.Skip("ansible-inventory not installed")
		}
		r := newAnsibleRunner(b)
		for i := 0; i < b.N; i++ {
			if _, stderr, err := r.run("-i", p, "--list"); err != nil {
				b.Fatalf("ansible-inventory: %v\n%s", err, stderr)
			}
		}
	})
}
