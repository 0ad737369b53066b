package tasks

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func q(pid, ppid, age int, argv ...string) fakeProc {
	return fakeProc{pid: pid, ppid: ppid, comm: baseComm(argv), argv: argv, ageSec: age, rssPages: 1000}
}

func baseComm(argv []string) string {
	c := argv[0]
	if i := strings.LastIndexByte(c, '/'); i >= 0 {
		c = c[i+1:]
	}
	if len(c) > 15 {
		c = c[:15]
	}
	return c
}

// Locks on the files of sqliteSnap's database (device fd:00).
const (
	lockSqliteWrite = "%d: POSIX  ADVISORY  WRITE %d fd:00:1001 1073741824 1073741824\n"
	lockSqliteRead  = "%d: POSIX  ADVISORY  READ  %d fd:00:1001 1073741826 1073742335\n"
	lockTxWrite     = "%d: POSIX  ADVISORY  WRITE %d fd:00:1004 0 EOF\n"
	lockTxRead      = "%d: POSIX  ADVISORY  READ  %d fd:00:1004 0 EOF\n"
	lockTxWaiting   = "%d: -> POSIX  ADVISORY  WRITE %d fd:00:1004 0 EOF\n"
	lockOtherFile   = "%d: POSIX  ADVISORY  WRITE %d fd:00:5555 0 EOF\n"
)

func locks(lines ...string) string { return strings.Join(lines, "") }

