package tasks

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	backupDir = "/var/lib/nodefix/rpmdb-backups"
	archive   = backupDir + "/rpmdb-20250101T000000Z.tar.gz"
	workDir   = "/var/lib/.nodefix-rpmdb.AbC123"
)

func qaOut(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "pkg%02d-1.0-1.noarch\n", i)
	}
	return b.String()
}

var (
	corruptQA   = Result{Stdout: []byte(qaOut(30)), Stderr: []byte("error: rpmdbNextIterator: skipping h#       5 \nHeader SHA256 digest: BAD\n")}
	healthyQA   = ok(qaOut(30))
	verifyFails = status(2, "error: verify: *** in database main ***\nOn tree page 5 cell 7: Offset 65535 out of range\n")
	backupOut   = ok("archive " + archive + "\nsum aaaa  rpm/rpmdb.sqlite\nsum bbbb  rpm/rpmdb.sqlite-shm\nsum cccc  rpm/.rpm.lock\nhave " + archive + "\n")
	sumsSame    = ok("sum aaaa  rpm/rpmdb.sqlite\nsum ffff  rpm/rpmdb.sqlite-shm\nsum cccc  rpm/.rpm.lock\n")
	restoredOut = ok("sum aaaa  rpm/rpmdb.sqlite\nsum bbbb  rpm/rpmdb.sqlite-shm\nsum cccc  rpm/.rpm.lock\n")
	spaceOK     = ok("db 300\nbackup 1000000 /\nrebuild 1000000 /\n")
)

// repairNode answers every step of a successful sqlite repair of a
// database whose rpm -qa reports an unreadable header (when judged, and
// again once backed up).
func repairNode(t *testing.T, snap fakeSnap) *fakeNode {
	return newFakeNode(t).
		on("rpm-snapshot", ok(string(snap.bytes()))).
		on("rpm -qa", corruptQA, corruptQA, healthyQA).
		on("rpm --verifydb", ok(""), ok(""), ok("")).
		on("rpmdb-space", spaceOK).
		on("rpmdb-backup", backupOut).
		on("rpmdb-prepare", ok("work "+workDir+"\n")).
		on("rpm --rebuilddb", ok("")).
		on("rpm -qa @copy", healthyQA).
		on("rpm --verifydb @copy", ok("")).
		on("rpmdb-install", ok("installed rpmdb.sqlite\n")).
		on("rpmdb-cleanup", ok("")).
		on("rpmdb-checksums", sumsSame).
		on("rpmdb-restore", restoredOut).
		on("rpmdb-journal", ok(""))
}

