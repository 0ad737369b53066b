package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/tasks"
)

const listingInventory = `all:
  vars:
    ansible_user: root
    ansible_port: 1
  children:
    kube_master:
      hosts:
        node01: {ansible_host: 127.0.0.1, k8s_nodename: worker-01}
    kube_node:
      hosts:
        node01:
        node02: {ansible_host: 127.0.0.2, k8s_nodename: worker-02, ansible_become: true, ansible_become_password: hunter2}
        node03: {ansible_host: 127.0.0.3, k8s_nodename: worker-03, ansible_ssh_common_args: "-o ProxyJump=jump@127.0.0.9"}
`

// --list-hosts and --list-tasks print the plan and exit 0. Nothing is
// connected to (every port is 1, where nothing listens) and nothing asked
// (-k and -K would fail here: there is no terminal).
func TestListHostsAndTasks(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(inv, []byte(listingInventory), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"hosts", []string{"run", "-i", inv, "--list-hosts", "-k", "-K"},
			"  pattern: all\n  hosts (3):\n    node01\n    node02\n    node03\n"},
		{"hosts limited", []string{"check", "-i", inv, "--list-hosts", "-l", "kube_node:!node01"},
			"  pattern: kube_node:!node01\n  hosts (2):\n    node02\n    node03\n"},
		{"hosts -v: how each is reached, never a password", []string{"run", "-i", inv, "--list-hosts", "-v", "-l", "node02:node03"},
			"  pattern: node02:node03\n  hosts (2):\n" +
				"    node02  (ssh root@127.0.0.2:1, become root, hostname worker-02)\n" +
				"    node03  (ssh root@127.0.0.3:1, via jump@127.0.0.9, hostname worker-03)\n"},
		{"hosts -v without the hostname task", []string{"run", "-i", inv, "--list-hosts", "-v", "-l", "node01", "--tasks", "rpmdb"},
			"  pattern: node01\n  hosts (1):\n    node01  (ssh root@127.0.0.1:1)\n"},
		{"tasks in run order", []string{"run", "-i", inv, "--list-tasks", "--tasks", "longhorn-deps,hostname"},
			"  pattern: all\n  tasks (2, in this order on each host):\n" +
				"    hostname       " + taskDescriptions[tasks.NameHostname] + "\n" +
				"    longhorn-deps  " + taskDescriptions[tasks.NameLonghornDeps] + "\n"},
		{"tasks in check mode, keeping hostnames", []string{"check", "-i", inv, "--list-tasks", "--tasks", "hostname", "--keep-hostname"},
			"  pattern: all\n  tasks (1, in this order on each host, check mode: nothing is changed):\n" +
				"    hostname  --keep-hostname: renames nothing, gathers and audits identities\n"},
		{"both, as JSON", []string{"run", "-i", inv, "--list-hosts", "--list-tasks", "--tasks", "rpmdb", "-l", "node01", "--json"},
			`{
  "pattern": "node01",
  "hosts": [
    "node01"
  ],
  "tasks": [
    {
      "name": "rpmdb",
      "description": "` + taskDescriptions[tasks.NameRPMDB] + `"
    }
  ]
}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"nodefix"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if got := stdout.String(); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			if strings.Contains(stdout.String()+stderr.String(), "hunter2") {
				t.Error("a password in the listing")
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr %q", stderr.String())
			}
		})
	}
	// What the run would refuse, the listing refuses too.
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"nodefix", "run", "-i", inv, "--list-hosts", "-l", "nomatch"}, strings.NewReader(""), &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "nomatch") {
		t.Errorf("--list-hosts -l nomatch: exit %d, %q", code, stderr.String())
	}
}

func TestEveryTaskHasADescription(t *testing.T) {
	for _, n := range tasks.Names() {
		if taskDescriptions[n] == "" {
			t.Errorf("task %s has no description for --list-tasks", n)
		}
	}
}
