package jinja

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nodefix/nodefix/internal/pycompat"
)

func evalErr(t *testing.T, e *Env, src string, vars map[string]any) *Error {
	t.Helper()
	got, err := e.Template(src, &testVars{vars})
	if err == nil {
		t.Errorf("%q: got %s, want an error", src, show(got))
		return nil
	}
	var je *Error
	if !errors.As(err, &je) {
		t.Errorf("%q: error %T %v, want a *jinja.Error", src, err, err)
		return nil
	}
	return je
}

// TestUnsupported: what nodefix does not evaluate is refused, naming the
// construct, even in a branch the template would not take.
func TestUnsupported(t *testing.T) {
	e := New(Options{})
	vars := map[string]any{"x": "a", "name": "file", "l": []any{1}, "secret": pycompat.Vault{Ciphertext: "$ANSIBLE_VAULT;1.1;AES256\n6162"},
		"uses_secret": "{{ secret }}"}
	for _, c := range []struct{ src, construct string }{
		{"{{ x | to_uuid }}", "filter to_uuid"},
		{"{% if false %}{{ x | b64encode }}{% endif %}", "filter b64encode"},
		{"{{ x | join(attribute='a') }}", "join(attribute=…)"},
		{"{{ x is match('a') }}", "test match"},
		{"{{ lookup('file', '/etc/passwd') }}", "lookup('file')"},
		{"{{ query('pipe', 'id') }}", "query('pipe')"},
		{"{{ lookup(name, 'x') }}", "lookup('file')"},
		{"{{ lookup('vars', 'x') }}", "lookup('vars')"},
		{"{% set a = 1 %}{{ a }}", "{% set %}"},
		{"{% macro m() %}x{% endmacro %}", "{% macro %}"},
		{"{% include 'other.j2' %}", "{% include %}"},
		{"{% for i in l recursive %}{{ i }}{% endfor %}", "recursive for loop"},
		{"{{ now() }}", "now()"},
		{"{{ x.title() }}", "method title()"},
		{"{{ l.append(2) }}", "method append()"},
		{"{{ '%s-1' % x }}", "% string formatting"},
		{"{{ secret }}", "ansible-vault"},
		{"{{ uses_secret }}", "ansible-vault"},
		{"#jinja2: trim_blocks: False\n{{ x }}", "#jinja2: overrides"},
		{"{{ hostvars }}", ""},
	} {
		je := evalErr(t, e, c.src, vars)
		if je == nil {
			continue
		}
		if c.construct == "" {
			if je.Kind != Undefined {
				t.Errorf("%q: %v (kind %s), want undefined", c.src, je, je.Kind)
			}
			continue
		}
		if je.Kind != Unsupported || je.Construct != c.construct || !strings.Contains(je.Error(), "not supported by nodefix") {
			t.Errorf("%q: %v (kind %s, construct %q), want unsupported %q", c.src, je, je.Kind, je.Construct, c.construct)
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	e := New(Options{})
	for _, src := range []string{"{{ x", "{% if %}x{% endif %}", "{{ x | }}", "{% endif %}", "{% if x %}open", "{{ x[] }}", "{% bogus %}", "{{ 'unterminated }}"} {
		if je := evalErr(t, e, src, map[string]any{"x": 1}); je != nil && je.Kind != Syntax {
			t.Errorf("%q: %v (kind %s), want a syntax error", src, je, je.Kind)
		}
	}
}

// TestLimits: no template can loop forever, recurse without end or grow
// without bound: each is a Limit error.
func TestLimits(t *testing.T) {
	e := New(Options{Limits: Limits{Steps: 100_000, Size: 1 << 16, Depth: 20, Source: 1 << 12, SourceNesting: 16}})
	chain := map[string]any{}
	for i := 0; i < 30; i++ {
		chain["v"+itoa(i)] = "{{ v" + itoa(i+1) + " }}"
	}
	chain["v30"] = "end"
	chain["self"] = "{{ self }}"
	chain["selfd"] = "{{ selfd | default('x') }}"
	chain["ping"] = "{{ pong }}"
	chain["pong"] = "{{ ping }}"
	for _, c := range []struct{ src, want string }{
		{"{{ self }}", "recursive loop detected in template: self -> self"},
		{"{{ selfd }}", "recursive loop"},
		{"{{ ping }}", "ping -> pong -> ping"},
		{"{{ v0 }}", "nest more than 20"},
		{"{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}", "steps"},
		{"{{ 'a' * 100000 }}", "more than 65536"},
		{"{{ 'ab' | replace('', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' * 800) }}", "more than 65536"},
		{"{% for i in range(10000) %}0123456789{% endfor %}", "renders more than"},
		{"{{ range(100000000) | list }}", "a range of more than"},
		{"{{ 2 ** 10000000 }}", "bits"},
		{"{{ [1] * 100000 }}", "more than 65536"},
		{"{{ " + strings.Repeat("(", 40) + "1" + strings.Repeat(")", 40) + " }}", "nest 42 deep"},
		{"{{ '" + strings.Repeat("x", 5000) + "' }}", "bytes long"},
	} {
		je := evalErr(t, e, c.src, chain)
		if je == nil {
			continue
		}
		if je.Kind != Limit || !strings.Contains(je.Error(), c.want) {
			t.Errorf("%.60q: %v (kind %s), want a limit error saying %q", c.src, je, je.Kind, c.want)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// fakeHostVars is hostvars over maps of raw variables.
type fakeHostVars struct {
	order []string
	hosts map[string]*testVars
}

func (h *fakeHostVars) HostVars(name string) (Vars, bool) {
	v, ok := h.hosts[name]
	return v, ok
}

func (h *fakeHostVars) Hosts() []string { return h.order }

// TestHostVars: another host's variables are templated in that host's
// context when read; a template undefined there is left as its text, as
// Ansible's HostVarsVars does with fail_on_undefined=False.
func TestHostVars(t *testing.T) {
	h1 := &testVars{map[string]any{"inventory_hostname": "h1", "private_ip": "10.0.0.1", "port": 2201}}
	h2 := &testVars{map[string]any{"inventory_hostname": "h2", "private_ip": "{{ net }}.2", "net": "10.0.1",
		"broken": "{{ nope }}.x", "name": "{{ inventory_hostname }}"}}
	hv := &fakeHostVars{order: []string{"h1", "h2"}, hosts: map[string]*testVars{"h1": h1, "h2": h2}}
	me := &testVars{map[string]any{"hostvars": hv, "inventory_hostname": "h1", "groups": map[string]any{"all": []any{"h1", "h2"}},
		"private_ip": "10.0.0.1", "self_ip": "{{ hostvars[inventory_hostname].private_ip }}"}}
	e := New(Options{})
	for _, c := range []struct {
		src  string
		want any
	}{
		{"{{ hostvars['h2'].private_ip }}", "10.0.1.2"},
		{"{{ hostvars.h2.name }}", "h2"},
		{"{{ hostvars['h2']['broken'] }}", "{{ nope }}.x"},
		{"{{ hostvars[groups['all'][1]].private_ip }}", "10.0.1.2"},
		{"{{ self_ip }}", "10.0.0.1"},
		{"{{ hostvars['h1'].port }}", "2201"}, // not a lone {{ var }}: rendered as text
		{"{{ hostvars['h1'].port + 1 }}", "2202"},
		{"{{ 'h2' in hostvars }}", true},
		{"{{ hostvars | list }}", []any{"h1", "h2"}},
		{"{{ hostvars['h3'] | default('none') }}", "none"},
		{"{{ hostvars['h2'].nope | default('d') }}", "d"},
		{"{% for h in groups['all'] %}{{ hostvars[h].private_ip }} {% endfor %}", "10.0.0.1 10.0.1.2 "},
	} {
		got, err := e.Template(c.src, me)
		if err != nil || show(got) != show(c.want) {
			t.Errorf("%q = %s, %v; want %s", c.src, show(got), err, show(c.want))
		}
	}
	for _, src := range []string{"{{ hostvars['h3'].x }}", "{{ hostvars['h2'].nope }}"} {
		if je := evalErr(t, e, src, me.m); je != nil && je.Kind != Undefined {
			t.Errorf("%q: %v, want undefined", src, je)
		}
	}
}

// TestVar: Var reads one variable as a template reading it would.
func TestVar(t *testing.T) {
	vars := &testVars{map[string]any{"port": "{{ base }}", "base": 2222, "host": "{{ ip }}", "ip": "10.0.0.1",
		"raw": pycompat.Unsafe{Text: "{{ not a template }}"}, "u": "{{ nope }}-x", "list": []any{"{{ ip }}", 1}}}
	e := New(Options{})
	for _, c := range []struct {
		name string
		want any
		ok   bool
	}{
		{"port", 2222, true}, // a lone {{ var }} keeps var's type
		{"host", "10.0.0.1", true},
		{"raw", "{{ not a template }}", true},
		{"list", []any{"10.0.0.1", 1}, true},
		{"missing", nil, false},
	} {
		got, ok, err := e.Var(vars, c.name)
		if err != nil || ok != c.ok || show(got) != show(c.want) {
			t.Errorf("Var(%s) = %s, %v, %v; want %s, %v", c.name, show(got), ok, err, show(c.want), c.ok)
		}
	}
	_, ok, err := e.Var(vars, "u")
	var je *Error
	if !ok || !errors.As(err, &je) || je.Kind != Undefined || je.Name != "nope" || !strings.Contains(err.Error(), "'nope' is undefined") {
		t.Errorf("Var(u) = %v, %v; want undefined naming nope", ok, err)
	}
}

// TestConcurrent: one Env serves many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	e := New(Options{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			vars := &testVars{map[string]any{"k8s_nodename": "", "inventory_hostname": "10.0.0." + itoa(i)}}
			for j := 0; j < 50; j++ {
				got, err := e.Template("{%- if k8s_nodename != '' -%} {{ k8s_nodename }} {%- else -%} k8s-{{ inventory_hostname|replace('.', '-') }} {%- endif -%}", vars)
				if want := "k8s-10-0-0-" + itoa(i); err != nil || got != want {
					t.Errorf("got %v, %v; want %s", got, err, want)
					return
				}
				if _, err := e.Template("{{ inventory_hostname | regex_replace('\\.', '-') }}", vars); err != nil {
					t.Error(err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
}

func TestIsTemplate(t *testing.T) {
	for s, want := range map[string]bool{"": false, "plain": false, "{": false, "a{b": false, "{{x}}": true, "a {% if %}": true,
		"{# c #}": true, "{x}{{": true, "}}{{": true, "{ {": false, "x{": false, "{}": false} {
		if got := IsTemplate(s); got != want {
			t.Errorf("IsTemplate(%q) = %v, want %v", s, got, want)
		}
	}
}
