package testfleet

import (
	"fmt"
	"strings"
)

// NameCase is one node of the name-source scenarios (issue 11): the
// Kubernetes node agent it runs, the hostname it has, what the inventory
// says of it, and how a hostname run must end. Every entry point (the CLI,
// the binary module, the playbooks, make demo) runs the same cases.
type NameCase struct {
	// What the case shows, for messages.
	What string
	// Kubelet is the node's agent, given its address (a kubeasz 3.5 node
	// is named by its address).
	Kubelet func(addr string) Kubelet
	// Hostname is the node's OS hostname at boot.
	Hostname string
	// K8sNodename is the inventory's k8s_nodename ("" none).
	K8sNodename string
	// Want is the hostname after a run, given the node's address.
	Want func(addr string) string
	// Status is the hostname task's verdict: ok, changed or failed.
	Status string
	// MsgHas are words the task's message must hold.
	MsgHas []string
}

func fixed(s string) func(string) string { return func(string) string { return s } }

func agent(flavor, name string) func(string) Kubelet {
	return func(string) Kubelet { return Kubelet{Flavor: flavor, NodeName: name} }
}

// NameCases are seven nodes whose names come from everywhere a name can
// come from; a run renames them as the cases say, and a second run
// changes nothing.
func NameCases() []NameCase {
	return []NameCase{
		{What: "kubeasz node, k8s_nodename set, OS hostname localhost", Kubelet: agent(KubeletKubeasz, "worker-01"),
			Hostname: "localhost", K8sNodename: "worker-01", Want: fixed("worker-01"), Status: "changed"},
		{What: "kubeasz node, k8s_nodename set, OS hostname localhost", Kubelet: agent(KubeletKubeasz, "worker-02"),
			Hostname: "localhost", K8sNodename: "worker-02", Want: fixed("worker-02"), Status: "changed"},
		{What: "kubeasz 3.5 node named by its address (empty k8s_nodename): the kubelet says which",
			Kubelet:  func(addr string) Kubelet { return Kubelet{Flavor: KubeletKubeasz, NodeName: addr} },
			Hostname: "localhost", Want: func(addr string) string { return addr }, Status: "changed"},
		{What: "kubeadm node without --hostname-override: named by its hostname, left as it is", Kubelet: agent(KubeletKubeadm, "kubeadm-04"),
			Hostname: "kubeadm-04", Want: fixed("kubeadm-04"), Status: "ok"},
		{What: "k3s node with node-name in config.yaml, OS hostname localhost", Kubelet: agent(KubeletK3s, "k3s-05"),
			Hostname: "localhost", Want: fixed("k3s-05"), Status: "changed"},
		{What: "plain host: no kubelet, no name in the inventory: nothing invented", Kubelet: agent("", ""),
			Hostname: "web06", Want: fixed("web06"), Status: "ok", MsgHas: []string{"no node name"}},
		{What: "host without a kubelet (yet) named by the inventory", Kubelet: agent("", ""),
			Hostname: "localhost", K8sNodename: "worker-07", Want: fixed("worker-07"), Status: "changed"},
	}
}

// MisnamedCases are NameCases with an inventory that is wrong about three
// nodes: node01 and node02 swapped (an inventory mix-up keeps names unique,
// so no fleet precheck can see it), and node04, a kubeadm node without an
// override, given a name it does not run as. Those three fail with both
// names and are not renamed; the others end as in NameCases.
func MisnamedCases() []NameCase {
	cases := NameCases()
	cases[0].K8sNodename, cases[1].K8sNodename = "worker-02", "worker-01"
	cases[3].K8sNodename = "k8s-node04"
	for i, kubelet := range map[int]string{0: "worker-01", 1: "worker-02", 3: "kubeadm-04"} {
		c := &cases[i]
		c.What = "inventory wrong about a node: " + c.What
		c.Want, c.Status = fixed(c.Hostname), "failed"
		c.MsgHas = []string{fmt.Sprintf("names this node %q", c.K8sNodename), fmt.Sprintf("its kubelet runs as %q", kubelet), "renaming nothing"}
	}
	cases[3].MsgHas = append(cases[3].MsgHas, "no --hostname-override")
	return cases
}

// NameCaseOptions are fleet Options whose node i (from 1) is cases[i-1].
func NameCaseOptions(cases []NameCase) Options {
	return Options{
		Nodes:       len(cases),
		Kubelet:     func(i int, addr string) Kubelet { return cases[i-1].Kubelet(addr) },
		Hostname:    func(i int) string { return cases[i-1].Hostname },
		K8sNodename: func(i int) string { return cases[i-1].K8sNodename },
	}
}

// InventoryWith is the fleet's own hosts with the k8s_nodename cases give
// them: the same nodes under another inventory (MisnamedCases).
func (f *Fleet) InventoryWith(cases []NameCase) []InventoryHost {
	hosts := f.InventoryHosts(f.Nodes)
	for i := range hosts {
		if i < len(cases) {
			hosts[i].K8sNodename = cases[i].K8sNodename
		}
	}
	return hosts
}

// KubeaszRelease is which kubeasz installed a cluster, for what it named
// a node whose k8s_nodename is empty: 3.5.x–3.6.3 the inventory hostname
// (the address, in kubeasz's hosts file), 3.6.4+ k8s-<address with '-'>.
type KubeaszRelease string

const (
	Kubeasz35  KubeaszRelease = "3.5"
	Kubeasz364 KubeaszRelease = "3.6.4"
)

// kubeaszDefaultName is the K8S_NODENAME a release gives a node with an
// empty k8s_nodename, listening on addr (its inventory hostname).
func (r KubeaszRelease) kubeaszDefaultName(addr string) string {
	if r == Kubeasz35 {
		return addr
	}
	return "k8s-" + strings.ReplaceAll(addr, ".", "-")
}

// KubeaszCases are three nodes of a cluster the release installed, all
// called localhost: k8s_nodename set plainly, k8s_nodename with kubeasz's
// normalisation ('Worker_03' → worker-03), and an empty one, named as the
// release names it. Run with that release's config.yml they are renamed to
// what their kubelets run as; with the other release's, the node with the
// empty k8s_nodename fails with both names and keeps its name.
func KubeaszCases(installed, configured KubeaszRelease) []NameCase {
	kubeasz := func(name func(addr string) string) func(string) Kubelet {
		return func(addr string) Kubelet { return Kubelet{Flavor: KubeletKubeasz, NodeName: name(addr)} }
	}
	cases := []NameCase{
		{What: "kubeasz node, k8s_nodename master-01", Kubelet: kubeasz(fixed("master-01")), Hostname: "localhost",
			K8sNodename: "master-01", Want: fixed("master-01"), Status: "changed"},
		{What: "kubeasz node, k8s_nodename Worker_03", Kubelet: kubeasz(fixed("worker-03")), Hostname: "localhost",
			K8sNodename: "Worker_03", Want: fixed("worker-03"), Status: "changed"},
		{What: "kubeasz " + string(installed) + " node with an empty k8s_nodename", Kubelet: kubeasz(installed.kubeaszDefaultName),
			Hostname: "localhost", Want: installed.kubeaszDefaultName, Status: "changed"},
	}
	if installed != configured {
		c := &cases[2]
		c.What += ", config.yml of kubeasz " + string(configured)
		c.Want, c.Status = fixed("localhost"), "failed"
		c.MsgHas = []string{"K8S_NODENAME", "its kubelet runs as", "renaming nothing"}
	}
	return cases
}
