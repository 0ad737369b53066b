package inventory

import (
	"fmt"
	"sort"

	"github.com/nodefix/nodefix/internal/pycompat"
)

// Group is an inventory group. Its variables are the ones the inventory
// file sets on it (group_vars files are applied per host, as Ansible does).
type Group struct {
	name     string
	vars     map[string]any
	children []*Group
	parents  []*Group
	hosts    []*Host
	hostSet  map[string]bool
	depth    int
	priority int
}

// Name is the group's name.
func (g *Group) Name() string { return g.name }

// Children are the group's direct child groups, in inventory order.
func (g *Group) Children() []*Group { return append([]*Group(nil), g.children...) }

// DirectHosts are the hosts listed in the group itself, in inventory order.
func (g *Group) DirectHosts() []*Host { return append([]*Host(nil), g.hosts...) }

// Depth is the group's depth below "all" (longest path), which orders
// group variables.
func (g *Group) Depth() int { return g.depth }

// Priority is ansible_group_priority (default 1).
func (g *Group) Priority() int { return g.priority }

// Host is an inventory host.
type Host struct {
	name   string
	vars   map[string]any // set by inventory files, before precedence
	groups []*Group       // direct memberships, in the order they were made
	merged map[string]any // final variables, as ansible-inventory --host
	file   string         // inventory source that first named the host
}

// Name is the inventory hostname.
func (h *Host) Name() string { return h.name }

// Vars are the host's variables merged with Ansible's precedence, exactly
// what `ansible-inventory --host NAME` prints: group and host variables
// from the inventory, group_vars/ and host_vars/, extra vars on top, less
// Ansible's internal names (inventory_hostname, group_names, groups, ...).
// The map is the host's own copy-on-read: callers may modify it.
func (h *Host) Vars() map[string]any { return copyMap(h.merged) }

// Var is one merged variable.
func (h *Host) Var(name string) (any, bool) {
	v, ok := h.merged[name]
	return v, ok
}

// File is the inventory source that first named the host (Ansible's
// inventory_file), empty for a host list given on the command line.
func (h *Host) File() string { return h.file }

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func newGroup(name string) *Group {
	return &Group{name: name, vars: map[string]any{}, hostSet: map[string]bool{}, priority: 1}
}

// ancestors are every group above g.
func (g *Group) ancestors() map[*Group]bool {
	seen := map[*Group]bool{}
	stack := append([]*Group(nil), g.parents...)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		stack = append(stack, p.parents...)
	}
	return seen
}

// walk is Group._walk_relationship('child_groups', include_self=True,
// preserve_ordering=True): breadth first, level by level, a group listed
// again when two groups of one level share it. Python walks each level as
// a set (its order is an accident of memory addresses); nodefix walks it
// in inventory order, which agrees with Ansible whenever only one group of
// a level has children the earlier levels have not shown.
func (g *Group) walk() []*Group {
	ordered := []*Group{g}
	ordered = append(ordered, g.children...)
	seen := map[*Group]bool{g: true}
	level := []*Group{g}
	for _, c := range g.children {
		if !seen[c] {
			seen[c] = true
			level = append(level, c)
		}
	}
	for len(level) > 0 {
		var next []*Group
		inNext := map[*Group]bool{}
		for _, p := range level {
			for _, c := range p.children {
				if !inNext[c] {
					inNext[c] = true
					if !seen[c] {
						next = append(next, c)
					}
				}
				if !seen[c] {
					ordered = append(ordered, c)
				}
			}
		}
		for _, c := range next {
			seen[c] = true
		}
		level = next
	}
	return ordered
}

// allHosts is Group.get_hosts(): the hosts of the group and of every group
// below it, each once.
func (g *Group) allHosts() []*Host {
	var out []*Host
	seen := map[*Host]bool{}
	for _, k := range g.walk() {
		for _, h := range k.hosts {
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	return out
}

func (g *Group) addHost(h *Host) {
	if g.hostSet[h.name] {
		return
	}
	g.hostSet[h.name] = true
	g.hosts = append(g.hosts, h)
	h.groups = append(h.groups, g)
}

func (g *Group) removeHost(h *Host) {
	if !g.hostSet[h.name] {
		return
	}
	delete(g.hostSet, h.name)
	for i, x := range g.hosts {
		if x == h {
			g.hosts = append(g.hosts[:i], g.hosts[i+1:]...)
			break
		}
	}
	for i, x := range h.groups {
		if x == g {
			h.groups = append(h.groups[:i], h.groups[i+1:]...)
			break
		}
	}
}

// setVariable is Group.set_variable: ansible_group_priority sets the
// priority (Python int()) instead of a variable.
func (g *Group) setVariable(k string, v any) error {
	if k != "ansible_group_priority" {
		g.vars[k] = v
		return nil
	}
	p, err := pyInt(v)
	if err != nil {
		return fmt.Errorf("ansible_group_priority of group %q: %v", g.name, err)
	}
	g.priority = p
	return nil
}

// pyInt is Python's int(v) for the types a variable can hold.
func pyInt(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case float64:
		return int(x), nil
	case string:
		n, err := pycompat.Int(x)
		if err != nil {
			return 0, err
		}
		if i, ok := n.(int); ok {
			return i, nil
		}
		return 0, fmt.Errorf("%s is too large", x)
	}
	return 0, fmt.Errorf("int() argument must be a string or a number, not %s", pyTypeName(v))
}

func pyTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "'NoneType'"
	case []any:
		return "'list'"
	case map[string]any:
		return "'dict'"
	}
	return fmt.Sprintf("%T", v)
}

// hostGroups are every group the host belongs to, directly or through a
// child group, as Host.groups holds them in Ansible.
func (h *Host) allGroups() map[*Group]bool {
	out := map[*Group]bool{}
	for _, g := range h.groups {
		out[g] = true
		for a := range g.ancestors() {
			out[a] = true
		}
	}
	return out
}

// sortGroups is ansible.inventory.helpers.sort_groups: by depth, then
// ansible_group_priority, then name.
func sortGroups(gs []*Group) {
	sort.SliceStable(gs, func(i, j int) bool {
		a, b := gs[i], gs[j]
		if a.depth != b.depth {
			return a.depth < b.depth
		}
		if a.priority != b.priority {
			return a.priority < b.priority
		}
		return a.name < b.name
	})
}