func TestRPMDBApply(t *testing.T) {
	bdb := fakeSnap{
		rpm: "/usr/bin/rpm", dbpath: "/var/lib/rpm", backend: "%{_db_backend}", // rpm 4.11: no such macro
		dbfiles: map[string]string{"Packages": "fd00 2001 90000000", "Name": "fd00 2002 8192", "__db.001": "fd00 2003 8192", "__db.002": "fd00 2004 8192"},
		procs:   []fakeProc{{pid: 1, comm: "systemd", argv: []string{"/usr/lib/systemd/systemd"}, ageSec: 9000}},
	}
	withLock := func(s fakeSnap, l string) fakeSnap { s.locks = l; return s }
	withPidFile := func(s fakeSnap, pid string) fakeSnap {
		s.pidFiles = map[string]string{"/var/run/yum.pid": pid}
		return s
	}
	cases := []struct {
		name    string
		cfg     func(*Config)
		node    func(t *testing.T) *fakeNode
		status  Status
		changed bool
		msg     []string
		details map[string]any
		warn    string
		ran     map[string]int // call name → count (0: never)
	}{
		{
			name: "no rpm: skipped",
			node: func(t *testing.T) *fakeNode {
				return newFakeNode(t).on("rpm-snapshot", ok(string(fakeSnap{procs: bdb.procs}.bytes())))
			},
			status: StatusSkipped, msg: []string{"rpm is not installed"},
		},
		{
			name: "rpm but no database on a dpkg host: skipped, nothing created",
			node: func(t *testing.T) *fakeNode {
				s := sqliteSnap()
				s.noDBDir, s.dpkg = true, true
				return newFakeNode(t).on("rpm-snapshot", ok(string(s.bytes())))
			},
			status: StatusSkipped, msg: []string{"dpkg is present"}, ran: map[string]int{"rpm -qa": 0},
		},
		{
			name: "no database on an rpm host: failed",
			node: func(t *testing.T) *fakeNode {
				s := sqliteSnap()
				s.dbfiles = map[string]string{".rpm.lock": "fd00 1004 0"}
				return newFakeNode(t).on("rpm-snapshot", ok(string(s.bytes())))
			},
			status: StatusFailed, msg: []string{"no rpm database at /var/lib/rpm", backupDir}, ran: map[string]int{"rpm -qa": 0},
		},
		{
			name: "unexpanded dbpath: failed",
			node: func(t *testing.T) *fakeNode {
				s := sqliteSnap()
				s.dbpath = "%{_dbpath}"
				return newFakeNode(t).on("rpm-snapshot", ok(string(s.bytes())))
			},
			status: StatusFailed, msg: []string{"no usable database path"},
		},
		{
			name: "transaction lock held: refused, nothing run",
			node: func(t *testing.T) *fakeNode {
				s := withLock(sqliteSnap(q(20, 1, 30, "rpm", "-Uvh", "kernel.rpm")), fmt.Sprintf(lockTxWrite, 1, 20))
				return newFakeNode(t).on("rpm-snapshot", ok(string(s.bytes())))
			},
			status: StatusFailed, msg: []string{"refusing", "pid 20 (rpm -Uvh kernel.rpm): holds the transaction lock /var/lib/rpm/.rpm.lock"},
			ran: map[string]int{"rpm -qa": 0, "rpm --verifydb": 0},
		},
		{
			name: "transaction lock held in check mode: skipped, nothing run",
			cfg:  func(c *Config) { c.Check = true },
			node: func(t *testing.T) *fakeNode {
				s := withLock(sqliteSnap(q(20, 1, 30, "rpm", "-Uvh", "kernel.rpm")), fmt.Sprintf(lockTxWrite, 1, 20))
				return newFakeNode(t).on("rpm-snapshot", ok(string(s.bytes())))
			},
			status: StatusSkipped, msg: []string{"cannot check the rpm database now", "pid 20 (rpm -Uvh kernel.rpm)", "a run waits"},
			warn: "cannot check the rpm database now",
			ran:  map[string]int{"rpm-snapshot": 1, "rpm -qa": 0, "rpm --verifydb": 0},
		},
		{
			name: "transaction lock held: waited for, then refused",
			cfg:  func(c *Config) { c.RPMLockWait = 1200 * time.Millisecond },
			node: func(t *testing.T) *fakeNode {
				s := withLock(sqliteSnap(q(20, 1, 30, "rpm", "-Uvh", "kernel.rpm")), fmt.Sprintf(lockTxWrite, 1, 20))
				return newFakeNode(t).on("rpm-snapshot", ok(string(s.bytes())))
			},
			status: StatusFailed, msg: []string{"refusing", "pid 20"},
			ran: map[string]int{"rpm-snapshot": 4, "rpm -qa": 0},
		},
		{
			name: "live yum.pid: refused",
			node: func(t *testing.T) *fakeNode {
				s := withPidFile(sqliteSnap(q(30, 1, 30, "/usr/bin/python", "/usr/bin/yum", "update")), "30\n")
				return newFakeNode(t).on("rpm-snapshot", ok(string(s.bytes())))
			},
			status: StatusFailed, msg: []string{"pid 30 (/usr/bin/python /usr/bin/yum update): named by the live pid file /var/run/yum.pid"},
		},
		{
			name: "rpm -i waiting to open the database: refused",
			node: func(t *testing.T) *fakeNode {
				return newFakeNode(t).on("rpm-snapshot", ok(string(sqliteSnap(q(20, 1, 30, "rpm", "-i", "x.rpm")).bytes())))
			},
			status: StatusFailed, msg: []string{"pid 20 (rpm -i x.rpm): rpm transaction in progress"},
		},
		{
			name: "an unknown process with a write lock on the database: refused",
			node: func(t *testing.T) *fakeNode {
				s := withLock(sqliteSnap(q(40, 1, 30, "python3", "-c", "hold")), fmt.Sprintf(lockSqliteWrite, 1, 40))
				return newFakeNode(t).on("rpm-snapshot", ok(string(s.bytes())))
			},
			status: StatusFailed, msg: []string{"pid 40 (python3 -c hold): holds a write lock on /var/lib/rpm/rpmdb.sqlite"},
		},
		{
			name: "healthy despite a stale yum.pid, a query's lock and an idle packagekitd: ok, only reads",
			node: func(t *testing.T) *fakeNode {
				s := withPidFile(withLock(sqliteSnap(q(50, 1, 30, "rpm", "-qa"), q(51, 1, 9000, "/usr/libexec/packagekitd")), fmt.Sprintf(lockSqliteWrite, 1, 50)), "4242")
				return newFakeNode(t).on("rpm-snapshot", ok(string(s.bytes()))).on("rpm -qa", healthyQA).on("rpm --verifydb", ok(""))
			},
			status: StatusOK, msg: []string{"rpm database (sqlite at /var/lib/rpm) opens and verifies: 30 packages"},
			details: map[string]any{"packages": 30, "verifydb_supported": true, "healthy": true, "healthy_after": nil},
			ran:     map[string]int{"rpm-snapshot": 1, "rpm -qa": 1, "rpm --verifydb": 1, "rpmdb-space": 0, "rpmdb-backup": 0},
		},
		{
			name: "healthy, rpm without --verifydb: ok",
			node: func(t *testing.T) *fakeNode {
				return newFakeNode(t).on("rpm-snapshot", ok(string(sqliteSnap().bytes()))).on("rpm -qa", healthyQA).
					on("rpm --verifydb", status(1, "rpm: --verifydb: unknown option\n"))
			},
			status: StatusOK, details: map[string]any{"verifydb_supported": false},
		},
		{
			name: "healthy Berkeley DB with unused environment files: ok with a warning",
			node: func(t *testing.T) *fakeNode {
				return newFakeNode(t).on("rpm-snapshot", ok(string(bdb.bytes()))).on("rpm -qa", healthyQA).on("rpm --verifydb", ok(""))
			},
			status: StatusOK, msg: []string{"(bdb at /var/lib/rpm)"}, warn: "__db.001, __db.002",
		},
		{
			name: "hung rpm -qa counts as unhealthy; check mode: would rebuild, writes nothing",
			cfg:  func(c *Config) { c.Check = true },
			node: func(t *testing.T) *fakeNode {
				return newFakeNode(t).on("rpm-snapshot", ok(string(sqliteSnap().bytes()))).on("rpm -qa", status(124, "")).on("rpm --verifydb", verifyFails)
			},
			status: StatusChanged, changed: true, msg: []string{"would back up and rebuild", "rpm -qa did not finish within 2m0s", "Offset 65535"},
			details: map[string]any{"healthy": false, "healthy_after": nil},
			ran:     map[string]int{"rpmdb-space": 0, "rpmdb-backup": 0},
		},
		{
			name: "Berkeley DB environment in use: failed before any write",
			node: func(t *testing.T) *fakeNode {
				s := bdb
				s.envUsers = []int{77}
				return newFakeNode(t).on("rpm-snapshot", ok(string(s.bytes()))).on("rpm -qa", status(1, "error: rpmdb: BDB0113 Thread/process 77/0 failed: BDB1507 Thread died in Berkeley DB library\nerror: db5 error(-30973) from dbenv->failchk: BDB0087 DB_RUNRECOVERY: Fatal error, run database recovery\n")).on("rpm --verifydb", ok(""))
			},
			status: StatusFailed, msg: []string{"DB_RUNRECOVERY", "in use by pids [77]"}, ran: map[string]int{"rpmdb-backup": 0},
			details: map[string]any{"backend": "bdb", "healthy": false, "healthy_after": false},
		},
		{
			name: "too little space for the backup: failed, nothing changed",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-space"] = nil
				return n.on("rpmdb-space", ok("db 300\nbackup 500 /\nrebuild 500 /\n"))
			},
			status: StatusFailed, msg: []string{"has 500 KiB free and the backup needs 2948 KiB", "nothing was changed"},
			ran: map[string]int{"rpmdb-backup": 0},
		},
		{
			name: "too little space for the rebuild: failed, nothing changed",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-space"] = nil
				return n.on("rpmdb-space", ok("db 300\nbackup 5000 /backup\nrebuild 1000 /\n"))
			},
			status: StatusFailed, msg: []string{"/var/lib has 1000 KiB free and the rebuild needs 1624 KiB"},
			ran: map[string]int{"rpmdb-backup": 0},
		},
		{
			name: "disk full while backing up: failed, nothing else done",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-backup"] = nil
				return n.on("rpmdb-backup", status(11, "tar: /var/lib/nodefix/rpmdb-backups/x.partial: Wrote only 4096 of 10240 bytes\ntar: Error is not recoverable: exiting now\n"))
			},
			status: StatusFailed, msg: []string{"failed (tar:", "Wrote only 4096", "nothing else was done"},
			ran: map[string]int{"rpmdb-prepare": 0, "rpm --rebuilddb": 0},
		},
		{
			name:   "repaired: backed up, rebuilt a copy, verified, installed",
			node:   func(t *testing.T) *fakeNode { return repairNode(t, sqliteSnap()) },
			status: StatusChanged, changed: true,
			msg:     []string{"rebuilt the rpm database at /var/lib/rpm (sqlite; was: rpm -qa: error: rpmdbNextIterator: skipping h#", "30 packages before, 30 after, verifies clean; backup " + archive},
			details: map[string]any{"packages_before": 30, "packages_after": 30, "backup": archive, "healthy": false, "healthy_after": true},
			ran:     map[string]int{"rpmdb-install": 1, "rpmdb-cleanup": 1, "rpmdb-restore": 0, "rm": 0, "rpm-snapshot": 2},
		},
		{
			name: "repaired; old backups beyond the keep count pruned",
			cfg:  func(c *Config) { c.RPMBackupKeep = 2 },
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-backup"] = nil
				n.on("rpmdb-backup", ok(string(backupOut.Stdout)+"have "+backupDir+"/rpmdb-20240101T000000Z.tar.gz\nhave "+backupDir+"/rpmdb-20230101T000000Z.tar.gz\n"))
				return n.on("rm", ok(""))
			},
			status: StatusChanged, changed: true,
			details: map[string]any{"removed_backups": []string{backupDir + "/rpmdb-20230101T000000Z.tar.gz"}},
		},
		{
			name: "hung rebuild: ended, copy discarded, database proven untouched",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpm --rebuilddb"] = nil
				return n.on("rpm --rebuilddb", status(124, ""))
			},
			status: StatusFailed, changed: true,
			msg:     []string{"rpm --rebuilddb did not finish within 2m0s and was ended; rolled back: the database at /var/lib/rpm was not modified: byte for byte as in the backup (packages before: 30, after the rebuild: none readable)"},
			details: map[string]any{"rolled_back": true, "healthy": false, "healthy_after": false},
			ran:     map[string]int{"rpmdb-install": 0, "rpmdb-cleanup": 1, "rpmdb-checksums": 1},
		},
		{
			name: "rebuild lost a record: discarded with both counts",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpm -qa @copy"] = nil
				return n.on("rpm -qa @copy", ok(qaOut(29)))
			},
			status: StatusFailed, changed: true,
			msg: []string{"the rebuild lost 1 package record (pkg30-1.0-1.noarch)", "packages before: 30, after the rebuild: 29"},
			ran: map[string]int{"rpmdb-install": 0},
		},
		{
			name: "rebuilt copy does not verify: discarded",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpm --verifydb @copy"] = nil
				return n.on("rpm --verifydb @copy", verifyFails)
			},
			status: StatusFailed, changed: true, msg: []string{"the rebuilt database does not verify"}, ran: map[string]int{"rpmdb-install": 0},
		},
		{
			name: "database changed behind the repair's back: said so",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpm --rebuilddb"] = nil
				n.answers["rpmdb-checksums"] = nil
				return n.on("rpm --rebuilddb", status(1, "error: cannot open Packages index")).
					on("rpmdb-checksums", ok("sum 9999  rpm/rpmdb.sqlite\nsum cccc  rpm/.rpm.lock\n"))
			},
			status: StatusFailed, changed: true, msg: []string{"cannot open Packages index", "changed since the backup (rpm/rpmdb.sqlite changed)"},
		},
		{
			name: "a transaction started during the repair: rebuilt copy not installed",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.on("rpm-snapshot", ok(string(withLock(sqliteSnap(q(20, 1, 3, "dnf", "install", "x")), fmt.Sprintf(lockTxWrite, 1, 20)).bytes())))
				return n
			},
			status: StatusFailed, changed: true, msg: []string{"pid 20 (dnf install x) started using the database during the repair"},
			ran: map[string]int{"rpmdb-install": 0},
		},
		{
			name: "a transaction ran and ended during the repair: its writes kept, rebuilt copy not installed",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-install"] = nil
				n.answers["rpmdb-checksums"] = nil
				written := "sum 9999  rpm/rpmdb.sqlite\nsum 8888  rpm/rpmdb.sqlite-wal\nsum cccc  rpm/.rpm.lock\n"
				return n.on("rpmdb-install", Result{ExitStatus: 60, Stdout: []byte("lock held\n" + written)}).
					on("rpmdb-checksums", ok(written))
			},
			status: StatusFailed, changed: true,
			msg: []string{"the database was written to during the repair (rpm/rpmdb.sqlite changed, rpm/rpmdb.sqlite-wal extra), by a transaction that has ended: the rebuilt copy, made before it, was not installed; run again",
				"changed since the backup"},
			details: map[string]any{"rolled_back": true},
			ran:     map[string]int{"rpmdb-install": 1, "rpmdb-restore": 0, "rpmdb-cleanup": 1},
		},
		{
			name: "a transaction holds rpm's lock at the install: rebuilt copy not installed",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-install"] = nil
				return n.on("rpmdb-install", Result{ExitStatus: 75, Stdout: []byte("lock busy\n")})
			},
			status: StatusFailed, changed: true,
			msg:     []string{"a transaction took rpm's lock /var/lib/rpm/.rpm.lock during the repair: the rebuilt copy was not installed", "byte for byte as in the backup"},
			details: map[string]any{"rolled_back": true},
			ran:     map[string]int{"rpmdb-install": 1, "rpmdb-restore": 0},
		},
		{
			name: "the lock file cannot be opened: nothing moved, nothing restored",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-install"] = nil
				return n.on("rpmdb-install", Result{ExitStatus: 76, Stdout: []byte("lock error [Errno 30] Read-only file system: '/var/lib/rpm/.rpm.lock'\n")})
			},
			status: StatusFailed, changed: true,
			msg:     []string{"installing the rebuilt database: install script: exit status 76", "Read-only file system", "nothing was moved", "byte for byte as in the backup"},
			details: map[string]any{"rolled_back": true},
			ran:     map[string]int{"rpmdb-install": 1, "rpmdb-restore": 0},
		},
		{
			name: "the install killed on the node after its journal: backup restored at once",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-install"] = nil
				n.answers["rpmdb-journal"] = nil
				return n.on("rpmdb-install", status(137, "")).on("rpmdb-journal", ok("journal\n"))
			},
			status: StatusFailed, changed: true,
			msg:     []string{"install script: exit status 137; it ended part way", "rolled back: restored the backup " + archive + ", the database at /var/lib/rpm is byte for byte what it was"},
			details: map[string]any{"rolled_back": true},
			ran:     map[string]int{"rpmdb-install": 1, "rpmdb-journal": 1, "rpmdb-restore": 1, "rpmdb-cleanup": 1},
		},
		{
			name: "the install's job ended without a status before its journal: nothing moved, nothing restored",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-install"] = nil
				return n.on("rpmdb-install", status(125, "nodefix: the protected step ended without a status"))
			},
			status: StatusFailed, changed: true,
			msg:     []string{"ended without a status", "nothing was moved", "byte for byte as in the backup"},
			details: map[string]any{"rolled_back": true},
			ran:     map[string]int{"rpmdb-install": 1, "rpmdb-journal": 1, "rpmdb-restore": 0},
		},
		{
			name: "the journal cannot be looked for: the work directory is left for the next run",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-install"] = nil
				n.answers["rpmdb-journal"] = nil
				return n.on("rpmdb-install", status(137, "")).onErr("rpmdb-journal", errors.New("session closed"))
			},
			status: StatusFailed, changed: true,
			msg: []string{"whether it moved files is unknown (rpmdb-journal: session closed)", "restores the backup " + archive + " if the install did not finish"},
			ran: map[string]int{"rpmdb-install": 1, "rpmdb-restore": 0, "rpmdb-cleanup": 0},
		},
		{
			name: "no Python on the node to take the lock: installed after the proof, with a warning",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-install"] = nil
				return n.on("rpmdb-install", ok("lock none\ninstalled rpmdb.sqlite\n"))
			},
			status: StatusChanged, changed: true,
			warn: "no Python on the node to take rpm's transaction lock /var/lib/rpm/.rpm.lock",
		},
		{
			name: "installing fails: backup restored byte for byte",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-install"] = nil
				return n.on("rpmdb-install", status(53, "mv: cannot move: Read-only file system"))
			},
			status: StatusFailed, changed: true,
			msg: []string{"installing the rebuilt database", "Read-only file system", "rolled back: restored the backup " + archive + ", the database at /var/lib/rpm is byte for byte what it was"},
			ran: map[string]int{"rpmdb-restore": 1},
		},
		{
			name: "live database fails after installing: backup restored",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpm --verifydb"] = nil
				return n.on("rpm --verifydb", ok(""), ok(""), verifyFails)
			},
			status: StatusFailed, changed: true, msg: []string{"after installing the rebuilt database: the rebuilt database does not verify", "restored the backup"},
			ran:     map[string]int{"rpmdb-restore": 1},
			details: map[string]any{"healthy_after": false},
		},
		{
			name: "restore fails: says so loudly with the manual command",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-install"] = nil
				n.answers["rpmdb-restore"] = nil
				return n.on("rpmdb-install", status(53, "mv failed")).on("rpmdb-restore", status(33, "tar: short read"))
			},
			status: StatusFailed, changed: true, msg: []string{"RESTORING THE BACKUP FAILED", "tar -xzf " + archive + " -C /var/lib"},
		},
		{
			name: "restored files differ from the backup: said so",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpmdb-install"] = nil
				n.answers["rpmdb-restore"] = nil
				return n.on("rpmdb-install", status(53, "mv failed")).on("rpmdb-restore", ok("sum aaaa  rpm/rpmdb.sqlite\n"))
			},
			status: StatusFailed, changed: true, msg: []string{"the restored database differs from the backup (rpm/.rpm.lock missing, rpm/rpmdb.sqlite-shm missing)"},
		},
		{
			name: "Berkeley DB: environment removed in the copy, better baseline counted there",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, bdb)
				n.answers["rpm -qa"] = nil
				n.answers["rpm -qa @copy"] = nil
				return n.on("rpm -qa", status(124, ""), status(124, ""), ok(qaOut(31))).on("rpm -qa @copy", ok(qaOut(31)))
			},
			status: StatusChanged, changed: true, msg: []string{"31 packages before, 31 after"},
			details: map[string]any{"removed_env_files": []string{"__db.001", "__db.002"}, "packages_before": 31},
		},
		{
			name: "repaired by another run between the judgement and the backup: nothing more done",
			node: func(t *testing.T) *fakeNode {
				n := repairNode(t, sqliteSnap())
				n.answers["rpm -qa"] = nil
				return n.on("rpm -qa", corruptQA, healthyQA)
			},
			status: StatusOK, changed: false,
			msg:     []string{"opens and verifies now: 30 packages", "another run repaired it meanwhile", "the backup " + archive + " is kept"},
			ran:     map[string]int{"rpmdb-backup": 1, "rpmdb-lease": 0, "rpmdb-prepare": 0, "rpm --rebuilddb": 0, "rpmdb-install": 0, "rpmdb-restore": 0},
			details: map[string]any{"healthy": false, "healthy_after": true},
		},
		{
			name:   "bad keep count: failed before touching the node",
			cfg:    func(c *Config) { c.RPMBackupKeep = 0 },
			node:   func(t *testing.T) *fakeNode { return newFakeNode(t) },
			status: StatusFailed, msg: []string{"keep must be at least 1"},
		},
		{
			name:   "relative backup dir: failed before touching the node",
			cfg:    func(c *Config) { c.RPMBackupDir = "backups" },
			node:   func(t *testing.T) *fakeNode { return newFakeNode(t) },
			status: StatusFailed, msg: []string{"must be an absolute path"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.RPMLockWait = 0 // a fake holder never lets go
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			node := c.node(t)
			out := RPMDB{}.Apply(context.Background(), node, Host{Name: "h"}, cfg)
			if out.Task != NameRPMDB || out.Status != c.status || (c.changed && !out.Changed) {
				t.Errorf("got %s changed=%v %q, want %s changed=%v", out.Status, out.Changed, out.Msg, c.status, c.changed)
			}
			if !c.changed && out.Changed {
				t.Errorf("changed=true, want false: %q", out.Msg)
			}
			for _, m := range c.msg {
				if !strings.Contains(out.Msg, m) {
					t.Errorf("message %q lacks %q", out.Msg, m)
				}
			}
			for k, v := range c.details {
				if !reflect.DeepEqual(out.Details[k], v) {
					t.Errorf("detail %s = %#v, want %#v", k, out.Details[k], v)
				}
			}
			if c.warn != "" && !strings.Contains(strings.Join(out.Warnings, "\n"), c.warn) {
				t.Errorf("warnings %q lack %q", out.Warnings, c.warn)
			}
			for name, n := range c.ran {
				if got := node.ran(name); got != n {
					t.Errorf("%q ran %d times, want %d", name, got, n)
				}
			}
			// Every rpm command is bounded on the node.
			for _, call := range node.calls {
				if strings.HasPrefix(call.Name, "rpm -") && !call.Bounded {
					t.Errorf("%s ran without timeout(1)", call.Name)
				}
			}
		})
	}
}

