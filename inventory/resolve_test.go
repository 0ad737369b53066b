package inventory

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConnection(t *testing.T) {
	home, _ := os.UserHomeDir()
	inv, err := Load(context.Background(), []string{"../testdata/inventories/16-connection-vars/hosts"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Connection{
		"n1": {Type: "ssh", Address: "10.0.0.1", Port: 2222, User: "ops", PrivateKeyFile: home + "/.ssh/id_ed25519",
			StrictHostKeyChecking: "no", UserKnownHostsFiles: []string{"/dev/null"}, Become: true, BecomePassword: "sudopw"},
		"n2": {Type: "ssh", Address: "10.0.0.2", Port: 22, User: "root", Password: "secret",
			StrictHostKeyChecking: "no", UserKnownHostsFiles: []string{"/dev/null"}, Become: true, BecomePassword: "sudopw"},
		"n3": {Type: "local", Address: "n3", StrictHostKeyChecking: "no", UserKnownHostsFiles: []string{"/dev/null"},
			Become: true, BecomeUser: "admin", BecomeMethod: "su", BecomePassword: "sudopw"},
		"n4": {Type: "ssh", Address: "n4", ProxyJump: "jump@bastion:2222", StrictHostKeyChecking: "accept-new",
			UserKnownHostsFiles: []string{"/etc/ssh/a", "/etc/ssh/b"}, Become: true, BecomePassword: "sudopw"},
		"n5": {Type: "ssh", Address: "n5", ProxyJump: "admin@b1,admin@b2", ConnectTimeout: 7 * time.Second,
			StrictHostKeyChecking: "no", UserKnownHostsFiles: []string{"/dev/null"}, Become: true, BecomePassword: "pw"},
	}
	for name, w := range want {
		h, _ := inv.Host(name)
		got, err := inv.Connection(h)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, w)
		}
	}
	// n6's ansible_host is "{{ lookup('env', 'X') }}": evaluated when read.
	t.Setenv("X", "10.9.9.9")
	h, _ := inv.Host("n6")
	got, err := inv.Connection(h)
	if err != nil || got.Address != "10.9.9.9" {
		t.Errorf("templated ansible_host: %+v, %v; want the address from $X", got, err)
	}
}

func TestConnectionErrors(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"h ansible_port=x", "ansible_port"},
		{"h ansible_port=70000", "out of range"},
		{"h ansible_become=maybe", "not a valid boolean"},
		{"h ansible_connection=winrm", "not supported"},
		{"h ansible_user='{{ u }}'", "variable ansible_user: 'u' is undefined"},
		{"h ansible_user='{{ u }}'", "define u in the inventory or with -e u=VALUE"},
		{"h ansible_host='{{ inventory_hostname | to_uuid }}'", `the filter "to_uuid" is not supported by nodefix`},
		{"h ansible_host='{{ inventory_hostname | to_uuid }}'", "give ansible_host a literal value with -e ansible_host=VALUE"},
		{"h ansible_become_password=\"{{ lookup('file', '/etc/pw') }}\"", "variable ansible_become_password: lookup('file', …) is not supported"},
		{"h ansible_port='{{ ansible_port }}'", "recursive loop detected in template: ansible_port -> ansible_port"},
		{"h ansible_port='{{ 22 + 1.5 }}'", "must be a whole number, got '23.5'"},
		{"h ansible_port='{{ 69999 + 1 }}'", "port 70000 is out of range"},
		{"h ansible_host='{{ x'", "template error"},
		{"h ansible_become='{{ \"may\" ~ \"be\" }}'", "'maybe' is not a valid boolean"},
		{`h ansible_ssh_common_args="-o StrictHostKeyChecking=sometimes"`, "StrictHostKeyChecking"},
		{`h ansible_ssh_extra_args="-o ConnectTimeout=soon"`, "ConnectTimeout"},
		{`h ansible_ssh_common_args="-J"`, "needs a value"},
		{`h ansible_password="[1, 2]"`, "single value"},
	} {
		inv, _ := loadString(t, "hosts", c.line+"\n")
		h, _ := inv.Host("h")
		_, err := inv.Connection(h)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "host h") {
			t.Errorf("%s: error %v, want one naming the host and saying %q", c.line, err, c.want)
		}
	}
}

func TestSSHArgs(t *testing.T) {
	for _, c := range []struct {
		args string
		want Connection
	}{
		{`-oProxyJump=a@b -o ProxyJump=ignored`, Connection{ProxyJump: "a@b"}},
		{`-qJ bastion:2200`, Connection{ProxyJump: "bastion:2200"}},
		{`-o "ProxyCommand=ssh -W %h:%p -q bastion"`, Connection{ProxyCommand: "ssh -W %h:%p -q bastion"}},
		{`-o 'StrictHostKeyChecking no' -o UserKnownHostsFile=~/kh`, Connection{StrictHostKeyChecking: "no", UserKnownHostsFiles: []string{mustHome() + "/kh"}}},
		{`-o ConnectTimeout=30 -l admin -p 2022 -i /k`, Connection{ConnectTimeout: 30 * time.Second, User: "admin", Port: 2022, PrivateKeyFile: "/k"}},
		{`-C -o ControlMaster=auto -o ControlPersist=60s`, Connection{}},
		{`-o ProxyJump=none`, Connection{}},
	} {
		var got Connection
		if err := parseSSHArgs(c.args, &got); err != nil {
			t.Errorf("%s: %v", c.args, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.args, got, c.want)
		}
	}
}

