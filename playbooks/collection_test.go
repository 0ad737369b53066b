package playbooks_test

// Issue 16: the nodefix.longhorn collection, built as `make collection`
// builds it (playbooks/collection/build and the real ansible-galaxy),
// installed with `ansible-galaxy collection install` into a temporary
// collections path and used by fully qualified name from a directory with
// no playbooks and no library/ anywhere.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/internal/module"
	"github.com/nodefix/nodefix/internal/testfleet"
)

// A version as git describe prints it between releases: the build must
// turn it into the semantic version ansible-galaxy requires.
const (
	collectionDescribe = "v1.2.3-4-gabc1234-dirty"
	collectionVersion  = "1.2.4-dev.4+gabc1234.dirty"
)

// installedCollection is nodefix.longhorn installed for a test.
type installedCollection struct {
	*workspace
	// Root is the installed collection (…/ansible_collections/nodefix/longhorn).
	Root string
	// Sums are the binaries' SHA-256 by name (dist/SHA256SUMS).
	Sums map[string]string
}

func installCollection(t *testing.T, forks int) *installedCollection {
	t.Helper()
	dir := t.TempDir()
	w := &workspace{Dir: dir, env: isolatedEnv(t, dir, forks)}
	dist := distDir(t, w)

	out := filepath.Join(dir, "out")
	build := exec.Command(goTool(t), "run", "./playbooks/collection/build",
		"-dist", dist, "-out", out, "-version", collectionDescribe)
	build.Dir = repoRoot(t)
	// distDir leaves GOOS/GOARCH set for the arm64 build: the builder
	// runs here.
	build.Env = append(append([]string(nil), w.env...), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the collection: %v\n%s", err, b)
	}
	tarball := filepath.Join(out, "nodefix-longhorn-"+collectionVersion+".tar.gz")
	if _, err := os.Stat(tarball); err != nil {
		t.Fatalf("the build made no %s: %v", filepath.Base(tarball), err)
	}

	paths := filepath.Join(dir, "collections")
	w.env = append(w.env, "ANSIBLE_COLLECTIONS_PATH="+paths)
	if o, rc := w.ansible(t, "ansible-galaxy", "collection", "install", "-p", paths, tarball); rc != 0 {
		t.Fatalf("ansible-galaxy collection install: exit %d:\n%s", rc, o)
	}
	c := &installedCollection{workspace: w, Root: filepath.Join(paths, "ansible_collections", "nodefix", "longhorn"), Sums: map[string]string{}}
	data, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			c.Sums[f[1]] = f[0]
		}
	}
	// No library/ directory anywhere: the module can only come from the
	// collection.
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "library" {
			t.Fatalf("a library directory in the test's tree: %s", p)
		}
		return nil
	})
	return c
}

// playbook runs a collection playbook (nodefix.longhorn.NAME) or, for a
// name ending in .yml, a playbook file of the workspace.
func (c *installedCollection) playbook(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	if !strings.HasSuffix(name, ".yml") {
		name = "nodefix.longhorn." + name
	}
	return c.ansible(t, "ansible-playbook", append([]string{name}, args...)...)
}

