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
		{[]string{"inventory", "-i", kubeasz, "--host", "192.168.1.1", "--connection-of", "192.168.1.1"}, 1, "exactly one of"},
		{[]string{"inventory", "-i", kubeasz, "--connection-of", "nosuch"}, 1, `no host named "nosuch"`},
		{[]string{"inventory", "-i", kubeasz, "--connection-of", "192.168.1.1", "-l", "kube_node"}, 1, "not in --limit"},
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

// TestInventoryConnectionOf: --connection-of shows the connection nodefix
// will use, its templates evaluated, secrets hidden; --host keeps the
// templates as ansible-inventory prints them.
func TestInventoryConnectionOf(t *testing.T) {
	t.Setenv("NODEFIX_TEST_SUDO_PASS", "s3cr3t-sudo")
	t.Setenv("NODEFIX_TEST_SSH_PASS", "s3cr3t-ssh")
	dir := "../../testdata/templated/"
	kubeaszHosts := dir + "01-kubeasz-3.6-config/hosts"
	for _, c := range []struct {
		args  []string
		code  int
		lines []string
	}{
		{[]string{"-i", dir + "05-hostvars-private-ip/inventory.yml", "--connection-of", "node-b"}, 0,
			[]string{"host:           node-b", "address:        10.20.30.12", "port:           22 (default)", "jump hosts:     (none)"}},
		{[]string{"-i", dir + "08-proxyjump/inventory.yml", "--connection-of", "n2"}, 0,
			[]string{"user:           admin", "jump hosts:     admin@bastion1.example.com", "host keys:      StrictHostKeyChecking=yes,"}},
		{[]string{"-i", dir + "07-port-var/inventory.yml", "--connection-of", "p-tmpl"}, 0,
			[]string{"port:           2022", "timeout:        10s"}},
		{[]string{"-i", dir + "09-become-password-env/hosts", "--connection-of", "n1"}, 0,
			[]string{"password:       (set, hidden)", "become:         yes, sudo to root, password (set, hidden)"}},
		{[]string{"-i", kubeaszHosts, "-e", "@../../testdata/kubeasz/config-3.5.yml", "--connection-of", "192.168.1.5"}, 0,
			[]string{"node name:      192.168.1.5 (from K8S_NODENAME)"}},
		{[]string{"-i", kubeaszHosts, "-e", "@../../testdata/kubeasz/config.yml", "--connection-of", "192.168.1.5"}, 0,
			[]string{"node name:      k8s-192-168-1-5 (from K8S_NODENAME)"}},
		{[]string{"-i", dir + "11-undefined/inventory.yml", "--connection-of", "u1"}, 1,
			[]string{"host u1: variable ansible_host: 'undefined_addr' is undefined", "-e undefined_addr=VALUE"}},
		{[]string{"-i", dir + "11-undefined/inventory.yml", "--connection-of", "u3"}, 0,
			[]string{"node name:      refused: host u3: variable K8S_NODENAME: 'nope' is undefined"}},
	} {
		code, out, errs := runCLI(t, append([]string{"inventory"}, c.args...)...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", c.args, code, c.code, out, errs)
			continue
		}
		for _, l := range c.lines {
			if !strings.Contains(out+errs, l) {
				t.Errorf("%v: output lacks %q:\n%s%s", c.args, l, out, errs)
			}
		}
		for _, secret := range []string{"s3cr3t-sudo", "s3cr3t-ssh"} {
			if strings.Contains(out+errs, secret) {
				t.Errorf("%v: a password is in the output:\n%s%s", c.args, out, errs)
			}
		}
	}
	// --host prints the variables as written, as ansible-inventory does.
	code, out, _ := runCLI(t, "inventory", "-i", dir+"09-become-password-env/hosts", "--host", "n1")
	if code != 0 || !strings.Contains(out, `"ansible_become_password": "{{ lookup('env', 'NODEFIX_TEST_SUDO_PASS') }}"`) {
		t.Errorf("--host n1: exit %d, want the raw template:\n%s", code, out)
	}
}
