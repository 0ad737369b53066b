package inventory

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBadInventories: every kind of bad input is an error that names the
// file and, where there is one, the line — never a panic, never an empty
// inventory. Where Ansible also refuses the file, the test checks that it
// does (ansibleRejects), so the two agree on what is broken.
func TestBadInventories(t *testing.T) {
	cases := []struct {
		name, file, content string
		wantLine            int    // 0: no line expected
		want                string // substring of the error
		ansibleRejects      bool   // ansible-inventory fails to parse it too
	}{
		{"bad yaml", "inv.yml", "all:\n  hosts:\n    a: [1\n", 3, "YAML", true},
		{"yaml list", "inv.yml", "- a\n- b\n", 0, "must be a mapping", true},
		{"unknown section type", "hosts", "[web:nope]\nh1\n", 1, "unknown type", true},
		{"spaces in section", "hosts", "[web servers]\nh1\n", 1, "invalid section", true},
		{"host var without =", "hosts", "[web]\nh1 novalue\n", 2, "key=value", true},
		{"unclosed quote", "hosts", "[web]\nh1 a='x\n", 2, "No closing quotation", true},
		{"vars without =", "hosts", "[web]\nh1\n[web:vars]\njustakey\n", 4, "key=value", true},
		{"reversed range", "hosts", "[web]\nh[5:1]\n", 2, "no host", false},
		{"letter-digit range", "hosts", "[web]\nh[a:9]\n", 2, "neither a number nor a letter", true},
		{"range without end", "hosts", "[web]\nh[1:]\n", 2, "must have an end", true},
		{"unequal padding", "hosts", "[web]\nh[01:5]\n", 2, "same length", true},
		{"zero step", "hosts", "[web]\nh[1:5:0]\n", 2, "step must not be zero", true},
		{"too many hosts", "hosts", "[web]\nh[0:99999999]\n", 2, "more than", false},
		{"own ancestor", "hosts", "[a:children]\nb\n[b:children]\na\n[a]\nh1\n[b]\nh2\n", 0, "recursive dependency loop", true},
		{"own child", "hosts", "[a]\nh1\n[a:children]\na\n", 4, "child of itself", true},
		{"children naming nothing", "hosts", "[a]\nh1\n[a:children]\nghost\n", 4, "never defines", true},
		{"vars for undefined group", "hosts", "[h]\nh1\n[ghost:vars]\nx=1\n", 3, "never defines", true},
		{"ends in colon", "hosts", "[web]\nh1:\n", 2, "reserved for a port", true},
		{"yaml document marker in ini", "hosts.ini", "---\n", 1, "YAML", true},
		{"empty inventory", "hosts", "# nothing here\n", 0, "no hosts", false},
		{"empty yaml", "inv.yml", "", 0, "no hosts", false},
		{"yaml tab indent", "inv.yml", "all:\n\thosts:\n", 2, "YAML", true},
		{"yaml two documents", "inv.yml", "all:\n  hosts: {a: }\n---\nb: {}\n", 3, "single document", true},
		{"complex literal", "hosts", "[web]\nh1 x=1j\n", 2, "complex", false},
		{"plugin config", "inv.yml", "plugin: aws_ec2\nregions: [x]\n", 0, "inventory plugin", true},
		{"script", "inv.sh", "#!/bin/sh\necho '{}'\n", 1, "inventory script", false},
		{"int host name", "inv.yml", "all:\n  hosts:\n    10:\n", 3, "must be a string", true},
		{"bad priority", "inv.yml", "all:\n  children:\n    g:\n      vars: {ansible_group_priority: high}\n      hosts: {h: }\n", 4, "ansible_group_priority", true},
	}
	var r *ansibleRunner
	if _, err := exec.LookPath("ansible-inventory"); err == nil || os.Getenv("NODEFIX_FLEET") == "required" {
		r = newAnsibleRunner(t)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, c.file)
			if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			inv, err := Load(context.Background(), []string{path}, Options{})
			if err == nil {
				t.Fatalf("Load accepted it: %d hosts", len(inv.Hosts()))
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error does not name the file %s: %v", path, err)
			}
			if c.wantLine > 0 && !strings.Contains(msg, path+":"+strconv.Itoa(c.wantLine)+":") {
				t.Errorf("error does not give line %d: %v", c.wantLine, err)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not say %q", msg, c.want)
			}
			if r != nil && c.ansibleRejects {
				_, stderr, _ := r.run("-i", path, "--list")
				if !strings.Contains(stderr, "Failed to parse") && !strings.Contains(stderr, "Unable to parse") {
					t.Errorf("ansible-inventory accepts this input, nodefix refuses it:\n%s", stderr)
				}
			}
		})
	}
}

func TestBadSources(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"missing":        filepath.Join(dir, "nope"),
		"broken symlink": mkSymlink(t, dir),
		"empty dir":      mkDir(t, dir, "empty"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(context.Background(), []string{src}, Options{})
			if err == nil || !strings.Contains(err.Error(), src) {
				t.Errorf("Load(%s) = %v, want an error naming it", src, err)
			}
		})
	}
	if _, err := Load(context.Background(), nil, Options{}); err == nil {
		t.Error("Load with no source: want an error")
	}
	if os.Geteuid() != 0 {
		p := filepath.Join(dir, "unreadable")
		if err := os.WriteFile(p, []byte("h1\n"), 0o000); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(context.Background(), []string{p}, Options{}); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("unreadable file: %v", err)
		}
	}
}

func TestBadVarsFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "hosts", "[web]\nh1\n")
	write(t, dir, "group_vars/web.yml", "- not\n- a mapping\n")
	_, err := Load(context.Background(), []string{filepath.Join(dir, "hosts")}, Options{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "group_vars/web.yml")) {
		t.Errorf("list in group_vars: %v", err)
	}
	write(t, dir, "group_vars/web.yml", "a: [\n")
	_, err = Load(context.Background(), []string{filepath.Join(dir, "hosts")}, Options{})
	if err == nil || !strings.Contains(err.Error(), "web.yml:") {
		t.Errorf("bad YAML in group_vars: %v", err)
	}
	write(t, dir, "group_vars/web.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162\n")
	_, err = Load(context.Background(), []string{filepath.Join(dir, "hosts")}, Options{})
	if err == nil || !strings.Contains(err.Error(), "ansible-vault") {
		t.Errorf("vault file: %v", err)
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkSymlink(t *testing.T, dir string) string {
	p := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func mkDir(t *testing.T, dir, name string) string {
	p := filepath.Join(dir, name)
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
