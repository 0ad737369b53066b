package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// ignoredInDir is Ansible's IGNORED for directory sources: hidden files,
// group_vars/, host_vars/, vars_plugins/, and INVENTORY_IGNORE_EXTS'
// defaults (.ini and .cfg among them: a directory never loads them).
var ignoredInDir = regexp.MustCompile(`^\.|^host_vars$|^group_vars$|^vars_plugins$|(?:\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.ini|\.cfg|\.retry)$`)

func (inv *Inventory) parseSource(ctx context.Context, src string) error {
	if strings.Contains(src, ",") {
		if _, err := os.Stat(src); err != nil {
			return inv.parseHostList(src)
		}
	}
	path := expandPath(src)
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errAt(path, 0, "no such inventory file or directory")
		}
		return errAt(path, 0, "%v", err)
	}
	if st.IsDir() {
		parsed, err := inv.parseDir(ctx, path)
		if err != nil {
			return err
		}
		if !parsed {
			return errAt(path, 0, "no inventory file in this directory (Ansible skips hidden files, group_vars/, host_vars/ and names ending in .ini, .cfg, .txt, .md, .bak, .retry, ~ ...)")
		}
		return nil
	}
	return inv.parseFile(path)
}

func (inv *Inventory) parseDir(ctx context.Context, dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, errAt(dir, 0, "%v", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names) // Python sorts the bytes, as Go compares strings
	parsed := false
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if ignoredInDir.MatchString(name) {
			continue
		}
		full := filepath.Join(dir, name)
		st, err := os.Stat(full)
		if err != nil {
			return false, errAt(full, 0, "%v", err)
		}
		if st.IsDir() {
			p, err := inv.parseDir(ctx, full)
			if err != nil {
				return false, err
			}
			parsed = parsed || p
			continue
		}
		if err := inv.parseFile(full); err != nil {
			return false, err
		}
		parsed = true
	}
	return parsed, nil
}

// parseFile tries Ansible's enabled inventory plugins in their order
// (script, auto, yaml, ini, toml) the way InventoryManager does.
func (inv *Inventory) parseFile(path string) error {
	content, err := os.ReadFile(path)
	if err != nil {
		return errAt(path, 0, "cannot read the inventory: %v", err)
	}
	if bytes.HasPrefix(content, []byte("#!")) {
		return errAt(path, 1, "this is an inventory script (it starts with #!); nodefix does not run inventory scripts: run it yourself and pass its JSON output, e.g. `%s --list > inventory.json`", path)
	}
	ext := filepath.Ext(path)
	var yamlErr error
	if ext == ".yml" || ext == ".yaml" || ext == ".json" || ext == "" {
		yamlErr = inv.parseYAMLInventory(path, content)
		if yamlErr == nil {
			return nil
		}
		var pe *pluginConfigError
		if errors.As(yamlErr, &pe) {
			return yamlErr
		}
	}
	if ext == ".toml" {
		return errAt(path, 0, "TOML inventories are not supported by nodefix: convert it with `ansible-inventory -i %s --list -y`", path)
	}
	iniErr := inv.parseINI(path, content)
	if iniErr == nil {
		return nil
	}
	if yamlErr == nil {
		return iniErr
	}
	if ext != "" || looksLikeYAML(content) {
		return fmt.Errorf("%w\n(as INI it does not parse either: %v)", yamlErr, iniErr)
	}
	return fmt.Errorf("%w\n(as YAML it does not parse either: %v)", iniErr, yamlErr)
}

// looksLikeYAML guesses which parse error an extension-less file should
// report first.
func looksLikeYAML(content []byte) bool {
	for _, line := range strings.Split(string(content), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		return t == "---" || t[0] == '{' || strings.HasSuffix(t, ":")
	}
	return false
}

// parseHostList is the host_list plugin: "a,b:2222,c".
func (inv *Inventory) parseHostList(list string) error {
	for _, h := range strings.Split(list, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		name, port, err := parseAddress(h, false)
		if err != nil {
			name, port = h, nil
		}
		if _, ok := inv.hosts[name]; ok {
			continue
		}
		if _, err := inv.addHost(name, "ungrouped", port, ""); err != nil {
			return fmt.Errorf("host list %q: %v", list, err)
		}
	}
	return nil
}
