package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nodefix/nodefix/internal/pycompat"
)

var (
	// [group] or [group:type], then optional whitespace and # comment.
	reINISection   = regexp.MustCompile(`^\[([^:\]\s]+)(?::([\p{L}\p{N}_]+))?\]\s*(?:#.*)?$`)
	reINIGroupName = regexp.MustCompile(`^([^:\]\s]+)\s*(?:#.*)?$`)
)

type pendingDecl struct {
	line    int
	state   string
	name    string
	parents []string
}

// parseINI is the ini inventory plugin (ansible/plugins/inventory/ini.py).
func (inv *Inventory) parseINI(path string, content []byte) error {
	lines := pySplitLines(content)
	var (
		pending      = map[string]*pendingDecl{}
		pendingOrder []string
		groupname    = "ungrouped"
		state        = "hosts"
	)
	addPending := func(name string, d *pendingDecl) {
		pending[name] = d
		pendingOrder = append(pendingOrder, name)
	}
	var addPendingChildren func(group string) error
	addPendingChildren = func(group string) error {
		d := pending[group]
		if d == nil {
			return nil
		}
		for _, parent := range d.parents {
			if err := inv.addChild(parent, group); err != nil {
				return err
			}
			if pd, ok := pending[parent]; ok && pd.state == "children" {
				if err := addPendingChildren(parent); err != nil {
					return err
				}
			}
		}
		delete(pending, group)
		return nil
	}
	for i, raw := range lines {
		lineno := i + 1
		fail := func(format string, args ...any) error {
			return errAt(path, lineno, format, args...)
		}
		line := pyStrip(raw)
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		if m := reINISection.FindStringSubmatch(line); m != nil {
			groupname, state = m[1], m[2]
			if state == "" {
				state = "hosts"
			}
			if state != "hosts" && state != "children" && state != "vars" {
				return fail("section [%s:%s] has unknown type %q: use [%s], [%s:vars] or [%s:children]", m[1], m[2], m[2], m[1], m[1], m[1])
			}
			if _, ok := inv.groups[groupname]; !ok {
				if _, isPending := pending[groupname]; state == "vars" && !isPending {
					addPending(groupname, &pendingDecl{line: lineno, state: state, name: groupname})
				}
				inv.addGroup(groupname)
			}
			if d, ok := pending[groupname]; ok && state != "vars" {
				switch d.state {
				case "children":
					if err := addPendingChildren(groupname); err != nil {
						return fail("%v", err)
					}
				case "vars":
					delete(pending, groupname)
				}
			}
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			return fail("invalid section entry %q: a section is [group], [group:vars] or [group:children], without spaces or ':' ']' in the group name", line)
		}
		switch state {
		case "hosts":
			if err := inv.parseINIHostLine(path, lineno, line, groupname); err != nil {
				return err
			}
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return fail("expected key=value in [%s:vars], got: %s", groupname, line)
			}
			val, err := iniValue(pyStrip(v))
			if err != nil {
				return fail("variable %s: %v", pyStrip(k), err)
			}
			if err := inv.setVariable(groupname, pyStrip(k), val); err != nil {
				return fail("%v", err)
			}
		case "children":
			m := reINIGroupName.FindStringSubmatch(line)
			if m == nil {
				return fail("expected a group name in [%s:children], got: %s", groupname, line)
			}
			child := m[1]
			if _, ok := inv.groups[child]; !ok {
				if d, ok := pending[child]; ok {
					d.parents = append(d.parents, groupname)
				} else {
					addPending(child, &pendingDecl{line: lineno, state: state, name: child, parents: []string{groupname}})
				}
			} else if err := inv.addChild(groupname, child); err != nil {
				return fail("%v", err)
			}
		}
	}
	for _, name := range pendingOrder {
		d, ok := pending[name]
		if !ok {
			continue
		}
		switch d.state {
		case "vars":
			return errAt(path, d.line, "section [%s:vars] is for group %q, which the inventory never defines: add a [%s] section or list it under some [parent:children]", d.name, d.name, d.name)
		case "children":
			return errAt(path, d.line, "section [%s:children] names group %q, which the inventory never defines: add a [%s] section", d.parents[len(d.parents)-1], d.name, d.name)
		}
	}
	return nil
}

func (inv *Inventory) parseINIHostLine(path string, lineno int, line, group string) error {
	fail := func(format string, args ...any) error {
		return errAt(path, lineno, format, args...)
	}
	tokens, err := pycompat.Split(line, true)
	if err != nil {
		return fail("cannot parse host definition %q: %v", line, err)
	}
	if len(tokens) == 0 {
		return fail("cannot parse host definition %q", line)
	}
	pattern := tokens[0]
	names, port, err := expandHostPattern(pattern)
	if err != nil {
		return fail("%v", err)
	}
	if strings.HasSuffix(pyStrip(pattern), ":") && port == nil {
		return fail("invalid host pattern %q: it ends in ':', which is reserved for a port", pattern)
	}
	for _, n := range names {
		if pyStrip(n) == "---" {
			return fail("invalid host pattern %q: '---' is normally a sign this is a YAML file", pattern)
		}
	}
	type kv struct {
		k string
		v any
	}
	var vars []kv
	for _, t := range tokens[1:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return fail("expected key=value host variable assignment, got: %s", t)
		}
		val, err := iniValue(v)
		if err != nil {
			return fail("host variable %s: %v", k, err)
		}
		vars = append(vars, kv{k, val})
	}
	for _, n := range names {
		if _, err := inv.addHost(n, group, port, path); err != nil {
			return fail("%v", err)
		}
		for _, x := range vars {
			if err := inv.setVariable(n, x.k, x.v); err != nil {
				return fail("%v", err)
			}
		}
	}
	return nil
}

// iniValue is InventoryModule._parse_value: a Python literal when the text
// is one (1450, True, 'x', [1, 2]), else the text itself.
func iniValue(s string) (any, error) {
	v, ok, err := pycompat.LiteralEval(s)
	if err != nil {
		var u *pycompat.Unrepresentable
		if errors.As(err, &u) {
			return nil, fmt.Errorf("value %q is %s; quote it to make it a string", s, u.Why)
		}
		return nil, err
	}
	if !ok {
		return s, nil
	}
	return v, nil
}

// pySplitLines is Python's str.splitlines(): \n, \r\n, \r and the other
// Unicode line boundaries.
func pySplitLines(b []byte) []string {
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var out []string
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\n', '\v', '\f', '\x1c', '\x1d', '\x1e', '\u0085', '\u2028', '\u2029':
			out = append(out, s[start:i])
			i += size
			start = i
		case '\r':
			out = append(out, s[start:i])
			i += size
			if i < len(s) && s[i] == '\n' {
				i++
			}
			start = i
		default:
			i += size
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// pyStrip is Python's str.strip(): Unicode whitespace plus \x1c-\x1f.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
	})
}
