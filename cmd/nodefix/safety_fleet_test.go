package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
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

// nodeState is what the interruption matrix compares: the names and the
// rpm database's files.
func nodeState(t *testing.T, n *testfleet.Node) [2]string {
	t.Helper()
	names, err := n.Sh(context.Background(), `hostname; cat /etc/hostname; grep -c . /etc/hosts`)
	if err != nil {
		t.Fatal(err)
	}
	db, err := n.Sh(context.Background(), `cd /var/lib/rpm && sha256sum rpmdb.sqlite`)
	if err != nil {
		t.Fatal(err)
	}
	return [2]string{names, db}
}

// leftovers lists what nodefix may leave on a node and must not: work
// directories, job directories, temporary files, nodefix processes.
func nodefixLeftovers(t *testing.T, n *testfleet.Node) string {
	t.Helper()
	out, err := n.Sh(context.Background(), `ls -d /var/lib/.nodefix-rpmdb.* /var/lib/nodefix/jobs/* /etc/.host*.nodefix* /var/lib/nodefix/rpmdb-backups/*.partial 2>/dev/null
for p in /proc/[0-9]*; do [ "${p#/proc/}" = "$$" ] && continue; c=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null); case $c in *"# nodefix:"*|*nodefix-job*) echo "process ${p#/proc/}: ${c%%
*}";; esac; done; true`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// The interruption matrix: the controller is SIGKILLed while a node-side
// step of each multi-step change is blocked; the step is then released
// (the node goes on without its controller). The node is as before or as
// after, and the next run ends clean with nothing left behind.
func TestFleetInterruptionMatrix(t *testing.T) {
	steps := []struct {
		name, tasks, cmd, match string
		corrupt                 bool
	}{
		{"hostname: the kernel name", "hostname", "hostname", "worker-", false},
		{"rpmdb: the backup", "rpmdb", "tar", "-czf", true},
		{"rpmdb: the copy", "rpmdb", "cp", "-a", true},
		{"rpmdb: the rebuild", "rpmdb", "rpm", "--rebuilddb", true},
		{"rpmdb: the install under rpm's lock", "rpmdb", "python3", "fcntl", true},
		{"rpmdb: moving the rebuilt files", "rpmdb", "mv", "/db/rpmdb.sqlite", true},
	}
	f := testfleet.New(t, testfleet.Options{Nodes: len(steps), Hostname: func(int) string { return "localhost" }})
	ctx := context.Background()
	for i, st := range steps {
		n := f.Nodes[i]
		if st.corrupt {
			if err := n.CorruptRPMDB(ctx); err != nil {
				t.Fatal(err)
			}
		}
		shim(t, n, st.cmd, st.match)
	}
	// One run over every node: each blocks at its own step.
	cmd := exec.Command(nodefixBinary(t), "run", "-i", f.InventoryYAML, "--tasks", "hostname,rpmdb")
	cmd.Env = cleanEnv(t)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	before := map[string][2]string{}
	for i := range steps {
		before[f.Nodes[i].Name] = nodeState(t, f.Nodes[i])
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for i, st := range steps {
		for {
			if _, err := f.Nodes[i].Sh(ctx, `[ -e /run/nf-reached ]`); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the step was never reached:\n%s", st.name, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	t.Logf("the killed run:\n%s", out.String())
	for i := range steps {
		if _, err := f.Nodes[i].Sh(ctx, `rm -f /run/nf-block`); err != nil {
			t.Fatal(err)
		}
	}
	// The node goes on without its controller until nothing of nodefix
	// runs there any more.
	for i, st := range steps {
		n := f.Nodes[i]
		for strings.Contains(nodefixLeftovers(t, n), "process") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still running on the node: %s", st.name, nodefixLeftovers(t, n))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	mid := map[string][2]string{}
	for i := range steps {
		mid[f.Nodes[i].Name] = nodeState(t, f.Nodes[i])
	}
	second := nodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "hostname,rpmdb", "--json")
	if second.code != 0 {
		t.Errorf("the next run: exit %d, want 0", second.code)
	}
	after := map[string][2]string{}
	for i := range steps {
		after[f.Nodes[i].Name] = nodeState(t, f.Nodes[i])
	}
	for i, st := range steps {
		n := f.Nodes[i]
		if left := nodefixLeftovers(t, n); left != "" {
			t.Errorf("%s: left behind on %s:\n%s", st.name, n.Name, left)
		}
		if h := parseJSON(t, second).Hosts[n.Name]; h.Status != "ok" && h.Status != "changed" {
			t.Errorf("%s: the next run: %s", st.name, h.Status)
		}
		// Each change as it was before the killed run or as the next run
		// leaves it, never in between.
		for k, what := range []string{"names", "rpm database"} {
			if m := mid[n.Name][k]; m != before[n.Name][k] && m != after[n.Name][k] {
				t.Errorf("%s: the %s after the kill is neither before nor after:\nbefore %q\nkilled %q\nafter  %q", st.name, what, before[n.Name][k], m, after[n.Name][k])
			}
		}
	}
}
