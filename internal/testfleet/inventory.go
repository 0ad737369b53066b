package testfleet

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// writeInventories writes the fleet as a YAML inventory (hosts node01…)
// and as a kubeasz-style INI `hosts` file (hosts named by address, as
// kubeasz's example/hosts.multi-node does). Node 1 is the master, every
// node is a worker, as on a small kubeasz cluster.
func (f *Fleet) writeInventories() error {
	if err := f.WriteYAMLInventory(f.InventoryYAML, f.InventoryHosts(f.Nodes)); err != nil {
		return err
	}
	return f.WriteINIInventory(f.InventoryINI, f.InventoryHosts(f.Nodes))
}

// WriteINIInventory writes hosts as a kubeasz-style INI inventory, hosts
// named by address: the first is etcd and the master, every one a worker.
func (f *Fleet) WriteINIInventory(path string, hosts []InventoryHost) error {
	if err := os.WriteFile(path, []byte(f.iniInventory(hosts)), 0o644); err != nil {
		return fmt.Errorf("writing inventory %s: %w", path, err)
	}
	return nil
}

func (f *Fleet) connectionVars() [][2]string {
	return [][2]string{
		{"ansible_user", "root"},
		{"ansible_ssh_private_key_file", f.ClientKeyFile},
		{"ansible_ssh_common_args", f.sshCommonArgs(nil)},
		{"ansible_python_interpreter", "/usr/bin/python3"},
	}
}

func (f *Fleet) sshCommonArgs(n *Node) string {
	args := "-o UserKnownHostsFile=" + f.KnownHostsFile
	if n != nil && n.Net != nil && n.Net.ProxyJump != "" {
		args += " -o ProxyJump=" + n.Net.ProxyJump
	}
	return args
}

// InventoryHost is one host of an inventory written for the fleet: an
// inventory name, the node it connects to and the k8s_nodename it asks
// for. Several hosts may share a node (make bench's 1,000-host inventory
// on 100 nodes).
type InventoryHost struct {
	Name        string
	Node        *Node
	K8sNodename string
}

// InventoryHosts are nodes as the fleet's own YAML inventory names them.
func (f *Fleet) InventoryHosts(nodes []*Node) []InventoryHost {
	hosts := make([]InventoryHost, len(nodes))
	for i, n := range nodes {
		hosts[i] = InventoryHost{Name: n.Name, Node: n, K8sNodename: n.K8sNodename}
	}
	return hosts
}

// WriteYAMLInventory writes hosts as a YAML inventory with the fleet's
// connection settings: the first host is the master, every host a worker.
func (f *Fleet) WriteYAMLInventory(path string, hosts []InventoryHost) error {
	if err := os.WriteFile(path, []byte(f.yamlInventory(hosts)), 0o644); err != nil {
		return fmt.Errorf("writing inventory %s: %w", path, err)
	}
	return nil
}

// hostVars are a node's own inventory variables beyond ansible_host.
func (f *Fleet) hostVars(n *Node, k8sNodename string) [][2]string {
	vars := [][2]string{{"k8s_nodename", k8sNodename}}
	if n.Port != 22 {
		vars = append(vars, [2]string{"ansible_port", strconv.Itoa(n.Port)})
	}
	if n.Net != nil && n.Net.ProxyJump != "" {
		vars = append(vars, [2]string{"ansible_ssh_common_args", f.sshCommonArgs(n)})
	}
	return vars
}

func (f *Fleet) yamlInventory(hosts []InventoryHost) string {
	var b strings.Builder
	b.WriteString("# nodefix simulated fleet (internal/testfleet)\nall:\n  vars:\n")
	for _, kv := range f.connectionVars() {
		fmt.Fprintf(&b, "    %s: %s\n", kv[0], strconv.Quote(kv[1]))
	}
	b.WriteString("  children:\n    kube_master:\n      hosts:\n")
	if len(hosts) > 0 {
		fmt.Fprintf(&b, "        %s:\n", hosts[0].Name)
	}
	b.WriteString("    kube_node:\n      hosts:\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "        %s:\n          ansible_host: %s\n", h.Name, h.Node.Addr)
		for _, kv := range f.hostVars(h.Node, h.K8sNodename) {
			fmt.Fprintf(&b, "          %s: %s\n", kv[0], strconv.Quote(kv[1]))
		}
	}
	return b.String()
}

func (f *Fleet) iniInventory(hosts []InventoryHost) string {
	var b strings.Builder
	b.WriteString("# nodefix simulated fleet (internal/testfleet), kubeasz style\n")
	host := func(h InventoryHost) string {
		line := h.Node.Addr
		for _, kv := range f.hostVars(h.Node, h.K8sNodename) {
			line += fmt.Sprintf(" %s='%s'", kv[0], kv[1])
		}
		return line + "\n"
	}
	b.WriteString("[etcd]\n")
	if len(hosts) > 0 {
		b.WriteString(hosts[0].Node.Addr + "\n")
	}
	b.WriteString("\n[kube_master]\n")
	if len(hosts) > 0 {
		b.WriteString(host(hosts[0]))
	}
	b.WriteString("\n[kube_node]\n")
	for _, h := range hosts {
		b.WriteString(host(h))
	}
	b.WriteString("\n[all:vars]\n")
	for _, kv := range f.connectionVars() {
		fmt.Fprintf(&b, "%s=\"%s\"\n", kv[0], kv[1])
	}
	return b.String()
}
