package inventory

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets load arbitrary bytes as an INI or a YAML inventory: any
// outcome but a panic, a hang or an error without the file name is fine.
// Crashers go to testdata/fuzz/ as Go stores them and stay as regression
// cases.

func fuzzLoad(t *testing.T, name string, data []byte) {
	dir := t.TempDir()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(context.Background(), []string{p}, Options{})
	if err != nil {
		if e := err.Error(); len(e) < len(p) || !contains(e, p) {
			t.Fatalf("error without the file name: %v", err)
		}
		return
	}
	// Whatever loads must print and resolve without panicking.
	if _, err := inv.ListJSON(nil); err != nil {
		t.Fatalf("ListJSON: %v", err)
	}
	if _, err := inv.Graph(GraphOptions{}); err != nil {
		t.Fatalf("Graph: %v", err)
	}
	for _, h := range inv.Hosts() {
		_, _ = inv.Connection(h)
		_, _ = inv.NodeName(h)
		if _, err := inv.HostJSON(h.Name()); err != nil {
			t.Fatalf("HostJSON: %v", err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func FuzzINI(f *testing.F) {
	for _, s := range []string{
		"h1 a=1 b='x' c=\"[1, 2]\"\n[g]\nh2\n[g:vars]\nx={'a': (1,)}\n[p:children]\ng\n",
		"[web]\nwww[01:50:2].example.com:2222\nnode-[a:f]\n[::1]:22\n",
		"[a:children]\nb\n[b]\nh\n[b:vars]\nk=v # c\n",
		"h x=1e999 y=-0x10 z=b'q' w='\\x41' v=0_0\n",
		"[g]\nh[1:3]-[a:b] ansible_ssh_common_args='-o ProxyJump=a@b -J c'\n",
		"h ansible_host='{{ inventory_hostname }}.x' ansible_user=\"{{ u | default('r') }}\" k8s_nodename=''\n" +
			"[all:vars]\nK8S_NODENAME=\"{%- if k8s_nodename != '' -%}{{ k8s_nodename }}{%- else -%}k8s-{{ inventory_hostname|replace('.', '-') }}{%- endif -%}\"\n",
		"[b]\nj1\n[n]\nn1 ansible_ssh_common_args=\"-o ProxyJump={{ groups['b'][0] }}\" ansible_port='{{ p }}' p=22\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLoad(t, "hosts.ini", data)
	})
}

func FuzzYAML(f *testing.F) {
	for _, s := range []string{
		"all:\n  hosts:\n    a:\n      x: yes\n  children:\n    g:\n      hosts: b\n      vars: {y: 0755}\n",
		"g:\n  hosts:\n    h[1:3]:\n    \"10.0.0.[1:2]:22\":\n  children:\n    c: {hosts: {d: }}\n",
		"a: &x {hosts: {h: {k: 1:30}}}\nb: *x\nc:\n  <<: *x\n",
		"{\"all\": {\"hosts\": {\"j\": {\"n\": 1.5e300}}}}",
		"all:\n  vars:\n    t: 2001-12-14t21:59:43.10-05:00\n    u: !unsafe '{{ x }}'\n  hosts: {h: }\n",
		"all:\n  vars:\n    ansible_host: \"{{ hostvars[inventory_hostname].ip }}\"\n    nodefix_hostname: \"{{ ansible_host | replace('.', '-') }}\"\n  hosts:\n    h: {ip: 10.0.0.1}\n    i: {ip: \"{{ hostvars['h'].ip }}\"}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLoad(t, "inventory.yml", data)
	})
}
