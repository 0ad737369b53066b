package tasks

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSnapshotSynthetic(t *testing.T) {
	snap := sqliteSnap(
		fakeProc{pid: 10, ppid: 1, comm: "rpm", argv: []string{"rpm", "-q", "a b", "", "x\ny"}, ageSec: 700, rssPages: 10},
		fakeProc{pid: 11, ppid: 1, comm: "a) (b c", argv: []string{"weird"}, ageSec: 5},
		fakeProc{pid: 12, ppid: 2, comm: "kworker/0:1", ageSec: 90000},
		fakeProc{pid: 13, ppid: 1, comm: "rpm", state: 'Z', ageSec: 800},
	)
	snap.locks = "1: POSIX  ADVISORY  WRITE 20 fd:00:1004 0 EOF\n1: -> POSIX  ADVISORY  WRITE 21 fd:00:1004 0 EOF\n2: OFDLCK ADVISORY  READ  -1 00:2c:77 0 EOF\n"
	snap.pidFiles = map[string]string{"/var/run/yum.pid": "4242\n"}
	got, err := parseSnapshot(snap.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got.RPMPath != "/usr/bin/rpm" || got.DBPath != "/var/lib/rpm" || got.Backend != "sqlite" || !got.HaveTimeout || !got.DBExists || got.Self != 99999 {
		t.Errorf("header fields wrong: %+v", got)
	}
	p := got.Procs[10]
	if p == nil || !reflect.DeepEqual(p.Argv, []string{"rpm", "-q", "a b", "", "x\ny"}) || p.Age != 700*time.Second || p.RSSBytes != 40960 || p.State != 'S' || p.PPID != 1 {
		t.Errorf("pid 10 = %+v", p)
	}
	if p := got.Procs[11]; p == nil || p.Comm != "a) (b c" || p.Age != 5*time.Second {
		t.Errorf("pid 11 (comm with parentheses) = %+v", p)
	}
	if p := got.Procs[12]; p == nil || len(p.Argv) != 0 || p.Program() != "kworker/0:1" || p.CommandLine() != "[kworker/0:1]" {
		t.Errorf("kernel thread = %+v", p)
	}
	if p := got.Procs[13]; p == nil || p.State != 'Z' {
		t.Errorf("zombie = %+v", p)
	}
	wantLocks := []FileLock{
		{Kind: "POSIX", Write: true, PID: 20, File: fileID{0xfd, 0, 1004}},
		{Kind: "POSIX", Write: true, PID: 21, File: fileID{0xfd, 0, 1004}, Waiting: true},
		{Kind: "OFDLCK", PID: -1, File: fileID{0, 0x2c, 77}},
	}
	if !reflect.DeepEqual(got.Locks, wantLocks) {
		t.Errorf("locks = %+v\nwant %+v", got.Locks, wantLocks)
	}
	if name := got.DBFiles[fileID{0xfd, 0, 1004}]; name != ".rpm.lock" {
		t.Errorf("lock file id maps to %q, want .rpm.lock", name)
	}
	if h := got.transactionLockHolders(); !reflect.DeepEqual(h, []int{20}) {
		t.Errorf("transaction lock holders = %v, want [20] (21 only waits)", h)
	}
	if !reflect.DeepEqual(got.PIDFiles, []pidFile{{"/var/run/yum.pid", 4242}}) {
		t.Errorf("pid files = %v", got.PIDFiles)
	}
}

func TestParseSnapshotRejectsBrokenListings(t *testing.T) {
	good := sqliteSnap().bytes()
	cases := map[string][]byte{
		"cut short":       good[:len(good)/2],
		"empty":           nil,
		"unknown section": append([]byte("=bogus\x00"), good...),
		"no processes":    fakeSnap{}.bytes(),
		"stray record":    append([]byte("garbage\x00"), good...),
	}
	for name, out := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := parseSnapshot(out); err == nil {
				t.Errorf("parseSnapshot accepted a %s listing", name)
			}
		})
	}
}

