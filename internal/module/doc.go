package module

import (
	"strings"
	"time"

	"github.com/nodefix/nodefix/tasks"
)

// Option is one module parameter as ansible-doc shows it. The Ansible
// collection's documentation (nodefix.longhorn.remediate) is generated
// from Options at build time, so the documentation and the parameters the
// module accepts cannot drift apart.
type Option struct {
	Name string
	// Description is the params table's doc string, without the type
	// word ("bool: ") where Type says it.
	Description string
	// Type is Ansible's name for it: str, bool, int, path, list or dict.
	Type string
	// Elements is a list's element type.
	Elements string
	// Default is the value a parameter left out takes (nil: none).
	Default any
	// Controller: the parameter runs the module once on the controller,
	// for the whole fleet, and excludes every other parameter.
	Controller bool
}

// Options lists every parameter the module accepts (besides Ansible's own
// _ansible_* keys), in the params table's order.
func Options() []Option {
	defaults := docDefaults()
	opts := make([]Option, 0, len(params))
	for _, p := range params {
		o := Option{Name: p.name, Default: defaults[p.name]}
		o.Type, o.Elements, o.Description = docType(p.doc)
		for _, cp := range controllerParams {
			o.Controller = o.Controller || cp == p.name
		}
		if o.Type == "bool" && o.Default == nil {
			o.Default = false
		}
		opts = append(opts, o)
	}
	return opts
}

// ControllerParams are the parameters that run the module on the
// controller (the fleet precheck and the identity audit).
func ControllerParams() []string {
	return append([]string(nil), controllerParams...)
}

// docType reads a parameter's type from the first word of its doc string,
// the params table's convention: "bool: …", "int: …", "path: …" (the word
// is dropped from the description), "duration …" (a string), "list …",
// "dict …"; anything else is a string.
func docType(doc string) (typ, elements, description string) {
	for _, prefix := range []string{"bool", "int", "path"} {
		if rest, ok := strings.CutPrefix(doc, prefix+": "); ok {
			return prefix, "", rest
		}
	}
	switch {
	case strings.HasPrefix(doc, "list"):
		return "list", "str", doc
	case strings.HasPrefix(doc, "dict"):
		return "dict", "", doc
	}
	return "str", "", doc
}

// docDefaults are the documented defaults of the parameters that have
// one (booleans default to false without being listed), read from the
// defaults ParseArgs starts from. module's tests feed each back through
// ParseArgs to prove it is the default.
func docDefaults() map[string]any {
	c := tasks.DefaultConfig()
	return map[string]any{
		"tasks":                tasks.Names(),
		"longhorn_executables": append([]string(nil), c.LonghornExecutables...),
		"rpm_query_max_age":    shortDuration(c.RPMQueryMaxAge),
		"rpm_query_grace":      shortDuration(c.RPMQueryGrace),
		"rpm_backup_dir":       c.RPMBackupDir,
		"rpm_backup_keep":      c.RPMBackupKeep,
		"command_timeout":      shortDuration(c.CommandTimeout),
		"task_timeout":         shortDuration(DefaultTaskTimeout),
	}
}

// shortDuration writes d as a person would: 10m, 5s, 1h30m (not 10m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
