package inventory

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nodefix/nodefix/internal/pycompat"
)

// ListJSON is `ansible-inventory --list`: every group with its direct
// hosts and children, and _meta.hostvars with each host's variables, as
// Ansible prints it (keys sorted, 4-space indent). With limit non-nil only
// those hosts appear (groups left empty are dropped, as Ansible drops
// empty groups).
func (inv *Inventory) ListJSON(limit []*Host) ([]byte, error) {
	keep := func(*Host) bool { return true }
	if limit != nil {
		set := map[*Host]bool{}
		for _, h := range limit {
			set[h] = true
		}
		keep = func(h *Host) bool { return set[h] }
	}
	out := map[string]any{}
	seen := map[string]bool{}
	var format func(g *Group)
	format = func(g *Group) {
		entry := map[string]any{}
		if g.name != "all" {
			var hosts []any
			for _, h := range g.hosts {
				if keep(h) {
					hosts = append(hosts, h.name)
				}
			}
			if len(hosts) > 0 {
				entry["hosts"] = hosts
			}
		}
		var children []any
		for _, c := range g.children {
			children = append(children, c.name)
			if !seen[c.name] {
				format(c)
				seen[c.name] = true
			}
		}
		if len(children) > 0 {
			entry["children"] = children
		}
		if len(entry) > 0 {
			out[g.name] = entry
		}
	}
	format(inv.groups["all"])
	hostvars := map[string]any{}
	for _, h := range inv.Hosts() {
		if keep(h) && len(h.merged) > 0 {
			hostvars[h.name] = map[string]any(h.merged)
		}
	}
	out["_meta"] = map[string]any{"hostvars": hostvars}
	return pycompat.MarshalIndent(out)
}

// HostJSON is `ansible-inventory --host NAME`.
func (inv *Inventory) HostJSON(name string) ([]byte, error) {
	h, ok := inv.hosts[name]
	if !ok {
		return nil, fmt.Errorf("no host named %q in the inventory", name)
	}
	return pycompat.MarshalIndent(map[string]any(h.merged))
}

// GraphOptions tune Graph.
type GraphOptions struct {
	// Group to start from (default "all").
	Group string
	// Vars adds each group's and host's variables, as --graph --vars.
	Vars bool
	// Limit, when non-nil, shows only these hosts.
	Limit []*Host
}

// Graph is `ansible-inventory --graph [GROUP] [--vars]`.
func (inv *Inventory) Graph(opts GraphOptions) (string, error) {
	name := opts.Group
	if name == "" {
		name = "all"
	}
	start, ok := inv.groups[name]
	if !ok {
		return "", fmt.Errorf("--graph needs a group name, and there is no group %q", name)
	}
	keep := func(*Host) bool { return true }
	if opts.Limit != nil {
		set := map[*Host]bool{}
		for _, h := range opts.Limit {
			set[h] = true
		}
		keep = func(h *Host) bool { return set[h] }
	}
	var lines []string
	indent := func(s string, depth int) string {
		if depth == 0 {
			return s
		}
		return strings.Repeat("  |", depth) + "--" + s
	}
	showVars := func(vars map[string]any, depth int) {
		for _, k := range sortedKeys(vars) {
			lines = append(lines, indent(fmt.Sprintf("{%s = %s}", k, pycompat.Str(vars[k])), depth))
		}
	}
	var walk func(g *Group, depth int)
	walk = func(g *Group, depth int) {
		lines = append(lines, indent("@"+g.name+":", depth))
		depth++
		for _, c := range g.children {
			walk(c, depth)
		}
		if g.name != "all" {
			for _, h := range g.hosts {
				if !keep(h) {
					continue
				}
				lines = append(lines, indent(h.name, depth))
				if opts.Vars {
					showVars(h.merged, depth+1)
				}
			}
		}
		if opts.Vars {
			gv := map[string]any{}
			for k, v := range g.vars {
				if !internalVars[k] {
					gv[k] = v
				}
			}
			for _, src := range inv.sources {
				m, _ := inv.varsFile(src, "group_vars", g.name)
				update(gv, m)
			}
			if g.priority != 1 {
				gv["ansible_group_priority"] = g.priority
			}
			showVars(gv, depth)
		}
	}
	walk(start, 0)
	return strings.Join(lines, "\n"), nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
