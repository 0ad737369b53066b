package jinja

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// Vars are the variables a template sees, as Ansible's VariableManager
// gives them for one host: values as loaded, not templated (a string
// holding a template is templated by the engine when a template reads it).
// A Vars must be comparable (a pointer, typically): the engine recognises
// a variable it is already templating by the pair (Vars, name).
type Vars interface {
	Lookup(name string) (value any, ok bool)
}

// Untemplated is a value a Vars returns for data that can hold no
// template (the magic variable groups, say): the engine reads it as it
// is, instead of templating every string in it on every read.
type Untemplated struct{ Value any }

// HostVars is Ansible's hostvars: a value a Vars may return (under the
// name "hostvars"), through which a template reads other hosts'
// variables, each templated in its own host's context when read.
type HostVars interface {
	// HostVars are the variables of an inventory host, as that host's
	// templates see them, except that they hold no hostvars (Ansible
	// builds them with include_hostvars=False).
	HostVars(host string) (Vars, bool)
	// Hosts are every inventory hostname, in inventory order.
	Hosts() []string
}

// Kind classifies an *Error.
type Kind int

const (
	// Undefined: the template reads a variable, attribute or item that
	// does not exist (Ansible's AnsibleUndefinedVariable).
	Undefined Kind = iota + 1
	// Unsupported: a construct nodefix does not evaluate (a filter, test
	// or lookup outside the supported set, {% set %}, ansible-vault, …).
	Unsupported
	// Syntax: the template does not parse.
	Syntax
	// Runtime: evaluating the template fails as it would in Ansible (a
	// type error, a division by zero, a bad regular expression, …).
	Runtime
	// Limit: the evaluation is too big or too long, or a variable refers
	// to itself.
	Limit
)

func (k Kind) String() string {
	switch k {
	case Undefined:
		return "undefined"
	case Unsupported:
		return "unsupported"
	case Syntax:
		return "syntax"
	case Runtime:
		return "runtime"
	case Limit:
		return "limit"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a template that could not be evaluated.
type Error struct {
	Kind Kind
	// Construct names what was refused, for Unsupported: "filter
	// to_uuid", "lookup('file')", "{% set %}", "ansible-vault", …
	Construct string
	// Name is the undefined variable, attribute or item, for Undefined,
	// when there is one.
	Name string
	// Msg says what went wrong, in Ansible's words where it has them
	// ("'foo' is undefined").
	Msg string
	// Template is the text of the innermost template being evaluated.
	Template string
}

func (e *Error) Error() string {
	if e.Template == "" {
		return e.Msg
	}
	return fmt.Sprintf("%s (in %s)", e.Msg, quoteTemplate(e.Template))
}

// quoteTemplate shows a template in a message, shortened when long.
func quoteTemplate(s string) string {
	const max = 200
	if len(s) > max {
		cut := max
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Limits bound one evaluation (a call of Template or Var, everything it
// templates included). Zero fields take the defaults.
type Limits struct {
	// Steps bounds the expressions evaluated and loop iterations run
	// (default 1,000,000).
	Steps int
	// Size bounds the bytes of any string, the items of any list and the
	// bytes a template renders (default 1 MiB).
	Size int
	// Depth bounds how deep variables may nest, one templated through
	// another (default 100: Ansible fails between 100 and 200, when
	// Python's recursion limit stops it).
	Depth int
	// Source bounds the length of a template's text (default 64 KiB) and
	// SourceNesting how deep brackets may nest in it (default 64): the
	// parser recurses on both.
	Source        int
	SourceNesting int
}

func (l Limits) withDefaults() Limits {
	if l.Steps <= 0 {
		l.Steps = 1_000_000
	}
	if l.Size <= 0 {
		l.Size = 1 << 20
	}
	if l.Depth <= 0 {
		l.Depth = 100
	}
	if l.Source <= 0 {
		l.Source = 64 << 10
	}
	if l.SourceNesting <= 0 {
		l.SourceNesting = 64
	}
	return l
}

// Options configure an Env.
type Options struct {
	// LookupEnv answers lookup('env', NAME); nil means os.LookupEnv.
	LookupEnv func(name string) (string, bool)
	Limits    Limits
}

// Env evaluates templates. It keeps the templates it parsed, by text, so
// that a template shared by many hosts (a group variable, an extra var) is
// parsed once. Safe for concurrent use.
type Env struct {
	lookupEnv func(string) (string, bool)
	limits    Limits

	mu     sync.Mutex
	parsed map[string]parseResult
	// regexps holds regex_replace's compiled patterns (*compiled) by
	// flags and pattern.
	regexps sync.Map
}

type parseResult struct {
	t   *template
	err error
}

// maxCached bounds the parse cache: beyond it templates are parsed every
// time (an inventory with that many distinct templates is unusual).
const maxCached = 10_000

// New makes an Env.
func New(opts Options) *Env {
	e := &Env{lookupEnv: opts.LookupEnv, limits: opts.Limits.withDefaults(), parsed: map[string]parseResult{}}
	if e.lookupEnv == nil {
		e.lookupEnv = os.LookupEnv
	}
	return e
}

// IsTemplate reports whether s may hold a template: Ansible templates a
// string only when it contains "{{", "{%" or "{#" (is_possibly_template).
// Strings without them never reach the engine.
func IsTemplate(s string) bool {
	i := strings.IndexByte(s, '{')
	for i >= 0 && i+1 < len(s) {
		switch s[i+1] {
		case '{', '%', '#':
			return true
		}
		j := strings.IndexByte(s[i+1:], '{')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// Template is Ansible's Templar.template(v) with vars as the available
// variables: a string holding a template is rendered (with Ansible's
// conversions of the result), a list or a map is templated element by
// element, anything else is returned as is. An undefined variable is an
// *Error of kind Undefined.
func (e *Env) Template(v any, vars Vars) (result any, err error) {
	r := e.newRun()
	defer r.recover(&err)
	out, err := r.template(v, vars, true)
	if err != nil {
		return nil, err
	}
	return plain(out), nil
}

// Var is variable name of vars templated, as a template reading it would
// see it (AnsibleJ2Vars): ok is false when vars has no such variable. An
// undefined variable inside its template is an *Error of kind Undefined.
func (e *Env) Var(vars Vars, name string) (value any, ok bool, err error) {
	raw, ok := vars.Lookup(name)
	if !ok {
		return nil, false, nil
	}
	r := e.newRun()
	defer r.recover(&err)
	out, err := r.templateVar(vars, name, raw)
	if err != nil {
		return nil, true, err
	}
	if u, isU := out.(*undefinedValue); isU {
		return nil, true, u.err()
	}
	return plain(out), true, nil
}

// parse returns the parsed template for src, from the cache when it was
// parsed before.
func (e *Env) parse(src string) (*template, error) {
	e.mu.Lock()
	p, ok := e.parsed[src]
	e.mu.Unlock()
	if ok {
		return p.t, p.err
	}
	t, err := parseTemplate(src, e.limits)
	e.mu.Lock()
	if len(e.parsed) < maxCached {
		e.parsed[src] = parseResult{t, err}
	}
	e.mu.Unlock()
	return t, err
}
