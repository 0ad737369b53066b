package jinja

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/internal/pycompat"
)

// testVars is a Vars over a map (a pointer, so that it is comparable).
type testVars struct{ m map[string]any }

func (v *testVars) Lookup(name string) (any, bool) {
	x, ok := v.m[name]
	return x, ok
}

// oracleVars are the variables of the oracle cases, as JSON: numbers
// without a '.' are ints, as Python reads them.
const oracleVars = `{
	"s": "A_b.C", "n": 22, "none_var": null, "empty": "", "l": ["x", 1], "d": {"k": "v", "k2": 2},
	"t": "{{ s }}", "u": "{{ nope }}", "p": "{{ n }}", "f": 1.5, "bt": true, "big": 123456789012345678901234567890,
	"k8s_nodename": "Worker_01", "k8s_empty": "", "inventory_hostname": "192.168.1.4",
	"chain1": "{{ chain2 }}-1", "chain2": "{{ chain3 }}-2", "chain3": "end",
	"lst_t": ["{{ s }}", "{{ n }}", 3], "dict_t": {"a": "{{ s }}", "b": "{{ n }}"},
	"yes_s": "yes", "port_s": "2222", "listy": "{{ [1, 2] }}", "bool_t": "{{ 'yes' | bool }}",
	"nested_u": "{{ u }}", "defaulted": "{{ u | default('fallback') }}", "ws": "  padded\t",
	"multi": "a\nb", "nl": "{{ s }}\n\n", "dflt_none": "{{ none_var | default('x', true) }}",
	"ip": "10.1.2.3", "user_t": "{{ admin_user | default('root') }}", "admin_user": "ops",
	"bastion": "jump.example.com", "ssh_args": "-o ProxyJump={{ admin_user }}@{{ bastion }}"
}`

