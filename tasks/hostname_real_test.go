package tasks

import (
	"context"
	"os"
	"strings"
	"testing"
)

// Real-node tests: the tasks' scripts run under a real sh, real hostname(1),
// real overlayfs /etc, in namespaces created by the test (nsnode_test.go).

// thisMachineUntouched fails the test if this machine's own name changed:
// the safety net for every test that renames a node.
func thisMachineUntouched(t *testing.T) {
	t.Helper()
	before, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	etcBefore, _ := os.ReadFile("/etc/hostname")
	hostsBefore, _ := os.ReadFile("/etc/hosts")
	t.Cleanup(func() {
		after, _ := os.Hostname()
		etcAfter, _ := os.ReadFile("/etc/hostname")
		hostsAfter, _ := os.ReadFile("/etc/hosts")
		if after != before || string(etcAfter) != string(etcBefore) || string(hostsAfter) != string(hostsBefore) {
			t.Errorf("THIS MACHINE's name changed: %q → %q", before, after)
		}
	})
}

func TestHostnameRealRenameCheckThenRunThenIdempotent(t *testing.T) {
	thisMachineUntouched(t)
	n := newNSNode(t, nsNodeOptions{})
	ctx := context.Background()
	host := Host{Name: "10.0.0.1", TargetHostname: "node-1"}
	cfg := DefaultConfig()

	before := n.snapshot()
	check := cfg
	check.Check, check.Diff = true, true
	out := Hostname{}.Apply(ctx, n, host, check)
	if out.Status != StatusChanged || !out.Changed || !strings.Contains(out.Msg, "would rename localhost → node-1") {
		t.Fatalf("check mode: %+v", out)
	}
	if out.Diff == nil || !strings.Contains(out.Diff.After, "127.0.1.1\tnode-1 localhost") {
		t.Errorf("check mode diff: %+v", out.Diff)
	}
	if got := n.snapshot(); got != before {
		t.Fatalf("check mode changed the node:\nbefore:\n%s\nafter:\n%s", before, got)
	}

	out = Hostname{}.Apply(ctx, n, host, cfg)
	if out.Status != StatusChanged || !out.Changed {
		t.Fatalf("run: %+v", out)
	}
	if got := n.hostname(); got != "node-1" {
		t.Errorf("kernel hostname %q", got)
	}
	if got := n.read("/etc/hostname"); got != "node-1\n" {
		t.Errorf("/etc/hostname %q", got)
	}
	wantHosts := strings.Replace(debianHosts, "127.0.1.1\tlocalhost", "127.0.1.1\tnode-1 localhost", 1)
	if got := n.read("/etc/hosts"); got != wantHosts {
		t.Errorf("/etc/hosts:\n%s\nwant:\n%s", got, wantHosts)
	}
	backup, _ := out.Details["hosts_backup"].(string)
	if !strings.HasPrefix(backup, "/etc/hosts.nodefix-") || n.read(backup) != debianHosts {
		t.Errorf("backup %q missing or wrong", backup)
	}
	if out.Facts[FactHostname] != "node-1" || out.Facts[FactNFSIdentifier] != "node-1" {
		t.Errorf("facts %v", out.Facts)
	}
	if left := n.sh(`ls -a /etc | grep '^\.' | grep nodefix || true`); left != "" {
		t.Errorf("temporary files left in /etc: %s", left)
	}

	again := Hostname{}.Apply(ctx, n, host, cfg)
	if again.Status != StatusOK || again.Changed {
		t.Fatalf("second run: %+v", again)
	}
}

func TestHostnameRealFailureKeepsOldName(t *testing.T) {
	fakeHostnamectl := `mkdir -p /run/systemd/system
mount -t tmpfs tmpfs /usr/local/bin
cat >/usr/local/bin/hostnamectl <<'EOF'
#!/bin/sh
# half applies, as a failing hostnamectl may, then fails
printf '%s\n' "$2" >/etc/hostname
echo "Could not set static hostname: Access denied" >&2
exit 1
EOF
chmod +x /usr/local/bin/hostnamectl`
	for _, tc := range []struct {
		name, setup, wantMsg string
	}{
		{"read-only /etc/hostname", "mount --bind /etc/hostname /etc/hostname; mount -o remount,ro,bind /etc/hostname",
			"cannot replace /etc/hostname"},
		{"read-only /etc", "mount -o remount,ro /etc", "nothing changed"},
		{"hostnamectl fails", "mount -t tmpfs tmpfs /run\n" + fakeHostnamectl, "Access denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			thisMachineUntouched(t)
			n := newNSNode(t, nsNodeOptions{Setup: tc.setup})
			before := n.snapshot()
			out := Hostname{}.Apply(context.Background(), n, Host{Name: "h", TargetHostname: "node-1"}, DefaultConfig())
			t.Logf("outcome: %s: %s", out.Status, out.Msg)
			if out.Status != StatusFailed || !strings.Contains(out.Msg, tc.wantMsg) {
				t.Fatalf("want failed with %q, got %+v", tc.wantMsg, out)
			}
			if out.Changed {
				t.Errorf("a failure that restored everything must not report changed: %+v", out)
			}
			if got := n.snapshot(); got != before {
				t.Errorf("the node changed:\nbefore:\n%s\nafter:\n%s", before, got)
			}
			if out.Facts[FactHostname] != "localhost" {
				t.Errorf("facts %v", out.Facts)
			}
		})
	}
}

