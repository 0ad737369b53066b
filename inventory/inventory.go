// Package inventory reads Ansible inventories exactly as ansible-core 2.14
// does: INI and YAML/JSON files, directories of them, comma-separated host
// lists, group_vars/ and host_vars/ beside each source, extra vars, host
// patterns, and the variable precedence that decides what a host's
// connection and node name are. `ansible-inventory` is the reference: the
// conformance tests compare this package's output with it.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/nodefix/nodefix/internal/jinja"
)

// Options tune Load.
type Options struct {
	// ExtraVars are -e/--extra-vars values in command-line order: k=v
	// pairs, a JSON or YAML object, or @file. They win over everything.
	ExtraVars []string
	// LookupEnv answers lookup('env', NAME) in templated variables; nil
	// means this process's environment.
	LookupEnv func(name string) (string, bool)
}

// Inventory is a loaded inventory. It is read-only after Load and safe for
// concurrent use.
type Inventory struct {
	groups     map[string]*Group
	groupOrder []*Group
	hosts      map[string]*Host
	hostOrder  []*Host
	sources    []string // as given, for group_vars/host_vars lookup
	extra      map[string]any
	warnings   []string
	varsFiles  map[string]map[string]any // "dir\x00name" -> merged file vars
	varsDirs   map[string]*varsDir       // "source\x00kind" -> directory, nil if none

	engine     *jinja.Env // evaluates templated variables when they are read
	groupsOnce sync.Once
	groupsMap  map[string]any // the magic variable groups
}

// Error is a problem in an inventory, located as precisely as it can be.
type Error struct {
	File string // empty when the problem is not in a file
	Line int    // 0 when unknown
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return e.Msg
}

