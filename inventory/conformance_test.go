package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// ansibleInventory finds the real ansible-inventory. Without it the
// conformance tests skip, unless NODEFIX_FLEET=required makes that a
// failure (as CI sets it).
func ansibleInventory(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ansible-inventory")
	if err != nil {
		if os.Getenv("NODEFIX_FLEET") == "required" {
			t.Fatalf("ansible-inventory not found and NODEFIX_FLEET=required: install ansible-core (.ci/install-deps)")
		}
		t.Skip("ansible-inventory not found (install ansible-core to run the conformance suite)")
	}
	return p
}

// ansibleRunner runs ansible-inventory as a stock install would: no user
// configuration (an empty ansible.cfg, no ANSIBLE_* variables from the
// caller), HOME and the local temp in a private directory, and an empty
// working directory so that no group_vars/ there is read as
// playbook-adjacent.
type ansibleRunner struct {
	bin string
	dir string
	env []string
}

func newAnsibleRunner(t testing.TB) *ansibleRunner {
	bin := ansibleInventory(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ansible.cfg")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cwd := filepath.Join(dir, "cwd")
	if err := os.Mkdir(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ANSIBLE_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+dir, "ANSIBLE_CONFIG="+cfg, "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_DEPRECATION_WARNINGS=False", "ANSIBLE_PYTHON_INTERPRETER=auto_silent")
	return &ansibleRunner{bin: bin, dir: cwd, env: env}
}

func (r *ansibleRunner) run(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(r.bin, args...)
	cmd.Dir = r.dir
	cmd.Env = r.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

type caseArgs struct {
	all     []string // for ansible-inventory
	sources []string
	extra   []string
}

func readCaseArgs(t *testing.T, dir string) caseArgs {
	t.Helper()
	raw := []string{"-i", "{dir}/hosts"}
	if b, err := os.ReadFile(filepath.Join(dir, "args")); err == nil {
		raw = strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	} else if _, err := os.Stat(filepath.Join(dir, "hosts")); err != nil {
		// A single inventory file with another name.
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !e.IsDir() && e.Name() != "args" && e.Name() != "env" && !strings.HasSuffix(e.Name(), ".md") {
				raw = []string{"-i", "{dir}/" + e.Name()}
				break
			}
		}
	}
	var a caseArgs
	for i := 0; i < len(raw); i++ {
		v := strings.ReplaceAll(raw[i], "{dir}", dir)
		a.all = append(a.all, v)
		if (v == "-i" || v == "-e") && i+1 < len(raw) {
			next := strings.ReplaceAll(raw[i+1], "{dir}", dir)
			a.all = append(a.all, next)
			if v == "-i" {
				a.sources = append(a.sources, next)
			} else {
				a.extra = append(a.extra, next)
			}
			i++
		}
	}
	return a
}

// decodeJSON decodes keeping numbers as their literal text, so 1 and 1.0
// and "1" all differ, as they do for Ansible.
func decodeJSON(t *testing.T, what, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, s)
	}
	return v
}

// TestConformance compares nodefix with ansible-inventory on every
// inventory in testdata/inventories: --list, --host for each host, and
// --graph.
func TestConformance(t *testing.T) {
	r := newAnsibleRunner(t)
	cases, err := filepath.Glob("../testdata/inventories/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cases {
		if st, err := os.Stat(c); err != nil || !st.IsDir() {
			continue
		}
		n++
		dir, _ := filepath.Abs(c)
		t.Run(filepath.Base(c), func(t *testing.T) {
			t.Parallel()
			conformCase(t, r, dir)
		})
	}
	if n < 15 {
		t.Errorf("only %d conformance inventories, want at least 15", n)
	}
}