func TestPlanQueries(t *testing.T) {
	const maxAge = 600
	old, young := maxAge+100, maxAge-100
	type want struct {
		targets   []int
		reasons   map[int]string // substring of the reason
		wrappers  map[int][]int
		left      map[int]string // pid → kind
		young     int
		protected []int
		verifying []int
	}
	cases := []struct {
		name  string
		procs []fakeProc
		locks string
		want  want
	}{
		{
			name:  "old and young queries",
			procs: []fakeProc{q(10, 1, old, "rpm", "-q", "iscsi-initiator-utils"), q(11, 1, young, "rpm", "-qa"), q(12, 1, maxAge, "/usr/bin/rpmquery", "bash")},
			want:  want{targets: []int{10, 12}, reasons: map[int]string{10: "running longer than 10m0s"}, young: 1},
		},
		{
			name:  "verify, install, erase, rebuild and other modes are never targets",
			procs: []fakeProc{q(10, 1, old, "rpm", "-Va"), q(11, 1, old, "rpm", "-Uvh", "x.rpm"), q(12, 1, old, "rpm", "-e", "x"), q(13, 1, old, "rpm", "--rebuilddb"), q(14, 1, old, "rpm", "-E", "%{_dbpath}"), q(15, 1, old, "rpmkeys", "--import", "k")},
			want:  want{verifying: []int{10}, protected: []int{11, 12, 13, 15}},
		},
		{
			name: "queries started by a transaction or a package manager are left",
			procs: []fakeProc{
				q(20, 1, old, "rpm", "-i", "x.rpm"), q(21, 20, old, "/bin/sh", "/var/tmp/rpm-tmp.1"), q(22, 21, old, "rpm", "-q", "bash"),
				q(30, 1, old, "/usr/bin/python3", "/usr/bin/dnf", "upgrade"), q(31, 30, old, "rpm", "-q", "kernel"),
				q(40, 1, old, "yum"), q(41, 40, old, "rpm", "-qa"),
			},
			want: want{protected: []int{20, 30, 40}},
		},
		{
			name:  "a query holding the transaction lock is a transaction",
			procs: []fakeProc{q(10, 1, old, "rpm", "-q", "x")},
			locks: locks(fmt.Sprintf(lockTxWrite, 1, 10)),
			want:  want{protected: []int{10}},
		},
		{
			name: "zombies and exiting processes are not targets",
			procs: []fakeProc{{pid: 10, ppid: 1, comm: "rpm", state: 'Z', ageSec: old},
				{pid: 11, ppid: 1, comm: "rpm", argv: []string{"rpm", "-q", "x"}, state: 'Z', ageSec: old}},
		},
		{
			name: "queries through nsenter and timeout are reported with their wrappers",
			procs: []fakeProc{
				q(40, 1, old, "nsenter", "--mount=/host/proc/1/ns/mnt", "--pid=/host/proc/1/ns/pid", "--", "rpm", "-q", "x"), q(41, 40, old, "rpm", "-q", "x"),
				q(50, 1, old, "timeout", "600", "rpm", "-qa"), q(51, 50, old, "rpm", "-qa"),
				q(60, 1, old, "longhorn-manager"), q(61, 60, old, "timeout", "60", "nsenter", "-t", "1", "-m", "-p", "rpm", "-q", "y"), q(62, 61, old, "nsenter", "-t", "1", "-m", "-p", "rpm", "-q", "y"), q(63, 62, old, "rpm", "-q", "y"),
			},
			want: want{targets: []int{41, 51, 63}, wrappers: map[int][]int{41: {40}, 51: {50}, 63: {62, 61}}},
		},
		{
			name:  "a young query holding a write lock hung queries wait behind is ended too",
			procs: []fakeProc{q(10, 1, old, "rpm", "-q", "a"), q(60, 1, young, "rpm", "-qa")},
			locks: locks(fmt.Sprintf(lockSqliteWrite, 1, 60)),
			want:  want{targets: []int{10, 60}, reasons: map[int]string{60: "holds a lock on rpmdb.sqlite"}},
		},
		{
			name:  "a young query holding a read lock someone waits for is ended too",
			procs: []fakeProc{q(10, 1, old, "rpm", "-q", "a"), q(60, 1, young, "rpm", "-qa"), q(70, 1, young, "rpm", "-i", "x.rpm")},
			locks: locks(fmt.Sprintf(lockTxRead, 1, 60), fmt.Sprintf(lockTxWaiting, 1, 70)),
			want:  want{targets: []int{10, 60}, reasons: map[int]string{60: "holds a lock on .rpm.lock"}, protected: []int{70}},
		},
		{
			name: "a young query whose read lock keeps a writer from committing is ended too; the writer is left",
			procs: []fakeProc{q(10, 1, old, "rpm", "-q", "a"), q(60, 1, young, "rpm", "-qa", "--qf", "%{NAME}%-70000{VERSION}"),
				q(70, 1, young, "rpm", "-i", "--justdb", "x.rpm")},
			locks: locks(fmt.Sprintf(lockSqliteRead, 1, 60), fmt.Sprintf(lockSqliteWrite, 2, 70), fmt.Sprintf(lockTxWrite, 3, 70)),
			want: want{targets: []int{10, 60}, reasons: map[int]string{60: "holds a lock on rpmdb.sqlite"},
				left: map[int]string{70: "transaction"}, protected: []int{70}},
		},
		{
			name:  "a read lock nobody waits for blocks no one",
			procs: []fakeProc{q(10, 1, old, "rpm", "-q", "a"), q(60, 1, young, "rpm", "-qa")},
			locks: locks(fmt.Sprintf(lockSqliteRead, 1, 60)),
			want:  want{targets: []int{10}, young: 1},
		},
		{
			name:  "a transaction holding the lock is named and left",
			procs: []fakeProc{q(10, 1, old, "rpm", "-q", "a"), q(20, 1, young, "rpm", "-Uvh", "kernel.rpm")},
			locks: locks(fmt.Sprintf(lockTxWrite, 1, 20), fmt.Sprintf(lockSqliteWrite, 2, 20)),
			want:  want{targets: []int{10}, left: map[int]string{20: "transaction"}, protected: []int{20}},
		},
		{
			name:  "an unknown process holding the database is named and left",
			procs: []fakeProc{q(10, 1, old, "rpm", "-q", "a"), q(30, 1, old, "python3", "-c", "hold()")},
			locks: locks(fmt.Sprintf(lockSqliteWrite, 1, 30), fmt.Sprintf(lockOtherFile, 2, 31)),
			want:  want{targets: []int{10}, left: map[int]string{30: "unknown process"}},
		},
		{
			name:  "a holder outside the listing is reported",
			procs: []fakeProc{q(10, 1, old, "rpm", "-q", "a")},
			locks: locks(fmt.Sprintf(lockSqliteWrite, 1, 777)),
			want:  want{targets: []int{10}, left: map[int]string{777: "not visible"}},
		},
		{
			name:  "without hung queries lock holders are not judged",
			procs: []fakeProc{q(60, 1, young, "rpm", "-qa"), q(30, 1, old, "python3", "-c", "hold()")},
			locks: locks(fmt.Sprintf(lockSqliteWrite, 1, 60), fmt.Sprintf(lockSqliteWrite, 2, 30)),
			want:  want{young: 1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := sqliteSnap(c.procs...)
			fs.locks = c.locks
			snap, err := parseSnapshot(fs.bytes())
			if err != nil {
				t.Fatal(err)
			}
			plan := planQueries(snap, maxAge*time.Second)
			var targets []int
			for _, tg := range plan.Targets {
				targets = append(targets, tg.Proc.PID)
				if want, ok := c.want.reasons[tg.Proc.PID]; ok && !strings.Contains(tg.Reason, want) {
					t.Errorf("pid %d reason %q, want %q", tg.Proc.PID, tg.Reason, want)
				}
				var ws []int
				for _, w := range tg.Wrappers {
					ws = append(ws, w.PID)
				}
				if !reflect.DeepEqual(ws, c.want.wrappers[tg.Proc.PID]) {
					t.Errorf("pid %d wrappers %v, want %v", tg.Proc.PID, ws, c.want.wrappers[tg.Proc.PID])
				}
			}
			sort.Ints(targets)
			if !reflect.DeepEqual(targets, c.want.targets) {
				t.Errorf("targets %v, want %v", targets, c.want.targets)
			}
			left := map[int]string{}
			for _, h := range plan.Left {
				left[h.PID] = h.Kind
			}
			if len(left) == 0 {
				left = nil
			}
			if !reflect.DeepEqual(left, c.want.left) {
				t.Errorf("left %v, want %v", left, c.want.left)
			}
			if plan.Young != c.want.young {
				t.Errorf("young %d, want %d", plan.Young, c.want.young)
			}
			// Every query here has 1000 pages: the young ones' memory
			// follows their count, also when a lock holder turns target.
			if want := int64(plan.Young) * 1000 * 4096; plan.YoungRSS != want {
				t.Errorf("young RSS %d, want %d", plan.YoungRSS, want)
			}
			if got := pidsOf(plan.Protected); !reflect.DeepEqual(got, c.want.protected) {
				t.Errorf("protected %v, want %v", got, c.want.protected)
			}
			if got := pidsOf(plan.Verifying); !reflect.DeepEqual(got, c.want.verifying) {
				t.Errorf("verifying %v, want %v", got, c.want.verifying)
			}
		})
	}
}

