package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// collectionPlaybooks are nodefix's playbooks the collection carries, by
// the name each has there (ansible-playbook nodefix.longhorn.<name>).
// remediate-command.yml stays out: the module itself picks each node's
// architecture.
var collectionPlaybooks = []struct{ src, name string }{
	{"remediate.yml", "remediate.yml"},
	{"kubeasz-post-install.yml", "kubeasz_post_install.yml"},
}

// roleSource is the playbook whose play the role is made of.
const roleSource = "remediate.yml"

// The binaries the collection ships, as `make dist` names them.
var binaries = []string{"nodefix-linux-amd64", "nodefix-linux-arm64"}

// assemble writes the collection's tree (see the package doc).
func assemble(repo, dist, tree, version string) error {
	playbooks := filepath.Join(repo, "playbooks")
	src := filepath.Join(playbooks, "collection")
	if err := os.RemoveAll(tree); err != nil {
		return err
	}
	// The collection's own sources, without this builder and its inputs,
	// git's files or Python's caches.
	err := copyTree(src, tree, func(rel string) bool {
		base := path.Base(rel)
		return rel == "build" || base == ".gitignore" || base == "__pycache__"
	})
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := setGalaxyVersion(filepath.Join(tree, "galaxy.yml"), version); err != nil {
		return err
	}
	if err := writeModuleDoc(filepath.Join(src, "build", "remediate.doc.yml"), filepath.Join(tree, "plugins", "modules", "remediate.py")); err != nil {
		return err
	}
	if err := writeParams(filepath.Join(tree, "plugins", "module_utils", "params.py")); err != nil {
		return err
	}
	if err := copyBinaries(dist, filepath.Join(tree, "files")); err != nil {
		return err
	}
	for _, pb := range collectionPlaybooks {
		if err := copyPlaybook(playbooks, pb.src, filepath.Join(tree, "playbooks"), pb.name); err != nil {
			return err
		}
	}
	return generateRole(playbooks, roleSource, filepath.Join(tree, "roles", "remediate"))
}

// copyTree copies the regular files under src to dst, keeping modes;
// skip (a path relative to src) leaves out a file or directory.
func copyTree(src, dst string, skip func(rel string) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel != "." && skip(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		return copyFile(p, filepath.Join(dst, rel))
	})
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	return writeFile(dst, data, st.Mode().Perm())
}

func writeFile(dst string, data []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		return err
	}
	return os.Chmod(dst, mode) // whatever the umask
}

var galaxyVersionRE = regexp.MustCompile(`(?m)^version:.*$`)

// setGalaxyVersion sets galaxy.yml's version line (one, at the top level).
func setGalaxyVersion(file, version string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if n := len(galaxyVersionRE.FindAll(data, -1)); n != 1 {
		return fmt.Errorf("%s: %d top-level version lines, want 1", file, n)
	}
	data = galaxyVersionRE.ReplaceAll(data, []byte("version: "+version))
	return writeFile(file, data, 0o644)
}

// copyBinaries checks every binary against dist/SHA256SUMS and copies
// them, executable, with their checksums.
func copyBinaries(dist, files string) error {
	sumsFile := filepath.Join(dist, "SHA256SUMS")
	sums, err := readSums(sumsFile)
	if err != nil {
		return fmt.Errorf("%v (run make dist first)", err)
	}
	var out bytes.Buffer
	for _, name := range binaries {
		want, ok := sums[name]
		if !ok {
			return fmt.Errorf("%s lists no %s (run make dist)", sumsFile, name)
		}
		data, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			return fmt.Errorf("%v (run make dist)", err)
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != want {
			return fmt.Errorf("%s: sha256 %x, %s says %s: run make dist again", filepath.Join(dist, name), got, sumsFile, want)
		}
		if err := writeFile(filepath.Join(files, name), data, 0o755); err != nil {
			return err
		}
		fmt.Fprintf(&out, "%s  %s\n", want, name)
	}
	return writeFile(filepath.Join(files, "SHA256SUMS"), out.Bytes(), 0o644)
}

