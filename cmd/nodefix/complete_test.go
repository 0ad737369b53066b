package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const completeInventory = `[kube_master]
node01 ansible_host=127.0.0.1

[kube_node]
node01
node02 ansible_host=127.0.0.2
worker03 ansible_host=127.0.0.3

[etcd]
`

// completeLine runs `nodefix __complete nodefix LINE` in process.
func completeLine(t *testing.T, dir, line string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	code := run(context.Background(), []string{"nodefix", "__complete", "nodefix", line}, strings.NewReader(""), &stdout, &stderr)
	if code != 0 || stderr.Len() > 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	return stdout.String()
}

// words drops the descriptions.
func words(out string) string {
	var w []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l != "" {
			w = append(w, strings.SplitN(l, "\t", 2)[0])
		}
	}
	return strings.Join(w, " ")
}

func TestComplete(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(completeInventory), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line, want string
	}{
		{"nodefix ", "run check inventory names completion"},
		{"nodefix c", "check completion"},
		{"bin/nodefix ch", "check"},
		{"cd /tmp && nodefix r", "run"},
		{"nodefix completion ", "bash zsh fish"},
		{"nodefix run --ta", "--tasks --task-timeout"},
		{"nodefix check --list-", "--list-hosts --list-tasks"},
		{"nodefix run --tasks ", "all hostname rpm-queries rpmdb longhorn-deps"},
		{"nodefix run --tasks rpm", "rpm-queries rpmdb"},
		{"nodefix run --tasks hostname,rpmdb,", "hostname,rpmdb,rpm-queries hostname,rpmdb,longhorn-deps"},
		{"nodefix run --tasks=hostname,l", "--tasks=hostname,longhorn-deps"},
		{"nodefix run --color ", "auto always never"},
		{"nodefix run -c l", "local"},
		{"nodefix run -i hosts -l ", "all kube_master kube_node node01 node02 worker03"},
		{"nodefix run -i hosts -l kube_node:!n", "kube_node:!node01 kube_node:!node02"},
		{"nodefix run -i hosts -l kube_node:&kube_", "kube_node:&kube_master kube_node:&kube_node"},
		{"nodefix check -ihosts --limit node01,w", "node01,worker03"},
		{"nodefix run --inventory=hosts --limit=kube_m", "--limit=kube_master"},
		{"nodefix run -l node", ""}, // no inventory named: nothing to offer
		{"nodefix run -i hosts -l ~node", ""},
		{"nodefix inventory -i hosts --host n", "node01 node02"},
		{"nodefix inventory -i hosts --graph kube", "kube_master kube_node"},
		{"nodefix run -vv -i hosts -f 5 -l w", "worker03"},
		{"nodefix run -i ", ":files"},
		{"nodefix run --private-key ~/.ssh/id", ":files"},
		{"nodefix names check ", ":files"},
		{"nodefix run --forks ", ""},
		{"nodefix __comp", ""}, // hidden
		{`nodefix run -i "hosts" -l 'kube_no`, "kube_node"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			if got := words(completeLine(t, dir, tc.line)); got != tc.want {
				t.Errorf("%q completes to %q, want %q", tc.line, got, tc.want)
			}
		})
	}
	// Descriptions come with the words.
	if out := completeLine(t, dir, "nodefix run -i hosts -l kube_n"); out != "kube_node\tgroup of 3 hosts\n" {
		t.Errorf("got %q", out)
	}
	if out := completeLine(t, dir, "nodefix run --tasks longhorn"); !strings.HasPrefix(out, "longhorn-deps\tiscsiadm, mount.nfs") {
		t.Errorf("got %q", out)
	}
}

// Every script parses in its shell.
func TestCompletionScriptsParse(t *testing.T) {
	for _, sh := range shells {
		t.Run(sh, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"nodefix", "completion", sh}, strings.NewReader(""), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			path, err := exec.LookPath(sh)
			if err != nil {
				if os.Getenv("NODEFIX_FLEET") == "required" {
					t.Fatalf("%s not installed (make deps)", sh)
				}
				t.Skipf("%s not installed", sh)
			}
			script := filepath.Join(t.TempDir(), "nodefix."+sh)
			os.WriteFile(script, stdout.Bytes(), 0o644)
			if out, err := exec.Command(path, "-n", script).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh, err, out)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"nodefix", "completion", "tcsh"}, strings.NewReader(""), &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "bash, zsh, fish") {
		t.Errorf("completion tcsh: exit %d, %q", code, stderr.String())
	}
}

// The bash script, called as bash calls it, replaces only what bash
// replaces: after the last ":" of a host pattern.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	bin := nodefixBinary(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hosts"), []byte(completeInventory), 0o644)
	script := filepath.Join(dir, "nodefix.bash")
	var stdout bytes.Buffer
	run(context.Background(), []string{"nodefix", "completion", "bash"}, strings.NewReader(""), &stdout, &bytes.Buffer{})
	os.WriteFile(script, stdout.Bytes(), 0o644)
	for _, tc := range []struct {
		line string
		// words as bash splits them (at COMP_WORDBREAKS, ":" and "=" too)
		words []string
		want  string
	}{
		{"nodefix ch", []string{"nodefix", "ch"}, "check"},
		{"nodefix run -i hosts -l kube_node:!no", []string{"nodefix", "run", "-i", "hosts", "-l", "kube_node", ":", "!no"}, "!node01 !node02"},
		{"nodefix run -i hosts -l kube_node:", []string{"nodefix", "run", "-i", "hosts", "-l", "kube_node", ":"}, "all kube_master kube_node node01 node02 worker03"},
		{"nodefix run --color=al", []string{"nodefix", "run", "--color", "=", "al"}, "always"},
		{"nodefix run -i hos", []string{"nodefix", "run", "-i", "hos"}, ""}, // files: left to readline
	} {
		t.Run(tc.line, func(t *testing.T) {
			quoted := make([]string, len(tc.words))
			for i, w := range tc.words {
				quoted[i] = "'" + w + "'"
			}
			prog := `source "$1"
COMP_LINE=$2 COMP_POINT=${#2}
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_WORDS[0]=$3
_nodefix
printf '%s\n' "${COMPREPLY[@]}"`
			cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog, "bash", script, tc.line, bin)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if got := strings.Join(strings.Fields(string(out)), " "); got != tc.want {
				t.Errorf("COMPREPLY %q, want %q", got, tc.want)
			}
		})
	}
}