func pidsOf(ps []*Process) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.PID)
	}
	return out
}

func queriesConfig() Config {
	cfg := DefaultConfig()
	cfg.RPMQueryMaxAge = 10 * time.Minute
	cfg.RPMQueryGrace = time.Second
	return cfg
}

func TestRPMQueriesApply(t *testing.T) {
	old := 700
	hung := sqliteSnap(
		q(10, 1, old, "rpm", "-q", "iscsi-initiator-utils"),
		q(11, 1, old, "rpm", "-q", "nfs-utils"),
		q(12, 1, old, "rpm", "-qa"),
		fakeProc{pid: 13, ppid: 1, comm: "rpm", argv: []string{"rpm", "-q", "x"}, state: 'D', ageSec: old, rssPages: 1000},
		q(20, 1, 50, "rpm", "-q", "young"),
	)
	// After the signals (the fake node's clock stands still, so the same
	// age is the same start time): 13 is still in D, the rest gone (12
	// exited by itself before it was signalled).
	after := sqliteSnap(fakeProc{pid: 13, ppid: 1, comm: "rpm", argv: []string{"rpm", "-q", "x"}, state: 'D', ageSec: old, rssPages: 1000},
		q(20, 1, 50, "rpm", "-q", "young"))
	survivor := sqliteSnap(q(11, 1, old, "rpm", "-q", "nfs-utils"))
	ended := "term 10\nterm 11\ngone 12\nterm 13\nkill 11\nkill 13\n"

	cases := []struct {
		name    string
		cfg     func(*Config)
		node    func(*fakeNode)
		status  Status
		changed bool
		msg     string
		details map[string]any
		warn    string
	}{
		{
			name:   "no rpm: skipped",
			node:   func(f *fakeNode) { f.on("rpm-snapshot", ok(string(fakeSnap{procs: hung.procs}.bytes()))) },
			status: StatusSkipped, msg: "rpm is not installed",
		},
		{
			name:   "listing fails: failed",
			node:   func(f *fakeNode) { f.on("rpm-snapshot", status(1, "grep: invalid option -- 'z'")) },
			status: StatusFailed, msg: "invalid option",
		},
		{
			name:   "bad max age: failed before touching the node",
			cfg:    func(c *Config) { c.RPMQueryMaxAge = 0 },
			node:   func(f *fakeNode) {},
			status: StatusFailed, msg: "max age must be positive",
		},
		{
			name: "nothing hung: ok",
			node: func(f *fakeNode) {
				f.on("rpm-snapshot", ok(string(sqliteSnap(q(20, 1, 50, "rpm", "-q", "y")).bytes())))
			},
			status: StatusOK, msg: "no rpm query running longer than 10m0s",
			details: map[string]any{"hung_queries": 0, "young_queries": 1, "queries_rss_bytes": int64(1000 * 4096)},
		},
		{
			name:   "check mode: would end, ends nothing",
			cfg:    func(c *Config) { c.Check = true },
			node:   func(f *fakeNode) { f.on("rpm-snapshot", ok(string(hung.bytes()))) },
			status: StatusChanged, changed: true, msg: "would end 4 hung rpm queries (15.6 MiB RSS)",
			details: map[string]any{"hung_queries": 4, "rss_bytes": int64(4 * 1000 * 4096), "young_queries": 1, "queries_rss_bytes": int64(5 * 1000 * 4096)},
		},
		{
			name: "ended by SIGTERM and SIGKILL, one in D, one gone before",
			node: func(f *fakeNode) {
				f.on("rpm-snapshot", ok(string(hung.bytes())), ok(string(after.bytes())))
				f.on("rpm-queries-end", ok(ended))
			},
			status: StatusChanged, changed: true,
			msg: "ended 2 hung rpm queries (1 by SIGTERM, 1 by SIGKILL), 7.8 MiB RSS freed; 1 exited by themselves; 1 left in uninterruptible sleep",
			details: map[string]any{"ended_sigterm": 1, "ended_sigkill": 1, "exited_before_signal": 1, "uninterruptible": 1, "rss_freed_bytes": int64(2 * 1000 * 4096),
				// Left behind: the query in D (still hung) and the young one.
				"hung_queries": 4, "young_queries": 1, "hung_queries_after": 1, "young_queries_after": 1, "queries_rss_bytes_after": int64(2 * 1000 * 4096)},
			warn: "uninterruptible sleep (D) did not end: 13 (rpm -q x)",
		},
		{
			name: "a survivor of SIGKILL: failed",
			node: func(f *fakeNode) {
				f.on("rpm-snapshot", ok(string(hung.bytes())), ok(string(survivor.bytes())))
				f.on("rpm-queries-end", ok(ended))
			},
			status: StatusFailed, changed: true, msg: "1 still running after SIGKILL: 11 (rpm -q nfs-utils)",
		},
		{
			name: "the signal script cannot run: failed",
			node: func(f *fakeNode) {
				f.on("rpm-snapshot", ok(string(hung.bytes())))
				f.onErr("rpm-queries-end", fmt.Errorf("connection lost"))
			},
			status: StatusFailed, msg: "connection lost",
		},
		{
			name: "the listing after the signals fails: failed",
			node: func(f *fakeNode) {
				f.on("rpm-snapshot", ok(string(hung.bytes())), status(1, "boom"))
				f.on("rpm-queries-end", ok(ended))
			},
			status: StatusFailed, msg: "could not list processes again to verify",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := queriesConfig()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			node := newFakeNode(t)
			c.node(node)
			out := RPMQueries{}.Apply(context.Background(), node, Host{Name: "h"}, cfg)
			if out.Task != NameRPMQueries || out.Status != c.status || out.Changed != c.changed || !strings.Contains(out.Msg, c.msg) {
				t.Errorf("got %s changed=%v %q\nwant %s changed=%v containing %q", out.Status, out.Changed, out.Msg, c.status, c.changed, c.msg)
			}
			for k, v := range c.details {
				if out.Details[k] != v {
					t.Errorf("detail %s = %#v, want %#v", k, out.Details[k], v)
				}
			}
			if c.warn != "" && !strings.Contains(strings.Join(out.Warnings, "\n"), c.warn) {
				t.Errorf("warnings %q lack %q", out.Warnings, c.warn)
			}
			if cfg.Check && node.ran("rpm-queries-end") > 0 {
				t.Error("check mode ran the signal script")
			}
		})
	}
}

