package inventory

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nodefix/nodefix/internal/nodename"
	"github.com/nodefix/nodefix/internal/pycompat"
)

// readVariables are the variables nodefix reads from an inventory (and
// the nodefix_* task options): Connection's, NodeName's.
var readVariables = []string{
	"ansible_connection", "ansible_host", "ansible_ssh_host", "ansible_port", "ansible_ssh_port",
	"ansible_user", "ansible_ssh_user", "ansible_password", "ansible_ssh_pass", "ansible_ssh_password",
	"ansible_ssh_private_key_file", "ansible_private_key_file", "ansible_ssh_timeout", "ansible_timeout",
	"ansible_host_key_checking", "ansible_ssh_host_key_checking", "ansible_ssh_args",
	"ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_become", "ansible_become_user",
	"ansible_become_method", "ansible_become_password", "ansible_become_pass", "ansible_sudo_pass",
	"nodefix_hostname", "K8S_NODENAME", "k8s_nodename",
}

// Connection resolves how to reach h from its variables, with Ansible's
// names and precedence: a legacy ansible_ssh_* name wins over the modern
// one (ansible_ssh_host over ansible_host), as in Ansible's
// MAGIC_VARIABLE_MAPPING. ansible_port, ansible_user, the key file and the
// timeout win over -p/-l/-i/-o in ansible_ssh_common_args and
// ansible_ssh_extra_args (Ansible passes them first and OpenSSH keeps the
// first value); among the args the first occurrence wins. Templated
// values are evaluated as Ansible evaluates them (Var); one nodefix
// cannot evaluate is an error naming the host, the variable and why.
func (inv *Inventory) Connection(h *Host) (Connection, error) {
	r := resolver{inv: inv, h: h}
	var c Connection

	conn := r.str("ansible_connection")
	switch strings.TrimPrefix(conn, "ansible.builtin.") {
	case "", "ssh", "smart", "paramiko", "paramiko_ssh":
		c.Type = "ssh"
	case "local":
		c.Type = "local"
	default:
		r.fail("ansible_connection", "connection type %q is not supported: nodefix connects with ssh or local", conn)
	}
	c.Address = r.str("ansible_ssh_host", "ansible_host")
	if c.Address == "" {
		c.Address = h.name
	}
	c.Port = r.port("ansible_ssh_port", "ansible_port")
	c.User = r.str("ansible_ssh_user", "ansible_user")
	c.Password = r.str("ansible_ssh_pass", "ansible_ssh_password", "ansible_password")
	c.PrivateKeyFile = expandHome(r.str("ansible_ssh_private_key_file", "ansible_private_key_file"))
	if t, name := r.int("ansible_ssh_timeout", "ansible_timeout"); name != "" {
		c.ConnectTimeout = time.Duration(t) * time.Second
	}
	if name, v := r.lookup("ansible_host_key_checking", "ansible_ssh_host_key_checking"); name != "" {
		if b, err := ansibleBool(v); err != nil {
			r.fail(name, "%v", err)
		} else if !b {
			c.StrictHostKeyChecking = "no"
		}
	}
	for _, name := range []string{"ansible_ssh_args", "ansible_ssh_common_args", "ansible_ssh_extra_args"} {
		args := r.str(name)
		if args == "" {
			continue
		}
		if err := parseSSHArgs(args, &c); err != nil {
			r.fail(name, "%v", err)
		}
	}

	if name, v := r.lookup("ansible_become"); name != "" {
		b, err := ansibleBool(v)
		if err != nil {
			r.fail(name, "%v", err)
		}
		c.Become = b
	}
	c.BecomeUser = r.str("ansible_become_user")
	c.BecomeMethod = r.str("ansible_become_method")
	c.BecomePassword = r.str("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass")
	if r.err != nil {
		return Connection{}, r.err
	}
	return c, nil
}

// NodeName is the Kubernetes node name the inventory gives a host (and so
// the OS hostname nodefix gives it), and which variable gave it. An empty
// Name means the inventory gives none: the node's own kubelet identity
// decides, or, without one, nothing is renamed.
type NodeName struct {
	Name string
	// Source says where Name came from, for messages: "nodefix_hostname",
	// "K8S_NODENAME", or "k8s_nodename (kubeasz's rule)".
	Source string
}

