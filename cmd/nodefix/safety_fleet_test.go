package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/testfleet"
)

// auditRecord is the part of a changes.jsonl line the tests read.
type auditRecord struct {
	Time       string            `json:"time"`
	RunID      string            `json:"run_id"`
	Version    string            `json:"nodefix_version"`
	Controller map[string]string `json:"controller"`
	Host       string            `json:"host"`
	Task       string            `json:"task"`
	Action     string            `json:"action"`
	Outcome    string            `json:"outcome"`
	Change     map[string]any    `json:"change"`
}

// auditTrail reads a node's changes.jsonl ("" file: no records).
func auditTrail(t *testing.T, n *testfleet.Node) []auditRecord {
	t.Helper()
	out, err := n.Sh(context.Background(), `[ ! -e /var/log/nodefix/changes.jsonl ] || cat /var/log/nodefix/changes.jsonl`)
	if err != nil {
		t.Fatal(err)
	}
	var recs []auditRecord
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r auditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: a line of changes.jsonl is not JSON: %v\n%s", n.Name, err, line)
		}
		recs = append(recs, r)
	}
	return recs
}

// The "done when": --serial 1 --serial 50% --max-fail-percentage 0
// with a failing canary touches no other host and exits 2; then every
// change of a run has its line in changes.jsonl with old and new values.
func TestFleetCanaryAndAuditTrail(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 4, Hostname: func(int) string { return "localhost" }})
	ctx := context.Background()
	if err := f.Nodes[0].RemoveExecutable(ctx, "iscsiadm"); err != nil {
		t.Fatal(err)
	}
	r := nodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "hostname,longhorn-deps", "--json",
		"--serial", "1", "--serial", "50%", "--max-fail-percentage", "0")
	if r.code != exitcode.HostFailed {
		t.Errorf("exit %d, want %d", r.code, exitcode.HostFailed)
	}
	var doc struct {
		Nodefix struct {
			RunID string `json:"run_id"`
		} `json:"nodefix"`
		Batches []int `json:"batches"`
		Aborted *struct {
			Batch int `json:"batch"`
		} `json:"aborted"`
		Hosts map[string]struct {
			Status string `json:"status"`
			Msg    string `json:"msg"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Nodefix.RunID) != 16 || doc.Aborted == nil || doc.Aborted.Batch != 1 || len(doc.Batches) != 3 {
		t.Errorf("run id %q, aborted %+v, batches %v: want 16 hex digits, aborted after batch 1, batches [1 2 1]", doc.Nodefix.RunID, doc.Aborted, doc.Batches)
	}
	if h := doc.Hosts["node01"]; h.Status != "failed" {
		t.Errorf("canary node01: %s", h.Status)
	}
	if !strings.Contains(r.stderr, "run id "+doc.Nodefix.RunID) || !strings.Contains(r.stderr, "aborted after batch 1 of 3") {
		t.Errorf("the recap lacks the run id or the abort")
	}
	for _, n := range f.Nodes[1:] {
		if h := doc.Hosts[n.Name]; h.Status != "not_run" || !strings.Contains(h.Msg, "not started") {
			t.Errorf("%s: %s %q, want not_run", n.Name, h.Status, h.Msg)
		}
		if got, _ := n.Hostname(ctx); got != "localhost" {
			t.Errorf("%s renamed to %q behind a failed canary", n.Name, got)
		}
		if recs := auditTrail(t, n); len(recs) != 0 {
			t.Errorf("%s has audit records though untouched: %+v", n.Name, recs)
		}
	}
	// The canary's rename (before its longhorn-deps failed) is on record.
	recs := auditTrail(t, f.Nodes[0])
	if len(recs) != 1 {
		t.Fatalf("node01: %d records, want 1: %+v", len(recs), recs)
	}
	rec := recs[0]
	hn, _ := rec.Change["hostname"].(map[string]any)
	if rec.RunID != doc.Nodefix.RunID || rec.Task != "hostname" || rec.Outcome != "changed" || rec.Host != "node01" ||
		hn["old"] != "localhost" || hn["new"] != "worker-01" || rec.Time == "" || rec.Controller["user"] == "" || rec.Controller["host"] == "" {
		t.Errorf("node01's record %+v", rec)
	}

	// The rest, with an rpm database to rebuild: each change its line.
	if err := f.Nodes[2].CorruptRPMDB(ctx); err != nil {
		t.Fatal(err)
	}
	r = nodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "hostname,rpmdb", "--json", "--run-id", "second-run", "--controller", "ops@bastion")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	for _, n := range f.Nodes[1:] {
		recs := auditTrail(t, n)
		var tasks []string
		for _, rec := range recs {
			tasks = append(tasks, rec.Task)
			if rec.RunID != "second-run" || rec.Controller["user"] != "ops" || rec.Controller["host"] != "bastion" || rec.Host != n.Name {
				t.Errorf("%s: record %+v", n.Name, rec)
			}
		}
		want := "hostname"
		if n == f.Nodes[2] {
			want = "hostname,rpmdb"
		}
		if strings.Join(tasks, ",") != want {
			t.Errorf("%s: records for %v, want %s", n.Name, tasks, want)
		}
		if n == f.Nodes[2] && len(recs) == 2 {
			c := recs[1].Change
			if c["backup"] == "" || c["packages_before"] != float64(9) || c["packages_after"] != float64(9) || recs[1].Action != "rebuild" {
				t.Errorf("%s: rpmdb record %+v: want the backup and 9 packages before and after", n.Name, recs[1])
			}
		}
	}
	// A run with nothing to change writes nothing.
	before := auditTrail(t, f.Nodes[1])
	if r := nodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "hostname,rpmdb", "-l", "node02"); r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	if after := auditTrail(t, f.Nodes[1]); len(after) != len(before) {
		t.Errorf("a run that changed nothing added %d records", len(after)-len(before))
	}
}

// shim makes a node's command block at a step: a wrapper first on PATH
// that, when its arguments match, says it got there and waits until the
// test releases it, then runs the real command.
func shim(t *testing.T, n *testfleet.Node, name, match string) {
	t.Helper()
	script := `#!/bin/sh
case "$*" in *"` + match + `"*)
	if [ -e /run/nf-block ]; then
		: >/run/nf-reached
		while [ -e /run/nf-block ]; do sleep 0.05; done
	fi;;
esac
for d in /usr/bin /bin /usr/sbin /sbin; do [ -x "$d/` + name + `" ] && exec "$d/` + name + `" "$@"; done
exit 127
`
	if _, err := n.Sh(context.Background(), `printf '%s' "$1" >/usr/local/bin/"$2" && chmod 755 /usr/local/bin/"$2" && : >/run/nf-block`, script, name); err != nil {
		t.Fatal(err)
	}
}

// nodeState is what the interruption matrix compares: the names, the rpm
// database's files, and the NFS uniquifier (the modprobe.d file and the
// live parameter).
func nodeState(t *testing.T, n *testfleet.Node) [3]string {
	t.Helper()
	names, err := n.Sh(context.Background(), `hostname; cat /etc/hostname; grep -c . /etc/hosts`)
	if err != nil {
		t.Fatal(err)
	}
	db, err := n.Sh(context.Background(), `cd /var/lib/rpm && sha256sum rpmdb.sqlite`)
	if err != nil {
		t.Fatal(err)
	}
	nfs, err := n.Sh(context.Background(), `cat /etc/modprobe.d/nodefix-nfs.conf /sys/module/nfs/parameters/nfs4_unique_id 2>/dev/null; true`)
	if err != nil {
		t.Fatal(err)
	}
	return [3]string{names, db, nfs}
}

// leftovers lists what nodefix may leave on a node and must not: work
// directories, job directories, temporary files, nodefix processes.
func nodefixLeftovers(t *testing.T, n *testfleet.Node) string {
	t.Helper()
	out, err := n.Sh(context.Background(), `ls -d /var/lib/.nodefix-rpmdb.* /var/lib/nodefix/jobs/* /etc/.host*.nodefix* /etc/modprobe.d/.nodefix-nfs.conf.* /var/lib/rpm/.nodefix-* /var/lib/nodefix/rpmdb-backups/*.partial 2>/dev/null
for p in /proc/[0-9]*; do [ "${p#/proc/}" = "$$" ] && continue; c=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null); case $c in *"# nodefix:"*|*nodefix-job*) echo "process ${p#/proc/}: ${c%%
*}";; esac; done; true`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// fakeNFSParameter gives a node an nfs module parameter nfs4_unique_id of
// its own: a tmpfs over /sys/module in the node's mount namespace (private:
// this machine's /sys is never written), holding an empty
// nfs/parameters/nfs4_unique_id, as a loaded nfs module without a
// uniquifier has. The hostname task then sets it live, as on a real node.
func fakeNFSParameter(t *testing.T, n *testfleet.Node) {
	t.Helper()
	if _, err := n.Sh(context.Background(), `mount -t tmpfs -o size=1m,mode=755 nodefix-fake-sysmodule /sys/module &&
mkdir -p /sys/module/nfs/parameters && : >/sys/module/nfs/parameters/nfs4_unique_id &&
[ "$(stat -f -c %T /sys/module)" = tmpfs ]`); err != nil {
		t.Fatal(err)
	}
	// This machine's view is untouched.
	if data, err := os.ReadFile("/sys/module/nfs/parameters/nfs4_unique_id"); err == nil && strings.Contains(string(data), "nodefix-") {
		t.Fatalf("this machine's nfs4_unique_id holds %q", data)
	}
	if _, err := os.Stat("/sys/module/nfs/parameters"); err == nil {
		t.Logf("this machine has the nfs module loaded; the node %s sees its own parameter file", n.Name)
	}
}

// inventoryWithHostVar writes f's YAML inventory with one more variable
// for one host.
func inventoryWithHostVar(t *testing.T, f *testfleet.Fleet, host, key, value string) string {
	t.Helper()
	data, err := os.ReadFile(f.InventoryYAML)
	if err != nil {
		t.Fatal(err)
	}
	anchor := "        " + host + ":\n"
	i := strings.Index(string(data), anchor)
	if i < 0 {
		t.Fatalf("no host %s in %s", host, f.InventoryYAML)
	}
	i += len(anchor)
	out := string(data[:i]) + "          " + key + ": " + value + "\n" + string(data[i:])
	path := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// killInstall kills, on the node, the protected step blocked in the mv
// shim (the rpmdb install between two moves): every process of its
// session, as the node losing it (an OOM kill, someone's kill -9) would.
func killInstall(t *testing.T, n *testfleet.Node) {
	t.Helper()
	out, err := n.Sh(context.Background(), `sid=
for d in /proc/[0-9]*; do
	c=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)
	case $c in *"/usr/local/bin/mv "*"/db/rpmdb.sqlite"*) read -r st <"$d/stat"; st=${st##*) }; set -- $st; sid=$4; break ;; esac
done
[ -n "$sid" ] || { echo "no blocked install" >&2; exit 1; }
n=0
for d in /proc/[0-9]*; do
	read -r st <"$d/stat" 2>/dev/null || continue
	st=${st##*) }; set -- $st
	[ "$4" = "$sid" ] && kill -KILL "${d#/proc/}" 2>/dev/null && n=$((n+1))
done
echo "$n"`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: killed the install's %s processes", n.Name, strings.TrimSpace(out))
}

// The interruption matrix: a node-side step of each multi-step change is
// blocked (a shim first on PATH), one real `nodefix run` over every node
// gets there, and then it is interrupted — the controller SIGKILLed,
// Ctrl-C (SIGINT to nodefix, which cancels and ends the commands' remote
// sessions), or every SSH connection dropped (the node's sshd processes
// serving them killed) — and the steps are released: the node goes on
// without its controller. Each node is then as before or as after, and
// the next run ends clean (exit 0) with nothing left behind. One more
// node dies itself in the middle of the install (the install killed on
// the node between two moves): the next run restores its database from
// the backup the install's journal names, and repairs it again.
func TestFleetInterruptionMatrix(t *testing.T) {
	steps := []struct {
		name, tasks, cmd, match string
		corrupt                 bool
		nfs                     bool // the NFS uniquifier (per host, a fake live parameter)
		killInstall             bool // the node kills the install itself: the journal case
	}{
		{name: "hostname: the kernel name", cmd: "hostname", match: "worker-"},
		{name: "hostname: the NFS uniquifier's modprobe.d file", cmd: "mv", match: "modprobe.d/nodefix-nfs.conf", nfs: true},
		{name: "rpmdb: the backup", cmd: "tar", match: "-czf", corrupt: true},
		{name: "rpmdb: the copy", cmd: "cp", match: "-a", corrupt: true},
		{name: "rpmdb: the rebuild", cmd: "rpm", match: "--rebuilddb", corrupt: true},
		{name: "rpmdb: the install under rpm's lock", cmd: "python3", match: "fcntl", corrupt: true},
		{name: "rpmdb: moving the rebuilt files", cmd: "mv", match: "/db/rpmdb.sqlite", corrupt: true},
		{name: "rpmdb: the install killed on the node between moves", cmd: "mv", match: "/db/rpmdb.sqlite", corrupt: true, killInstall: true},
	}
	f := testfleet.New(t, testfleet.Options{Nodes: len(steps), Hostname: func(int) string { return "localhost" }})
	ctx := context.Background()
	inventory := f.InventoryYAML
	for i, st := range steps {
		if st.nfs {
			fakeNFSParameter(t, f.Nodes[i])
			inventory = inventoryWithHostVar(t, f, f.Nodes[i].Name, "nodefix_set_nfs_unique_id", "true")
		}
	}
	modes := []struct {
		name      string
		interrupt func(t *testing.T, cmd *exec.Cmd)
		exit      int // the interrupted run's exit code (-1: killed)
	}{
		{"the controller SIGKILLed", func(t *testing.T, cmd *exec.Cmd) {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}, -1},
		{"Ctrl-C", func(t *testing.T, cmd *exec.Cmd) {
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
		}, exitcode.Interrupted},
		{"the connections dropped", func(t *testing.T, cmd *exec.Cmd) {
			for _, n := range f.Nodes {
				ended, err := n.DropConnections(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if ended == 0 {
					t.Errorf("%s: no connection to drop", n.Name)
				}
			}
		}, exitcode.Unreachable},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			for i, st := range steps {
				n := f.Nodes[i]
				// The node as a run finds it: named localhost, its database
				// corrupted, no uniquifier; then the step's shim.
				if err := n.SetHostname(ctx, "localhost"); err != nil {
					t.Fatal(err)
				}
				if st.corrupt {
					if err := n.CorruptRPMDB(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if st.nfs {
					if _, err := n.Sh(ctx, `rm -f /etc/modprobe.d/nodefix-nfs.conf && : >/sys/module/nfs/parameters/nfs4_unique_id`); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := n.Sh(ctx, `rm -f /run/nf-reached`); err != nil {
					t.Fatal(err)
				}
				shim(t, n, st.cmd, st.match)
			}
			before := map[string][3]string{}
			for _, n := range f.Nodes {
				before[n.Name] = nodeState(t, n)
			}
			// One run over every node: each blocks at its own step.
			cmd := exec.Command(nodefixBinary(t), "run", "-i", inventory, "--tasks", "hostname,rpmdb")
			cmd.Env = cleanEnv(t)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			})
			deadline := time.Now().Add(5 * time.Minute)
			for i, st := range steps {
				for {
					if _, err := f.Nodes[i].Sh(ctx, `[ -e /run/nf-reached ]`); err == nil {
						break
					}
					if time.Now().After(deadline) {
						_ = cmd.Process.Kill()
						t.Fatalf("%s: the step was never reached:\n%s", st.name, out.String())
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			mode.interrupt(t, cmd)
			err := waitOrDump(t, cmd, &out)
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			t.Logf("the interrupted run (exit %d):\n%s", code, out.String())
			if code != mode.exit {
				t.Errorf("the interrupted run exited %d, want %d", code, mode.exit)
			}
			for i, st := range steps {
				if st.killInstall {
					killInstall(t, f.Nodes[i])
				}
			}
			for _, n := range f.Nodes {
				if _, err := n.Sh(ctx, `rm -f /run/nf-block`); err != nil {
					t.Fatal(err)
				}
			}
			// The node goes on without its controller until nothing of
			// nodefix runs there any more.
			for i, st := range steps {
				n := f.Nodes[i]
				for strings.Contains(nodefixLeftovers(t, n), "process") {
					if time.Now().After(deadline) {
						t.Fatalf("%s: still running on the node: %s", st.name, nodefixLeftovers(t, n))
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			mid := map[string][3]string{}
			for i, st := range steps {
				n := f.Nodes[i]
				mid[n.Name] = nodeState(t, n)
				if st.killInstall {
					// Half installed, with the journal that says so.
					if _, err := n.Sh(ctx, `ls /var/lib/.nodefix-rpmdb.*/journal`); err != nil {
						t.Errorf("%s: no install journal on %s: %v", st.name, n.Name, err)
					}
				}
			}
			runID := "matrix-next-" + strings.ReplaceAll(mode.name, " ", "-")
			runID = strings.NewReplacer("(", "", ")", "").Replace(runID)
			second := nodefix(t, "run", "-i", inventory, "--tasks", "hostname,rpmdb", "--json", "--run-id", runID)
			if second.code != 0 {
				t.Errorf("the next run: exit %d, want 0", second.code)
			}
			doc := parseJSON(t, second)
			for i, st := range steps {
				n := f.Nodes[i]
				after := nodeState(t, n)
				if left := nodefixLeftovers(t, n); left != "" {
					t.Errorf("%s: left behind on %s:\n%s", st.name, n.Name, left)
				}
				if h := doc.Hosts[n.Name]; h.Status != "ok" && h.Status != "changed" {
					t.Errorf("%s: the next run: %s", st.name, h.Status)
				}
				if !verified(t, n) {
					t.Errorf("%s: after the next run the rpm database of %s does not verify", st.name, n.Name)
				}
				if st.nfs && !strings.Contains(after[2], "nfs4_unique_id=nodefix-") {
					t.Errorf("%s: no uniquifier after the next run: %q", st.name, after[2])
				}
				if st.killInstall {
					restored := false
					for _, rec := range auditTrail(t, n) {
						if rec.RunID == runID && rec.Task == "rpmdb" && rec.Action == "recover an interrupted run" {
							r, _ := rec.Change["restored_from_backup"].([]any)
							restored = len(r) == 1
						}
					}
					if !restored {
						t.Errorf("%s: the next run did not restore %s's database from its journal: %+v", st.name, n.Name, auditTrail(t, n))
					}
					continue
				}
				// Each change as it was before the interrupted run or as the
				// next run leaves it, never in between.
				for k, what := range []string{"names", "rpm database", "NFS uniquifier"} {
					if m := mid[n.Name][k]; m != before[n.Name][k] && m != after[k] {
						t.Errorf("%s: the %s after the interruption is neither before nor after:\nbefore %q\ninterrupted %q\nafter  %q", st.name, what, before[n.Name][k], m, after[k])
					}
				}
			}
		})
	}
}

// waitOrDump waits for an interrupted nodefix to exit. One that has not
// exited 3 minutes after its interruption hangs: it is made to print its
// goroutines (SIGQUIT) and the test fails with them, rather than wait for
// go test's own timeout (which leaves the process running).
func waitOrDump(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(3 * time.Minute):
	}
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	t.Fatalf("nodefix did not exit after its interruption; its goroutines:\n%s", out.String())
	return nil
}

// verified runs rpm --verifydb on n.
func verified(t *testing.T, n *testfleet.Node) bool {
	t.Helper()
	_, err := n.Sh(context.Background(), `rpm --verifydb`)
	return err == nil
}

// ticketShim makes a node's command block at its k-th matching call: a
// wrapper first on PATH takes ticket k (1, 2 …) and, while /run/nf-block.k
// exists, says it got there (/run/nf-reached.k) and waits; then it runs
// the real command.
func ticketShim(t *testing.T, n *testfleet.Node, name, match string) {
	t.Helper()
	script := `#!/bin/sh
case "$*" in *"` + match + `"*)
	k=1
	while ! /bin/mkdir /run/nf-ticket.$k 2>/dev/null; do k=$((k+1)); done
	if [ -e /run/nf-block.$k ]; then
		: >/run/nf-reached.$k
		while [ -e /run/nf-block.$k ]; do sleep 0.05; done
	fi;;
