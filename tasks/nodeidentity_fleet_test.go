package tasks_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nodefix/nodefix/internal/testfleet"
	"github.com/nodefix/nodefix/tasks"
)

// recordingNode keeps every byte a node sent back, to prove what never
// leaves it.
type recordingNode struct {
	tasks.Node
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recordingNode) Run(ctx context.Context, cmd tasks.Command) (tasks.Result, error) {
	res, err := r.Node.Run(ctx, cmd)
	r.mu.Lock()
	r.out.Write(res.Stdout)
	r.out.Write(res.Stderr)
	r.mu.Unlock()
	return res, err
}

// kubeletFleet is one node of each kind the hostname task must tell apart:
// kubeasz (--hostname-override), kubeadm (no override: named by its
// hostname), k3s (node-name in config.yaml), and a plain host.
func kubeletFleet(t *testing.T, hostname func(i int) string) *testfleet.Fleet {
	kubelets := map[int]testfleet.Kubelet{
		1: {Flavor: testfleet.KubeletKubeasz, NodeName: "worker-01"},
		2: {Flavor: testfleet.KubeletKubeadm, NodeName: "kubeadm-02"},
		3: {Flavor: testfleet.KubeletK3s, NodeName: "k3s-03"},
	}
	return testfleet.New(t, testfleet.Options{Nodes: 4,
		Kubelet:     func(i int, _ string) testfleet.Kubelet { return kubelets[i] },
		K8sNodename: func(int) string { return "" },
		Hostname:    hostname,
	})
}

// Issue 11: the hostname gather reads each node's Kubernetes identity from
// the running kubelet, its unit and flags, k3s' config and the client
// certificate, and only names and certificates leave the node.
func TestFleetNodeIdentityFromRealKubelets(t *testing.T) {
	f := kubeletFleet(t, func(i int) string {
		if i == 2 {
			return "kubeadm-02" // kubeadm's node registered under its hostname
		}
		return "localhost"
	})
	cfg := tasks.DefaultConfig()
	cfg.Check = true
	want := []struct {
		name, by string
		kinds    []string
		source   string
	}{
		{"worker-01", "override", []string{"process", "config", "certificate"}, "running /opt/kube/bin/kubelet (pid "},
		{"kubeadm-02", "hostname", []string{"certificate"}, "/var/lib/kubelet/pki/kubelet-client-current.pem CN=system:node:kubeadm-02"},
		{"k3s-03", "override", []string{"config", "certificate"}, "/etc/rancher/k3s/config.yaml node-name"},
		{"", "", nil, ""},
	}
	for i, n := range f.Nodes {
		rec := &recordingNode{Node: n}
		out := tasks.Hostname{}.Apply(context.Background(), rec, tasks.Host{Name: n.Name}, cfg)
		w := want[i]
		if w.name == "" {
			if _, ok := out.Details["node_name"]; ok || out.Status != tasks.StatusOK || out.Changed {
				t.Errorf("%s (plain host): %s %v %q, details %v; want ok, unchanged, no node name", n.Name, out.Status, out.Changed, out.Msg, out.Details)
			}
			if !strings.Contains(out.Msg, "no node name") {
				t.Errorf("%s: msg %q does not say there is no name", n.Name, out.Msg)
			}
			continue
		}
		if got := out.Details["node_name"]; got != w.name {
			t.Errorf("%s: node_name %v, want %s (details %v, msg %s)", n.Name, got, w.name, out.Details, out.Msg)
		}
		if got := out.Details["node_name_by"]; got != w.by {
			t.Errorf("%s: node_name_by %v, want %s", n.Name, got, w.by)
		}
		if src, _ := out.Details["node_name_source"].(string); !strings.Contains(src, w.source) {
			t.Errorf("%s: node_name_source %q lacks %q", n.Name, src, w.source)
		}
		ev, _ := out.Details["node_name_evidence"].([]tasks.NameEvidence)
		var kinds []string
		for _, e := range ev {
			kinds = append(kinds, e.Kind)
			if e.Name != w.name {
				t.Errorf("%s: evidence %+v disagrees", n.Name, e)
			}
		}
		if fmt.Sprint(kinds) != fmt.Sprint(w.kinds) {
			t.Errorf("%s: evidence kinds %v, want %v (%+v)", n.Name, kinds, w.kinds, ev)
		}
		if got := out.Details["target"]; got != w.name {
			t.Errorf("%s: target %v, want the kubelet's %s", n.Name, got, w.name)
		}
		sent := rec.out.String()
		for _, secret := range []string{testfleet.K3sToken, "PRIVATE KEY"} {
			if strings.Contains(sent, secret) {
				t.Errorf("%s: %q left the node in the gather's output", n.Name, secret)
			}
		}
	}
}