// The repair's commands carry the paths they must: the copy's --dbpath,
// the backup dir, "bdb" for Berkeley DB.
func TestRPMDBRepairArguments(t *testing.T) {
	node := repairNode(t, sqliteSnap())
	out := RPMDB{}.Apply(context.Background(), node, Host{}, DefaultConfig())
	if out.Status != StatusChanged {
		t.Fatalf("got %+v", out)
	}
	if !regexp.MustCompile(`^/var/lib/\.nodefix-rpmdb\.[A-Za-z0-9]{6}$`).MatchString(node.work) {
		t.Errorf("the lease named the work directory %q, want /var/lib/.nodefix-rpmdb.XXXXXX", node.work)
	}
	if c := node.call("rpm --rebuilddb", 0); c.DBPath != node.work+"/db" {
		t.Errorf("rebuild --dbpath %q, want %s/db", c.DBPath, node.work)
	}
	if c := node.call("rpmdb-backup", 0); !reflect.DeepEqual(c.Args, []string{"/var/lib/rpm", backupDir}) {
		t.Errorf("backup args %q", c.Args)
	}
	if c := node.call("rpmdb-prepare", 0); !reflect.DeepEqual(c.Args, []string{"/var/lib/rpm", node.work, ""}) {
		t.Errorf("prepare args %q", c.Args)
	}
	wantInstall := []string{"/var/lib/rpm/.rpm.lock", installScript, "/var/lib/rpm", node.work,
		"cccc  rpm/.rpm.lock\naaaa  rpm/rpmdb.sqlite\nbbbb  rpm/rpmdb.sqlite-shm\n", archive}
	if c := node.call("rpmdb-install", 0); len(c.Args) != 8 || !reflect.DeepEqual(c.Args[:6], wantInstall) {
		t.Errorf("install args %q", c.Args)
	}
	if c := node.call("rpmdb-cleanup", 0); !reflect.DeepEqual(c.Args, []string{node.work}) {
		t.Errorf("cleanup args %q", c.Args)
	}
}

