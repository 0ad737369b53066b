// Package module is nodefix as an Ansible binary module: Ansible copies the
// nodefix binary to a node and runs `nodefix ARGS_FILE` there (the WANT_JSON
// protocol), where ARGS_FILE holds the task's arguments as one JSON object.
// The module runs the tasks on the node itself and answers with one JSON
// object in Ansible's result vocabulary (changed, failed, msg, diff,
// warnings).
//
// The same module, given fleet_names instead of tasks, is the fleet
// precheck a playbook runs once on the controller before any node is
// renamed: each node only sees itself, so uniqueness can only be judged
// where every host's planned name is known.
package module

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nodefix/nodefix/tasks"
)

// Name is the module name the documentation and playbooks use
// (playbooks/library/nodefix).
const Name = "nodefix"

// DefaultTaskTimeout bounds one task, as the runner's default does for a
// fleet run: long enough for an rpm database rebuild on a big node.
const DefaultTaskTimeout = 15 * time.Minute

// Args are a module invocation's arguments, validated.
type Args struct {
	// Tasks to run, comma-separated for tasks.Select ("" = all).
	Tasks string
	// Hostname is the node name the inventory gives the node (its
	// K8S_NODENAME), "" when it gives none: the hostname task then takes
	// the name the node's kubelet runs as, or renames nothing.
	Hostname string
	// HostnameSource names the variable Hostname came from, for messages.
	HostnameSource string
	// ExpectedHostname is the name the playbook's fleet precheck approved
	// for a node the inventory names nothing (from identify): the task
	// renames to nothing else.
	ExpectedHostname string
	// Identify: report what the hostname task would name the node and the
	// node's Kubernetes identity; run no task, change nothing.
	Identify bool
	// Config carries the task options, _ansible_check_mode and
	// _ansible_diff.
	Config tasks.Config
	// TaskTimeout bounds each task.
	TaskTimeout time.Duration
	// FleetNames (inventory hostname → planned hostname) switches the
	// module to the fleet precheck: nothing runs on the node.
	FleetNames map[string]string
	// FleetIdentities (inventory hostname → the hostname task's identity
	// facts) switches the module to the fleet identity audit.
	FleetIdentities map[string]map[string]string
	// set records which parameters the invocation gave.
	set map[string]bool
}

// param is one module parameter: how it is read into Args.
type param struct {
	name string
	doc  string
	set  func(a *Args, v any) error
}

// params are every parameter the module accepts (besides _ansible_*).
var params = []param{
	{"tasks", "list of tasks (or a comma-separated string), in any order; default all", func(a *Args, v any) error {
		names, err := listValue(v)
		if err != nil {
			return err
		}
		a.Tasks = strings.Join(names, ",")
		return nil
	}},
	{"hostname", "the node name the inventory gives, e.g. \"{{ K8S_NODENAME }}\"; leave it out (or empty) to take the name the node's kubelet runs as", func(a *Args, v any) error {
		s, err := stringValue(v)
		a.Hostname = strings.TrimSpace(s)
		return err
	}},
	{"hostname_source", "where hostname came from (e.g. K8S_NODENAME), for messages", func(a *Args, v any) error {
		s, err := stringValue(v)
		a.HostnameSource = strings.TrimSpace(s)
		return err
	}},
	{"expected_hostname", "the name the fleet precheck approved for a node the inventory names nothing (from identify)", func(a *Args, v any) error {
		s, err := stringValue(v)
		a.ExpectedHostname = strings.TrimSpace(s)
		return err
	}},
	{"identify", "bool: report the name the hostname task would give and the node's Kubernetes identity; change nothing", boolInto(func(a *Args) *bool { return &a.Identify })},
	{"trust_inventory", "bool: rename to hostname even where the node's kubelet runs under another name", boolInto(func(a *Args) *bool { return &a.Config.TrustInventory })},
	{"keep_hostname", "bool: rename nothing, still report identities", boolInto(func(a *Args) *bool { return &a.Config.KeepHostname })},
	{"set_nfs_unique_id", "bool: set a unique nfs4_unique_id", boolInto(func(a *Args) *bool { return &a.Config.SetNFSUniqueID })},
	{"install_missing", "bool: longhorn-deps installs what is missing", boolInto(func(a *Args) *bool { return &a.Config.InstallMissing })},
	{"longhorn_executables", "list of executables longhorn-deps requires", func(a *Args, v any) error {
		names, err := listValue(v)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return fmt.Errorf("is empty: name at least one executable, or leave it out for the default %s",
				strings.Join(tasks.DefaultConfig().LonghornExecutables, ", "))
		}
		a.Config.LonghornExecutables = names
		return nil
	}},
	{"rpm_query_max_age", "duration (\"10m\", or seconds): an older rpm query is hung", durationInto(func(a *Args) *time.Duration { return &a.Config.RPMQueryMaxAge })},
	{"rpm_query_grace", "duration: how long SIGTERM gets before SIGKILL", durationInto(func(a *Args) *time.Duration { return &a.Config.RPMQueryGrace })},
	{"rpm_backup_dir", "path: where rpmdb keeps its backups", func(a *Args, v any) error {
		s, err := stringValue(v)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(s, "/") {
			return fmt.Errorf("%q is not an absolute path", s)
		}
		a.Config.RPMBackupDir = s
		return nil
	}},
	{"rpm_backup_keep", "int: how many rpmdb backups to keep", func(a *Args, v any) error {
		n, err := intValue(v)
		if err != nil {
			return err
		}
		if n < 1 {
			return fmt.Errorf("is %d: keep at least 1 backup", n)
		}
		a.Config.RPMBackupKeep = n
		return nil
	}},
	{"command_timeout", "duration: bounds every command a task runs", durationInto(func(a *Args) *time.Duration { return &a.Config.CommandTimeout })},
	{"task_timeout", "duration: bounds each task", durationInto(func(a *Args) *time.Duration { return &a.TaskTimeout })},
	{"run_id", "names the run in the audit trail on the node (/var/log/nodefix/changes.jsonl); default: generated", func(a *Args, v any) error {
		s, err := stringValue(v)
		if err != nil {
			return err
		}
		if strings.TrimSpace(s) == "" {
			return nil // "{{ run_id | default('') }}": generated, as when left out
		}
		if !tasks.ValidRunID(strings.TrimSpace(s)) {
			return fmt.Errorf("is %q: letters, digits, '.', '_' and '-' only, at most 64", s)
		}
		a.Config.Audit.RunID = strings.TrimSpace(s)
		return nil
	}},
	{"controller_user", "who runs the play (the Ansible controller's user), for the audit trail", func(a *Args, v any) error {
		s, err := stringValue(v)
		a.Config.Audit.ControllerUser = strings.TrimSpace(s)
		return err
	}},
	{"controller_host", "where the play runs (the Ansible controller), for the audit trail", func(a *Args, v any) error {
		s, err := stringValue(v)
		a.Config.Audit.ControllerHost = strings.TrimSpace(s)
		return err
	}},
	{"fleet_names", "dict inventory host → planned hostname: check them (run once, on the controller)", func(a *Args, v any) error {
		m, err := namesValue(v)
		a.FleetNames = m
		return err
	}},
	{"fleet_identities", "dict inventory host → the hostname task's facts: report shared identities (run once, on the controller)", func(a *Args, v any) error {
		m, err := identitiesValue(v)
		a.FleetIdentities = m
		return err
	}},
}