func TestDevNumbers(t *testing.T) {
	cases := []struct {
		dev          uint64
		major, minor uint32
	}{
		{0xfe00, 0xfe, 0},
		{0x2c, 0, 0x2c},
		{0x10300, 0x103, 0},    // major above 255
		{0x100f00, 0xf, 0x100}, // minor above 255
	}
	for _, c := range cases {
		if devMajor(c.dev) != c.major || devMinor(c.dev) != c.minor {
			t.Errorf("dev %#x: %x:%x, want %x:%x", c.dev, devMajor(c.dev), devMinor(c.dev), c.major, c.minor)
		}
	}
}

// The real listing script against this machine's /proc, with a process of
// our own whose command line has spaces, an empty word and a newline and
// whose command name has parentheses. Reading /proc changes nothing.
func TestSnapshotScriptReadsRealProcessTable(t *testing.T) {
	for _, tool := range []string{"sh", "grep", "getconf", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	odd := exec.Command("bash", "-c", `printf '%s' 'a) (b c' > /proc/$$/comm; read -r -t 30 _`, "odd arg", "", "new\nline")
	stdin, err := odd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := odd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); odd.Wait() })
	// Give bash the moment it takes to rename itself.
	time.Sleep(200 * time.Millisecond)

	out, err := exec.Command(shellScript("rpm-snapshot", snapshotScript).Argv[0], shellScript("rpm-snapshot", snapshotScript).Argv[1:]...).Output()
	if err != nil {
		t.Fatalf("snapshot script: %v", err)
	}
	snap, err := parseSnapshot(out)
	if err != nil {
		t.Fatal(err)
	}
	p := snap.Procs[odd.Process.Pid]
	if p == nil {
		t.Fatalf("own process %d not in the listing of %d processes", odd.Process.Pid, len(snap.Procs))
	}
	wantArgv := []string{"bash", "-c", odd.Args[2], "odd arg", "", "new\nline"}
	if !reflect.DeepEqual(p.Argv, wantArgv) {
		t.Errorf("argv = %q, want %q", p.Argv, wantArgv)
	}
	if p.Comm != "a) (b c" {
		t.Errorf("comm = %q", p.Comm)
	}
	if p.PPID != os.Getpid() || p.Age < 0 || p.Age > time.Minute || p.RSSBytes <= 0 {
		t.Errorf("process facts wrong: %+v", p)
	}
}

func TestTakeSnapshotErrors(t *testing.T) {
	cases := []struct {
		name string
		node *fakeNode
		want string
	}{
		{"transport error", newFakeNode(t).onErr("rpm-snapshot", context.DeadlineExceeded), "deadline"},
		{"script failed", newFakeNode(t).on("rpm-snapshot", status(97, "cd: /proc: No such file")), "exit status 97"},
		{"garbage", newFakeNode(t).on("rpm-snapshot", ok("hello")), "unexpected listing record"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := takeSnapshot(context.Background(), c.node, DefaultConfig(), withDB)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// rpm-queries lists the rpm database only while an rpm process runs: on a
// healthy host the listing spares rpm's own start.
func TestSnapshotReadsTheDatabaseOnlyWhenNeeded(t *testing.T) {
	n := newNSNode(t, nsNodeOptions{})
	ctx, cfg := context.Background(), DefaultConfig()
	tests := []struct {
		name      string
		db        snapshotDB
		rpmRuns   bool
		wantDBDir bool
	}{
		{"rpmdb always", withDB, false, true},
		{"rpm-queries, no rpm process", dbIfRPMRuns, false, false},
		{"rpm-queries, an rpm process runs", dbIfRPMRuns, true, true},
	}
	fakeRPM := filepath.Join(t.TempDir(), "rpm") // comm "rpm"
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rpmRuns {
				n.sh(`cp /bin/sleep "$1" && "$1" 30 </dev/null >/dev/null 2>&1 &`, fakeRPM)
				t.Cleanup(func() { n.sh(`pkill -x rpm || true`) })
			}
			snap, err := takeSnapshot(ctx, n, cfg, tc.db)
			if err != nil {
				t.Fatal(err)
			}
			if snap.RPMPath == "" {
				t.Fatal("rpm is not on the node's PATH")
			}
			if got := snap.DBPath != ""; got != tc.wantDBDir {
				t.Errorf("listing has the database path %q; want one: %t", snap.DBPath, tc.wantDBDir)
			}
			if len(snap.Procs) == 0 {
				t.Error("listing has no process")
			}
		})
	}
}
