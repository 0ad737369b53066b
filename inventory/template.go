package inventory

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nodefix/nodefix/internal/jinja"
	"github.com/nodefix/nodefix/internal/pycompat"
)

// Variables holding Jinja2 templates are evaluated lazily, when nodefix
// reads them, the way Ansible templates a host's variable: in the host's
// context (its merged variables, each itself templated when read; extra
// vars on top), with Ansible's magic variables inventory_hostname,
// inventory_hostname_short, group_names, groups and hostvars. What nodefix
// does not evaluate (see internal/jinja) is an error naming the host, the
// variable and the construct, never a guess. Values without "{{", "{%" or
// "{#" never reach the engine.

// hostScope is one host's variables as a template sees them (a
// jinja.Vars).
type hostScope struct {
	inv *Inventory
	h   *Host
	// hostvars: whether the scope holds hostvars. Another host's
	// variables read through hostvars do not (Ansible builds them with
	// include_hostvars=False).
	hostvars bool
}

func (s *hostScope) Lookup(name string) (any, bool) {
	switch name {
	case "hostvars":
		if s.hostvars {
			return inventoryHostVars{s.inv}, true
		}
		return nil, false
	case "groups":
		// Host and group names hold no template: the engine need not
		// look at every one of them each time a template reads groups.
		return jinja.Untemplated{Value: s.inv.groupsVar()}, true
	case "inventory_hostname", "inventory_hostname_short", "group_names":
		// Host-level magic variables: extra vars override them, group
		// variables do not.
		if v, ok := s.inv.extra[name]; ok {
			return v, true
		}
		switch name {
		case "inventory_hostname":
			return s.h.name, true
		case "inventory_hostname_short":
			return shortName(s.h.name), true
		}
		names := s.inv.GroupNames(s.h)
		l := make([]any, len(names))
		for i, n := range names {
			l[i] = n
		}
		return l, true
	}
	v, ok := s.h.merged[name]
	return v, ok
}

// magicVars are the names hostScope answers before the host's variables.
var magicVars = map[string]bool{"hostvars": true, "groups": true, "inventory_hostname": true, "inventory_hostname_short": true, "group_names": true}

// shortName is inventory_hostname_short: an IP address whole, a name up
// to its first dot.
func shortName(name string) string {
	if reIPv4.MatchString(name) || reIPv6.MatchString(name) {
		return name
	}
	short, _, _ := strings.Cut(name, ".")
	return short
}

// inventoryHostVars is hostvars: every host's variables, templated in
// that host's context when read.
type inventoryHostVars struct{ inv *Inventory }

func (hv inventoryHostVars) HostVars(name string) (jinja.Vars, bool) {
	h, ok := hv.inv.hosts[name]
	if !ok {
		return nil, false
	}
	return &hostScope{inv: hv.inv, h: h}, true
}

func (hv inventoryHostVars) Hosts() []string {
	names := make([]string, len(hv.inv.hostOrder))
	for i, h := range hv.inv.hostOrder {
		names[i] = h.name
	}
	return names
}

// groupsVar is the magic variable groups: every group's hosts, computed
// once.
func (inv *Inventory) groupsVar() map[string]any {
	inv.groupsOnce.Do(func() {
		inv.groupsMap = make(map[string]any, len(inv.groupOrder))
		for _, g := range inv.groupOrder {
			hosts := g.allHosts()
			names := make([]any, len(hosts))
			for i, h := range hosts {
				names[i] = h.name
			}
			inv.groupsMap[g.name] = names
		}
	})
	return inv.groupsMap
}

// Var is variable name of h as Ansible templates it for h (what a
// template reading it sees): ok is false when h has no such variable.
// Magic variables (inventory_hostname, group_names, groups, …) are
// variables here too. A template nodefix cannot evaluate, or one that
// reads an undefined variable, is an error naming the host and the
// variable; errors.As finds the *jinja.Error in it.
func (inv *Inventory) Var(h *Host, name string) (value any, ok bool, err error) {
	// The fast path, for what nearly every inventory holds: a variable
	// of the host's own, plain data.
	if raw, ok := h.merged[name]; ok && !magicVars[name] && !jinja.HoldsTemplate(raw) {
		return raw, true, nil
	}
	s := &hostScope{inv: inv, h: h, hostvars: true}
	raw, ok := s.Lookup(name)
	if !ok {
		return nil, false, nil
	}
	switch x := raw.(type) {
	case pycompat.Vault:
		return nil, true, fmt.Errorf("host %s: variable %s: is encrypted with ansible-vault; nodefix does not decrypt vaults: pass the value with -e @decrypted.yml", h.name, name)
	case pycompat.Unsafe:
		return x.Text, true, nil
	case jinja.Untemplated:
		return x.Value, true, nil
	}
	if !jinja.HoldsTemplate(raw) {
		return raw, true, nil
	}
	v, _, err := inv.engine.Var(s, name)
	if err != nil {
		return nil, true, templateError(h, name, err)
	}
	return v, true, nil
}

// Template evaluates text in h's context as Ansible's templar would (what
// `ansible HOST -m debug -a msg=TEXT` computes before printing it).
func (inv *Inventory) Template(h *Host, text string) (any, error) {
	v, err := inv.engine.Template(text, &hostScope{inv: inv, h: h, hostvars: true})
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.name, err)
	}
	return v, nil
}

// TaskOptions are h's variables named nodefix_*, evaluated as Var
// evaluates them: how an inventory passes task options to nodefix.
func (inv *Inventory) TaskOptions(h *Host) (map[string]any, error) {
	var names []string
	for k := range h.merged {
		if strings.HasPrefix(k, "nodefix_") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	out := make(map[string]any, len(names))
	for _, n := range names {
		v, _, err := inv.Var(h, n)
		if err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, nil
}

// templateError says which host and variable a template failed in, what
// failed, and what the user can do about it.
func templateError(h *Host, name string, err error) error {
	var je *jinja.Error
	if !errors.As(err, &je) {
		return fmt.Errorf("host %s: variable %s: %w", h.name, name, err)
	}
	var advice string
	switch je.Kind {
	case jinja.Undefined:
		// A variable that is not defined can be; an attribute or item
		// missing from a value, or an empty sequence, is the template's
		// business.
		undef := je.Name
		if undef == "" || strings.ContainsAny(undef, "[]' ") || !strings.HasSuffix(je.Msg, "is undefined") {
			advice = fmt.Sprintf("define what it reads, or give %s a literal value with -e %s=VALUE", name, name)
		} else {
			advice = fmt.Sprintf("define %s in the inventory or with -e %s=VALUE", undef, undef)
		}
	case jinja.Unsupported:
		advice = fmt.Sprintf("nodefix evaluates the filters, tests and lookups listed in README (Inventories); give %s a literal value with -e %s=VALUE", name, name)
	default:
		advice = fmt.Sprintf("fix the template, or give %s a literal value with -e %s=VALUE", name, name)
	}
	return fmt.Errorf("host %s: variable %s: %w; %s", h.name, name, err, advice)
}
