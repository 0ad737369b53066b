package testfleet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sshRun runs a command on a node with the OpenSSH client, verifying the
// host key against the fleet's known_hosts.
func sshRun(t *testing.T, f *Fleet, n *Node, user string, stdin string, command ...string) (string, error) {
	t.Helper()
	args := []string{"-i", f.ClientKeyFile, "-o", "UserKnownHostsFile=" + f.KnownHostsFile,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
		"-p", strconv.Itoa(n.Port), user + "@" + n.Addr, "--"}
	cmd := exec.Command("ssh", append(args, command...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("ssh %s: %w: %s", n.Name, err, stderr.String())
	}
	return string(out), nil
}

// sshAll runs command on every node at once over ssh.
func sshAll(t *testing.T, f *Fleet, command string) map[*Node]string {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[*Node]string{}
	for _, n := range f.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := sshRun(t, f, n, "root", "", command)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			out[n] = got
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func TestFleetNodesAreSeparateHosts(t *testing.T) {
	Require(t, "ssh")
	machineHostname, _ := os.Hostname()
	machineEtcHostname, _ := os.ReadFile("/etc/hostname")
	f := New(t, Options{Nodes: 20})
	ctx := context.Background()

	hostnames := sshAll(t, f, "hostname")
	for _, n := range f.Nodes {
		if want := fmt.Sprintf("worker-%02d\n", n.Index); hostnames[n] != want {
			t.Errorf("%s over ssh: hostname %q, want %q", n.Name, hostnames[n], want)
		}
	}

	renamed := f.Nodes[4]
	if err := renamed.SetHostname(ctx, "localhost"); err != nil {
		t.Fatal(err)
	}
	names := sshAll(t, f, "hostname; cat /etc/hostname")
	for _, n := range f.Nodes {
		got := names[n]
		want := fmt.Sprintf("worker-%02d\nworker-%02d\n", n.Index, n.Index)
		if n == renamed {
			want = "localhost\nlocalhost\n"
		}
		if got != want {
			t.Errorf("%s: hostname and /etc/hostname %q, want %q", n.Name, got, want)
		}
	}
	if h, _ := os.Hostname(); h != machineHostname {
		t.Errorf("the machine's hostname changed from %q to %q", machineHostname, h)
	}
	if data, _ := os.ReadFile("/etc/hostname"); !bytes.Equal(data, machineEtcHostname) {
		t.Errorf("the machine's /etc/hostname changed to %q", data)
	}
}

func TestFleetRPMFaults(t *testing.T) {
	f := New(t, Options{Nodes: 3})
	ctx := context.Background()
	hung, healthy, corrupt := f.Nodes[0], f.Nodes[1], f.Nodes[2]

	if _, err := hung.HoldRPMDBLock(ctx); err != nil {
		t.Fatal(err)
	}
	tx, err := hung.StartProcess(ctx, "rpm", "-i", "--nodeps", f.SlowInstallRPM)
	if err != nil {
		t.Fatal(err)
	}
	dnf, err := hung.StartDNF(ctx, "makecache")
	if err != nil {
		t.Fatal(err)
	}
	queries, err := hung.StartRPMQueries(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	for _, pid := range append(queries, tx, dnf) {
		if alive, err := hung.ProcessAlive(ctx, pid); err != nil || !alive {
			t.Errorf("pid %d on %s: alive %v, %v; want a hung process", pid, hung.Name, alive, err)
		}
	}
	countQueries := func(n *Node) int {
		out, err := n.Sh(ctx, `ps -eo comm=,args= | awk '$1 == "rpm" && / -q/' | wc -l`)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := strconv.Atoi(strings.TrimSpace(out))
		return c
	}
	if got := countQueries(hung); got < len(queries) {
		t.Errorf("%s sees %d rpm queries, want at least %d", hung.Name, got, len(queries))
	}
	if got := countQueries(healthy); got != 0 {
		t.Errorf("%s sees %d rpm queries of another node", healthy.Name, got)
	}
	out, err := hung.Sh(ctx, `ps -o comm= -p "$1"`, strconv.Itoa(dnf))
	if err != nil || strings.TrimSpace(out) != "dnf" {
		t.Errorf("dnf lookalike comm %q, %v", out, err)
	}

	if err := corrupt.CorruptRPMDB(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := healthy.Sh(ctx, "rpm --verifydb"); err != nil {
		t.Errorf("healthy node: %v", err)
	}
	res, err := corrupt.Sh(ctx, "rpm -q iscsi-initiator-utils")
	if err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("corrupted node: rpm -q gave %q, %v; want a malformed-database error", res, err)
	}
	out, err = healthy.Sh(ctx, "rpm -qa | sort")
	if err != nil || len(strings.Fields(out)) != len(RecordedPackages) {
		t.Errorf("healthy node records %q, %v", out, err)
	}

	// A transaction holds the transaction lock; queries still answer.
	if _, err := healthy.StartRPMTransaction(ctx, f); err != nil {
		t.Fatal(err)
	}
	if out, err := healthy.Sh(ctx, "rpm -q iscsi-initiator-utils"); err != nil {
		t.Errorf("query beside a transaction: %q, %v", out, err)
	}
	if _, err := healthy.Sh(ctx, "rpm --verifydb"); err == nil || !strings.Contains(err.Error(), "transaction lock") {
		t.Errorf("verifydb during a transaction: %v, want the transaction lock refusal", err)
	}
}

func TestFleetFaultsAndUsers(t *testing.T) {
	Require(t, "ssh")
	f := New(t, Options{Nodes: 4})
	ctx := context.Background()
	down, stalled, rekeyed, sudo := f.Nodes[0], f.Nodes[1], f.Nodes[2], f.Nodes[3]

	if err := down.StopSSHD(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sshRun(t, f, down, "root", "", "true"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("stopped sshd: %v, want connection refused", err)
	}
	if err := down.StartSSHD(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sshRun(t, f, down, "root", "", "true"); err != nil {
		t.Errorf("restarted sshd: %v", err)
	}

	if err := stalled.StallSSHD(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := sshRun(t, f, stalled, "root", "", "true"); err == nil {
		t.Errorf("stalled sshd answered")
	}
	t.Logf("ssh to the stalled node gave up after %s", time.Since(start).Round(time.Millisecond))
	if err := stalled.ResumeSSHD(ctx); err != nil {
		t.Fatal(err)
	}

	if err := rekeyed.ChangeHostKey(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sshRun(t, f, rekeyed, "root", "", "true"); err == nil || !strings.Contains(err.Error(), "HOST IDENTIFICATION HAS CHANGED") {
		t.Errorf("changed host key: %v, want OpenSSH's warning", err)
	}

	out, err := sshRun(t, f, sudo, f.SudoUser, f.SudoPassword+"\n", "sudo -S -p '' id -u")
	if err != nil || strings.TrimSpace(out) != "0" {
		t.Errorf("sudo with password: %q, %v", out, err)
	}
	if _, err := sshRun(t, f, sudo, f.SudoUser, "", "sudo", "-n", "true"); err == nil {
		t.Errorf("sudo -n succeeded: the sudo user must need its password")
	}
	if err := sudo.RemoveExecutable(ctx, "iscsiadm"); err != nil {
		t.Fatal(err)
	}
	if _, err := sudo.Sh(ctx, "command -v iscsiadm"); err == nil {
		t.Errorf("iscsiadm still on the node after RemoveExecutable")
	}
	if _, err := f.Nodes[0].Sh(ctx, "command -v iscsiadm"); err != nil {
		t.Errorf("iscsiadm gone from another node: %v", err)
	}
	if _, err := os.Stat("/usr/sbin/iscsiadm"); err != nil {
		t.Errorf("iscsiadm gone from the machine: %v", err)
	}
}

func TestFleetTeardownLeavesNothing(t *testing.T) {
	Require(t, "ip")
	ctx := context.Background()
	f, err := Start(ctx, Options{Nodes: 3, Dir: t.TempDir(), BehindJump: []int{3}})
	if err != nil {
		t.Fatal(err)
	}
	n := f.Nodes[0]
	if _, err := n.HoldRPMDBLock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.StartRPMQueries(ctx, 4); err != nil {
		t.Fatal(err)
	}
	var pidNS []string
	for _, n := range f.Nodes {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", n.InitPID))
		if err != nil {
			t.Fatal(err)
		}
		pidNS = append(pidNS, ns)
	}
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range f.Nodes {
		if n.running() {
			t.Errorf("%s: PID 1 (%d) still runs", n.Name, n.InitPID)
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		ns, err := os.Readlink("/proc/" + p.Name() + "/ns/pid")
		if err != nil {
			continue
		}
		for _, dead := range pidNS {
			if ns == dead {
				cmdline, _ := os.ReadFile("/proc/" + p.Name() + "/cmdline")
				t.Errorf("process %s (%q) survived in a stopped node's namespace", p.Name(), cmdline)
			}
		}
		if cmdline, _ := os.ReadFile("/proc/" + p.Name() + "/cmdline"); bytes.Contains(cmdline, []byte(f.Dir)) {
			t.Errorf("process %s (%q) still uses the fleet directory", p.Name(), cmdline)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mounts, []byte(f.Dir)) || bytes.Contains(mounts, []byte("nodefix-")) {
		t.Errorf("mounts left behind:\n%s", mounts)
	}
	for _, lock := range []string{f.block.lockFile, f.netBlock.lockFile} {
		if _, err := os.Stat(lock); err == nil {
			t.Errorf("address lock %s left behind", lock)
		}
	}
	links, err := exec.Command("ip", "-o", "link").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range f.Nodes {
		if n.Net != nil && bytes.Contains(links, []byte(n.Net.Veth)) {
			t.Errorf("veth %s of %s left behind", n.Net.Veth, n.Name)
		}
	}
}

func TestFleetJumpHost(t *testing.T) {
	Require(t, "ssh", "ip")
	f := New(t, Options{Nodes: 3, BehindJump: []int{3}})
	jump, direct, hidden := f.Nodes[0], f.Nodes[1], f.Nodes[2]
	if _, err := sshRun(t, f, jump, "root", "", "true"); err != nil {
		t.Errorf("jump host: %v", err)
	}
	if _, err := sshRun(t, f, direct, "root", "", "true"); err != nil {
		t.Errorf("ordinary node: %v", err)
	}
	if _, err := sshRun(t, f, hidden, "root", "", "true"); err == nil {
		t.Errorf("the node behind the jump host answered directly")
	}
	// OpenSSH applies command-line options to the destination only; the
	// jump host gets its own through ProxyCommand here.
	proxy := fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes -W %%h:%%p root@%s",
		f.ClientKeyFile, f.KnownHostsFile, jump.Addr)
	out, err := exec.Command("ssh", "-i", f.ClientKeyFile, "-o", "UserKnownHostsFile="+f.KnownHostsFile,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ProxyCommand="+proxy,
		"root@"+hidden.Addr, "hostname").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "worker-03" {
		t.Errorf("through the jump host: %q, %v", out, err)
	}
	inv, _ := os.ReadFile(f.InventoryYAML)
	if !strings.Contains(string(inv), "ProxyJump="+hidden.Net.ProxyJump) {
		t.Errorf("inventory lacks the ProxyJump for %s:\n%s", hidden.Name, inv)
	}
}

func TestFleetWedgedRPMDB(t *testing.T) {
	f := New(t, Options{Nodes: 1})
	ctx := context.Background()
	n := f.Nodes[0]
	w, err := n.WedgeRPMDB(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	queries, err := n.StartRPMQueries(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	for _, pid := range append(queries, w.ReaderPID, w.WriterPID) {
		if alive, err := n.ProcessAlive(ctx, pid); err != nil || !alive {
			t.Fatalf("pid %d: alive %v, %v; want it hung", pid, alive, err)
		}
	}
	// Ending the hung reader unwedges everything.
	if _, err := n.Sh(ctx, `kill -TERM "$1"; sleep 2; kill -KILL "$1" 2>/dev/null; true`, strconv.Itoa(w.ReaderPID)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range append(queries, w.WriterPID) {
		for {
			alive, err := n.ProcessAlive(ctx, pid)
			if err != nil {
				t.Fatal(err)
			}
			if !alive {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pid %d still waits after the reader ended", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	out, err := n.Sh(ctx, "rpm --verifydb && rpm -qa | wc -l")
	if err != nil || strings.TrimSpace(out) != strconv.Itoa(len(RecordedPackages)+1) {
		t.Errorf("after the wedge: %q, %v; want a healthy database with the pending update installed", out, err)
	}
}

func TestSeedIncidents(t *testing.T) {
	f := New(t, Options{Nodes: 4, Hostname: func(int) string { return "localhost" }})
	ctx := context.Background()
	inc, err := f.SeedIncidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[*Node]State{}
	for _, n := range f.Nodes {
		if states[n], err = n.Describe(ctx); err != nil {
			t.Fatal(err)
		}
		if states[n].Hostname != "localhost" || states[n].EtcHostname != "localhost" {
			t.Errorf("%s: hostname %q/%q, want localhost", n.Name, states[n].Hostname, states[n].EtcHostname)
		}
	}
	if s := states[inc.Wedged]; s.RPMQueries < len(inc.HungQueries) || s.RPMDB != "locked" || s.RPMPackages != -1 {
		t.Errorf("wedged node: %+v", s)
	}
	if s := states[inc.Corrupted]; s.RPMDB != "corrupt" || s.RPMPackages != len(RecordedPackages) {
		t.Errorf("corrupted node: %+v", s)
	}
	a, b := states[inc.Clones[0]], states[inc.Clones[1]]
	if a.MachineID != b.MachineID || a.Initiator != b.Initiator || a.MachineID == states[f.Nodes[0]].MachineID {
		t.Errorf("clones: %+v and %+v", a, b)
	}
	if s := states[f.Nodes[0]]; s.RPMDB != "ok" || s.RPMQueries != 0 || len(s.MissingTools) != 0 {
		t.Errorf("healthy node: %+v", s)
	}
}