func TestMissingRecords(t *testing.T) {
	cases := []struct {
		before, after, lost []string
	}{
		{[]string{"a", "b"}, []string{"b", "a"}, nil},
		{[]string{"a", "b"}, []string{"a", "b", "c"}, nil},
		{[]string{"a", "b", "c"}, []string{"a"}, []string{"b", "c"}},
		{[]string{"a", "a"}, []string{"a"}, []string{"a"}}, // a duplicate record lost
		{nil, nil, nil},
	}
	for _, c := range cases {
		if got := missingRecords(c.before, c.after); !reflect.DeepEqual(got, c.lost) {
			t.Errorf("missingRecords(%v, %v) = %v, want %v", c.before, c.after, got, c.lost)
		}
	}
}

func TestBackendOf(t *testing.T) {
	cases := []struct {
		backend string
		files   []string
		want    string
	}{
		{"sqlite", []string{"rpmdb.sqlite"}, "sqlite"},
		{"sqlite", []string{".rpm.lock"}, ""},
		{"bdb", []string{"Packages", "Name"}, "bdb"},
		{"%{_db_backend}", []string{"Packages"}, "bdb"},
		{"", []string{"rpmdb.sqlite"}, "sqlite"},
		{"ndb", []string{"Packages.db", "Index.db"}, "ndb"},
		{"bdb_ro", []string{"Packages"}, "bdb_ro"},
		{"sqlite", nil, ""},
	}
	for _, c := range cases {
		s := &rpmSnapshot{Backend: c.backend, DBExists: true, DBSizes: map[string]int64{}}
		for _, f := range c.files {
			s.DBSizes[f] = 1
		}
		if got := backendOf(s); got != c.want {
			t.Errorf("backendOf(%q, %v) = %q, want %q", c.backend, c.files, got, c.want)
		}
	}
}

func TestRPMErrors(t *testing.T) {
	stderr := "warning: some harmless thing\nerror: rpmdb: BDB0113 Thread/process 1234/0 failed\nerror: cannot open Packages index using db5 - (-30973)\nBDB0087 DB_RUNRECOVERY: Fatal error, run database recovery\n"
	got := rpmErrors([]byte(stderr))
	if len(got) != 3 || strings.Contains(strings.Join(got, " "), "warning") {
		t.Errorf("rpmErrors = %q", got)
	}
	if got := rpmErrors([]byte("warning: only a warning\n")); len(got) != 0 {
		t.Errorf("a warning counted as an error: %q", got)
	}
}
