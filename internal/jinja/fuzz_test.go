package jinja

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzTemplate evaluates arbitrary templates: the engine must neither
// panic (a panic it recovers from still fails the test, unless it comes
// from gonja's parser, which nodefix cannot fix), nor run past its
// budget, nor return more than its size limit. Its seed corpus (every
// oracle template and the hard cases below) runs in every `go test`.
func FuzzTemplate(f *testing.F) {
	for _, s := range oracleTemplates {
		f.Add(s)
	}
	for _, s := range []string{
		"{{ hostvars[inventory_hostname].ip }}", "{{ hostvars['h2'].loop }}", "{{ self }}", "{{ groups['all'] | join(',') }}",
		"{% for h in groups['all'] %}{% for g in groups['all'] %}{{ h }}{{ g }}{% endfor %}{% endfor %}",
		"{{ 'a' * -1 }}", "{{ '%s' % 'a' }}", "{{ 1 // 0 }}", "{{ 1 % 0 }}", "{{ 1.5 // 0 }}", "{{ x[::0] }}", "{{ l[1:-1:-1] }}",
		"{{ lookup('env') }}", "{{ lookup() }}", "{{ lookup('env', 1) }}", "{{ lookup('env', ' ') }}", "{{ range() }}",
		"{{ range(1, 2, 0) }}", "{{ 'abc' | regex_replace('(', 'x') }}", "{{ 'abc' | regex_replace('(a)', '\\2') }}",
		"{{ 'abc' | regex_replace('a', '\\g<x') }}", "{{ 'abc' | regex_replace('a', '\\q') }}", "{{ 'a' | regex_replace('', '\\777') }}",
		"{{ {} | first }}", "{{ none_var | length }}", "{{ x.0.0 }}", "{{ l.5 }}", "{{ (1, 2)[5] }}", "{{ d.items() }}",
		"{% for a, b in l %}{% endfor %}", "{% for a, b in d.items() %}{{ a }}{{ b }}{{ loop.previtem }}{{ loop.nextitem }}{% endfor %}",
		"{{ loop }}", "{{ range }}", "{{ lookup }}", "{{ dict(a=1) }}", "{{ dict(1) }}", "{{ nil }}", "{{ none.x.y }}",
		"{{ 1 if 2 }}", "{{ -'a' }}", "{{ not none_var.x }}", "{{ 10 ** -2 }}", "{{ 0 ** -1 }}", "{{ 'x' in 1 }}", "{{ 1 in 'x' }}",
		"{{ [1, 2] | int }}", "{{ 'x' | int(base=99) }}", "{{ 'x' | int(base='a') }}", "{{ 's'.split('') }}", "{{ 's'.startswith(1) }}",
		"{{ '1e400' | int }}", "{{ '-inf' | int }}", "{{ 9999999999999999999999 // -7 }}", "{{ -(2 ** 63) }}", "{{ x[9999999999999999999] }}",
		"{%- raw -%} {{ }} {%- endraw -%}", "{# unterminated", "{{ '\\' }}", "{% if '\\x4' %}{% endif %}", "{{ 'a\\'b' }}",
	} {
		f.Add(s)
	}
	h2 := &testVars{map[string]any{"inventory_hostname": "h2", "ip": "{{ net }}.2", "loop": "{{ loop }}", "net": "10.0.0"}}
	hv := &fakeHostVars{order: []string{"h1", "h2"}, hosts: map[string]*testVars{"h2": h2}}
	h1 := &testVars{map[string]any{}}
	hv.hosts["h1"] = h1
	for k, v := range decodeVarsTB(f, oracleVars) {
		h1.m[k] = v
	}
	h1.m["hostvars"] = hv
	h1.m["inventory_hostname"] = "h1"
	h1.m["groups"] = map[string]any{"all": []any{"h1", "h2"}}
	h1.m["self"] = "{{ self }}"
	h1.m["x"] = "{{ l }}"
	lim := Limits{Steps: 20_000, Size: 1 << 12, Depth: 20}
	f.Fuzz(func(t *testing.T, src string) {
		e := New(Options{Limits: lim, LookupEnv: func(string) (string, bool) { return "v", true }})
		start := time.Now()
		got, err := e.Template(src, h1)
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("%q took %v", src, took)
		}
		var je *Error
		if err != nil {
			if !errors.As(err, &je) {
				t.Fatalf("%q: error %T %v is not a *jinja.Error", src, err, err)
			}
			if strings.Contains(je.Msg, "template engine failed") {
				t.Fatalf("%q: the evaluator panicked: %v", src, err)
			}
			return
		}
		if s, ok := got.(string); ok && len(s) > 2*lim.Size {
			t.Fatalf("%q: %d bytes out, limit %d", src, len(s), lim.Size)
		}
	})
}