func (c *installedCollection) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(c.Dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// binaryDir is where the collection keeps the binary of digest on a node
// for a connection user's home.
func binaryPath(home, digest string) string {
	return home + "/.ansible/nodefix/" + digest + "/nodefix"
}

// onNode runs a script on n (directly, not over ssh) and returns its
// trimmed output.
func onNode(t *testing.T, n *testfleet.Node, script string, args ...string) string {
	t.Helper()
	out, err := n.Sh(context.Background(), script, args...)
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	return strings.TrimSpace(out)
}

// fileIdentity is what changes when a file is written again or replaced:
// inode, change time and modification time (nanoseconds).
func fileIdentity(t *testing.T, n *testfleet.Node, path string) string {
	t.Helper()
	return onNode(t, n, `stat -c '%i %.9Z %.9Y' "$1"`, path)
}

// TestCollectionContent: the tarball installs; ansible-doc documents
// exactly the parameters the module accepts and every field of its
// result; the collection's playbooks and role parse; its playbooks, task
// and vars files are nodefix's playbooks/ byte for byte; its binaries are
// those of make dist.
func TestCollectionContent(t *testing.T) {
	if _, err := lookAnsible(); err != nil {
		if os.Getenv(testfleet.EnvRequired) == "required" {
			t.Fatalf("%v (%s=required)", err, testfleet.EnvRequired)
		}
		t.Skipf("%v; set %s=required to make this a failure", err, testfleet.EnvRequired)
	}
	c := installCollection(t, 1)

	out, rc := c.ansible(t, "ansible-doc", "--json", "nodefix.longhorn.remediate")
	if rc != 0 {
		t.Fatalf("ansible-doc: exit %d:\n%s", rc, out)
	}
	var docs map[string]struct {
		Doc struct {
			Options map[string]struct {
				Type    string `json:"type"`
				Default any    `json:"default"`
			} `json:"options"`
		} `json:"doc"`
		Return   map[string]any `json:"return"`
		Examples string         `json:"examples"`
	}
	if err := json.Unmarshal([]byte(out), &docs); err != nil {
		t.Fatalf("ansible-doc --json: %v\n%s", err, out)
	}
	doc, ok := docs["nodefix.longhorn.remediate"]
	if !ok {
		t.Fatalf("ansible-doc --json has no nodefix.longhorn.remediate:\n%s", out)
	}
	var want, got []string
	for _, o := range module.Options() {
		want = append(want, o.Name)
		if d := doc.Doc.Options[o.Name]; d.Type != o.Type {
			t.Errorf("ansible-doc: option %s has type %q, the module %q", o.Name, d.Type, o.Type)
		}
	}
	for name := range doc.Doc.Options {
		got = append(got, name)
	}
	sort.Strings(want)
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ansible-doc options %v, the module accepts %v", got, want)
	}
	fields := []string{"nodefix_binary"}
	rt := reflect.TypeOf(module.Result{})
	for i := 0; i < rt.NumField(); i++ {
		fields = append(fields, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
	}
	for _, f := range fields {
		if _, ok := doc.Return[f]; !ok {
			t.Errorf("ansible-doc RETURN lacks %s", f)
		}
	}
	if !strings.Contains(doc.Examples, "nodefix.longhorn.remediate:") {
		t.Errorf("ansible-doc EXAMPLES call no nodefix.longhorn.remediate:\n%s", doc.Examples)
	}
	if out, rc := c.ansible(t, "ansible-doc", "--list", "nodefix.longhorn"); rc != 0 || !strings.Contains(out, "nodefix.longhorn.remediate") {
		t.Errorf("ansible-doc --list nodefix.longhorn: exit %d, want nodefix.longhorn.remediate:\n%s", rc, out)
	}

	inv := c.write(t, "hosts", "[kube_master]\nm1\n[kube_node]\nw1\n")
	role := c.write(t, "role.yml", "- hosts: all\n  gather_facts: false\n  roles: [nodefix.longhorn.remediate]\n")
	for _, pb := range []string{"remediate", "kubeasz_post_install", role} {
		if out, rc := c.playbook(t, pb, "-i", inv, "--syntax-check"); rc != 0 {
			t.Errorf("%s: --syntax-check exit %d:\n%s", pb, rc, out)
		}
	}

	// One source: the collection carries nodefix's playbooks/ files as
	// they are, the role its task and vars files.
	src := filepath.Join(repoRoot(t), "playbooks")
	for installed, source := range map[string]string{
		"playbooks/remediate.yml":                      "remediate.yml",
		"playbooks/kubeasz_post_install.yml":           "kubeasz-post-install.yml",
		"playbooks/tasks/precheck-hostnames.yml":       "tasks/precheck-hostnames.yml",
		"playbooks/tasks/audit-identities.yml":         "tasks/audit-identities.yml",
		"playbooks/vars/nodefix.yml":                   "vars/nodefix.yml",
		"roles/remediate/tasks/precheck-hostnames.yml": "tasks/precheck-hostnames.yml",
		"roles/remediate/tasks/audit-identities.yml":   "tasks/audit-identities.yml",
		"roles/remediate/vars/main.yml":                "vars/nodefix.yml",
	} {
		a, err := os.ReadFile(filepath.Join(c.Root, installed))
		if err != nil {
			t.Errorf("the collection has no %s: %v", installed, err)
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, source))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("the collection's %s is not playbooks/%s", installed, source)
		}
	}
	for name, sum := range c.Sums {
		p := filepath.Join(c.Root, "files", name)
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("the collection has no %s: %v", name, err)
			continue
		}
		if st.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable (%v)", p, st.Mode())
		}
		if got := onController(t, "sha256sum", p); !strings.HasPrefix(got, sum+" ") {
			t.Errorf("%s: %s, want %s (make dist)", p, got, sum)
		}
	}
}

