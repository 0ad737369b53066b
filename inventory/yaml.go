package inventory

import (
	"errors"
	"fmt"
)

// pluginConfigError marks a YAML file that configures an inventory plugin
// (plugin: aws_ec2, ...): no other parser should try it.
type pluginConfigError struct{ error }

// parseYAMLInventory is the yaml inventory plugin: top-level keys are
// groups, each with optional hosts, vars and children (also used for
// .json files).
func (inv *Inventory) parseYAMLInventory(path string, content []byte) error {
	data, err := loadData(content)
	if err != nil {
		var de *dataError
		if errors.As(err, &de) {
			return errAt(path, de.line, "YAML: %s", de.msg)
		}
		return errAt(path, 0, "YAML: %v", err)
	}
	if data == nil {
		return errAt(path, 0, "the YAML file is empty")
	}
	top, ok := data.(*omap)
	if !ok {
		return errAt(path, 0, "a YAML inventory must be a mapping of group names, got %s", yamlTypeName(data))
	}
	if p, ok := top.get("plugin"); ok && p != nil && p != false && p != "" {
		return &pluginConfigError{errAt(path, 0, "this is the configuration of the inventory plugin %v, not an inventory; nodefix reads only INI, YAML and JSON inventories: export it with `ansible-inventory -i %s --list > inventory.json`", p, path)}
	}
	y := yamlInventory{inv: inv, path: path}
	for i, k := range top.keys {
		if _, err := y.group(k, top.vals[i], top.lines[i], 0); err != nil {
			return err
		}
	}
	return nil
}

type yamlInventory struct {
	inv  *Inventory
	path string
}

func yamlTypeName(v any) string {
	switch v.(type) {
	case *omap:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("a %T", v)
}

// group is InventoryModule._parse_group. It returns the group's name, or
// "" when Ansible skips the entry (with a warning).
func (y *yamlInventory) group(key any, data any, line, depth int) (string, error) {
	if depth > 1000 {
		return "", errAt(y.path, line, "groups nested too deep")
	}
	name, isStr := key.(string)
	var gdata *omap
	switch d := data.(type) {
	case *omap:
		gdata = d
	case nil:
	default:
		y.inv.warnings = append(y.inv.warnings, fmt.Sprintf("%s:%d: skipping %v: not a valid group definition", y.path, line, key))
		return "", nil
	}
	if !isStr || name == "" {
		return "", errAt(y.path, line, "invalid group name %v: a group name must be a non-empty string", key)
	}
	y.inv.addGroup(name)
	if gdata == nil {
		return name, nil
	}
	// "hosts: web1" is short for "hosts: {web1: null}", likewise for
	// vars and children.
	for _, section := range []string{"vars", "children", "hosts"} {
		v, ok := gdata.get(section)
		if !ok {
			continue
		}
		if s, isS := v.(string); isS {
			m := newOmap()
			m.set(s, nil, gdata.lines[gdata.index[section]])
			gdata.vals[gdata.index[section]] = m
			continue
		}
		switch v.(type) {
		case *omap, nil:
		default:
			return "", errAt(y.path, gdata.lines[gdata.index[section]], "invalid %q entry for group %q: it must be a mapping, found %s", section, name, yamlTypeName(v))
		}
	}
	for i, k := range gdata.keys {
		val, kline := gdata.vals[i], gdata.lines[i]
		m, isMap := val.(*omap)
		if val != nil && !isMap {
			y.inv.warnings = append(y.inv.warnings, fmt.Sprintf("%s:%d: skipping key %v in group %s: it is not a mapping", y.path, kline, k, name))
			continue
		}
		if val == nil {
			continue
		}
		switch k {
		case "vars":
			for j, vk := range m.keys {
				if err := y.inv.setVariable(name, keyName(vk), plain(m.vals[j])); err != nil {
					return "", errAt(y.path, m.lines[j], "%v", err)
				}
			}
		case "children":
			for j, ck := range m.keys {
				child, err := y.group(ck, m.vals[j], m.lines[j], depth+1)
				if err != nil {
					return "", err
				}
				if child == "" {
					continue
				}
				if err := y.inv.addChild(name, child); err != nil {
					return "", errAt(y.path, m.lines[j], "%v", err)
				}
			}
		case "hosts":
			for j, hk := range m.keys {
				pattern, ok := hk.(string)
				if !ok {
					return "", errAt(y.path, m.lines[j], "host pattern %v must be a string: enclose integers and floats in quotation marks", hk)
				}
				names, port, err := expandHostPattern(pattern)
				if err != nil {
					return "", errAt(y.path, m.lines[j], "%v", err)
				}
				hvars := m.vals[j]
				if falsy(hvars) {
					hvars = nil // Python's "or {}"
				}
				hm, isMap := hvars.(*omap)
				if hvars != nil && !isMap {
					return "", errAt(y.path, m.lines[j], "invalid data for host %s: expected a mapping of variables, got %s", pattern, yamlTypeName(hvars))
				}
				for _, n := range names {
					if _, err := y.inv.addHost(n, name, port, y.path); err != nil {
						return "", errAt(y.path, m.lines[j], "%v", err)
					}
					if hm == nil {
						continue
					}
					for x, vk := range hm.keys {
						if err := y.inv.setVariable(n, keyName(vk), plain(hm.vals[x])); err != nil {
							return "", errAt(y.path, hm.lines[x], "%v", err)
						}
					}
				}
			}
		default:
			y.inv.warnings = append(y.inv.warnings, fmt.Sprintf("%s:%d: skipping unexpected key %v in group %s: only vars, children and hosts are valid", y.path, kline, k, name))
		}
	}
	return name, nil
}

func keyName(k any) string {
	if s, ok := k.(string); ok {
		return s
	}
	return fmt.Sprint(plainKey(k))
}

// falsy is Python truthiness for loaded data.
func falsy(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case int:
		return x == 0
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case *omap:
		return len(x.keys) == 0
	}
	return false
}
