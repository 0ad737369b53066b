package pycompat

import (
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// The expectations below were taken from ansible-inventory 2.14 /
// python3.11 (see TestLiteralEvalAgainstPython for the live comparison).
func TestLiteralEval(t *testing.T) {
	cases := []struct {
		in   string
		want string // JSON of the value, or "STR" when Python keeps the text
	}{
		{"1450", "1450"}, {"''", `""`}, {`"6443"`, `"6443"`}, {"true", "STR"}, {"True", "true"},
		{"1.5", "1.5"}, {"None", "null"}, {"[1,2]", "[1,2]"}, {"{'a':1}", `{"a":1}`},
		{"0x10", "16"}, {"1_000", "1000"}, {"-5", "-5"}, {"010", "STR"}, {"00", "0"},
		{"(1,2)", "[1,2]"}, {"(1,)", "[1]"}, {"()", "[]"}, {"u'x'", `"x"`}, {"b'x'", `"x"`},
		{"-0x10", "-16"}, {"+3", "3"}, {"1e3", "1000"}, {"nan", "STR"}, {".5", "0.5"}, {"5.", "5"},
		{"0o17", "15"}, {"0b101", "5"}, {"'a' 'b'", `"ab"`}, {`"a\nb"`, `"a\nb"`}, {`'\x41'`, `"A"`},
		{`r'a\n'`, `"a\\n"`}, {"{1: 'a'}", `{"1":"a"}`}, {"--5", "STR"}, {"not True", "STR"},
		{"[1,2][0]", "STR"}, {"'''x'''", `"x"`}, {"1__0", "STR"}, {"1_", "STR"}, {"0_0", "0"},
		{"0x_1f", "31"}, {"f'x'", "STR"}, {"Ellipsis", "STR"}, {"[1,]", "[1]"}, {"-True", "STR"},
		{"-(1)", "-1"}, {"(1)", "1"}, {"-'a'", "STR"}, {"5 # five", "5"}, {"01.5", "1.5"},
		{"0_1", "STR"}, {"1_0.0_1", "10.01"}, {`'\d'`, `"\\d"`}, {`'\101'`, `"A"`},
		{`'\u00e9'`, `"é"`}, {"b'é'", "STR"}, {"'a' b'b'", "STR"}, {"U'x'", `"x"`}, {`Rb'\n'`, `"\\n"`},
		{"[1, 2, # x", "STR"}, {"((1))", "1"}, {"- 1", "-1"}, {"+-1", "STR"}, {"1, 2", "[1,2]"},
		{"x # comment", "STR"}, {"spaced value", "STR"}, {"", "STR"}, {"-(-1)", "STR"}, {"1+2", "STR"},
		{"a b", "STR"}, {"{}", "{}"}, {"[]", "[]"}, {"{'a': [1, {'b': None}]}", `{"a":[1,{"b":null}]}`},
	}
	for _, c := range cases {
		v, ok, err := LiteralEval(c.in)
		if err != nil {
			t.Errorf("LiteralEval(%q): unexpected error %v", c.in, err)
			continue
		}
		got := "STR"
		if ok {
			b, _ := json.Marshal(v)
			got = string(b)
		}
		if got != c.want {
			t.Errorf("LiteralEval(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestLiteralEvalUnrepresentable(t *testing.T) {
	for _, in := range []string{"1j", "1+2j", "{1,2}", "...", "{[1]: 2}", "set()", "-1-2j"} {
		if _, _, err := LiteralEval(in); err == nil {
			t.Errorf("LiteralEval(%q): want an error", in)
		}
	}
}

func TestFloatRepr(t *testing.T) {
	for f, want := range map[float64]string{
		1000: "1000.0", 1e16: "1e+16", 1e-5: "1e-05", 123456789.123456789: "123456789.12345679",
		0.1: "0.1", 1e22: "1e+22", 1.5: "1.5", 0.0001: "0.0001", 685230.15: "685230.15", 1.5e16: "1.5e+16",
		-2.5: "-2.5", 0: "0.0", 9999999999999998: "9999999999999998.0",
	} {
		if got := FloatRepr(f); got != want {
			t.Errorf("FloatRepr(%v) = %s, want %s", f, got, want)
		}
	}
}

func TestSplit(t *testing.T) {
	cases := []struct {
		in       string
		comments bool
		want     []string
	}{
		{`h1 a=1 b='x y' c="q\"r" d=e#f g`, true, []string{"h1", "a=1", "b=x y", `c=q"r`, "d=e"}},
		{`a "b\n" 'c\'`, false, []string{"a", `b\n`, `c\`}},
		{`a "b`, false, nil},
		{`a\`, false, nil},
		{`-o ProxyJump="u@b:22" -o 'StrictHostKeyChecking no'`, false, []string{"-o", "ProxyJump=u@b:22", "-o", "StrictHostKeyChecking no"}},
		{`x=''`, true, []string{"x="}},
		{`a\ b c`, true, []string{"a b", "c"}},
		{`"a\nb"`, true, []string{`a\nb`}},
		{`'' ""`, true, []string{"", ""}},
	}
	for _, c := range cases {
		got, err := Split(c.in, c.comments)
		if c.want == nil {
			if err == nil {
				t.Errorf("Split(%q) = %q, want error", c.in, got)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Errorf("Split(%q) = %q, %v; want %q", c.in, got, err, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("Split(%q) = %q; want %q", c.in, got, c.want)
				break
			}
		}
	}
}

// TestAgainstPython feeds the same inputs to python3's ast.literal_eval and
// shlex.split and compares: Python is the judge. Skips without python3
// (fails with NODEFIX_FLEET=required).
func TestAgainstPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("NODEFIX_FLEET") == "required" {
			t.Fatal("python3 not found and NODEFIX_FLEET=required")
		}
		t.Skip("python3 not found")
	}
	inputs := []string{
		"1450", "''", `"6443"`, "true", "True", "1.5", "None", "[1,2]", "{'a':1}", "0x10", "1_000",
		"-5", "010", "00", "(1,2)", "u'x'", "b'x'", "-0x10", "+3", "123456789012345678901234567890",
		"1e3", "1e999", "nan", "-1.5e-3", ".5", "5.", "0o17", "0b101", "'a' 'b'", `"a\nb"`, `'\x41'`,
		`r'a\n'`, "[1, [2, {'k': (3,)}]]", "{1: 'a'}", "--5", "[1,2][0]", "'''x'''", "yes", "~",
		"1__0", "1_", "0_0", "00_0", "1E5", "1e+5", "0x_1f", "-(1)", "(1)", "-'a'", "5 # five",
		"01.5", "0_1", "1_0.0_1", `'\d'`, `'\101'`, `'\u00e9'`, "'é'", "b'é'", "1.0e16", "1e-5",
		"-0.0", "'a' b'b'", "U'x'", `Rb'\n'`, "((1))", "- 1", "+-1", "1, 2", "1,", "x=1", "a.b",
		"0xg", "1e", "1.e5", "1_000_000.5e-1_0", "[1 2]", "{'a' 'b': 1}", "'\\''", `"\"" '"'`,
		"(1, 2,)", "[(),[]]", "0b", "0o8", "9" + strings.Repeat("9", 30), "-9223372036854775808",
		"'\\t\\x00'", "1if 1else 2", "0.1e-400", "{'a':1}['a']", "'a'\t", "{None: 1}", "\t5",
	}
	script := `
import ast, json, shlex, sys
for line in sys.stdin.read().split("\0")[:-1]:
    try:
        v = ast.literal_eval(line)
        if isinstance(v, tuple): v = list(v)
        if isinstance(v, bytes): v = v.decode()
        out = "V" + json.dumps(v, sort_keys=True, default=lambda o: list(o) if isinstance(o, tuple) else str(o))
    except (ValueError, SyntaxError):
        out = "STR"
    except Exception as e:
        out = "ERR"
    print(out)
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(strings.Join(inputs, "\x00") + "\x00")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("python3 answered %d lines for %d inputs", len(lines), len(inputs))
	}
	for i, in := range inputs {
		v, ok, err := LiteralEval(in)
		var got string
		switch {
		case err != nil:
			got = "ERR"
		case !ok:
			got = "STR"
		default:
			b, merr := MarshalIndent(v)
			if merr != nil {
				t.Fatalf("MarshalIndent: %v", merr)
			}
			got = "V" + string(b)
		}
		want := lines[i]
		if strings.HasPrefix(want, "V") && strings.HasPrefix(got, "V") {
			var a, b any
			if json.Unmarshal([]byte(want[1:]), &a) == nil && json.Unmarshal([]byte(got[1:]), &b) == nil && reflect.DeepEqual(a, b) {
				continue
			}
			if want == "VInfinity" && got == "VInfinity" {
				continue
			}
		}
		if got != want {
			t.Errorf("literal_eval(%q): python %s, nodefix %s", in, want, got)
		}
	}
}

// TestLiteralEvalJSON: Ansible's conversion of a rendered template
// (ansible_eval_concat) reads true, false and null as JSON does, and
// keeps what is not a literal as text.
func TestLiteralEvalJSON(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // JSON of the value, or "STR"
	}{
		{"[true, false, null]", "[true,false,null]"}, {"True", "true"}, {"False", "false"}, {"true", "true"},
		{"{'a': null}", `{"a":null}`}, {"[1, 'x']", `[1,"x"]`}, {"[nope]", "STR"}, {" [1]", "STR"},
		{"{'k': [1, 2]}", `{"k":[1,2]}`}, {"[1, 2", "STR"},
	} {
		v, ok, err := LiteralEvalJSON(c.in)
		got := "STR"
		if ok && err == nil {
			b, _ := json.Marshal(v)
			got = string(b)
		}
		if got != c.want {
			t.Errorf("LiteralEvalJSON(%q) = %s (%v), want %s", c.in, got, err, c.want)
		}
	}
	if _, ok, _ := LiteralEval("true"); ok {
		t.Error("LiteralEval(\"true\") is a literal: only LiteralEvalJSON reads JSON names")
	}
}

// TestDecodeEscapes: a Jinja2 string literal's escapes, as Python's
// unicode-escape decodes them.
func TestDecodeEscapes(t *testing.T) {
	for in, want := range map[string]string{
		`plain`: "plain", `a\nb`: "a\nb", `\\`: `\`, `\'`: "'", `\x41\u00e9`: "Aé", `\101`: "A",
		`\d`: `\d`, `\.`: `\.`, `tab\there`: "tab\there",
	} {
		if got, err := DecodeEscapes(in); err != nil || got != want {
			t.Errorf("DecodeEscapes(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`\x4`, `end\`, `\N{DASH}`} {
		if got, err := DecodeEscapes(in); err == nil {
			t.Errorf("DecodeEscapes(%q) = %q, want an error", in, got)
		}
	}
}