func mustHome() string { h, _ := os.UserHomeDir(); return h }

func TestNodeName(t *testing.T) {
	for _, c := range []struct{ inv, host, want, source, err string }{
		{"[kube_node]\n192.168.1.4 k8s_nodename='worker-01'\n", "192.168.1.4", "worker-01", "k8s_nodename", ""},
		// An empty k8s_nodename: the two kubeasz releases disagree (the
		// address, or k8s-<address>), so the inventory gives no name and
		// the node's kubelet decides.
		{"[kube_node]\n192.168.1.4 k8s_nodename=''\n", "192.168.1.4", "", "", ""},
		{"[kube_node]\n192.168.1.4\n", "192.168.1.4", "", "", ""},
		{"[kube_node]\nnode1 k8s_nodename=Worker_A\n", "node1", "worker-a", `k8s_nodename="Worker_A" (kubeasz's rule)`, ""},
		{"[kube_node]\nnode1 K8S_NODENAME=literal-name k8s_nodename=x\n", "node1", "literal-name", "K8S_NODENAME", ""},
		{"[kube_node]\nnode1 K8S_NODENAME='' k8s_nodename=x\n", "node1", "x", "k8s_nodename", ""},
		{"[kube_node]\nnode1 nodefix_hostname=chosen K8S_NODENAME=other\n", "node1", "chosen", "nodefix_hostname", ""},
		{"[kube_node]\nnode1 k8s_nodename='bad name'\n", "node1", "", "", "bad name"},
		{"[kube_node]\nnode1 nodefix_hostname=UPPER\n", "node1", "", "", "upper-case"},
		{"[kube_node]\nnode1 k8s_nodename=" + strings.Repeat("a", 64) + "\n", "node1", "", "", "at most 63"},
		{"[kube_node]\nnode1 k8s_nodename=" + strings.Repeat("a.", 33) + "a\n", "node1", "", "", "at most 64"},
	} {
		inv, _ := loadString(t, "hosts", c.inv)
		h, _ := inv.Host(c.host)
		got, err := inv.NodeName(h)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.host) {
				t.Errorf("%q: NodeName = %+v, %v; want an error naming the host and saying %q", c.inv, got, err, c.err)
			}
			continue
		}
		if err != nil || got.Name != c.want || got.Source != c.source {
			t.Errorf("%q: NodeName = %+v, %v; want %q from %q", c.inv, got, err, c.want, c.source)
		}
	}
}

