package inventory

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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
	h, _ := inv.Host("n6")
	if _, err := inv.Connection(h); err == nil || !strings.Contains(err.Error(), "n6") || !strings.Contains(err.Error(), "ansible_host") || !strings.Contains(err.Error(), "Jinja") {
		t.Errorf("templated ansible_host: %v", err)
	}
}

func TestConnectionErrors(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"h ansible_port=x", "ansible_port"},
		{"h ansible_port=70000", "out of range"},
		{"h ansible_become=maybe", "not a valid boolean"},
		{"h ansible_connection=winrm", "not supported"},
		{"h ansible_user='{{ u }}'", "Jinja"},
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