// controllerParams run on the controller, for the whole fleet: each one
// excludes every other parameter.
var controllerParams = []string{"fleet_names", "fleet_identities"}

// ansible's own keys that change what the module does; every other
// _ansible_* key (verbosity, tmpdir, version …) is Ansible's business.
const (
	keyCheckMode = "_ansible_check_mode"
	keyDiff      = "_ansible_diff"
)

// ParseArgs reads the JSON object Ansible wrote into ARGS_FILE.
func ParseArgs(data []byte) (Args, error) {
	a := Args{Config: tasks.DefaultConfig(), TaskTimeout: DefaultTaskTimeout, set: map[string]bool{}}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return a, fmt.Errorf("the arguments are not a JSON object: %v", err)
	}
	if raw == nil {
		return a, fmt.Errorf("the arguments are not a JSON object: null")
	}
	var unknown []string
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw[k]
		switch {
		case k == keyCheckMode:
			b, err := boolValue(v)
			if err != nil {
				return a, fmt.Errorf("%s: %v", k, err)
			}
			a.Config.Check = b
			continue
		case k == keyDiff:
			b, err := boolValue(v)
			if err != nil {
				return a, fmt.Errorf("%s: %v", k, err)
			}
			a.Config.Diff = b
			continue
		case strings.HasPrefix(k, "_ansible_"):
			continue
		}
		p, ok := lookupParam(k)
		if !ok {
			unknown = append(unknown, k)
			continue
		}
		// Ansible passes an unset optional parameter as null when a
		// playbook templates it from an undefined-but-defaulted value
		// (`| default(omit)` drops it; `| default(None)` sends null):
		// null means "not given".
		if v == nil {
			continue
		}
		if err := p.set(&a, v); err != nil {
			return a, fmt.Errorf("argument '%s' %v", k, err)
		}
		a.set[k] = true
	}
	if len(unknown) > 0 {
		// Ansible's own wording for the same mistake in a Python module.
		return a, fmt.Errorf("Unsupported parameters for (%s) module: %s. Supported parameters include: %s.",
			Name, strings.Join(unknown, ", "), strings.Join(paramNames(), ", "))
	}
	return a, a.validate()
}

