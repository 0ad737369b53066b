package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nodefix/nodefix/internal/module"
)

func TestSemver(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                      "1.2.3",
		"1.2.3":                       "1.2.3",
		"v1.2.3-dirty":                "1.2.3+dirty",
		"v1.2.3-4-gabc1234":           "1.2.4-dev.4+gabc1234",
		"v1.2.3-4-gabc1234-dirty":     "1.2.4-dev.4+gabc1234.dirty",
		"v1.2.3-rc.1":                 "1.2.3-rc.1",
		"v1.2.3-rc.1-4-gabc1234":      "1.2.3-rc.1.dev.4+gabc1234",
		"v0.9.10-12-g0123abc-dirty":   "0.9.11-dev.12+g0123abc.dirty",
		"e078cf8":                     "0.0.0-dev+ge078cf8",
		"e078cf8-dirty":               "0.0.0-dev+ge078cf8.dirty",
		"dev":                         "0.0.0-dev",
		"v10.20.30-100-gdeadbeefcafe": "10.20.31-dev.100+gdeadbeefcafe",
	} {
		got, err := semver(in)
		if err != nil || got != want {
			t.Errorf("semver(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"release-7", "v1.2", "v01.2.3", "1.2.3.4"} {
		if got, err := semver(bad); err == nil {
			t.Errorf("semver(%q) = %q, want an error", bad, got)
		}
	}
}

// repo is the source tree (this file is in playbooks/collection/build).
func repo(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// fakeDist writes small stand-ins for make dist's binaries and their
// SHA256SUMS.
func fakeDist(t *testing.T) string {
	t.Helper()
	dist := t.TempDir()
	var sums bytes.Buffer
	for _, name := range binaries {
		data := []byte("not really " + name)
		if err := os.WriteFile(filepath.Join(dist, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256(data), name)
	}
	if err := os.WriteFile(filepath.Join(dist, "SHA256SUMS"), sums.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dist
}

// pyString reads NAME = r"""…""" from a generated Python file.
func pyString(t *testing.T, src, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)\n` + name + ` = r"""\n(.*?)"""`).FindStringSubmatch(src)
	if m == nil {
		t.Fatalf("no %s in the documentation stub", name)
	}
	return m[1]
}

// TestAssemble: the tree carries nodefix's playbooks and their files byte
// for byte, a role made of remediate.yml, the binaries with their sums,
// the version, and documentation naming exactly the module's parameters.
func TestAssemble(t *testing.T) {
	root := repo(t)
	tree := filepath.Join(t.TempDir(), "nodefix", "longhorn")
	if err := assemble(root, fakeDist(t), tree, "1.2.3"); err != nil {
		t.Fatal(err)
	}
	same := func(installed, source string) {
		t.Helper()
		a, err := os.ReadFile(filepath.Join(tree, installed))
		if err != nil {
			t.Errorf("no %s: %v", installed, err)
			return
		}
		b, err := os.ReadFile(filepath.Join(root, "playbooks", source))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s is not playbooks/%s", installed, source)
		}
	}
	same("playbooks/remediate.yml", "remediate.yml")
	same("playbooks/kubeasz_post_install.yml", "kubeasz-post-install.yml")
	same("playbooks/tasks/precheck-hostnames.yml", "tasks/precheck-hostnames.yml")
	same("playbooks/tasks/audit-identities.yml", "tasks/audit-identities.yml")
	same("playbooks/vars/nodefix.yml", "vars/nodefix.yml")
	same("roles/remediate/vars/main.yml", "vars/nodefix.yml")
	same("roles/remediate/tasks/precheck-hostnames.yml", "tasks/precheck-hostnames.yml")
	for _, absent := range []string{"build", ".gitignore", "plugins/action/__pycache__", "playbooks/remediate-command.yml", "playbooks/tasks/precheck-hostnames-command.yml"} {
		if _, err := os.Stat(filepath.Join(tree, absent)); err == nil {
			t.Errorf("the collection carries %s", absent)
		}
	}

	// The role's tasks are remediate.yml's plays' tasks, in order (the
	// precheck's among them), its defaults their shared vars.
	var plays []struct {
		Vars   map[string]any   `yaml:"vars"`
		Tasks  []map[string]any `yaml:"tasks"`
		Serial any              `yaml:"serial"`
	}
	var roleTasks []map[string]any
	var roleDefaults map[string]any
	readInto(t, filepath.Join(root, "playbooks", "remediate.yml"), &plays)
	readInto(t, filepath.Join(tree, "roles", "remediate", "tasks", "main.yml"), &roleTasks)
	readInto(t, filepath.Join(tree, "roles", "remediate", "defaults", "main.yml"), &roleDefaults)
	var wantTasks []map[string]any
	for _, p := range plays {
		wantTasks = append(wantTasks, p.Tasks...)
	}
	if len(plays) < 2 || plays[0].Serial != nil || plays[1].Serial == nil {
		t.Errorf("remediate.yml: %d plays, want the precheck without serial and the remediation with it", len(plays))
	}
	if !reflect.DeepEqual(roleTasks, wantTasks) {
		t.Errorf("the role's tasks\n%v\nare not the plays'\n%v", roleTasks, wantTasks)
	}
	imports := map[string]bool{}
	for _, task := range roleTasks {
		if f, ok := task["import_tasks"].(string); ok {
			imports[f] = true
		}
	}
	for _, f := range []string{"tasks/run-id.yml", "tasks/precheck-hostnames.yml", "tasks/batch-fatal.yml", "tasks/audit-identities.yml"} {
		if !imports[f] {
			t.Errorf("the role does not import %s", f)
		}
		same(filepath.Join("roles", "remediate", f), f)
	}
	delete(plays[0].Vars, "nodefix_target")
	if !reflect.DeepEqual(roleDefaults, plays[0].Vars) {
		t.Errorf("the role's defaults %v are not the play's vars %v", roleDefaults, plays[0].Vars)
	}

	galaxy, err := os.ReadFile(filepath.Join(tree, "galaxy.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^version: 1\.2\.3$`).Match(galaxy) {
		t.Errorf("galaxy.yml has no version 1.2.3:\n%s", galaxy)
	}
	sums, err := readSums(filepath.Join(tree, "files", "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range binaries {
		data, err := os.ReadFile(filepath.Join(tree, "files", name))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%x", sha256.Sum256(data)) != sums[name] {
			t.Errorf("files/%s does not match files/SHA256SUMS", name)
		}
		if st, _ := os.Stat(filepath.Join(tree, "files", name)); st.Mode().Perm() != 0o755 {
			t.Errorf("files/%s has mode %v", name, st.Mode())
		}
	}

	// Documentation and the action plugin's parameter list: the module's.
	stub, err := os.ReadFile(filepath.Join(tree, "plugins", "modules", "remediate.py"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Module  string                    `yaml:"module"`
		Options map[string]map[string]any `yaml:"options"`
	}
	if err := yaml.Unmarshal([]byte(pyString(t, string(stub), "DOCUMENTATION")), &doc); err != nil {
		t.Fatalf("DOCUMENTATION: %v", err)
	}
	params, err := os.ReadFile(filepath.Join(tree, "plugins", "module_utils", "params.py"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, o := range module.Options() {
		want = append(want, o.Name)
		got := doc.Options[o.Name]
		if got == nil || got["type"] != o.Type || !reflect.DeepEqual(fmt.Sprint(got["default"]), fmt.Sprint(o.Default)) {
			t.Errorf("DOCUMENTATION option %s: %v, want type %s default %v", o.Name, got, o.Type, o.Default)
		}
		if !strings.Contains(string(params), fmt.Sprintf("    %q,\n", o.Name)) {
			t.Errorf("params.py lacks %s", o.Name)
		}
	}
	if doc.Module != "remediate" || len(doc.Options) != len(want) {
		t.Errorf("DOCUMENTATION: module %q, %d options, want remediate and %v", doc.Module, len(doc.Options), want)
	}
	var examples []map[string]any
	if err := yaml.Unmarshal([]byte(pyString(t, string(stub), "EXAMPLES")), &examples); err != nil || len(examples) == 0 {
		t.Errorf("EXAMPLES: %v (%d tasks)", err, len(examples))
	}
}

func readInto(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestReturnDocumentsTheResult: RETURN names every field the binary's
// result has, at every depth, and nothing it does not (besides what the
// action plugin adds).
func TestReturnDocumentsTheResult(t *testing.T) {
	parts, err := readDocParts("remediate.doc.yml")
	if err != nil {
		t.Fatal(err)
	}
	var ret map[string]returnDoc
	if err := parts.Return.Decode(&ret); err != nil {
		t.Fatal(err)
	}
	plugin := map[string]bool{"nodefix_binary": true, "ansible_facts": true}
	for name := range ret {
		if !plugin[name] && !hasJSONField(reflect.TypeOf(module.Result{}), name) {
			t.Errorf("RETURN documents %s, which the result has not", name)
		}
	}
	checkReturn(t, "", reflect.TypeOf(module.Result{}), ret)
}

type returnDoc struct {
	Description any                  `yaml:"description"`
	Type        string               `yaml:"type"`
	Contains    map[string]returnDoc `yaml:"contains"`
}

func jsonName(f reflect.StructField) string { return strings.Split(f.Tag.Get("json"), ",")[0] }

func hasJSONField(rt reflect.Type, name string) bool {
	for i := 0; i < rt.NumField(); i++ {
		if jsonName(rt.Field(i)) == name {
			return true
		}
	}
	return false
}

// checkReturn: every JSON field of struct type rt is documented in docs,
// with the structure of its own fields under contains.
func checkReturn(t *testing.T, prefix string, rt reflect.Type, docs map[string]returnDoc) {
	t.Helper()
	var names []string
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		name := jsonName(f)
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		d, ok := docs[name]
		if !ok {
			t.Errorf("RETURN lacks %s%s", prefix, name)
			continue
		}
		if d.Description == nil || d.Type == "" {
			t.Errorf("RETURN %s%s: no description or type", prefix, name)
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			checkReturn(t, prefix+name+".", ft, d.Contains)
		}
	}
	if prefix != "" {
		sort.Strings(names)
		for name := range docs {
			if i := sort.SearchStrings(names, name); i == len(names) || names[i] != name {
				t.Errorf("RETURN documents %s%s, which the result has not", prefix, name)
			}
		}
	}
}

// The build refuses what it cannot carry faithfully.
func TestAssembleRefuses(t *testing.T) {
	root := repo(t)
	dist := fakeDist(t)
	if err := os.WriteFile(filepath.Join(dist, binaries[1]), []byte("changed after make dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := assemble(root, dist, filepath.Join(t.TempDir(), "c"), "1.2.3")
	if err == nil || !strings.Contains(err.Error(), "SHA256SUMS says") {
		t.Errorf("a binary that is not what SHA256SUMS says: %v", err)
	}

	dir := t.TempDir()
	pb := "- hosts: all\n  tasks:\n    - import_tasks: tasks/a.yml\n  post_tasks:\n    - debug: msg=x\n"
	if err := os.WriteFile(filepath.Join(dir, "remediate.yml"), []byte(pb), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "tasks"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "tasks", "a.yml"), []byte("- include_tasks: '{{ x }}.yml'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := generateRole(dir, "remediate.yml", filepath.Join(t.TempDir(), "r")); err == nil || !strings.Contains(err.Error(), `"post_tasks"`) {
		t.Errorf("a play with post_tasks: %v", err)
	}
	two := "- hosts: all\n  vars: {a: 1}\n  tasks: [{debug: msg=x}]\n- hosts: all\n  serial: 1\n  vars: {a: 2}\n  tasks: [{debug: msg=y}]\n"
	if err := os.WriteFile(filepath.Join(dir, "two.yml"), []byte(two), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := generateRole(dir, "two.yml", filepath.Join(t.TempDir(), "r")); err == nil || !strings.Contains(err.Error(), "play 2's vars differ") {
		t.Errorf("plays with different vars: %v", err)
	}
	other := "- hosts: all\n  tasks: [{debug: msg=x}]\n- hosts: others\n  tasks: [{debug: msg=y}]\n"
	if err := os.WriteFile(filepath.Join(dir, "other.yml"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := generateRole(dir, "other.yml", filepath.Join(t.TempDir(), "r")); err == nil || !strings.Contains(err.Error(), "play 2's hosts differ") {
		t.Errorf("plays over other hosts: %v", err)
	}
	if _, err := references(dir, "remediate.yml"); err == nil || !strings.Contains(err.Error(), "named literally") {
		t.Errorf("a templated task file name: %v", err)
	}
}