func onController(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return strings.TrimSpace(string(out))
}

// TestCollectionKubeaszPostInstall is issue 16's done-when: with the
// collection installed and no library/ anywhere, kubeasz's own arguments
// and `nodefix.longhorn.kubeasz_post_install` refuse a collision on the
// controller without touching a node, then check (nothing renamed), fix
// (every node named K8S_NODENAME) and fix again (changed=0); the binary
// is uploaded once: the runs after the first find it on every node.
func TestCollectionKubeaszPostInstall(t *testing.T) {
	requireAnsible(t)
	const nodes = 5
	f := testfleet.New(t, testfleet.Options{Nodes: nodes, Hostname: localhostNames})
	c := installCollection(t, nodes)
	config := kubeaszConfig(t)
	byAddr := map[string]*testfleet.Node{}
	for _, n := range f.Nodes {
		byAddr[n.Addr] = n
	}
	remote := binaryPath("/root", c.Sums["nodefix-linux-amd64"])

	// 'Worker_01' on node 5 becomes worker-01, node 4's name: the precheck
	// (fleet_names, on the controller) stops the play before any node is
	// contacted.
	collide, _ := kubeaszHosts(t, f, map[int]string{5: "Worker_01"})
	out, rc := c.playbook(t, "kubeasz_post_install", "-i", collide, "-e", "@"+config)
	if rc == 0 {
		t.Fatalf("collision: exit 0, want a refusal:\n%s", out)
	}
	if want := fmt.Sprintf("hosts %s, %s would all be named \\\"worker-01\\\"", f.Nodes[3].Addr, f.Nodes[4].Addr); !strings.Contains(out, want) {
		t.Errorf("collision: the refusal does not name both hosts (%s):\n%s", want, out)
	}
	for _, n := range f.Nodes {
		if got := onNode(t, n, `[ -e /root/.ansible/nodefix ] && echo present || echo absent`); got != "absent" {
			t.Errorf("collision: %s holds /root/.ansible/nodefix: the precheck touched a node", n.Name)
		}
	}

	hosts, names := kubeaszHosts(t, f, nil)
	args := []string{"-i", hosts, "-e", "@" + config}
	out, rc = c.playbook(t, "kubeasz_post_install", append(args, "--check", "--diff")...)
	if rc != 0 {
		t.Fatalf("check mode: exit %d:\n%s", rc, out)
	}
	recaps := parseRecap(t, out)
	states := describeAll(t, f)
	uploaded := map[string]string{}
	for addr, want := range names {
		n := byAddr[addr]
		if st := states[n.Name]; st.Hostname != "localhost" || st.EtcHostname != "localhost" {
			t.Errorf("check mode renamed %s to %q (/etc/hostname %q)", addr, st.Hostname, st.EtcHostname)
		}
		if r := recaps[addr]; r.Changed < 1 || r.Failed != 0 {
			t.Errorf("check mode: %s recap %+v, want changed", addr, r)
		}
		if !strings.Contains(out, "+hostname: "+want) {
			t.Errorf("check mode --diff shows no rename of %s to %s", addr, want)
		}
		// The node holds the amd64 build, as its uname -m (x86_64) says.
		if got := onNode(t, n, `sha256sum "$1"`, remote); !strings.HasPrefix(got, c.Sums["nodefix-linux-amd64"]+" ") {
			t.Errorf("%s: %s", addr, got)
		}
		uploaded[addr] = fileIdentity(t, n, remote)
	}

	for _, step := range []string{"apply", "apply again"} {
		out, rc = c.playbook(t, "kubeasz_post_install", args...)
		if rc != 0 {
			t.Fatalf("%s: exit %d:\n%s", step, rc, out)
		}
		recaps = parseRecap(t, out)
		states = describeAll(t, f)
		for addr, want := range names {
			n := byAddr[addr]
			if st := states[n.Name]; st.Hostname != want || st.EtcHostname != want {
				t.Errorf("%s: %s is named %q (/etc/hostname %q), want K8S_NODENAME %q", step, addr, st.Hostname, st.EtcHostname, want)
			}
			r := recaps[addr]
			if step == "apply" && (r.Changed < 1 || r.Failed != 0) {
				t.Errorf("%s: %s recap %+v, want changed", step, addr, r)
			}
			if step == "apply again" && (r.Changed != 0 || r.Failed != 0 || r.OK == 0) {
				t.Errorf("%s: %s recap %+v, want changed=0", step, addr, r)
			}
			if got := fileIdentity(t, n, remote); got != uploaded[addr] {
				t.Errorf("%s: the binary on %s was uploaded again (inode ctime mtime %s, was %s)", step, addr, got, uploaded[addr])
			}
		}
	}
	if len(names) != nodes {
		t.Errorf("the kubeasz hosts file names %d nodes, want %d", len(names), nodes)
	}
}