// oracleTemplates are compared with Ansible's own Templar.
var oracleTemplates = []string{
	// kubeasz's K8S_NODENAME, both released variants, for a set and an
	// empty k8s_nodename.
	"{%- if k8s_nodename != '' -%} {{ k8s_nodename|replace('_', '-')|lower }} {%- else -%} k8s-{{ inventory_hostname|replace('.', '-') }} {%- endif -%}",
	"{%- if k8s_empty != '' -%} {{ k8s_empty|replace('_', '-')|lower }} {%- else -%} k8s-{{ inventory_hostname|replace('.', '-') }} {%- endif -%}",
	"{%- if k8s_nodename != '' -%} {{ k8s_nodename|replace('_', '-')|lower }} {%- else -%} {{ inventory_hostname }} {%- endif -%}",
	"{%- if k8s_empty != '' -%} {{ k8s_empty|replace('_', '-')|lower }} {%- else -%} {{ inventory_hostname }} {%- endif -%}",
	// Plain values and Ansible's typing of results.
	"plain", "{{ n }}", "{{ n }}\n", "{{ 22 }}\n", "{{ p }}", "x{{ p }}", "{{ bt }}", "{{ f }}", "{{ big }}", "{{ big + 1 }}",
	"{{ none_var }}", "{{ none_var }}x", "{{ [1, 'a'] }}", "{{ {'a': 1} }}", "{{ 'True' }}", "{{ 'true' }}", "[{{ 'true' }}]",
	"{{ listy }}", "{{ bool_t }}", "{{ lst_t }}", "{{ dict_t }}", "{{ dict_t.b }}", "{{ nl }}", "{{ multi }}", "{{ t }}",
	"{{ chain1 }}", "{{ 3 | string }}", "{{ [1] | string }}", "{{ none_var | string }}", "{{ (1, 2) }}", "{{ (1,) }}",
	// default / d and definedness.
	"{{ nope | default('d') }}", "{{ none_var | default('d') }}", "{{ empty | default('d', true) }}",
	"{{ empty | d('d', boolean=true) }}", "{{ u | default('x') }}", "{{ nested_u | default('y') }}", "{{ defaulted }}",
	"{{ dflt_none }}", "{{ nope is defined }}", "{{ none_var is defined }}", "{{ u is defined }}", "{{ u is undefined }}",
	"{{ d.x | default(1) }}", "{{ d.k is defined }}", "{{ nope.a.b | default('deep') }}", "{{ user_t }}",
	// Undefined and errors.
	"{{ nope }}", "{{ u }}", "{{ nested_u }}", "{{ nope.x }}", "{{ d.x }}", "{{ none_var.x }}", "{{ l[5] }}",
	"{{ 'abc'[5] }}", "{% if nope %}y{% endif %}", "{{ nope == 1 }}", "{{ nope | lower }}", "{{ nope | int }}",
	"{{ [] | first }}", "{{ '' | last }}", "{{ 'a' if nope else 'b' }}", "{{ nope | ternary('a', 'b') }}",
	"{{ s + n }}", "{{ 'a' < 1 }}", "{{ none_var | join(',') }}", "{{ 'inf' | int }}", "{{ 1 / 0 }}", "{{ [nope] }}",
	"{{ 'a' if false }}",
	// Filters.
	"{{ s | replace('_', '-') | lower }}", "{{ s | upper }}", "{{ s | replace('.', '') }}", "{{ s | replace('', '-') }}",
	"{{ s | replace('b', 'x', 0) }}", "{{ 'aaa' | replace('a', 'b', 2) }}", "{{ ws | trim }}", "{{ 'xxaxx' | trim('x') }}",
	"{{ '42' | int }}", "{{ '42.7' | int }}", "{{ 'nan' | int }}", "{{ 'x' | int }}", "{{ 'x' | int(7) }}", "{{ none_var | int }}",
	"{{ '0x1A' | int(base=16) }}", "{{ ' 12 ' | int }}", "{{ '1_000' | int }}", "{{ 3.9 | int }}", "{{ -3.9 | int }}",
	"{{ true | int }}", "{{ port_s | int }}", "{{ port_s | int + 1 }}", "{{ yes_s | bool }}", "{{ ' yes' | bool }}",
	"{{ 'True' | bool }}", "{{ 'ON' | bool }}", "{{ 1.0 | bool }}", "{{ 2 | bool }}", "{{ none_var | bool }}", "{{ 'no' | bool }}",
	"{{ l | join(',') }}", "{{ l | join }}", "{{ d | join('+') }}", "{{ 'abc' | join('-') }}", "{{ l | first }}", "{{ l | last }}",
	"{{ d | first }}", "{{ 'abc' | last }}", "{{ d | length }}", "{{ 'héllo' | length }}", "{{ l | count }}",
	"{{ true | ternary('a', 'b') }}", "{{ 0 | ternary('a', 'b') }}", "{{ none_var | ternary('a', 'b', 'c') }}",
	"{{ none_var | ternary('a', 'b') }}", "{{ 'ab.cd' | regex_replace('\\.', '-') }}", "{{ 'abc' | regex_replace('(b)', '\\1\\1') }}",
	"{{ 'abxd' | regex_replace('x*', '-') }}", "{{ 'abx' | regex_replace('x*', '-') }}", "{{ 'Hello' | regex_replace('l+', 'L') }}",
	"{{ 'a-b' | regex_replace('(?P<x>a)-(b)', '\\g<2>\\g<x>') }}", "{{ 'ABC' | regex_replace('b', '_', ignorecase=true) }}",
	"{{ 'web01.example.com' | regex_replace('^([^.]+)\\..*$', '\\1') }}", "{{ d.keys() | list }}", "{{ s | list }}",
	// Operators and expressions.
	"{{ s ~ n }}", "{{ 7 // 2 }}", "{{ -7 // 2 }}", "{{ 7 / 2 }}", "{{ -7 % 3 }}", "{{ 7 % -3 }}", "{{ 2 ** 10 }}", "{{ 2 ** -1 }}",
	"{{ 'ab' * 3 }}", "{{ 3 * 'ab' }}", "{{ [1] * 2 }}", "{{ 1 == 1.0 }}", "{{ true == 1 }}", "{{ 'b' in 'abc' }}", "{{ 'k' in d }}",
	"{{ 1 in l }}", "{{ 'z' not in l }}", "{{ l + [2] }}", "{{ n - 2 * 3 }}", "{{ (n - 2) * 3 }}", "{{ -n }}", "{{ not bt }}",
	"{{ bt and 'x' }}", "{{ empty or 'y' }}", "{{ n > 3 and n < 30 }}", "{{ 'a' < 'b' }}", "{{ [1, 2] < [1, 3] }}",
	"{{ s[0] }}", "{{ s[-1] }}", "{{ s[1:3] }}", "{{ s[::-1] }}", "{{ l[-1] }}", "{{ d['k'] }}", "{{ d.k2 }}", "{{ l.0 }}",
	"{{ 'yes' if bt else 'no' }}", "{{ s.split('_') }}", "{{ s.split('_')[0] }}", "{{ 'a b  c'.split() }}", "{{ s.lower() }}",
	"{{ ' x '.strip() }}", "{{ s.startswith('A_') }}", "{{ s.endswith(('x', 'C')) }}", "{{ s.replace('_', '-') }}",
	"{{ d.get('k') }}", "{{ d.get('nope', 'dv') }}", "{{ d.items() | list }}", "{{ range(3) | list }}", "{{ range(1, 10, 3) | list }}",
	"{{ n is number }}", "{{ s is string }}", "{{ n is integer }}", "{{ f is float }}", "{{ none_var is none }}", "{{ d is mapping }}",
	"{{ n is eq 22 }}", "{{ n is gt(3) }}", "{{ n is even }}", "{{ n is divisibleby 11 }}", "{{ 1 is in l }}", "{{ ip }}",
	"{{ inventory_hostname|replace('.', '-') }}", "{{ inventory_hostname.split('.')[0] }}", "{{ ssh_args }}", "{{ 'a\\nb' }}",
	// Statements and whitespace.
	"{% for x in l %}{{ loop.index }}{{ x }}{% endfor %}", "{% for x in [] %}a{% else %}empty{% endfor %}",
	"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "{% for x in l if x != 1 %}{{ x }}{{ loop.length }}{% endfor %}",
	"{% if n > 30 %}big{% elif n > 20 %}mid{% else %}small{% endif %}", "a {# comment #} b", "{% raw %}{{ n }}{% endraw %}",
	"{% if bt %}\nyes\n{% endif %}", "  {%- if bt -%}  x  {%- endif -%}  ", "{% if bt %}{{ s }}{% endif %}\n",
	"line1\n{{ n }}\nline3", "{% for x in l %}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}",
	"{% if '\\n' == multi[1] %}nl{% else %}no{% endif %}", "{{ '%s' }}",
	// Precedence: a filter binds to the operand before it.
	"{{ s if bt else 'c' | upper }}", "{{ s ~ 'x' | upper }}", "{{- s -}}", "{{ s is not none }}", "{{ s in ['A_b.C', 'y'] }}",
	"{{ -1 + 2 * 3 ** 2 }}", "{{ n // 5 * 5 }}", "{{ not bt or s }}", "{{ 'a' ~ 1 ~ none_var }}",
}

