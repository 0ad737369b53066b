// Command build assembles the nodefix.longhorn Ansible collection in a
// temporary directory and builds it with the real `ansible-galaxy
// collection build` into OUT/nodefix-longhorn-<version>.tar.gz. `make
// collection` runs it after `make dist`; the playbook tests run it too.
//
//	go run ./playbooks/collection/build -dist dist -out dist -version "$(git describe --tags --always --dirty)"
//
// The collection has one source of everything:
//   - playbooks/collection/ (galaxy.yml, meta/, plugins/action/, the
//     role's meta and README, changelogs/) is copied as it is;
//   - plugins/modules/remediate.py (documentation only) and
//     plugins/module_utils/params.py are written from internal/module's
//     parameter table, so ansible-doc and the action plugin name exactly
//     the parameters the binary accepts;
//   - files/ holds the static binaries of `make dist`, checked against
//     dist/SHA256SUMS;
//   - playbooks/ are nodefix's own playbooks/remediate.yml and
//     kubeasz-post-install.yml (as kubeasz_post_install.yml: collection
//     playbook names cannot hold "-") with the task and vars files they
//     use, byte for byte;
//   - roles/remediate is generated from remediate.yml's play: its tasks,
//     its vars as the role's defaults, its vars_files as the role's vars,
//     and the task files those tasks import.
//
// The playbooks call the module by its short name, nodefix: next to
// playbooks/library/nodefix that is the binary module; inside the
// collection, meta/runtime.yml routes nodefix to nodefix.longhorn.remediate
// (collection playbooks and roles look in their own collection first).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

func main() {
	repo := flag.String("repo", ".", "nodefix's source tree")
	dist := flag.String("dist", "dist", "where `make dist` put nodefix-linux-{amd64,arm64} and SHA256SUMS")
	out := flag.String("out", "dist", "where the collection tarball goes")
	version := flag.String("version", "dev", "the version, as `git describe --tags --always --dirty` gives it")
	tree := flag.String("tree", "", "assemble the collection here and keep it (default: a temporary directory)")
	galaxy := flag.String("ansible-galaxy", "ansible-galaxy", "the ansible-galaxy command")
	flag.Parse()

	if err := run(*repo, *dist, *out, *version, *tree, *galaxy); err != nil {
		fmt.Fprintf(os.Stderr, "build collection: %v\n", err)
		os.Exit(1)
	}
}

func run(repo, dist, out, rawVersion, tree, galaxy string) error {
	version, err := semver(rawVersion)
	if err != nil {
		return err
	}
	if tree == "" {
		tmp, err := os.MkdirTemp("", "nodefix-collection-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		tree = filepath.Join(tmp, "nodefix", "longhorn")
	}
	if err := assemble(repo, dist, tree, version); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.Command(galaxy, "collection", "build", "--force", "--output-path", absOut, tree)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s collection build: %v", galaxy, err)
	}
	tarball := filepath.Join(absOut, fmt.Sprintf("nodefix-longhorn-%s.tar.gz", version))
	if _, err := os.Stat(tarball); err != nil {
		return fmt.Errorf("ansible-galaxy built no %s: %v", tarball, err)
	}
	fmt.Println(tarball)
	return nil
}