// expectNameCases checks a hostname run over the NameCases fleet: which
// hosts failed (with the words the case wants), which changed, and each
// node's hostname afterwards.
func expectNameCases(t *testing.T, step, out string, f *testfleet.Fleet, cases []testfleet.NameCase, host func(*testfleet.Node) string, check bool) {
	t.Helper()
	recaps := parseRecap(t, out)
	states := describeAll(t, f)
	for i, n := range f.Nodes {
		c := cases[i]
		r, ok := recaps[host(n)]
		if !ok {
			t.Errorf("%s: %s is not in the recap:\n%s", step, host(n), out)
			continue
		}
		if failed := r.Failed > 0; failed != (c.Status == "failed") {
			t.Errorf("%s: %s (%s): recap %+v, want hostname %s", step, n.Name, c.What, r, c.Status)
		}
		if changed := r.Changed > 0; changed != (c.Status == "changed") {
			t.Errorf("%s: %s (%s): recap %+v, want hostname %s", step, n.Name, c.What, r, c.Status)
		}
		want := c.Want(n.Addr)
		if check {
			want = c.Hostname
		}
		if got := states[n.Name].Hostname; got != want {
			t.Errorf("%s: %s (%s): hostname %q, want %q", step, n.Name, c.What, got, want)
		}
		if c.Status != "failed" {
			continue
		}
		line := strings.ReplaceAll(fatalLine(out, host(n)), `\"`, `"`)
		for _, w := range c.MsgHas {
			if !strings.Contains(line, w) {
				t.Errorf("%s: %s: the failure %q lacks %q", step, n.Name, line, w)
			}
		}
	}
}