func TestRPMQueriesSignalArguments(t *testing.T) {
	snap := sqliteSnap(q(10, 1, 700, "rpm", "-q", "x"), fakeProc{pid: 11, ppid: 1, comm: "rpm x:y", argv: []string{"rpm", "-qa"}, ageSec: 800})
	node := newFakeNode(t).on("rpm-snapshot", ok(string(snap.bytes())), ok(string(sqliteSnap().bytes()))).on("rpm-queries-end", ok("term 10\nterm 11\n"))
	cfg := queriesConfig()
	cfg.RPMQueryGrace = 2500 * time.Millisecond
	out := RPMQueries{}.Apply(context.Background(), node, Host{}, cfg)
	if out.Status != StatusChanged {
		t.Fatalf("got %+v", out)
	}
	args := node.call("rpm-queries-end", 0).Args
	start10 := (fakeUptime - 700) * fakeClk
	start11 := (fakeUptime - 800) * fakeClk
	want := []string{"13", "25", "2", fmt.Sprintf("10:%d:rpm", start10), fmt.Sprintf("11:%d:rpm x:y", start11)}
	if len(args) != 9 || !reflect.DeepEqual(append(args[:2:2], args[4:7]...), want) {
		t.Errorf("signal script arguments %q, want %q (grace steps, kill steps, record, summary, count, pid:start:comm)", args, want)
	}
	if len(args) == 9 && (!strings.HasPrefix(args[7], `{"age_seconds":700,"command":"rpm -q x","pid":10,`) || !strings.HasSuffix(args[8], `,"signal":"`)) {
		t.Errorf("audit fragments %q %q", args[7], args[8])
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 59 << 20: "59.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
