package playbooks_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/internal/testfleet"
)

// distDir builds what `make dist` builds (static linux/amd64 and
// linux/arm64 binaries and SHA256SUMS) into the workspace's ../dist, where
// remediate-command.yml looks by default.
func distDir(t *testing.T, w *workspace) string {
	t.Helper()
	dist := filepath.Join(filepath.Dir(w.Dir), filepath.Base(w.Dir)+"-dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	var sums strings.Builder
	for _, arch := range []string{"amd64", "arm64"} {
		name := "nodefix-linux-" + arch
		t.Setenv("GOOS", "linux")
		t.Setenv("GOARCH", arch)
		buildNodefix(t, dist, name)
		data, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256(data), name)
	}
	if err := os.WriteFile(filepath.Join(dist, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dist
}

// TestRemediateCommand is issue 7's done-when for the command-module
// playbook: check mode changes nothing, applied it renames every node,
// again it changes nothing, and no nodefix binary is left on a node.
func TestRemediateCommand(t *testing.T) {
	requireAnsible(t)
	const nodes = 3
	f := testfleet.New(t, testfleet.Options{Nodes: nodes, Hostname: localhostNames})
	w := newWorkspace(t, nodes)
	dist := distDir(t, w)
	config := kubeaszConfig(t)
	args := []string{"-i", f.InventoryYAML, "-e", "@" + config, "-e", "nodefix_dist_dir=" + dist}

	out, rc := w.run(t, "remediate-command.yml", append(args, "--check")...)
	if rc != 0 {
		t.Fatalf("check mode: exit %d:\n%s", rc, out)
	}
	recaps := parseRecap(t, out)
	for name, st := range describeAll(t, f) {
		if st.Hostname != "localhost" || st.EtcHostname != "localhost" {
			t.Errorf("check mode renamed %s to %q", name, st.Hostname)
		}
		if r := recaps[name]; r.Changed < 1 || r.Failed != 0 {
			t.Errorf("check mode: %s recap %+v, want changed", name, r)
		}
	}
	noBinaryLeft(t, f)

	out, rc = w.run(t, "remediate-command.yml", args...)
	if rc != 0 {
		t.Fatalf("apply: exit %d:\n%s", rc, out)
	}
	states := describeAll(t, f)
	for _, n := range f.Nodes {
		if want := kubeaszName(n.Name, n.K8sNodename); states[n.Name].Hostname != want {
			t.Errorf("%s is named %q, want %q", n.Name, states[n.Name].Hostname, want)
		}
	}

	out, rc = w.run(t, "remediate-command.yml", args...)
	if rc != 0 {
		t.Fatalf("second apply: exit %d:\n%s", rc, out)
	}
	for _, n := range f.Nodes {
		if r, ok := parseRecap(t, out)[n.Name]; !ok || r.Changed != 0 || r.Failed != 0 {
			t.Errorf("second apply: %s recap %+v, want changed=0\n%s", n.Name, r, out)
		}
	}
	noBinaryLeft(t, f)
}

// noBinaryLeft: the playbook's private directories are gone from every node.
func noBinaryLeft(t *testing.T, f *testfleet.Fleet) {
	t.Helper()
	for _, n := range f.Nodes {
		out, err := n.Sh(context.Background(), `ls -d /root/.ansible/tmp/nodefix.* 2>/dev/null || true`)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) != "" {
			t.Errorf("nodefix left behind on %s: %s", n.Name, out)
		}
	}
}