// TestCollectionNameCases: the collection playbook nodefix.longhorn.remediate
// and the role nodefix.longhorn.remediate in a play of one's own apply the
// node-identity rule to the name scenarios every entry point runs
// (testfleet.NameCases): an inventory wrong about three nodes renames none
// of them; check mode renames nothing; a run renames as the cases say; a
// second run changes nothing.
func TestCollectionNameCases(t *testing.T) {
	requireAnsible(t)
	cases := testfleet.NameCases()
	misnamed := testfleet.MisnamedCases()
	f := testfleet.New(t, testfleet.NameCaseOptions(cases))
	c := installCollection(t, len(cases))
	nothing := make([]testfleet.NameCase, len(cases))
	for i, cs := range cases {
		cs.Status = "ok"
		nothing[i] = cs
	}

	right, wrong := filepath.Join(c.Dir, "right"), filepath.Join(c.Dir, "wrong")
	if err := f.WriteINIInventory(right, f.InventoryWith(cases)); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteINIInventory(wrong, f.InventoryWith(misnamed)); err != nil {
		t.Fatal(err)
	}
	byAddr := func(n *testfleet.Node) string { return n.Addr }
	tasks := []string{"-e", "nodefix_tasks=hostname"}

	out, rc := c.playbook(t, "remediate", append([]string{"-i", wrong}, tasks...)...)
	if rc != 2 {
		t.Errorf("playbook, wrong inventory: exit %d, want 2:\n%s", rc, out)
	}
	expectNameCases(t, "playbook, wrong inventory", out, f, misnamed, byAddr, false)
	// It renamed the nodes it is right about: back to the names they
	// booted with.
	reset := func() {
		t.Helper()
		for i, n := range f.Nodes {
			if err := n.SetHostname(context.Background(), cases[i].Hostname); err != nil {
				t.Fatal(err)
			}
		}
	}
	reset()

	out, rc = c.playbook(t, "remediate", append([]string{"-i", right, "--check"}, tasks...)...)
	if rc != 0 {
		t.Errorf("playbook, check mode: exit %d:\n%s", rc, out)
	}
	expectNameCases(t, "playbook, check mode", out, f, cases, byAddr, true)

	out, rc = c.playbook(t, "remediate", append([]string{"-i", right}, tasks...)...)
	if rc != 0 {
		t.Errorf("playbook: exit %d:\n%s", rc, out)
	}
	expectNameCases(t, "playbook", out, f, cases, byAddr, false)

	out, rc = c.playbook(t, "remediate", append([]string{"-i", right}, tasks...)...)
	if rc != 0 {
		t.Errorf("playbook again: exit %d:\n%s", rc, out)
	}
	expectNameCases(t, "playbook again", out, f, nothing, byAddr, false)

	// The role, in a play of one's own, on the YAML inventory, from the
	// hostnames the nodes booted with.
	reset()
	inv := filepath.Join(c.Dir, "inventory.yml")
	if err := f.WriteYAMLInventory(inv, f.InventoryWith(cases)); err != nil {
		t.Fatal(err)
	}
	role := c.write(t, "role.yml", `- name: my play, with nodefix's role
  hosts: all
  gather_facts: false
  roles:
    - role: nodefix.longhorn.remediate
      vars:
        nodefix_tasks: hostname
`)
	byName := func(n *testfleet.Node) string { return n.Name }
	for _, step := range []struct {
		name  string
		args  []string
		cases []testfleet.NameCase
		check bool
	}{
		{"role, check mode", []string{"--check"}, cases, true},
		{"role", nil, cases, false},
		{"role again", nil, nothing, false},
	} {
		out, rc := c.playbook(t, role, append([]string{"-i", inv}, step.args...)...)
		if rc != 0 {
			t.Errorf("%s: exit %d:\n%s", step.name, rc, out)
		}
		expectNameCases(t, step.name, out, f, step.cases, byName, step.check)
	}
}

// unameWrapper makes a node's uname -m answer machine (uname -s and the
// rest stay the real uname's): a wrapper first on every login's PATH.
func unameWrapper(t *testing.T, n *testfleet.Node, machine string) {
	t.Helper()
	onNode(t, n, `mkdir -p /usr/local/bin && printf '%s\n' '#!/bin/sh' \
		'# nodefix test: this node says it is another machine' \
		'if [ "$*" = -m ]; then echo '"$1"'; else exec /bin/uname "$@"; fi' >/usr/local/bin/uname &&
		chmod 755 /usr/local/bin/uname`, machine)
}

