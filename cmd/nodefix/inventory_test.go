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

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"nodefix"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

const kubeasz = "../../testdata/inventories/01-kubeasz-multi-node/hosts"

func TestInventoryCommand(t *testing.T) {
	for _, c := range []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"inventory", "-i", kubeasz, "--list"}, 0, `"kube_master": {`},
		{[]string{"inventory", "-i", kubeasz, "--host", "192.168.1.4"}, 0, `"k8s_nodename": "worker-01"`},
		{[]string{"inventory", "-i", kubeasz, "--graph"}, 0, "  |--@kube_node:\n  |  |--192.168.1.4"},
		{[]string{"inventory", "-i", kubeasz, "--graph", "kube_node"}, 0, "@kube_node:\n  |--192.168.1.4"},
		{[]string{"inventory", "-i", kubeasz, "--list", "--limit", "kube_node"}, 0, `"192.168.1.5"`},
		{[]string{"inventory", "-i", kubeasz, "--host", "192.168.1.1", "-e", "SECURE_PORT=7443", "-e", `{"x": [1]}`}, 0, `"SECURE_PORT": "7443"`},
		{[]string{"inventory", "-i", "h1,h2:2200,", "--host", "h2"}, 0, `"ansible_port": 2200`},
		{[]string{"inventory", "-i", kubeasz}, 1, "exactly one of"},
		{[]string{"inventory", "--list"}, 1, "-i"},
		{[]string{"inventory", "-i", kubeasz, "--list", "--graph"}, 1, "exactly one of"},
		{[]string{"inventory", "-i", kubeasz, "--host", "nosuch"}, 1, `no host named "nosuch"`},
		{[]string{"inventory", "-i", kubeasz, "--list", "--limit", "nosuch"}, 1, `"nosuch"`},
		{[]string{"inventory", "-i", kubeasz, "--graph", "nosuch"}, 1, `no group "nosuch"`},
		{[]string{"inventory", "-i", "/nonexistent/hosts", "--list"}, 1, "/nonexistent/hosts"},
		{[]string{"inventory", "-i", kubeasz, "--list", "-e", "/abs.yml"}, 1, "@"},
	} {
		code, out, errs := runCLI(t, c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", c.args, code, c.code, out, errs)
			continue
		}
		if !strings.Contains(out+errs, c.contains) {
			t.Errorf("%v: output does not contain %q\nstdout: %s\nstderr: %s", c.args, c.contains, out, errs)
		}
	}
}

func TestInventoryBadFileExitCode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(p, []byte("[web]\nh[5:1]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "inventory", "-i", p, "--list")
	if code != 1 || !strings.Contains(errs, p+":2:") {
		t.Errorf("exit %d, stderr %q: want 1 and the file:line", code, errs)
	}
}

// TestInventoryListByteForByte: for kubeasz's example the CLI prints what
// ansible-inventory prints, byte for byte.
func TestInventoryListByteForByte(t *testing.T) {
	bin, err := exec.LookPath("ansible-inventory")
	if err != nil {
		if os.Getenv("NODEFIX_FLEET") == "required" {
			t.Fatal("ansible-inventory not found and NODEFIX_FLEET=required")
		}
		t.Skip("ansible-inventory not found")
	}
	tmp := t.TempDir()
	abs, _ := filepath.Abs(kubeasz)
	for _, args := range [][]string{{"--list"}, {"--host", "192.168.1.2"}, {"--graph"}} {
		cmd := exec.Command(bin, append([]string{"-i", abs}, args...)...)
		cmd.Dir = tmp
		cmd.Env = append(os.Environ(), "HOME="+tmp, "ANSIBLE_CONFIG="+filepath.Join(tmp, "none.cfg"), "ANSIBLE_LOCAL_TEMP="+filepath.Join(tmp, "t"))
		want, err := cmd.Output()
		if err != nil {
			t.Fatalf("ansible-inventory %v: %v", args, err)
		}
		code, got, errs := runCLI(t, append([]string{"inventory", "-i", abs}, args...)...)
		if code != 0 || got != string(want) {
			t.Errorf("%v: exit %d\nnodefix:\n%s%s\nansible-inventory:\n%s", args, code, got, errs, want)
		}
	}
}