esac
for d in /usr/bin /bin /usr/sbin /sbin; do [ -x "$d/` + name + `" ] && exec "$d/` + name + `" "$@"; done
exit 127
`
	if _, err := n.Sh(context.Background(), `printf '%s' "$1" >/usr/local/bin/"$2" && chmod 755 /usr/local/bin/"$2" && rm -rf /run/nf-ticket.* /run/nf-reached.*`, script, name); err != nil {
		t.Fatal(err)
	}
}

// waitFile waits until path exists on n (a shim got there).
func waitFile(t *testing.T, n *testfleet.Node, path string, out *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if _, err := n.Sh(context.Background(), `[ -e "$1" ]`, path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared on %s:\n%s", path, n.Name, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// background is a nodefix run that runs while the test goes on.
type background struct {
	cmd *exec.Cmd
	out bytes.Buffer
	err bytes.Buffer
}

func startNodefix(t *testing.T, args ...string) *background {
	t.Helper()
	b := &background{cmd: exec.Command(nodefixBinary(t), args...)}
	b.cmd.Env = cleanEnv(t)
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.err
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			_ = b.cmd.Process.Kill()
			_ = b.cmd.Wait()
		}
	})
	return b
}

func (b *background) wait(t *testing.T) result {
	t.Helper()
	err := b.cmd.Wait()
	r := result{stdout: b.out.String(), stderr: b.err.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("nodefix %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(b.cmd.Args[1:], " "), r.code, r.stdout, r.stderr)
	return r
}

// rpmdbTask is a run's rpmdb outcome on host.
func rpmdbTask(t *testing.T, r result, host string) (status, msg string) {
	t.Helper()
	for _, task := range parseJSON(t, r).Hosts[host].Tasks {
		if task.Task == "rpmdb" {
			return task.Status, task.Msg
		}
	}
	t.Fatalf("no rpmdb task for %s in %s", host, r.stdout)
	return "", ""
}

// rebuildsBy counts the rpm database rebuilds on record on n, by run id.
func rebuildsBy(t *testing.T, n *testfleet.Node) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, rec := range auditTrail(t, n) {
		if rec.Task == "rpmdb" && rec.Action == "rebuild" {
			m[rec.RunID]++
		}
	}
	return m
}

// Two nodefix runs against one node at once never both repair its rpm
// database, and a run's recovery never removes the work directory of a
// repair that is alive:
//
//   - a repair in progress (blocked in its rebuild): the second run's rpmdb
//     refuses, naming the work directory, which stays; the first ends
//     repaired;
//   - both runs judge the database broken before either installs, and the
//     second backs it up after the first installed (both blocked in their
//     backups, released in turn): the second finds it repaired and does
//     nothing more;
//   - both started at once, nothing blocked: exactly one repairs.
//
// Each time exactly one rebuild is on record on the node, by the run that
// says it repaired, and nothing is left behind.
func TestFleetConcurrentRuns(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 1})
	n := f.Nodes[0]
	ctx := context.Background()
	// Plenty of time for a command blocked by the test.
	common := []string{"run", "-i", f.InventoryYAML, "--tasks", "rpmdb", "--json", "--command-timeout", "30m"}
	args := func(runID string) []string { return append(append([]string(nil), common...), "--run-id", runID) }
	workDirs := func() string {
		out, err := n.Sh(ctx, `ls -d /var/lib/.nodefix-rpmdb.* 2>/dev/null; true`)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	clean := func(step string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for strings.Contains(nodefixLeftovers(t, n), "process") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if left := nodefixLeftovers(t, n); left != "" {
			t.Errorf("%s: left behind: %s", step, left)
		}
		if !verified(t, n) {
			t.Errorf("%s: the rpm database does not verify", step)
		}
	}

	t.Run("a repair in progress", func(t *testing.T) {
		if err := n.CorruptRPMDB(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Sh(ctx, `rm -f /run/nf-reached`); err != nil {
			t.Fatal(err)
		}
		shim(t, n, "rpm", "--rebuilddb")
		first := startNodefix(t, args("progress-1")...)
		waitFile(t, n, "/run/nf-reached", &first.err)
		held := workDirs()
		if strings.Count(held, "\n") != 0 || held == "" {
			t.Fatalf("work directories %q, want the first run's one", held)
		}
		second := nodefix(t, args("progress-2")...)
		if second.code != exitcode.HostFailed {
			t.Errorf("the second run: exit %d, want %d", second.code, exitcode.HostFailed)
		}
		if st, msg := rpmdbTask(t, second, n.Name); st != "failed" || !strings.Contains(msg, "another nodefix is repairing the rpm database on this node (it holds "+held+")") {
			t.Errorf("the second run's rpmdb: %s %q", st, msg)
		}
		if now := workDirs(); now != held {
			t.Errorf("the first run's work directory %s is gone (now %q)", held, now)
		}
		if _, err := n.Sh(ctx, `rm -f /run/nf-block`); err != nil {
			t.Fatal(err)
		}
		r := first.wait(t)
		if st, msg := rpmdbTask(t, r, n.Name); r.code != 0 || st != "changed" {
			t.Errorf("the first run: exit %d, rpmdb %s %q: want it repaired", r.code, st, msg)
		}
		if got := rebuildsBy(t, n); got["progress-1"] != 1 || got["progress-2"] != 0 {
			t.Errorf("rebuilds on record %v, want one, by progress-1", got)
		}
		clean("a repair in progress")
	})

	t.Run("both judged it before either installed", func(t *testing.T) {
		if err := n.CorruptRPMDB(ctx); err != nil {
			t.Fatal(err)
		}
		ticketShim(t, n, "tar", "-czf")
		if _, err := n.Sh(ctx, `: >/run/nf-block.1 && : >/run/nf-block.2`); err != nil {
			t.Fatal(err)
		}
		first := startNodefix(t, args("judged-1")...)
		waitFile(t, n, "/run/nf-reached.1", &first.err)
		second := startNodefix(t, args("judged-2")...)
		waitFile(t, n, "/run/nf-reached.2", &second.err)
		// Both backed up nothing yet and both found the database broken.
		if _, err := n.Sh(ctx, `rm -f /run/nf-block.1`); err != nil {
			t.Fatal(err)
		}
		r1 := first.wait(t)
		if st, msg := rpmdbTask(t, r1, n.Name); r1.code != 0 || st != "changed" {
			t.Errorf("the first run: exit %d, rpmdb %s %q: want it repaired", r1.code, st, msg)
		}
		if _, err := n.Sh(ctx, `rm -f /run/nf-block.2`); err != nil {
			t.Fatal(err)
		}
		r2 := second.wait(t)
		if st, msg := rpmdbTask(t, r2, n.Name); r2.code != 0 || st != "ok" || !strings.Contains(msg, "another run repaired it meanwhile") {
			t.Errorf("the second run: exit %d, rpmdb %s %q: want ok, repaired by the other", r2.code, st, msg)
		}
		if got := rebuildsBy(t, n); got["judged-1"] != 1 || got["judged-2"] != 0 {
			t.Errorf("rebuilds on record %v, want one, by judged-1", got)
		}
		clean("both judged it before either installed")
	})

	t.Run("at once", func(t *testing.T) {
		if _, err := n.Sh(ctx, `rm -f /usr/local/bin/tar /usr/local/bin/rpm`); err != nil {
			t.Fatal(err)
		}
		if err := n.CorruptRPMDB(ctx); err != nil {
			t.Fatal(err)
		}
		a, b := startNodefix(t, args("once-a")...), startNodefix(t, args("once-b")...)
		ra, rb := a.wait(t), b.wait(t)
		repaired := 0
		for _, r := range []result{ra, rb} {
			if st, _ := rpmdbTask(t, r, n.Name); st == "changed" {
				repaired++
			}
		}
		got := rebuildsBy(t, n)
		if repaired != 1 || got["once-a"]+got["once-b"] != 1 {
			t.Errorf("%d runs say they repaired the database, rebuilds on record %v: want exactly one", repaired, got)
		}
		clean("at once")
	})
}

// The install killed on the node between two moves while its run still
// waits for it (the OOM killer, someone's kill -9): the run sees the step
// end without a status, finds the install's journal and restores the
// backup at once — the database byte for byte as before, the run failed
// and saying so, nothing left behind — and the next run repairs it.
func TestFleetInstallKilledOnTheNode(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 1})
	n := f.Nodes[0]
	ctx := context.Background()
	if err := n.CorruptRPMDB(ctx); err != nil {
		t.Fatal(err)
	}
	before := nodeState(t, n)
	shim(t, n, "mv", "/db/rpmdb.sqlite")
	run := startNodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "rpmdb", "--json", "--command-timeout", "30m", "--run-id", "killed")
	waitFile(t, n, "/run/nf-reached", &run.err)
	killInstall(t, n)
	r := run.wait(t)
	if _, err := n.Sh(ctx, `rm -f /run/nf-block`); err != nil {
		t.Fatal(err)
	}
	st, msg := rpmdbTask(t, r, n.Name)
	if r.code != exitcode.HostFailed || st != "failed" || !strings.Contains(msg, "it ended part way") || !strings.Contains(msg, "rolled back: restored the backup") {
		t.Errorf("exit %d, rpmdb %s %q: want failed, the backup restored at once", r.code, st, msg)
	}
	if got := nodeState(t, n); got[1] != before[1] {
		t.Errorf("the database after the restore:\n%s\nbefore:\n%s", got[1], before[1])
	}
	restored := false
	for _, rec := range auditTrail(t, n) {
		restored = restored || (rec.RunID == "killed" && rec.Action == "restore backup")
	}
	if !restored {
		t.Errorf("no restore on record: %+v", auditTrail(t, n))
	}
	if left := nodefixLeftovers(t, n); left != "" {
		t.Errorf("left behind: %s", left)
	}
	if again := nodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "rpmdb", "--json"); again.code != 0 {
		t.Errorf("the next run: exit %d", again.code)
	} else if st, msg := rpmdbTask(t, again, n.Name); st != "changed" || !verified(t, n) {
		t.Errorf("the next run: rpmdb %s %q, want it repaired", st, msg)
	}
}