// TestCollectionArchitectures: the module called by its FQCN in a play of
// one's own, connected as an unprivileged user with become: an x86_64
// node gets the amd64 build and is renamed (as root); a node whose
// uname -m says aarch64 gets the arm64 build, checked by checksum on the
// node (this machine cannot run it there, and says so); an s390x node
// fails naming its machine and receives nothing. The second task of the
// play asks no node anything; a second run uploads nothing.
func TestCollectionArchitectures(t *testing.T) {
	requireAnsible(t)
	f := testfleet.New(t, testfleet.Options{Nodes: 3, Hostname: localhostNames})
	c := installCollection(t, 3)
	amd, arm, s390 := f.Nodes[0], f.Nodes[1], f.Nodes[2]
	unameWrapper(t, arm, "aarch64")
	unameWrapper(t, s390, "s390x")
	home := "/home/" + f.SudoUser
	amdPath, armPath := binaryPath(home, c.Sums["nodefix-linux-amd64"]), binaryPath(home, c.Sums["nodefix-linux-arm64"])
	// Where the arm64 build can run (binfmt_misc with qemu), the aarch64
	// node succeeds instead of failing.
	armRuns := exec.Command(filepath.Join(c.Root, "files", "nodefix-linux-arm64"), "--version").Run() == nil

	become := c.write(t, "become.yml", fmt.Sprintf("ansible_user: %q\nansible_become_password: %q\n", f.SudoUser, f.SudoPassword))
	pb := c.write(t, "arch.yml", `- hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: rename as root, through become
      nodefix.longhorn.remediate:
        tasks: hostname
        hostname: "{{ k8s_nodename }}"
      register: first

    - name: the same play again
      nodefix.longhorn.remediate:
        identify: true
      register: second

    - name: the second task asked the node nothing and uploaded nothing
      ansible.builtin.assert:
        that:
          - first.nodefix_binary.probed
          - first.nodefix_binary.uploaded == (expect_upload | bool)
          - not second.nodefix_binary.probed
          - not second.nodefix_binary.uploaded
          - second.nodefix_binary.path == first.nodefix_binary.path
          - first.nodefix_binary.arch == ('arm64' if first.nodefix_binary.machine == 'aarch64' else 'amd64')
`)
	args := []string{"-i", f.InventoryYAML, "-e", "@" + become}

	var identities map[string]string
	for _, run := range []struct {
		name   string
		upload bool
	}{{"first run", true}, {"second run", false}} {
		out, rc := c.playbook(t, pb, append(args, "-e", fmt.Sprintf("expect_upload=%t", run.upload))...)
		if rc != 2 {
			t.Errorf("%s: exit %d, want 2 (the s390x node fails):\n%s", run.name, rc, out)
		}
		recaps := parseRecap(t, out)
		if r := recaps[amd.Name]; r.Failed != 0 || (r.Changed > 0) != run.upload {
			t.Errorf("%s: %s recap %+v, want renamed the first time only", run.name, amd.Name, r)
		}
		if got, want := onNode(t, amd, "hostname"), amd.K8sNodename; got != want {
			t.Errorf("%s: %s is named %q, want %q (renamed through become)", run.name, amd.Name, got, want)
		}
		if got := onNode(t, amd, `sha256sum "$1"`, amdPath); !strings.HasPrefix(got, c.Sums["nodefix-linux-amd64"]+" ") {
			t.Errorf("%s: %s", amd.Name, got)
		}

		armLine := fatalLine(out, arm.Name)
		if armRuns {
			if recaps[arm.Name].Failed != 0 {
				t.Errorf("%s: %s failed although this machine runs arm64 binaries: %s", run.name, arm.Name, armLine)
			}
		} else {
			for _, want := range []string{"reports aarch64 (uname -m), but cannot execute the linux/arm64 nodefix " + armPath,
				fmt.Sprintf(`"uploaded": %t`, run.upload), `"arch": "arm64"`} {
				if !strings.Contains(armLine, want) {
					t.Errorf("%s: %s: the failure lacks %q: %s", run.name, arm.Name, want, armLine)
				}
			}
		}
		// Checked by checksum on the node itself.
		if got := onNode(t, arm, `sha256sum "$1"`, armPath); !strings.HasPrefix(got, c.Sums["nodefix-linux-arm64"]+" ") {
			t.Errorf("%s: %s holds %s, want the arm64 build %s", run.name, arm.Name, got, c.Sums["nodefix-linux-arm64"])
		}
		if got := onNode(t, arm, `[ -e "$1" ] && echo present || echo absent`, amdPath); got != "absent" {
			t.Errorf("%s: %s (aarch64) received the amd64 build", run.name, arm.Name)
		}

		if line := fatalLine(out, s390.Name); !strings.Contains(line, "unsupported platform Linux s390x") {
			t.Errorf("%s: %s: want a failure naming Linux s390x, got %q", run.name, s390.Name, line)
		}
		if got := onNode(t, s390, `[ -e "$1"/.ansible/nodefix ] && echo present || echo absent`, home); got != "absent" {
			t.Errorf("%s: %s (s390x) received a binary", run.name, s390.Name)
		}

		now := map[string]string{amd.Name: fileIdentity(t, amd, amdPath), arm.Name: fileIdentity(t, arm, armPath)}
		if identities != nil && !reflect.DeepEqual(now, identities) {
			t.Errorf("%s uploaded again: inode ctime mtime %v, were %v", run.name, now, identities)
		}
		identities = now
	}
}
