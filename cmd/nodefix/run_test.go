package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/internal/exitcode"
)

// Bad options stop before anything runs, with exit code 1 and a message
// that says what to do.
func TestRunRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "no inventory"},
		{[]string{"run", "-i", "a,b,", "--tasks", "hostname,nope"}, `unknown task "nope"`},
		{[]string{"run", "-i", "a,b,", "-f", "0"}, "--forks 0"},
		{[]string{"run", "-i", "a,b,", "-T", "soon"}, "--timeout"},
		{[]string{"run", "-i", "a,b,", "--connection", "winrm"}, "ssh or local"},
		{[]string{"run", "-i", "a,b,", "--connection", "local", "--tasks", "longhorn-deps"}, "--connection local runs on this machine"},
		{[]string{"run", "-i", "a,b,", "-l", "nomatch"}, "nomatch"},
		{[]string{"run", "-i", "a,b,", "-e", `{"ansible_become": true, "ansible_become_method": "su"}`}, `become method "su" is not supported`},
		{[]string{"check", "-i", "a,b,", "extra"}, `unexpected argument "extra"`},
		{[]string{"run", "-i", "/nonexistent/inventory"}, "/nonexistent/inventory"},
		{[]string{"check", "-i", "a,b,", "--cpuprofile", "/nonexistent/dir/cpu.pprof"}, "--cpuprofile: open /nonexistent/dir/cpu.pprof"},
		{[]string{"check", "-i", "a,b,", "--color", "sometimes"}, "want auto, always or never"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"nodefix"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			if code != exitcode.Usage {
				t.Errorf("exit %d, want %d", code, exitcode.Usage)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q: nothing should have run", stdout.String())
			}
		})
	}
}

// --cpuprofile leaves a profile for go tool pprof (gzipped protobuf),
// whatever the run's outcome.
func TestRunWritesCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	var stdout, stderr bytes.Buffer
	args := []string{"nodefix", "check", "-i", "localhost,", "--connection", "local", "--tasks", "longhorn-deps", "--cpuprofile", path}
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	if code == exitcode.Usage {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Errorf("%s is not a pprof profile (gzip): % x", path, data[:min(len(data), 8)])
	}
}

// --color always colours even a pipe, never and auto (on a pipe) do not.
func TestColorFlag(t *testing.T) {
	for _, tc := range []struct {
		color string
		want  bool
	}{
		{"always", true},
		{"never", false},
		{"auto", false},
	} {
		t.Run(tc.color, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := []string{"nodefix", "check", "-c", "local", "--tasks", "longhorn-deps", "--color", tc.color}
			code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
			if code == exitcode.Usage {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if got := strings.Contains(stdout.String(), "\x1b["); got != tc.want {
				t.Errorf("--color %s: colour %v, want %v:\n%q", tc.color, got, tc.want, stdout.String())
			}
		})
	}
}

// A value of the wrong kind says what the flag expects, in one line, exit
// code 1, and nothing on stdout (no help dumped there).
func TestFlagValueErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-i", "a,", "--rpm-query-max-age", "banana"}, `--rpm-query-max-age "banana": want a duration such as 10m or 90s (see nodefix run --help)`},
		{[]string{"check", "-i", "a,", "--rpm-query-grace=soon"}, `--rpm-query-grace "soon": want a duration such as 10m or 90s (see nodefix check --help)`},
		{[]string{"run", "-i", "a,", "--command-timeout", "5"}, `--command-timeout "5": want a duration such as 10m or 90s`},
		{[]string{"run", "-i", "a,", "--task-timeout", "1h30"}, `--task-timeout "1h30": want a duration such as 10m or 90s`},
		{[]string{"run", "-i", "a,", "-f", "many"}, `-f "many": want a whole number such as 50`},
		{[]string{"run", "-i", "a,", "--forks", "2.5"}, `--forks "2.5": want a whole number such as 50`},
		{[]string{"run", "-i", "a,", "--rpm-backup-keep", "all"}, `--rpm-backup-keep "all": want a whole number such as 3`},
		{[]string{"run", "-i", "a,", "-T", "soon"}, `--timeout "soon": want seconds (10) or a duration (30s)`},
		{[]string{"run", "-i", "a,", "--json=maybe"}, `--json="maybe": --json is a switch`},
		{[]string{"run", "-i", "a,", "--no-such-option"}, `unknown option --no-such-option (see nodefix run --help)`},
		{[]string{"--no-such-option"}, `unknown option --no-such-option (see nodefix --help)`},
		{[]string{"check", "-i", "a,", "-l"}, `-l needs a value (PATTERN) (see nodefix check --help)`},
		{[]string{"run", "-i", "a,", "--task-timeout"}, `--task-timeout needs a duration such as 10m or 90s`},
		{[]string{"inventory", "--list", "--hots", "x"}, `unknown option --hots (see nodefix inventory --help)`},
		{[]string{"names", "check", "--jsn"}, `unknown option --jsn (see nodefix names check --help)`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"nodefix"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			if code != exitcode.Usage {
				t.Errorf("exit %d, want %d", code, exitcode.Usage)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.want)
			}
			if strings.Count(stderr.String(), "\n") != 1 || strings.Contains(stderr.String(), "parse error") {
				t.Errorf("want one line naming what is expected, got %q", stderr.String())
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q", stdout.String())
			}
		})
	}
}

// -v, -vv and -vvv (and their spellings) reach the output: a local check
// of this machine.
func TestVerbosityLevels(t *testing.T) {
	const (
		details = "    details: {"
		exec    = "<localhost> longhorn-deps: EXEC sh -c '# nodefix:longhorn-deps-gather"
		output  = "    stdout ("
		step    = "<localhost> local: commands run on this machine"
	)
	for _, tc := range []struct {
		flags []string
		level int
	}{
		{nil, 0},
		{[]string{"-v"}, 1},
		{[]string{"-vv"}, 2},
		{[]string{"--verbose", "--verbose"}, 2},
		{[]string{"-vvv"}, 3},
		{[]string{"-v", "-v", "-v"}, 3},
		{[]string{"-vvvv"}, 3}, // Ansible's connection debugging: as much as -vvv here
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"nodefix", "check", "-c", "local", "--tasks", "longhorn-deps"}, tc.flags...)
			code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
			if code == exitcode.Usage {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			out := stdout.String()
			for _, c := range []struct {
				text string
				from int
			}{{details, 1}, {exec, 2}, {output, 3}, {step, 3}} {
				if got := strings.Contains(out, c.text); got != (tc.level >= c.from) {
					t.Errorf("%q shown %v at level %d:\n%s", c.text, got, tc.level, out)
				}
			}
		})
	}
}
