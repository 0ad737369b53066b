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
