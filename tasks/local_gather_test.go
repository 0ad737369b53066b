package tasks

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The gather scripts only read, so they also run on this machine: real
// sh, real /proc.
func TestHostnameGatherOnThisMachine(t *testing.T) {
	st, err := gatherHostState(context.Background(), localNode{}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := os.Hostname(); st.Kernel != name {
		t.Errorf("kernel hostname %q, os.Hostname %q", st.Kernel, name)
	}
	if hosts, err := os.ReadFile("/etc/hosts"); err == nil && st.Hosts != string(hosts) {
		t.Errorf("/etc/hosts not read byte for byte")
	}
	if id, err := os.ReadFile("/etc/machine-id"); err == nil && st.MachineID != strings.TrimSpace(string(id)) {
		t.Errorf("machine-id %q", st.MachineID)
	}
}

// A non-login SSH session's PATH has no sbin: longhorn-deps must still
// find what lives there. The node's commands run with
// PATH=/usr/local/bin:/usr/bin:/bin (nsnode_test.go).
func TestLonghornDepsFindsSbinWithoutSbinInPath(t *testing.T) {
	requireRealNodes(t)
	var missing []string
	for _, e := range DefaultConfig().LonghornExecutables {
		if _, err := exec.LookPath("/usr/sbin/" + e); err != nil {
			if _, err := exec.LookPath("/sbin/" + e); err != nil {
				missing = append(missing, e)
			}
		}
	}
	if len(missing) > 0 {
		msg := "this test needs " + strings.Join(missing, ", ") + " in /usr/sbin (make deps)"
		if os.Getenv("NODEFIX_FLEET") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	n := newNSNode(t, nsNodeOptions{})
	if p := strings.TrimSpace(n.sh(`echo "$PATH"`)); strings.Contains(p, "sbin") {
		t.Fatalf("test node PATH %q has sbin", p)
	}
	out := LonghornDeps{}.Apply(context.Background(), n, Host{Name: "n"}, DefaultConfig())
	if out.Status != StatusOK {
		t.Fatalf("%+v", out)
	}
}