// NodeName is the host's node name as DESIGN.md orders its sources:
// nodefix_hostname, else K8S_NODENAME (kubeasz's config.yml computes it
// with a template, evaluated as Ansible evaluates it: both released
// variants),
// else kubeasz's rule on a non-empty k8s_nodename (lower case, '_' as
// '-': both released kubeasz templates agree on it; they differ only for
// an empty k8s_nodename, which is left to the node), else none. A name is
// validated as Kubernetes validates node names, and no longer than the
// kernel allows a hostname (64), since nodefix makes it the OS hostname.
func (inv *Inventory) NodeName(h *Host) (NodeName, error) {
	r := resolver{inv: inv, h: h}
	check := func(name, from string) (NodeName, error) {
		if err := nodename.ValidateHostname(name); err != nil {
			return NodeName{}, fmt.Errorf("host %s: %s: %v", h.name, from, err)
		}
		return NodeName{Name: name, Source: from}, nil
	}
	for _, name := range []string{"nodefix_hostname", "K8S_NODENAME"} {
		if _, ok := h.merged[name]; !ok {
			continue
		}
		v := strings.TrimSpace(r.str(name))
		if r.err != nil {
			return NodeName{}, r.err
		}
		if v != "" {
			return check(v, name)
		}
	}
	k8s := strings.TrimSpace(r.str("k8s_nodename"))
	if r.err != nil {
		return NodeName{}, r.err
	}
	if k8s == "" {
		return NodeName{}, nil
	}
	name := nodename.Derive(h.name, k8s)
	if name == k8s {
		return check(name, "k8s_nodename")
	}
	return check(name, fmt.Sprintf("k8s_nodename=%q (kubeasz's rule)", k8s))
}

// resolver reads a host's variables, evaluated, and keeps the first
// error.
type resolver struct {
	inv *Inventory
	h   *Host
	err error
}

func (r *resolver) fail(name, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("host %s: variable %s: %s", r.h.name, name, fmt.Sprintf(format, args...))
	}
}

// lookup returns the first of names the host has, and its value,
// templated (an error is kept, and the value is then nil).
func (r *resolver) lookup(names ...string) (string, any) {
	for _, n := range names {
		if _, ok := r.h.merged[n]; !ok {
			continue
		}
		v, _, err := r.inv.Var(r.h, n)
		if err != nil {
			if r.err == nil {
				r.err = err
			}
			return n, nil
		}
		return n, v
	}
	return "", nil
}

// str is the first set variable of names as text (Python str() of
// numbers and booleans, as Ansible's string options convert them).
func (r *resolver) str(names ...string) string {
	name, v := r.lookup(names...)
	if name == "" || v == nil {
		return ""
	}
	switch v.(type) {
	case string:
		return v.(string)
	case []any, map[string]any:
		r.fail(name, "must be a single value, not %s", pycompat.Repr(v))
		return ""
	}
	return pycompat.Str(v)
}

func (r *resolver) int(names ...string) (int, string) {
	name, v := r.lookup(names...)
	if name == "" || v == nil {
		return 0, ""
	}
	n, err := pyInt(v)
	if err != nil {
		r.fail(name, "must be a whole number, got %s", pycompat.Repr(v))
		return 0, ""
	}
	return n, name
}

func (r *resolver) port(names ...string) int {
	p, name := r.int(names...)
	if name != "" && (p < 1 || p > 65535) {
		r.fail(name, "port %d is out of range (1-65535)", p)
	}
	return p
}

// ansibleBool is ansible.module_utils.parsing.convert_bool.boolean(strict).
func ansibleBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int:
		if x == 1 {
			return true, nil
		}
		if x == 0 {
			return false, nil
		}
	case float64:
		if x == 1 {
			return true, nil
		}
		if x == 0 {
			return false, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "y", "yes", "on", "1", "true", "t":
			return true, nil
		case "n", "no", "off", "0", "false", "f":
			return false, nil
		}
	}
	return false, fmt.Errorf("%s is not a valid boolean: use true/false, yes/no, on/off or 1/0", pycompat.Repr(v))
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return home + p[1:]
		}
	}
	return p
}