// TestAnsibleTemplar compares every oracle template with what
// ansible-core's Templar makes of it: the value and its type, or that
// both find it undefined, or that both fail.
func TestAnsibleTemplar(t *testing.T) {
	py := ansiblePython(t)
	vars := decodeVars(t, oracleVars)
	want := runOracle(t, py, vars, oracleTemplates)
	e := New(Options{LookupEnv: func(string) (string, bool) { return "", false }})
	for i, src := range oracleTemplates {
		w := want[i]
		got, err := e.Template(src, &testVars{vars})
		var je *Error
		switch {
		case w.Undefined != "":
			if !errors.As(err, &je) || je.Kind != Undefined {
				t.Errorf("%q: Ansible: undefined (%s); nodefix: %v, %v", src, w.Undefined, show(got), err)
			}
		case w.Error != "":
			if err == nil {
				t.Errorf("%q: Ansible fails (%s: %s); nodefix gives %s", src, w.Error, w.Msg, show(got))
			} else if errors.As(err, &je) && je.Kind == Undefined {
				t.Errorf("%q: Ansible fails (%s: %s); nodefix says undefined: %v", src, w.Error, w.Msg, err)
			}
		default:
			if err != nil {
				t.Errorf("%q: Ansible gives %s (%s); nodefix fails: %v", src, w.JSON, w.Type, err)
				continue
			}
			if g := show(got); g != w.JSON {
				t.Errorf("%q:\n  Ansible %s (%s)\n  nodefix %s", src, w.JSON, w.Type, g)
			}
		}
	}
}

