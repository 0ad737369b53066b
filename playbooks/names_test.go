package playbooks_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/internal/testfleet"
)

// Issue 11 through the playbooks: the same name scenarios as the CLI's
// (testfleet.NameCases), the same ends. remediate.yml runs on a kubeasz
// hosts file without config.yml (where it used to refuse every host that
// had a k8s_nodename), remediate-command.yml on the YAML inventory.
func TestPlaybooksJudgeNamesAgainstTheNode(t *testing.T) {
	requireAnsible(t)
	cases := testfleet.NameCases()
	misnamed := testfleet.MisnamedCases()
	f := testfleet.New(t, testfleet.NameCaseOptions(cases))
	w := newWorkspace(t, len(cases))
	dist := distDir(t, w)
	ctx := context.Background()
	for _, pb := range []struct {
		playbook string
		ini      bool
		extra    []string
	}{
		{"remediate.yml", true, nil},
		{"remediate-command.yml", false, []string{"-e", "nodefix_dist_dir=" + dist}},
	} {
		t.Run(pb.playbook, func(t *testing.T) {
			for i, n := range f.Nodes {
				if err := n.SetHostname(ctx, cases[i].Hostname); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			right, wrong := filepath.Join(dir, "right"), filepath.Join(dir, "wrong")
			write := f.WriteYAMLInventory
			if pb.ini {
				write = f.WriteINIInventory
			}
			if err := write(right, f.InventoryWith(cases)); err != nil {
				t.Fatal(err)
			}
			if err := write(wrong, f.InventoryWith(misnamed)); err != nil {
				t.Fatal(err)
			}
			host := func(n *testfleet.Node) string {
				if pb.ini {
					return n.Addr
				}
				return n.Name
			}
			run := func(inv string) (string, int) {
				return w.run(t, pb.playbook, append([]string{"-i", inv, "-e", "nodefix_tasks=hostname"}, pb.extra...)...)
			}
			expect := func(step, out string, cs []testfleet.NameCase) {
				t.Helper()
				recaps := parseRecap(t, out)
				states := describeAll(t, f)
				for i, n := range f.Nodes {
					c := cs[i]
					r := recaps[host(n)]
					if failed := r.Failed > 0; failed != (c.Status == "failed") {
						t.Errorf("%s: %s (%s): recap %+v, want hostname %s", step, n.Name, c.What, r, c.Status)
					}
					if got := states[n.Name].Hostname; got != c.Want(n.Addr) {
						t.Errorf("%s: %s (%s): hostname %q, want %q", step, n.Name, c.What, got, c.Want(n.Addr))
					}
					if c.Status != "failed" {
						continue
					}
					line := strings.ReplaceAll(fatalLine(out, host(n)), `\"`, `"`)
					for _, want := range c.MsgHas {
						if !strings.Contains(line, want) {
							t.Errorf("%s: %s: the failure %q lacks %q", step, n.Name, line, want)
						}
					}
				}
			}

			out, rc := run(wrong)
			if rc != 2 {
				t.Errorf("wrong inventory: exit %d, want 2:\n%s", rc, out)
			}
			expect("wrong inventory", out, misnamed)

			out, rc = run(right)
			if rc != 0 {
				t.Errorf("right inventory: exit %d:\n%s", rc, out)
			}
			expect("right inventory", out, cases)

			out, rc = run(right)
			for name, r := range parseRecap(t, out) {
				if rc != 0 || r.Changed != 0 || r.Failed != 0 {
					t.Errorf("second run: exit %d, %s recap %+v: want nothing changed", rc, name, r)
				}
			}
		})
	}
}