// TestKubeaszNodeNames: every host of kubeasz's own examples gets a valid,
// fleet-unique node name.
func TestKubeaszNodeNames(t *testing.T) {
	for _, dir := range []string{"01-kubeasz-multi-node", "02-kubeasz-allinone"} {
		inv, err := Load(context.Background(), []string{filepath.Join("../testdata/inventories", dir, "hosts")}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, h := range inv.Hosts() {
			n, err := inv.NodeName(h)
			if err != nil {
				t.Errorf("%s: %v", dir, err)
			}
			if n.Name == "" {
				continue
			}
			if other, dup := seen[n.Name]; dup {
				t.Errorf("%s: %s and %s both get %s", dir, other, h.Name(), n.Name)
			}
			seen[n.Name] = h.Name()
		}
	}
}

// TestNodeNameKubeaszTemplates: with kubeasz's config.yml loaded by -e,
// K8S_NODENAME is evaluated as each kubeasz release computes it: the two
// agree on a set k8s_nodename and differ on an empty one.
func TestNodeNameKubeaszTemplates(t *testing.T) {
	hosts := "../testdata/templated/01-kubeasz-3.6-config/hosts"
	for _, c := range []struct{ config, host, want string }{
		{"config.yml", "192.168.1.1", "master-01"},
		{"config.yml", "192.168.1.2", "master-02"},
		{"config.yml", "192.168.1.3", "k8s-192-168-1-3"},
		{"config.yml", "192.168.1.5", "k8s-192-168-1-5"},
		{"config.yml", "192.168.1.6", "worker-big-06"},
		{"config-3.5.yml", "192.168.1.2", "master-02"},
		{"config-3.5.yml", "192.168.1.3", "192.168.1.3"},
		{"config-3.5.yml", "192.168.1.5", "192.168.1.5"},
		{"config-3.5.yml", "192.168.1.6", "worker-big-06"},
	} {
		inv, err := Load(context.Background(), []string{hosts}, Options{ExtraVars: []string{"@../testdata/kubeasz/" + c.config}})
		if err != nil {
			t.Fatal(err)
		}
		h, _ := inv.Host(c.host)
		got, err := inv.NodeName(h)
		if want := (NodeName{Name: c.want, Source: "K8S_NODENAME"}); err != nil || got != want {
			t.Errorf("%s, %s: NodeName = %+v, %v; want %+v", c.config, c.host, got, err, want)
		}
	}
}

// TestTaskOptions: nodefix_* variables are evaluated, with their types.
func TestTaskOptions(t *testing.T) {
	inv, err := Load(context.Background(), []string{"../testdata/templated/17-nodefix-options/inventory.yml"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := inv.Host("o2")
	got, err := inv.TaskOptions(h)
	want := map[string]any{
		"nodefix_rpm_query_max_age":    "30m",
		"nodefix_install_missing":      false,
		"nodefix_longhorn_executables": []any{"iscsiadm", "mount.nfs", "cryptsetup"},
		// minutes is "{{ 2 }}", which renders as the text "2": 60 * "2"
		// repeats it, in Ansible too (TestTemplatedConformance checks).
		"nodefix_task_timeout": strings.Repeat("2", 60),
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("TaskOptions(o2) = %#v, %v; want %#v", got, err, want)
	}
}

// TestConcurrentEvaluation: an Inventory evaluates templates for many
// goroutines at once (run with -race), each getting what one gets alone.
func TestConcurrentEvaluation(t *testing.T) {
	inv, err := Load(context.Background(), []string{"../testdata/templated/16-group-vars-files/hosts"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Connection{}
	for _, h := range inv.Hosts() {
		if want[h.Name()], err = inv.Connection(h); err != nil {
			t.Fatal(err)
		}
	}
	inv, _ = Load(context.Background(), []string{"../testdata/templated/16-group-vars-files/hosts"}, Options{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, h := range inv.Hosts() {
				got, err := inv.Connection(h)
				if err != nil || !reflect.DeepEqual(got, want[h.Name()]) {
					t.Errorf("%s: %+v, %v; want %+v", h.Name(), got, err, want[h.Name()])
				}
				if _, err := inv.NodeName(h); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

// TestMagicVariables: the variables Ansible adds for a host, as templates
// read them (-e overrides the host-level ones, as in Ansible).
func TestMagicVariables(t *testing.T) {
	inv, _ := loadString(t, "hosts", "[web]\nweb01.example.com\n10.0.0.9\n[db]\ndb1 x='{{ groups.web | length }}'\n")
	for _, c := range []struct {
		host, name string
		want       any
	}{
		{"web01.example.com", "inventory_hostname", "web01.example.com"},
		{"web01.example.com", "inventory_hostname_short", "web01"},
		{"10.0.0.9", "inventory_hostname_short", "10.0.0.9"},
		{"db1", "group_names", []any{"db"}},
		{"db1", "groups", map[string]any{"all": []any{"web01.example.com", "10.0.0.9", "db1"}, "ungrouped": []any{},
			"web": []any{"web01.example.com", "10.0.0.9"}, "db": []any{"db1"}}},
		{"db1", "x", "2"},
	} {
		h, _ := inv.Host(c.host)
		got, ok, err := inv.Var(h, c.name)
		if err != nil || !ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %s = %#v, %v, %v; want %#v", c.host, c.name, got, ok, err, c.want)
		}
	}
	_, p := loadString(t, "hosts", "h1.example.com n='{{ inventory_hostname_short }}'\n")
	inv, err := Load(context.Background(), []string{p}, Options{ExtraVars: []string{"inventory_hostname_short=over"}})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := inv.Host("h1.example.com")
	if got, _, err := inv.Var(h, "n"); got != "over" || err != nil {
		t.Errorf("with -e inventory_hostname_short=over: %v, %v", got, err)
	}
}

// TestUndefinedAdvice: an undefined variable is named with how to define
// it; a missing attribute is the template's business.
func TestUndefinedAdvice(t *testing.T) {
	inv, _ := loadString(t, "hosts", "a ansible_host='{{ addr }}'\nb ansible_host='{{ net.addr }}' net='{}'\n")
	for host, want := range map[string]string{
		"a": "host a: variable ansible_host: 'addr' is undefined (in \"{{ addr }}\"); define addr in the inventory or with -e addr=VALUE",
		"b": "host b: variable ansible_host: 'dict object' has no attribute 'addr' (in \"{{ net.addr }}\"); define what it reads, or give ansible_host a literal value with -e ansible_host=VALUE",
	} {
		h, _ := inv.Host(host)
		if _, err := inv.Connection(h); err == nil || err.Error() != want {
			t.Errorf("%s: %v\nwant %s", host, err, want)
		}
	}
}
