package module

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nodefix/nodefix/tasks"
)

// inventoryOptions are the module parameters an inventory may set per host
// or group as nodefix_<parameter> (nodefix_rpm_query_max_age: 5m), for
// `nodefix run` as for the playbooks, which pass the same variables to the
// module. The rest (hostname, identify, fleet_*) name or drive a run and
// come from elsewhere.
var inventoryOptions = []string{
	"keep_hostname", "set_nfs_unique_id", "trust_inventory", "install_missing",
	"longhorn_executables", "rpm_query_max_age", "rpm_query_grace",
	"rpm_backup_dir", "rpm_backup_keep", "command_timeout",
}

// InventoryOptions applies a host's nodefix_* variables (evaluated, as
// inventory.TaskOptions gives them) over cfg, read exactly as the module
// reads its parameters. Variables that are not task options (nodefix_hostname,
// nodefix_target, …) are left alone; a bad value is an error naming the
// variable and what it wants.
func InventoryOptions(cfg tasks.Config, vars map[string]any) (tasks.Config, error) {
	a := Args{Config: cfg, set: map[string]bool{}}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		opt, ok := strings.CutPrefix(name, "nodefix_")
		if !ok || !isInventoryOption(opt) || vars[name] == nil {
			continue
		}
		p, _ := lookupParam(opt)
		if err := p.set(&a, jsonish(vars[name])); err != nil {
			return cfg, fmt.Errorf("variable %s %v", name, err)
		}
	}
	return a.Config, nil
}

func isInventoryOption(name string) bool {
	for _, o := range inventoryOptions {
		if o == name {
			return true
		}
	}
	return false
}

// jsonish turns an inventory value into what the module's parameter
// readers take from Ansible's JSON: numbers as json.Number.
func jsonish(v any) any {
	switch x := v.(type) {
	case int:
		return json.Number(strconv.Itoa(x))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonish(e)
		}
		return out
	}
	return v
}
