package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModuleArgsFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, name := range []string{"args", "run", "check", "names"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"nodefix", filepath.Join(dir, "args")}, true},
		{[]string{"nodefix", "args"}, true},
		// A file named like a subcommand in the working directory does
		// not turn the subcommand into module mode.
		{[]string{"nodefix", "run"}, false},
		{[]string{"nodefix", "check"}, false},
		{[]string{"nodefix", "names"}, false},
		{[]string{"nodefix", "adir"}, false},
		{[]string{"nodefix", "no-such-file"}, false},
		{[]string{"nodefix", "--version"}, false},
		{[]string{"nodefix", "args", "extra"}, false},
		{[]string{"nodefix"}, false},
	}
	for _, tt := range tests {
		if _, got := moduleArgsFile(tt.args); got != tt.want {
			t.Errorf("moduleArgsFile(%q) = %t, want %t", tt.args, got, tt.want)
		}
	}
}

func TestModuleModeAnswersOneJSONObject(t *testing.T) {
	path := filepath.Join(t.TempDir(), "args")
	if err := os.WriteFile(path, []byte(`{"tasks": ["hostname", "reboot"], "_ansible_check_mode": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	rc := run(context.Background(), []string{"nodefix", path}, strings.NewReader(""), &stdout, &stderr)
	if rc != 1 {
		t.Errorf("exit %d, want 1 (failed, as Ansible's binary modules exit)", rc)
	}
	var res map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not one JSON object: %v: %q", err, stdout.String())
	}
	if res["failed"] != true || !strings.Contains(res["msg"].(string), `unknown task "reboot"`) {
		t.Errorf("result %v", res)
	}
}

func TestNamesCheck(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantRC     int
		wantStdout string
		wantStderr string
	}{
		{name: "unique", args: []string{"names", "check"}, stdin: `{"a": "master-01", "b": "worker-01"}`,
			wantStdout: "the 2 planned hostnames are valid and unique"},
		{name: "collision", args: []string{"names", "check", "-"}, stdin: `{"10.0.0.4": "worker-01", "10.0.0.5": "worker-01"}`,
			wantRC: 1, wantStderr: `hosts 10.0.0.4, 10.0.0.5 would all be named "worker-01"`},
		{name: "collision as JSON", args: []string{"names", "check", "--json"}, stdin: `{"a": "x", "b": "x"}`,
			wantRC: 1, wantStdout: `"conflicts":[{"name":"x","hosts":["a","b"]}]`},
		{name: "not JSON", args: []string{"names", "check"}, stdin: `a=x`, wantRC: 1, wantStderr: "names check: stdin: is a string that is not a JSON object"},
		{name: "empty", args: []string{"names", "check"}, stdin: ``, wantRC: 1, wantStderr: "no input"},
		{name: "missing file", args: []string{"names", "check", "/nonexistent/names.json"}, wantRC: 1, wantStderr: "/nonexistent/names.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			rc := run(context.Background(), append([]string{"nodefix"}, tt.args...), strings.NewReader(tt.stdin), &stdout, &stderr)
			if rc != tt.wantRC {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", rc, tt.wantRC, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