func conformCase(t *testing.T, r *ansibleRunner, dir string) {
	a := readCaseArgs(t, dir)
	inv, err := Load(context.Background(), a.sources, Options{ExtraVars: a.extra})
	if err != nil {
		t.Fatalf("nodefix: %v", err)
	}

	out, stderr, err := r.run(append(append([]string{}, a.all...), "--list")...)
	if err != nil {
		t.Fatalf("ansible-inventory --list: %v\n%s", err, stderr)
	}
	if strings.Contains(stderr, "Failed to parse") || strings.Contains(stderr, "Unable to parse") {
		t.Fatalf("ansible-inventory did not parse the case:\n%s", stderr)
	}
	want := decodeJSON(t, "ansible-inventory --list", out)
	gotB, err := inv.ListJSON(nil)
	if err != nil {
		t.Fatalf("ListJSON: %v", err)
	}
	got := decodeJSON(t, "nodefix --list", string(gotB))
	if !reflect.DeepEqual(want, got) {
		t.Errorf("--list differs from ansible-inventory:\n%s", jsonDiff(want, got))
	}

	// Every host Ansible knows, via --host.
	hosts := map[string]bool{}
	collectHosts(want, hosts)
	if len(hosts) == 0 {
		t.Fatalf("ansible-inventory listed no host:\n%s", out)
	}
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	for _, h := range names {
		out, stderr, err := r.run(append(append([]string{}, a.all...), "--host", h)...)
		if err != nil {
			t.Errorf("ansible-inventory --host %s: %v\n%s", h, err, stderr)
			continue
		}
		gotB, err := inv.HostJSON(h)
		if err != nil {
			t.Errorf("nodefix --host %s: %v", h, err)
			continue
		}
		w, g := decodeJSON(t, "ansible --host", out), decodeJSON(t, "nodefix --host", string(gotB))
		if !reflect.DeepEqual(w, g) {
			t.Errorf("--host %s differs:\n%s", h, jsonDiff(w, g))
		}
	}
	if len(inv.Hosts()) != len(hosts) {
		t.Errorf("nodefix has %d hosts, ansible-inventory %d", len(inv.Hosts()), len(hosts))
	}

	out, stderr, err = r.run(append(append([]string{}, a.all...), "--graph")...)
	if err != nil {
		t.Fatalf("ansible-inventory --graph: %v\n%s", err, stderr)
	}
	graph, err := inv.Graph(GraphOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimRight(out, "\n") != graph {
		t.Errorf("--graph differs:\nansible:\n%s\nnodefix:\n%s", out, graph)
	}
}

func collectHosts(list any, into map[string]bool) {
	m, _ := list.(map[string]any)
	for k, v := range m {
		if k == "_meta" {
			hv, _ := v.(map[string]any)["hostvars"].(map[string]any)
			for h := range hv {
				into[h] = true
			}
			continue
		}
		g, _ := v.(map[string]any)
		hs, _ := g["hosts"].([]any)
		for _, h := range hs {
			into[h.(string)] = true
		}
	}
}

// jsonDiff lists the paths where two decoded JSON values differ.
func jsonDiff(want, got any) string {
	var b strings.Builder
	var walk func(path string, w, g any)
	walk = func(path string, w, g any) {
		wm, wok := w.(map[string]any)
		gm, gok := g.(map[string]any)
		if wok && gok {
			keys := map[string]bool{}
			for k := range wm {
				keys[k] = true
			}
			for k := range gm {
				keys[k] = true
			}
			sorted := make([]string, 0, len(keys))
			for k := range keys {
				sorted = append(sorted, k)
			}
			sort.Strings(sorted)
			for _, k := range sorted {
				walk(path+"."+k, wm[k], gm[k])
			}
			return
		}
		if !reflect.DeepEqual(w, g) {
			fmt.Fprintf(&b, "  %s: ansible %s, nodefix %s\n", path, show(w), show(g))
		}
	}
	walk("", want, got)
	return b.String()
}

func show(v any) string {
	if v == nil {
		return "(absent or null)"
	}
	b, _ := json.Marshal(v)
	return fmt.Sprintf("%s (%T)", b, v)
}