// readSums reads sha256sum's output: "<hex>  <name>" (or " *<name>").
func readSums(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			continue
		}
		sums[strings.TrimPrefix(fields[1], "*")] = strings.ToLower(fields[0])
	}
	return sums, sc.Err()
}

// copyPlaybook copies one playbook of dir, as name, and every task and
// vars file it uses (transitively), to the same relative paths under dst.
func copyPlaybook(dir, src, dst, name string) error {
	if err := copyFile(filepath.Join(dir, src), filepath.Join(dst, name)); err != nil {
		return err
	}
	refs, err := references(dir, src)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if err := copyFile(filepath.Join(dir, ref), filepath.Join(dst, ref)); err != nil {
			return err
		}
	}
	return nil
}

// references are the files a playbook or task file of dir loads by a
// relative path (vars_files, import_tasks, include_tasks), and those
// their task files load, relative to dir.
func references(dir, file string) ([]string, error) {
	seen := map[string]bool{}
	var visit func(file string) error
	visit = func(file string) error {
		doc, err := readYAML(filepath.Join(dir, file))
		if err != nil {
			return err
		}
		type ref struct {
			path  string
			tasks bool // a task file, whose own references count too
		}
		var refs []ref
		var walkErr error
		walk(doc, func(key string, value *yaml.Node) {
			value = resolve(value)
			switch strings.TrimPrefix(key, "ansible.builtin.") {
			case "import_tasks", "include_tasks":
				if value.Kind == yaml.MappingNode {
					value = mapValue(value, "file")
				}
				if value == nil || value.Kind != yaml.ScalarNode {
					walkErr = fmt.Errorf("%s: %s without a file name", file, key)
					return
				}
				refs = append(refs, ref{value.Value, true})
			case "vars_files":
				if value.Kind != yaml.SequenceNode {
					walkErr = fmt.Errorf("%s: vars_files is not a list", file)
					return
				}
				for _, v := range value.Content {
					refs = append(refs, ref{v.Value, false})
				}
			}
		})
		if walkErr != nil {
			return walkErr
		}
		for _, r := range refs {
			p := path.Clean(r.path)
			if strings.Contains(p, "{{") || path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
				return fmt.Errorf("%s loads %q: the collection can only carry files below %s named literally", file, r.path, dir)
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			if r.tasks {
				if err := visit(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(file); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for ref := range seen {
		out = append(out, ref)
	}
	sort.Strings(out)
	return out, nil
}

func readYAML(file string) (*yaml.Node, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return &doc, nil
}

// walk calls fn for every key of every mapping under n.
func walk(n *yaml.Node, fn func(key string, value *yaml.Node)) {
	if n == nil {
		return
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			fn(n.Content[i].Value, n.Content[i+1])
		}
	}
	for _, c := range n.Content {
		walk(c, fn)
	}
}

// mapValue is the value of key in mapping m (nil: none).
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// roleDefaultsSkip are play variables that mean nothing in a role.
var roleDefaultsSkip = map[string]bool{"nodefix_target": true}

// roleBatchKeys are play keywords of the remediation play that a role
// cannot carry: how the play's hosts are batched (serial) and when the
// batches stop (max_fail_percentage) belong to the play that includes
// the role. nodefix_any_errors_fatal is a task (tasks/batch-fatal.yml),
// so the role keeps it.
var roleBatchKeys = map[string]bool{"serial": true, "max_fail_percentage": true}

// generateRole makes roles/remediate of the playbook dir/src: a role does
// what the playbook does for the hosts of the play that includes it.
//
// The playbook is a sequence of plays over the same hosts with the same
// vars and vars_files: the fleet precheck (no serial, so it covers every
// host before the first batch), the remediation (serial), the audit. A
// role is a list of tasks inside one play, so the role runs the plays'
// tasks one after the other, in order: precheck, remediation, audit. In a
// play with serial the including play decides the batches, and the role's
// precheck then covers each batch's hosts as it comes (the playbook's
// precheck covers all of them first): see the README.
func generateRole(dir, src, role string) error {
	doc, err := readYAML(filepath.Join(dir, src))
	if err != nil {
		return err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.SequenceNode || len(doc.Content[0].Content) == 0 {
		return fmt.Errorf("%s: the role is made of a list of plays; found another shape", src)
	}
	tasks := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	var hosts, vars, varsFiles *yaml.Node
	for n, play := range doc.Content[0].Content {
		play = resolve(play)
		if play.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: play %d is not a mapping", src, n+1)
		}
		var playTasks, playHosts, playVars, playVarsFiles *yaml.Node
		for i := 0; i+1 < len(play.Content); i += 2 {
			key, value := play.Content[i].Value, resolve(play.Content[i+1])
			switch {
			case key == "name", key == "gather_facts", roleBatchKeys[key]:
				// The including play's business.
			case key == "hosts":
				playHosts = value
			case key == "tasks":
				playTasks = value
			case key == "vars":
				playVars = value
			case key == "vars_files":
				playVarsFiles = value
			default:
				// Dropping it silently would make the role do less than the
				// playbook: teach this builder what it means in a role.
				return fmt.Errorf("%s: play %d's %q has no place in the generated role yet (playbooks/collection/build)", src, n+1, key)
			}
		}
		if playTasks == nil || playTasks.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s: play %d has no tasks", src, n+1)
		}
		if n == 0 {
			hosts, vars, varsFiles = playHosts, playVars, playVarsFiles
		} else {
			// One set of defaults and vars for the whole role: every play
			// must agree (the playbook shares them with YAML anchors).
			for _, same := range []struct {
				what        string
				first, this *yaml.Node
			}{{"hosts", hosts, playHosts}, {"vars", vars, playVars}, {"vars_files", varsFiles, playVarsFiles}} {
				if !sameYAML(same.first, same.this) {
					return fmt.Errorf("%s: play %d's %s differ from play 1's: the role has one set", src, n+1, same.what)
				}
			}
		}
		tasks.Content = append(tasks.Content, playTasks.Content...)
	}
	header := fmt.Sprintf("# Generated by `make collection` from nodefix's playbooks/%s (%%s): edit that, not this.\n", src)

	main, err := encodeYAML(tasks)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(role, "tasks", "main.yml"), append([]byte(fmt.Sprintf(header, "its plays' tasks, in order")), main...), 0o644); err != nil {
		return err
	}

	defaults := &yaml.Node{Kind: yaml.MappingNode}
	if vars != nil {
		for i := 0; i+1 < len(vars.Content); i += 2 {
			if !roleDefaultsSkip[vars.Content[i].Value] {
				defaults.Content = append(defaults.Content, vars.Content[i], vars.Content[i+1])
			}
		}
	}
	def, err := encodeYAML(defaults)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(role, "defaults", "main.yml"), append([]byte(fmt.Sprintf(header, "the plays' vars")), def...), 0o644); err != nil {
		return err
	}

	if varsFiles != nil {
		if varsFiles.Kind != yaml.SequenceNode || len(varsFiles.Content) != 1 {
			return fmt.Errorf("%s: the role takes its vars from exactly one vars_files entry", src)
		}
		if err := copyFile(filepath.Join(dir, varsFiles.Content[0].Value), filepath.Join(role, "vars", "main.yml")); err != nil {
			return err
		}
	}

	// import_tasks: tasks/x.yml in a role's task file is found at the same
	// path below the role (roles/remediate/tasks/x.yml).
	refs, err := references(dir, src)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if strings.HasPrefix(ref, "tasks/") {
			if err := copyFile(filepath.Join(dir, ref), filepath.Join(role, ref)); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve is the node an alias (*anchor) stands for.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// sameYAML reports whether two nodes (nil: absent) hold the same data.
func sameYAML(a, b *yaml.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	var va, vb any
	if err := a.Decode(&va); err != nil {
		return false
	}
	if err := b.Decode(&vb); err != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func encodeYAML(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
