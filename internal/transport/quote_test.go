package transport

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// nastyArgs are arguments that break naive quoting.
var nastyArgs = []string{
	"",
	"plain",
	"two words",
	"it's",
	`"double"`,
	`'single'`,
	"''",
	`\`,
	`back\slash\`,
	"$HOME",
	"${PATH}",
	"$(id -u)",
	"`id -u`",
	"*",
	"/etc/*.conf",
	"[a-z]?",
	"~",
	"~root",
	"=cmd",
	"a;b",
	"a|b",
	"a&b",
	"a>b",
	"<x",
	"line1\nline2",
	"trailing newline\n",
	"\ttab",
	"!bang",
	"#comment",
	"{a,b}",
	"%1",
	"ünïcødé ✓ 日本",
	"\x01\x7f",
	"-n",
	"--",
	"a'b\"c$d`e\\f",
	strings.Repeat("x'", 200),
}

func TestShellQuoteRoundTripsThroughRealShells(t *testing.T) {
	for _, shell := range []string{"sh", "dash", "bash", "zsh", "ksh", "mksh"} {
		path, err := exec.LookPath(shell)
		if err != nil {
			continue
		}
		t.Run(shell, func(t *testing.T) {
			line, err := ShellJoin(append([]string{"printf", `%s\0`}, nastyArgs...))
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(path, "-c", line).Output()
			if err != nil {
				t.Fatalf("%s -c %q: %v", shell, line, err)
			}
			got := strings.Split(string(out), "\x00")
			got = got[:len(got)-1] // after the last NUL
			if len(got) != len(nastyArgs) {
				t.Fatalf("%s read %d arguments, want %d: %q", shell, len(got), len(nastyArgs), got)
			}
			for i := range nastyArgs {
				if got[i] != nastyArgs[i] {
					t.Errorf("%s: argument %d = %q, want %q", shell, i, got[i], nastyArgs[i])
				}
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"abc", "abc"},
		{"/usr/sbin/iscsiadm", "/usr/sbin/iscsiadm"},
		{"--dbpath=/x", "'--dbpath=/x'"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"~", "'~'"},
		{"*", "'*'"},
	} {
		if got := ShellQuote(tc.in); got != tc.want {
			t.Errorf("ShellQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestShellJoinRefuses(t *testing.T) {
	if _, err := ShellJoin(nil); err == nil {
		t.Error("ShellJoin(nil): no error")
	}
	_, err := ShellJoin([]string{"echo", "a\x00b"})
	if err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("ShellJoin with NUL: err = %v, want a NUL error", err)
	}
}

func FuzzShellQuote(f *testing.F) {
	for _, a := range nastyArgs {
		f.Add(a)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return
		}
		line, err := ShellJoin([]string{"printf", "%s", s})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", "-c", line).Output()
		if err != nil {
			t.Fatalf("sh -c %q: %v", line, err)
		}
		if !bytes.Equal(out, []byte(s)) {
			t.Fatalf("sh read %q back as %q", s, out)
		}
	})
}
