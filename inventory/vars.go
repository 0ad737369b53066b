package inventory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// internalVars are the names ansible-inventory removes from what it prints
// (INTERNAL_VARS in ansible/cli/inventory.py).
var internalVars = map[string]bool{
	"ansible_diff_mode": true, "ansible_config_file": true, "ansible_facts": true,
	"ansible_forks": true, "ansible_inventory_sources": true, "ansible_limit": true,
	"ansible_playbook_python": true, "ansible_run_tags": true, "ansible_skip_tags": true,
	"ansible_verbosity": true, "ansible_version": true, "inventory_dir": true,
	"inventory_file": true, "inventory_hostname": true, "inventory_hostname_short": true,
	"groups": true, "group_names": true, "omit": true, "playbook_dir": true,
}

// mergeVars computes every host's variables with VariableManager.get_vars'
// precedence (DEFAULT_VARIABLE_PRECEDENCE, hash_behaviour=replace):
//
//	all's inventory vars
//	< other groups' inventory vars, sorted by depth, priority, name
//	< group_vars/all beside each source
//	< group_vars/<group> beside each source, groups in the same order
//	< the host's inventory vars
//	< host_vars/<host> beside each source
//	< extra vars
//
// Note that group_vars/all.yml beats [any_group:vars]: Ansible loads
// inventory-file group variables first and files in group_vars/ after.
func (inv *Inventory) mergeVars(ctx context.Context) error {
	all := inv.groups["all"]
	for _, h := range inv.hostOrder {
		if err := ctx.Err(); err != nil {
			return err
		}
		var groups []*Group
		for g := range h.allGroups() {
			if g != all {
				groups = append(groups, g)
			}
		}
		sortGroups(groups)
		v := copyMap(all.vars)
		for _, g := range groups {
			update(v, g.vars)
		}
		for _, src := range inv.sources {
			m, err := inv.varsFile(src, "group_vars", "all")
			if err != nil {
				return err
			}
			update(v, m)
		}
		for _, src := range inv.sources {
			for _, g := range groups {
				m, err := inv.varsFile(src, "group_vars", g.name)
				if err != nil {
					return err
				}
				update(v, m)
			}
		}
		update(v, h.vars)
		for _, src := range inv.sources {
			m, err := inv.varsFile(src, "host_vars", h.name)
			if err != nil {
				return err
			}
			update(v, m)
		}
		update(v, inv.extra)
		for k := range v {
			if internalVars[k] {
				delete(v, k)
			}
		}
		h.merged = v
	}
	return nil
}

func update(dst, src map[string]any) {
	for k, x := range src {
		dst[k] = x
	}
}

// varsFile is the host_group_vars vars plugin for one source and one
// group or host: DIR/group_vars/NAME (a file, or a directory read
// recursively in sorted order), else NAME.yml, NAME.yaml, NAME.json.
func (inv *Inventory) varsFile(src, kind, name string) (map[string]any, error) {
	d := inv.varsDirOf(src, kind)
	if d == nil || strings.HasPrefix(name, "/") {
		return nil, nil
	}
	key := d.path + "\x00" + name
	if m, ok := inv.varsFiles[key]; ok {
		return m, nil
	}
	var files []string
	for _, ext := range []string{"", ".yml", ".yaml", ".json"} {
		// The directory listing answers most lookups without a stat per
		// host (10,000 hosts are 40,000 stats otherwise).
		if !strings.Contains(name, "/") && !d.entries[name+ext] {
			continue
		}
		p := filepath.Join(d.path, name) + ext
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.IsDir() {
			found, err := varsDirFiles(p)
			if err != nil {
				return nil, err
			}
			files = append(files, found...)
		} else {
			files = append(files, p)
		}
		break
	}
	merged := map[string]any{}
	for _, f := range files {
		content, err := os.ReadFile(f)
		if err != nil {
			return nil, errAt(f, 0, "cannot read variables: %v", err)
		}
		data, err := loadData(content)
		if err != nil {
			var de *dataError
			if errors.As(err, &de) {
				return nil, errAt(f, de.line, "%s", de.msg)
			}
			return nil, errAt(f, 0, "%v", err)
		}
		if falsy(data) {
			continue // empty files are ignored
		}
		m, ok := data.(*omap)
		if !ok {
			return nil, errAt(f, 0, "a variables file must hold a mapping of variable names, got %s", yamlTypeName(data))
		}
		update(merged, plain(m).(map[string]any))
	}
	inv.varsFiles[key] = merged
	return merged, nil
}

// varsDirFiles lists a group_vars/NAME/ directory as Ansible does: sorted,
// recursive into subdirectories without an extension, skipping hidden
// files and backups (~), keeping files with no extension or .yml, .yaml,
// .json.
func varsDirFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, errAt(dir, 0, "%v", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") {
			continue
		}
		p := filepath.Join(dir, n)
		ext := filepath.Ext(n)
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		switch {
		case st.IsDir() && ext == "":
			more, err := varsDirFiles(p)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		case st.Mode().IsRegular() && (ext == "" || ext == ".yml" || ext == ".yaml" || ext == ".json"):
			out = append(out, p)
		}
	}
	return out, nil
}

// varsDir is one group_vars/ or host_vars/ directory beside a source.
type varsDir struct {
	path    string
	entries map[string]bool
}

// varsDirOf finds (once per source) the kind directory beside src: nil
// when there is none.
func (inv *Inventory) varsDirOf(src, kind string) *varsDir {
	key := src + "\x00" + kind
	if d, ok := inv.varsDirs[key]; ok {
		return d
	}
	var d *varsDir
	if dir := sourceDir(src); dir != "" {
		base := filepath.Join(dir, kind)
		if real, err := filepath.EvalSymlinks(base); err == nil {
			base = real
		}
		if st, err := os.Stat(base); err == nil {
			if !st.IsDir() {
				inv.warnings = append(inv.warnings, fmt.Sprintf("Found %s that is not a directory, skipping: %s", kind, base))
			} else if entries, err := os.ReadDir(base); err == nil {
				d = &varsDir{path: base, entries: map[string]bool{}}
				for _, e := range entries {
					d.entries[e.Name()] = true
				}
			}
		}
	}
	inv.varsDirs[key] = d
	return d
}