func errAt(file string, line int, format string, args ...any) error {
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Load reads the inventory sources (each as one -i: a file, a directory,
// or a comma-separated host list) and applies opts. Unlike Ansible, which
// warns and carries on with no hosts, any source that does not parse is an
// error, and so is an inventory without hosts.
func Load(ctx context.Context, sources []string, opts Options) (*Inventory, error) {
	if len(sources) == 0 {
		return nil, errors.New("no inventory given: pass -i FILE, -i DIR or -i host1,host2,")
	}
	inv := &Inventory{
		groups:    map[string]*Group{},
		hosts:     map[string]*Host{},
		varsFiles: map[string]map[string]any{},
		varsDirs:  map[string]*varsDir{},
		engine:    jinja.New(jinja.Options{LookupEnv: opts.LookupEnv}),
	}
	inv.addGroup("all")
	inv.addGroup("ungrouped")
	if err := inv.addChild("all", "ungrouped"); err != nil {
		return nil, err
	}
	for _, src := range sources {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if src == "" {
			continue
		}
		inv.sources = append(inv.sources, src)
		if err := inv.parseSource(ctx, src); err != nil {
			return nil, err
		}
	}
	if len(inv.hosts) == 0 {
		return nil, fmt.Errorf("inventory %s has no hosts", strings.Join(sources, ", "))
	}
	if err := inv.reconcile(); err != nil {
		return nil, err
	}
	extra, err := loadExtraVars(opts.ExtraVars)
	if err != nil {
		return nil, err
	}
	inv.extra = extra
	if err := inv.mergeVars(ctx); err != nil {
		return nil, err
	}
	return inv, nil
}

// Warnings are what Ansible would have warned about while loading (a name
// used for both a group and a host, a duplicate localhost, ...).
func (inv *Inventory) Warnings() []string { return append([]string(nil), inv.warnings...) }

// Hosts are all hosts in Ansible's order (the order of `all`).
func (inv *Inventory) Hosts() []*Host {
	return inv.groups["all"].allHosts()
}

// Host finds a host by inventory hostname.
func (inv *Inventory) Host(name string) (*Host, bool) {
	h, ok := inv.hosts[name]
	return h, ok
}

// Group finds a group by name.
func (inv *Inventory) Group(name string) (*Group, bool) {
	g, ok := inv.groups[name]
	return g, ok
}

// Groups are all groups, in the order they were first seen ("all" and
// "ungrouped" first).
func (inv *Inventory) Groups() []*Group { return append([]*Group(nil), inv.groupOrder...) }

// GroupNames are the groups a host belongs to, directly or through child
// groups, sorted, without "all" (Ansible's group_names).
func (inv *Inventory) GroupNames(h *Host) []string {
	var names []string
	for g := range h.allGroups() {
		if g.name != "all" {
			names = append(names, g.name)
		}
	}
	sort.Strings(names)
	return names
}

// Hosts are the hosts of the group and its descendants, in Ansible's
// order (what the pattern NAME selects).
func (g *Group) Hosts() []*Host { return g.allHosts() }

func (inv *Inventory) addGroup(name string) *Group {
	if g, ok := inv.groups[name]; ok {
		return g
	}
	g := newGroup(name)
	inv.groups[name] = g
	inv.groupOrder = append(inv.groupOrder, g)
	return g
}

// addHost is InventoryData.add_host: the port only counts the first time a
// host is seen, and the group must exist.
func (inv *Inventory) addHost(name, group string, port *int, source string) (*Host, error) {
	if name == "" {
		return nil, errors.New("invalid empty host name")
	}
	var g *Group
	if group != "" {
		var ok bool
		if g, ok = inv.groups[group]; !ok {
			return nil, fmt.Errorf("could not find group %s in inventory", group)
		}
	}
	h, ok := inv.hosts[name]
	if !ok {
		h = &Host{name: name, vars: map[string]any{}, file: source}
		if port != nil && *port != 0 {
			h.vars["ansible_port"] = *port
		}
		inv.hosts[name] = h
		inv.hostOrder = append(inv.hostOrder, h)
		if isLocalhost(name) {
			for _, o := range inv.hostOrder[:len(inv.hostOrder)-1] {
				if isLocalhost(o.name) {
					inv.warnings = append(inv.warnings, fmt.Sprintf("A duplicate localhost-like entry was found (%s). First found localhost was %s", name, o.name))
					break
				}
			}
		}
	}
	if g != nil {
		g.addHost(h)
	}
	return h, nil
}

func isLocalhost(name string) bool {
	return name == "localhost" || name == "127.0.0.1" || name == "::1"
}

// setVariable is InventoryData.set_variable: a name that is both a group
// and a host names the group.
func (inv *Inventory) setVariable(entity, k string, v any) error {
	if g, ok := inv.groups[entity]; ok {
		return g.setVariable(k, v)
	}
	if h, ok := inv.hosts[entity]; ok {
		h.vars[k] = v
		return nil
	}
	return fmt.Errorf("could not identify group or host named %s", entity)
}

// addChild is InventoryData.add_child for a group child or a host child.
func (inv *Inventory) addChild(parent, child string) error {
	p, ok := inv.groups[parent]
	if !ok {
		return fmt.Errorf("%s is not a known group", parent)
	}
	if c, ok := inv.groups[child]; ok {
		return addChildGroup(p, c)
	}
	if h, ok := inv.hosts[child]; ok {
		p.addHost(h)
		return nil
	}
	return fmt.Errorf("%s is not a known host nor group", child)
}

func addChildGroup(p, c *Group) error {
	if p == c {
		return fmt.Errorf("group %q cannot be a child of itself", p.name)
	}
	for _, x := range p.children {
		if x == c {
			return nil
		}
	}
	if p.ancestors()[c] {
		return fmt.Errorf("adding group '%s' as child to '%s' creates a recursive dependency loop", c.name, p.name)
	}
	p.children = append(p.children, c)
	for _, x := range c.parents {
		if x.name == p.name {
			return nil
		}
	}
	c.parents = append(c.parents, p)
	return nil
}

// reconcile is InventoryData.reconcile_inventory: top-level groups join
// "all", hosts without a group join "ungrouped", hosts with a real group
// leave it; then group depths are settled.
func (inv *Inventory) reconcile() error {
	all, ungrouped := inv.groups["all"], inv.groups["ungrouped"]
	for _, g := range inv.groupOrder {
		if g != all && len(g.ancestors()) == 0 {
			if err := addChildGroup(all, g); err != nil {
				return err
			}
		}
	}
	for _, h := range inv.hostOrder {
		mine := h.allGroups()
		if mine[ungrouped] {
			for g := range mine {
				if g != all && g != ungrouped {
					ungrouped.removeHost(h)
					break
				}
			}
		} else if len(mine) == 0 || (len(mine) == 1 && mine[all]) {
			ungrouped.addHost(h)
		}
	}
	for _, g := range inv.groupOrder {
		for _, h := range g.hosts {
			if inv.groups[h.name] != nil {
				inv.warnings = append(inv.warnings, "Found both group and host with same name: "+h.name)
			}
		}
	}
	// Depth is the longest path from "all": what Ansible's incremental
	// updates in add_child_group converge to.
	depth := map[*Group]int{}
	var visit func(g *Group, d int) error
	visit = func(g *Group, d int) error {
		if d > len(inv.groupOrder) {
			return fmt.Errorf("the group named '%s' has a recursive dependency loop", g.name)
		}
		if cur, ok := depth[g]; ok && cur >= d {
			return nil
		}
		depth[g] = d
		for _, c := range g.children {
			if err := visit(c, d+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(all, 0); err != nil {
		return err
	}
	for g, d := range depth {
		g.depth = d
	}
	return nil
}

// sourceDir is where group_vars/ and host_vars/ are looked for beside a
// source, or "" for a host list.
func sourceDir(src string) string {
	if strings.Contains(src, ",") {
		if _, err := os.Stat(src); err != nil {
			return ""
		}
	}
	p := expandPath(src)
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return p
	}
	return filepath.Dir(p)
}

// expandPath is Ansible's unfrackpath without following symlinks: ~ and
// $VARS expanded (unknown ones left alone), made absolute, cleaned.
func expandPath(p string) string {
	p = os.Expand(p, func(name string) string {
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return "$" + name
	})
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = home + p[1:]
		}
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p
}