func TestHostnameRealHostnamectl(t *testing.T) {
	thisMachineUntouched(t)
	// A stand-in hostnamectl (this machine has no systemd): the task must
	// pick it where /run/systemd/system exists.
	n := newNSNode(t, nsNodeOptions{Setup: `mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system
mount -t tmpfs tmpfs /usr/local/bin
cat >/usr/local/bin/hostnamectl <<'EOF'
#!/bin/sh
[ "$1" = set-hostname ] || exit 2
hostname "$2" && printf '%s\n' "$2" >/etc/hostname && echo "$2" >/run/hostnamectl-called
EOF
chmod +x /usr/local/bin/hostnamectl`})
	out := Hostname{}.Apply(context.Background(), n, Host{Name: "h", TargetHostname: "node-2"}, DefaultConfig())
	if out.Status != StatusChanged || out.Details["method"] != "hostnamectl" {
		t.Fatalf("%+v", out)
	}
	if got := n.read("/run/hostnamectl-called"); got != "node-2\n" {
		t.Errorf("hostnamectl not used: %q", got)
	}
	if n.hostname() != "node-2" || n.read("/etc/hostname") != "node-2\n" {
		t.Errorf("not renamed")
	}
}

func TestHostnameRealNFSUniqueID(t *testing.T) {
	thisMachineUntouched(t)
	n := newNSNode(t, nsNodeOptions{Hostname: "node-3"})
	cfg := DefaultConfig()
	cfg.SetNFSUniqueID, cfg.KeepHostname = true, true
	host := Host{Name: "h", TargetHostname: "node-3"}
	out := Hostname{}.Apply(context.Background(), n, host, cfg)
	if out.Status != StatusChanged {
		t.Fatalf("%+v", out)
	}
	conf := n.read(nfsModprobeConf)
	want := "options nfs nfs4_unique_id=" + nfsUniquifier(strings.TrimSpace(n.read("/etc/machine-id")), "node-3") + "\n"
	if !strings.HasSuffix(conf, want) {
		t.Errorf("%s:\n%s\nwant it to end with %q", nfsModprobeConf, conf, want)
	}
	if again := (Hostname{}).Apply(context.Background(), n, host, cfg); again.Status != StatusOK {
		t.Errorf("second run: %+v", again)
	}
}

// Issue 11: in a container /etc/hosts and /etc/hostname are bind mounts (Docker,
// kind, k3d, some LXC); a rename cannot replace them, so it writes them in
// place, and the mounts stay.
func TestHostnameRealBindMountedFiles(t *testing.T) {
	thisMachineUntouched(t)
	n := newNSNode(t, nsNodeOptions{Setup: `mount -t tmpfs nodefix-ctr /mnt
cp /etc/hosts /mnt/hosts && cp /etc/hostname /mnt/hostname
mount --bind /mnt/hosts /etc/hosts && mount --bind /mnt/hostname /etc/hostname`})
	ctx := context.Background()
	out := Hostname{}.Apply(ctx, n, Host{Name: "c1", TargetHostname: "node-1"}, DefaultConfig())
	if out.Status != StatusChanged {
		t.Fatalf("rename of a container: %s: %s", out.Status, out.Msg)
	}
	if got := n.hostname(); got != "node-1" {
		t.Errorf("kernel hostname %q", got)
	}
	for _, p := range []string{"/etc/hostname", "/mnt/hostname"} {
		if got := n.read(p); got != "node-1\n" {
			t.Errorf("%s %q: want the name written through the mount", p, got)
		}
	}
	if got := n.read("/mnt/hosts"); !strings.Contains(got, "127.0.1.1\tnode-1 localhost") {
		t.Errorf("/etc/hosts (the mounted file):\n%s", got)
	}
	mounts := n.sh(`grep -E ' /etc/(hosts|hostname) ' /proc/self/mountinfo | wc -l`)
	if strings.TrimSpace(mounts) != "2" {
		t.Errorf("%s bind mounts left on /etc/hosts and /etc/hostname, want 2", strings.TrimSpace(mounts))
	}
	if left := n.sh(`ls -a /etc | grep '^\.' | grep nodefix || true`); left != "" {
		t.Errorf("temporary files left in /etc: %s", left)
	}
	if again := (Hostname{}).Apply(ctx, n, Host{Name: "c1", TargetHostname: "node-1"}, DefaultConfig()); again.Status != StatusOK || again.Changed {
		t.Errorf("second run: %s %v: %s", again.Status, again.Changed, again.Msg)
	}
}