func (a Args) validate() error {
	for _, cp := range controllerParams {
		if !a.set[cp] {
			continue
		}
		var extra []string
		for k := range a.set {
			if k != cp {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		if len(extra) > 0 {
			return fmt.Errorf("%s (run once on the controller, for the whole fleet) runs no task: leave out %s", cp, strings.Join(extra, ", "))
		}
		return nil
	}
	if _, err := tasks.Select(a.Tasks); err != nil {
		return fmt.Errorf("argument 'tasks': %v", err)
	}
	return nil
}

func lookupParam(name string) (param, bool) {
	for _, p := range params {
		if p.name == name {
			return p, true
		}
	}
	return param{}, false
}

func paramNames() []string {
	names := make([]string, len(params))
	for i, p := range params {
		names[i] = p.name
	}
	sort.Strings(names)
	return names
}

func boolInto(field func(*Args) *bool) func(*Args, any) error {
	return func(a *Args, v any) error {
		b, err := boolValue(v)
		*field(a) = b
		return err
	}
}

func durationInto(field func(*Args) *time.Duration) func(*Args, any) error {
	return func(a *Args, v any) error {
		d, err := durationValue(v)
		if err == nil {
			*field(a) = d
		}
		return err
	}
}

// boolValue accepts what Ansible's boolean() accepts: a JSON boolean, or
// yes/no, true/false, on/off, y/n, t/f, 1/0 in any case, as a string or a
// number (a templated "{{ x }}" arrives as the string "True").
func boolValue(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case json.Number:
		switch x.String() {
		case "1", "1.0":
			return true, nil
		case "0", "0.0":
			return false, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "yes", "on", "true", "y", "t", "1", "1.0":
			return true, nil
		case "no", "off", "false", "n", "f", "0", "0.0":
			return false, nil
		}
	}
	return false, fmt.Errorf("is %s, which is not a boolean: use true or false", describe(v))
}

func stringValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	}
	return "", fmt.Errorf("is %s, not a string", describe(v))
}

func intValue(v any) (int, error) {
	s, err := stringValue(v)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("is %q, not a whole number", s)
	}
	return n, nil
}

// durationValue accepts a Go duration ("90s", "10m", "1h30m") or a number
// of seconds (a number or a numeric string).
func durationValue(v any) (time.Duration, error) {
	s, err := stringValue(v)
	if err != nil {
		return 0, err
	}
	s = strings.TrimSpace(s)
	var d time.Duration
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		d = time.Duration(secs * float64(time.Second))
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("is %q, not a duration: use seconds (600) or a unit (10m, 1h30m)", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("is %q: it must be longer than zero", s)
	}
	return d, nil
}

// listValue accepts a list of strings or one comma-separated string.
func listValue(v any) ([]string, error) {
	var items []string
	switch x := v.(type) {
	case string:
		items = strings.Split(x, ",")
	case []any:
		for _, e := range x {
			s, err := stringValue(e)
			if err != nil {
				return nil, fmt.Errorf("has an element that %v", err)
			}
			items = append(items, s)
		}
	default:
		return nil, fmt.Errorf("is %s, not a list", describe(v))
	}
	var out []string
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// decodeText is v, decoded first when Ansible passed it as JSON text (what
// `{{ x | to_json }}` gives).
func decodeText(v any) (any, error) {
	s, isText := v.(string)
	if !isText {
		return v, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var decoded any
	if err := dec.Decode(&decoded); err != nil {
		return nil, fmt.Errorf("is a string that is not a JSON object: %v", err)
	}
	return decoded, nil
}

// namesValue accepts a dict of strings, or the same dict as a JSON string
// (what `{{ names | to_json }}` gives).
func namesValue(v any) (map[string]string, error) {
	v, err := decodeText(v)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is %s, not a dict of inventory hostname → planned hostname", describe(v))
	}
	names := make(map[string]string, len(m))
	for host, val := range m {
		if val == nil {
			names[host] = ""
			continue
		}
		s, err := stringValue(val)
		if err != nil {
			return nil, fmt.Errorf("for host %s %v", host, err)
		}
		names[host] = strings.TrimSpace(s)
	}
	return names, nil
}

// identitiesValue accepts a dict of dicts of strings (JSON text too).
func identitiesValue(v any) (map[string]map[string]string, error) {
	v, err := decodeText(v)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is %s, not a dict of inventory hostname → identity facts", describe(v))
	}
	out := make(map[string]map[string]string, len(m))
	for host, val := range m {
		if val == nil {
			continue // a host whose hostname task reported nothing
		}
		facts, err := namesValue(val)
		if err != nil {
			return nil, fmt.Errorf("for host %s %v", host, err)
		}
		out[host] = facts
	}
	return out, nil
}

// ParseNames reads a fleet name map (inventory hostname → planned
// hostname) given as a JSON object, for `nodefix names check`.
func ParseNames(data []byte) (map[string]string, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("no input: give a JSON object {\"inventory host\": \"hostname\", ...}")
	}
	return namesValue(string(data))
}

// describe names a JSON value's type for an error message without quoting
// a long value whole.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("the boolean %t", x)
	case json.Number:
		return "the number " + x.String()
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return fmt.Sprintf("the string %q", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a dict"
	}
	return fmt.Sprintf("a %T", v)
}