// TestAnsibleTemplarEnvLookup: lookup('env') and query('env') against
// Ansible, with variables set and unset in the environment.
func TestAnsibleTemplarEnvLookup(t *testing.T) {
	py := ansiblePython(t)
	env := map[string]string{"NODEFIX_T_PASS": "s3cr3t", "NODEFIX_T_EMPTY": "", "NODEFIX_T_LIST": "[1, 2]"}
	templates := []string{
		"{{ lookup('env', 'NODEFIX_T_PASS') }}", "{{ lookup('env', 'NODEFIX_T_UNSET') }}", "{{ lookup('env', 'NODEFIX_T_EMPTY') }}",
		"{{ lookup('env', 'NODEFIX_T_UNSET', default='dflt') }}", "{{ lookup('env', 'NODEFIX_T_PASS', 'NODEFIX_T_UNSET') }}",
		"{{ query('env', 'NODEFIX_T_PASS') }}", "{{ q('env', 'NODEFIX_T_PASS', 'NODEFIX_T_EMPTY') }}", "{{ lookup('env', 'NODEFIX_T_LIST') }}",
		"{{ lookup('env', 'NODEFIX_T_PASS extra words') }}", "{{ lookup('ansible.builtin.env', 'NODEFIX_T_PASS') }}",
		"{{ lookup('env', 'NODEFIX_T_UNSET') | default('x', true) }}", "x-{{ lookup('env', 'NODEFIX_T_PASS') }}",
		"{{ lookup('env', 'NODEFIX_T_PASS', wantlist=True) }}", "{{ lookup('env', 'NODEFIX_T_UNSET', default=undefined_var) }}",
	}
	want := runOracleEnv(t, py, map[string]any{}, templates, env)
	e := New(Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	for i, src := range templates {
		w := want[i]
		got, err := e.Template(src, &testVars{map[string]any{}})
		var je *Error
		switch {
		case w.Undefined != "":
			if !errors.As(err, &je) || je.Kind != Undefined {
				t.Errorf("%q: Ansible: undefined (%s); nodefix: %v, %v", src, w.Undefined, show(got), err)
			}
		case w.Error != "":
			if err == nil {
				t.Errorf("%q: Ansible fails (%s); nodefix gives %s", src, w.Msg, show(got))
			}
		default:
			if err != nil || show(got) != w.JSON {
				t.Errorf("%q: Ansible %s; nodefix %s, %v", src, w.JSON, show(got), err)
			}
		}
	}
}

type oracleResult struct {
	JSON      string `json:"json"`
	Type      string `json:"type"`
	Undefined string `json:"undefined"`
	Error     string `json:"error"`
	Msg       string `json:"msg"`
}

// ansiblePython is the Python that runs ansible-core: the interpreter of
// the ansible command. Without it the oracle tests skip, unless
// NODEFIX_FLEET=required (CI) makes that a failure.
func ansiblePython(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("ansible")
	if err == nil {
		b, rerr := os.ReadFile(bin)
		if rerr == nil && bytes.HasPrefix(b, []byte("#!")) {
			line := strings.Fields(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "#!"))
			if len(line) > 0 {
				py := line[len(line)-1]
				if len(line) > 1 && filepath.Base(line[0]) == "env" {
					py, _ = exec.LookPath(py)
				}
				if py != "" && exec.Command(py, "-c", "import ansible.template").Run() == nil {
					return py
				}
			}
		}
	}
	if os.Getenv("NODEFIX_FLEET") == "required" {
		t.Fatal("ansible-core's Python not found and NODEFIX_FLEET=required: install ansible-core (.ci/install-deps)")
	}
	t.Skip("ansible-core not found: the engine is compared with Ansible's Templar only where it is installed")
	return ""
}

func runOracle(t *testing.T, py string, vars map[string]any, templates []string) []oracleResult {
	return runOracleEnv(t, py, vars, templates, nil)
}

func runOracleEnv(t *testing.T, py string, vars map[string]any, templates []string, env map[string]string) []oracleResult {
	t.Helper()
	in, err := json.Marshal(map[string]any{"vars": vars, "templates": templates})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/templar.py")
	cmd.Stdin = bytes.NewReader(in)
	home := t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "ANSIBLE_CONFIG=" + filepath.Join(home, "none.cfg"),
		"ANSIBLE_LOCAL_TEMP=" + filepath.Join(home, "tmp")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the Templar oracle failed: %v\n%s", err, stderr.String())
	}
	var res []oracleResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(templates) {
		t.Fatalf("the Templar oracle's answer: %v (%d results for %d templates)\n%s", err, len(res), len(templates), out)
	}
	return res
}

// decodeVars reads JSON as Python does: integers stay integers.
func decodeVars(t *testing.T, s string) map[string]any { return decodeVarsTB(t, s) }

func decodeVarsTB(t testing.TB, s string) map[string]any {
	t.Helper()
	v, ok, err := pycompat.LiteralEvalJSON(s)
	if err != nil || !ok {
		t.Fatalf("oracle vars: %v", err)
	}
	return v.(map[string]any)
}

// show is a value as Python's json.dumps(v, sort_keys=True, indent=4).
func show(v any) string {
	b, err := pycompat.MarshalIndent(v)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}
