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

// BenchmarkInventory10k loads the 10,000-host INI inventory and prints
// --list, with nodefix and with the real ansible-inventory, side by side
// in one run (make bench-inventory prints the ratio).
func BenchmarkInventory10k(b *testing.B) {
	p := writeFleetINI(b, b.TempDir())
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
