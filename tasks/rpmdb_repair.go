package tasks

// How rpmdb repairs a database without ever leaving the node worse off:
//
//  1. measure free space; 2. back up the database directory to a tested,
//     timestamped archive (a failure, such as a full disk, ends the repair
//     with nothing else done);
//  3. copy the database to a work directory beside it and rebuild the copy
//     with `rpm --dbpath COPY --rebuilddb`, bounded on the node (Berkeley
//     DB environment files __db.* are removed from the copy first);
//  4. verify the copy (rpm --verifydb, rpm -qa clean) and compare its
//     package records with those readable before;
//  5. only then move the rebuilt files into the database directory, verify
//     the live database and compare again; if that fails, restore the
//     backup and prove it byte for byte.
//
// Rebuilding a copy rather than in place keeps the live database untouched
// until a verified replacement exists, and works where rpm's own in-place
// rebuild cannot rename directories: a database directory that is a mount
// point or lies in an overlay (containers, the simulated fleet), where rpm
// 4.18 fails with "failed to replace old database with new database!".

import (
	"context"
	"crypto/rand"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// spaceScript prints the database's size, and the free space and mount
// point where the backup and the rebuild go. $1 dbpath, $2 backup dir.
const spaceScript = `LC_ALL=C; export LC_ALL
db=$1; d=$2
while [ ! -d "$d" ]; do d=$(dirname -- "$d"); done
du -sk -- "$db" | { read -r k _; echo "db $k"; }
df -Pk -- "$d" | { read -r _; read -r _ _ _ avail _ mnt; echo "backup $avail $mnt"; }
df -Pk -- "$(dirname -- "$db")" | { read -r _; read -r _ _ _ avail _ mnt; echo "rebuild $avail $mnt"; }
exit 0
`

// backupScript archives the database directory to a new timestamped
// .tar.gz under the backup dir, tests the archive, and prints its path,
// the SHA-256 of every file (to prove a restore byte for byte) and the
// archives there now. It writes to a .partial name first, so a disk that
// fills up leaves no half archive behind, and removes a backup dir it
// created when it fails. $1 dbpath, $2 backup dir.
const backupScript = `LC_ALL=C; export LC_ALL
db=$1; dir=$2
parent=$(dirname -- "$db"); base=$(basename -- "$db")
created=; tmp=
[ -d "$dir" ] || created=1
fail() { [ -n "$tmp" ] && rm -f -- "$tmp"; [ -n "$created" ] && rmdir -- "$dir" 2>/dev/null; exit "$1"; }
mkdir -p -- "$dir" || fail 10
chmod 700 -- "$dir" || fail 10
ts=$(date -u +%Y%m%dT%H%M%SZ)
archive=$dir/rpmdb-$ts.tar.gz; n=0
while [ -e "$archive" ]; do n=$((n+1)); archive=$dir/rpmdb-$ts-$n.tar.gz; done
tmp=$archive.partial
tar -czf "$tmp" -C "$parent" --exclude="$base/.nodefix-*" -- "$base" || fail 11
gzip -t -- "$tmp" || fail 12
mv -- "$tmp" "$archive" || fail 13
echo "archive $archive"
cd -- "$parent" || exit 14
find "$base" -path "$base/.nodefix-*" -prune -o -type f -exec sha256sum -- {} + | sed 's/^/sum /'
for a in "$dir"/rpmdb-*.tar.gz; do [ -f "$a" ] && echo "have $a"; done
exit 0
`

// prepareScript copies the database into the work directory the repair's
// lease made (leaseScript; it waits for the lease's owner record) and, for
// Berkeley DB ($3 = bdb), removes the environment files __db.* from the
// copy: a process that died holding a lock leaves them wedged
// (DB_RUNRECOVERY) and rpm recreates them. $1 dbpath, $2 work directory.
const prepareScript = `db=$1; work=$2
i=0
while [ ! -s "$work/.owner" ]; do
	i=$((i+1)); [ "$i" -le 300 ] || { echo "the repair's lease did not start" >&2; exit 40; }
	sleep 0.1 2>/dev/null || sleep 1
done
cp -a -- "$db" "$work/db" || exit 41
rm -rf -- "$work/db"/.nodefix-*
if [ "$3" = bdb ]; then
	for f in "$work/db"/__db.*; do [ -e "$f" ] && rm -f -- "$f" && echo "removed ${f##*/}"; done
fi
echo "work $work"
`

// leaseScript makes the repair's work directory ($1) and holds it for as
// long as the controller that started the repair is connected: it
// records itself (pid and start time) in $1/.owner, notes every process
// above it but init (the ssh session, sudo, or the local nodefix), and
// exits once any of them is gone — the connection dropped or the
// controller was killed — once the work directory is gone, or when
// nodefix ends it (the repair is over, or Ctrl-C). A work directory whose owners are all gone is stale, which the
// next run proves by pid and start time before it removes it.
const leaseScript = startFuncs + `work=$1
umask 077
mkdir -- "$work" || exit 1
up= p=$PPID
while [ -n "$p" ] && [ "$p" -gt 1 ]; do
	up="$up $p:$(nf_start "$p")"
	read -r st <"/proc/$p/stat" 2>/dev/null || break
	st=${st##*) }; set -f; set -- $st; set +f; p=$2
done
printf "%s %s\n" "$$" "$(nf_start $$)" >"$work/.owner"
while [ -d "$work" ]; do
	for a in $up; do nf_alive "${a%%:*}" "${a#*:}" || exit 0; done
	sleep 1
done
`

// installScript makes the database directory hold exactly the rebuilt
// files: it removes what the rebuild did not produce (an old -wal, stale
// __db.* files) except the transaction lock file, then moves each rebuilt
// file in (a rename on the same file system, atomic per file). The
// directory itself stays: it may be a mount point.
//
// First it proves that nothing wrote to the database since the backup:
// a transaction that started and finished during the repair leaves no
// holder to see, only its writes, which the rebuilt copy (made from the
// older database) would throw away. Files every reader rewrites (sqlite's
// -shm, Berkeley DB's __db.* environment) and the lock file are not
// compared. On a difference it prints the database's checksums and exits
// 60 with nothing moved. It runs under lockedScript, so no transaction
// can start between the proof and the last move.
// $1 dbpath, $2 work dir, $3 the backup's checksums (sha256sum format,
// paths relative to the database's parent), $4 the backup archive, $5 $6
// the audit record and syslog line of the repair.
//
// It runs as a protected step, and before the first file moves it writes
// a journal ($2/journal: the database and the archive to restore): a database left part
// old, part rebuilt by an install that itself died (the node lost power,
// someone killed it) is restored from it by the next run (recoverScript).
// The journal goes once every file is in place.
const installScript = auditFuncs + startFuncs + `LC_ALL=C; export LC_ALL
db=$1; new=$2/db; was=$3
printf "%s %s\n" "$$" "$(nf_start $$)" >"$2/.install"
parent=$(dirname -- "$db"); base=$(basename -- "$db")
stable() { grep -v -e '^$' -e '-shm$' -e '/\.rpm\.lock$' -e '/__db\.[^/]*$' | sort; }
now=$(cd -- "$parent" && find "$base" -path "$base/.nodefix-*" -prune -o -type f -exec sha256sum -- {} +) || exit 50
if [ "$(printf '%s\n' "$now" | stable)" != "$(printf '%s' "$was" | stable)" ]; then
	printf '%s\n' "$now" | sed 's/^/sum /'
	exit 60
fi
[ -s "$new/rpmdb.sqlite" ] || [ -s "$new/Packages" ] || [ -s "$new/Packages.db" ] || { echo "no rebuilt database in $new" >&2; exit 54; }
printf '%s\n%s\n' "$db" "$4" >"$2/journal.tmp" && mv -f -- "$2/journal.tmp" "$2/journal" || exit 55
for f in "$db"/* "$db"/.[!.]* "$db"/..?*; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	name=${f##*/}
	case $name in .rpm.lock|.nodefix-*) continue ;; esac
	if [ ! -e "$new/$name" ] && [ ! -L "$new/$name" ]; then rm -rf -- "$f" || exit 51; echo "removed $name"; fi
done
for f in "$new"/* "$new"/.[!.]* "$new"/..?*; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	name=${f##*/}
	if [ "$name" = .rpm.lock ] && [ -e "$db/.rpm.lock" ]; then continue; fi
	if [ -d "$f" ] && [ ! -L "$f" ]; then rm -rf -- "$db/$name" || exit 52; fi
	mv -f -- "$f" "$db/$name" || exit 53
	echo "installed $name"
done
command -v restorecon >/dev/null 2>&1 && restorecon -R -- "$db" >/dev/null 2>&1
rm -f -- "$2/journal"
nf_audit "$5" "$6"
exit 0
`

// lockedScript runs a script (sh, $2, with the arguments after $2) while
// holding rpm's transaction lock, the POSIX write lock on $1 that rpm,
// yum and dnf take for every transaction: none can start while it runs,
// and it does not start while one holds the lock (exit 75, "lock busy").
// No shell tool takes a POSIX lock (flock(1) takes a different kind), so
// the node's Python does, as EL's platform-python on EL8 or python on EL7;
// without one it prints "lock none" and runs the script unlocked.
const lockedScript = `lock=$1; body=$2; shift 2
for py in python3 /usr/libexec/platform-python python2 python; do
	command -v "$py" >/dev/null 2>&1 || continue
	exec "$py" -c '` + pythonLockHolder + `' "$lock" "$body" "$@"
done
echo "lock none"
exec sh -c "$body" nodefix "$@"
`

// pythonLockHolder takes the lock without waiting, runs the script and
// exits with its status; the lock ends with the process. It runs on
// Python 2.6 to 3 and has no single quote (lockedScript quotes it).
const pythonLockHolder = `import fcntl, os, subprocess, sys
try:
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 420)
except (IOError, OSError) as e:
    sys.stdout.write("lock error %s\n" % e)
    sys.exit(76)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except (IOError, OSError):
    sys.stdout.write("lock busy\n")
    sys.exit(75)
sys.stdout.write("lock held\n")
sys.stdout.flush()
sys.exit(subprocess.call(["sh", "-c", sys.argv[2], "nodefix"] + sys.argv[3:]))
`

// Exit statuses of the locked install. Only the first three leave the
// database directory part old, part rebuilt.
const (
	installRemoveFailed  = 51
	installReplaceFailed = 52
	installMoveFailed    = 53
	installDBChanged     = 60
	installLockBusy      = 75
)

// cleanupScript removes a work directory, and nothing that is not one.
const cleanupScript = `case "$1" in
*/.nodefix-rpmdb.??????) rm -rf -- "$1" ;;
*) echo "not a work directory: $1" >&2; exit 1 ;;
esac
`

// sumsScript prints the SHA-256 of every file of the database. $1 dbpath.
const sumsScript = `cd -- "$(dirname -- "$1")" || exit 1
base=$(basename -- "$1")
find "$base" -path "$base/.nodefix-*" -prune -o -type f -exec sha256sum -- {} + | sed 's/^/sum /'
`

// restoreScript puts the backup back: it extracts the archive into a
// staging directory inside the database directory (same file system, so
// the final moves are renames that need no space), checks it against the
// backup's checksums, empties the database directory but for the staging
// (the directory itself stays: it may be a mount point), moves the files
// in, and prints the checksums of the result. If staging fails (no space
// for a second copy) it empties the directory and extracts in place.
// $1 dbpath, $2 archive, $3 checksum list (sha256sum -c format, paths
// relative to the database's parent), $4 $5 the audit record and syslog
// line. It runs as a protected step.
const restoreScript = auditFuncs + `LC_ALL=C; export LC_ALL
db=$1; archive=$2; sums=$3
parent=$(dirname -- "$db"); base=$(basename -- "$db")
stage=$db/.nodefix-restore
gzip -t -- "$archive" || exit 30
rm -rf -- "$stage"
if mkdir -- "$stage" && tar -xzf "$archive" -C "$stage" && (cd -- "$stage" && printf '%s' "$sums" | sha256sum -c --quiet -); then
	find "$db" -mindepth 1 -maxdepth 1 ! -name .nodefix-restore -exec rm -rf -- {} + || exit 31
	for f in "$stage/$base"/* "$stage/$base"/.[!.]* "$stage/$base"/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		mv -- "$f" "$db"/ || exit 32
	done
	rm -rf -- "$stage"
else
	echo "staging the backup failed; extracting in place" >&2
	rm -rf -- "$stage"
	find "$db" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} + || exit 31
	tar -xzf "$archive" -C "$parent" || exit 33
fi
command -v restorecon >/dev/null 2>&1 && restorecon -R -- "$db" >/dev/null 2>&1
nf_audit "$4" "$5"
cd -- "$parent" || exit 34
find "$base" -type f -exec sha256sum -- {} + | sed 's/^/sum /'
exit 0
`

// backupInfo is what backupScript reported.
type backupInfo struct {
	Archive string
	// Sums maps each file (relative to the database's parent directory)
	// to its SHA-256.
	Sums     map[string]string
	Archives []string
}

// repairRun carries one repair's state between its steps.
type repairRun struct {
	node   Node
	cfg    Config
	f      *dbFacts
	out    Outcome
	backup *backupInfo
	work   string
	// problems is why the database needs a repair.
	problems string
	// baseline are the records readable before; countAfter the rebuilt
	// database's count (-1 before there is one).
	baseline   []string
	countAfter int
	// host names the node in the audit trail.
	host string
	// installUnknown: the install step was started and its end not seen
	// (interrupted, the connection lost): it goes on by itself on the
	// node, so its work directory is left to it and to the next run.
	installUnknown bool
}

// repair backs up, rebuilds a copy, verifies, installs, and rolls back if
// needed.
func (t RPMDB) repair(ctx context.Context, node Node, cfg Config, host string, f *dbFacts, before *rpmdbHealth, out Outcome) Outcome {
	r := &repairRun{node: node, cfg: cfg, f: f, out: out, problems: strings.Join(before.Problems, "; "),
		baseline: before.Packages, countAfter: -1, host: host}
	if o, ok := r.checkSpace(ctx); !ok {
		return o
	}
	if o, ok := r.takeBackup(ctx); !ok {
		return o
	}
	// Another nodefix may have repaired the database since this one judged
	// it (two runs that judged it at once: the other's install came before
	// this backup, so the install's proof below cannot see it). Judged
	// again now that the backup holds what is there: nothing to repair.
	if now, err := checkHealth(ctx, node, cfg, f.snap.HaveTimeout, ""); err == nil && now.healthy() {
		r.out.Status, r.out.Changed = StatusOK, false
		r.out.Details["packages"] = len(now.Packages)
		r.out.Msg = fmt.Sprintf("rpm database (%s at %s) opens and verifies now: %d packages; it did not when this run judged it (%s), so another run repaired it meanwhile; nothing to do (the backup %s is kept with the others)",
			f.backend, f.dbpath, len(now.Packages), r.problems, r.backup.Archive)
		return r.out
	}
	work := path.Join(path.Dir(f.dbpath), ".nodefix-rpmdb."+randomSuffix())
	lease := startLease(ctx, node, work)
	// Deferred calls run last first: the work directory goes while the
	// lease still holds it.
	defer lease.stop()
	defer r.cleanup(ctx)
	r.work = work

	res, err := runScript(ctx, node, cfg.CommandTimeout, "rpmdb-prepare", prepareScript, f.dbpath, work, bdbOrEmpty(f.backend))
	if err == nil && res.ExitStatus != 0 {
		err = statusError("copy script", res)
	}
	if err != nil {
		return r.discard(ctx, fmt.Sprintf("copying the database for the rebuild: %v", err))
	}
	if !strings.Contains(string(res.Stdout), "work "+work+"\n") {
		return r.discard(ctx, "copying the database for the rebuild: the copy did not report its work directory")
	}
	copyPath := path.Join(r.work, "db")
	if strings.HasPrefix(f.backend, "bdb") && len(f.staleEnv) > 0 {
		r.out.Details["removed_env_files"] = f.staleEnv
		// Without the wedged environment more records may be readable:
		// they are the better baseline.
		if again, err := checkHealth(ctx, node, cfg, f.snap.HaveTimeout, copyPath); err == nil && len(again.Packages) > len(r.baseline) {
			r.baseline = again.Packages
		}
	}
	r.out.Details["packages_before"] = len(r.baseline)

	res, timedOut, err := runBounded(ctx, node, f.snap.HaveTimeout, cfg.CommandTimeout, "rpm", "--dbpath", copyPath, "--rebuilddb")
	switch {
	case err != nil:
		return r.discard(ctx, fmt.Sprintf("rpm --rebuilddb: %v", err))
	case timedOut:
		return r.discard(ctx, fmt.Sprintf("rpm --rebuilddb did not finish within %s and was ended", cfg.CommandTimeout))
	case res.ExitStatus != 0:
		return r.discard(ctx, statusError("rpm --rebuilddb", res).Error())
	}
	if why := r.verify(ctx, copyPath); why != "" {
		return r.discard(ctx, why)
	}

	// A transaction that started since the backup would lose its work if
	// the rebuilt copy replaced the database now.
	if snap, err := takeSnapshot(ctx, node, cfg, withDB); err != nil {
		return r.discard(ctx, fmt.Sprintf("checking for transactions before installing the rebuilt database: %v", err))
	} else if holders := transactionHolders(snap); len(holders) > 0 {
		r.out.Details["holders"] = holders
		return r.discard(ctx, fmt.Sprintf("pid %d (%s) started using the database during the repair (%s)", holders[0].PID, holders[0].Command, holders[0].Why))
	}
	if o, installed := r.install(ctx); !installed {
		return o
	}
	if why := r.verify(ctx, ""); why != "" {
		return r.rollback(ctx, "after installing the rebuilt database: "+why)
	}
	t.prune(ctx, r)
	r.out.Status = StatusChanged
	r.out.Msg = fmt.Sprintf("rebuilt the rpm database at %s (%s; was: %s): %d packages before, %d after, verifies clean; backup %s",
		f.dbpath, f.backend, r.problems, len(r.baseline), r.countAfter, r.backup.Archive)
	return r.out
}

// lease holds the repair's work directory on the node (leaseScript) while
// the repair runs; stop ends it.
type lease struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startLease runs leaseScript for work until stop. It outlives ctx: the
// work directory must stay held while an interrupted repair cleans up.
func startLease(ctx context.Context, node Node, work string) *lease {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &lease{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		// Its result says nothing: the lease ends when it is ended.
		_, _ = node.Run(lctx, shellScript("rpmdb-lease", leaseScript, work))
	}()
	return l
}

func (l *lease) stop() {
	l.cancel()
	<-l.done
}

// randomSuffix is six random letters and digits, as mktemp's XXXXXX.
func randomSuffix() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("tasks: no randomness: " + err.Error()) // crypto/rand does not fail on Linux
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

func bdbOrEmpty(backend string) string {
	if strings.HasPrefix(backend, "bdb") {
		return "bdb"
	}
	return ""
}

// install moves the rebuilt copy into place under rpm's transaction lock
// once the database is proven unchanged since the backup. When it returns
// false the repair is over with the Outcome it returns.
func (r *repairRun) install(ctx context.Context) (Outcome, bool) {
	lock := path.Join(r.f.dbpath, ".rpm.lock")
	change := map[string]any{
		"dbpath": r.f.dbpath, "backend": r.f.backend, "problems": r.problems, "backup": r.backup.Archive,
		"packages_before": len(r.baseline), "packages_after": r.countAfter,
	}
	res, err := runProtected(ctx, r.node, r.cfg.CommandTimeout, "rpmdb-install", lockedScript, nil,
		lock, installScript, r.f.dbpath, r.work, r.backup.sumsText(), r.backup.Archive,
		auditLine(r.cfg, r.host, NameRPMDB, "rebuild", change, "changed"),
		auditSummary(r.cfg, NameRPMDB, fmt.Sprintf("rebuilt the rpm database at %s: %d packages before, %d after; backup %s",
			r.f.dbpath, len(r.baseline), r.countAfter, r.backup.Archive)))
	if err != nil {
		// The install runs on by itself on the node (a protected step):
		// restoring the backup now would race it. It ends installed, or
		// with its journal for the next run to restore.
		r.installUnknown = true
		return r.fail("installing the rebuilt database at %s: %v; the install goes on on the node by itself, "+
			"and the next run checks the database (and restores the backup %s if the install did not finish)", r.f.dbpath, err, r.backup.Archive), false
	}
	switch res.ExitStatus {
	case 0:
	case installLockBusy:
		return r.discard(ctx, fmt.Sprintf("a transaction took rpm's lock %s during the repair: the rebuilt copy was not installed; run again when it is done", lock)), false
	case installDBChanged:
		diff := sumsDiffer(r.backup.Sums, parseBackup(res.Stdout).Sums, volatileDBFile)
		return r.discard(ctx, fmt.Sprintf("the database was written to during the repair (%s), by a transaction that has ended: the rebuilt copy, made before it, was not installed; run again", diff)), false
	case installRemoveFailed, installReplaceFailed, installMoveFailed:
		return r.rollback(ctx, "installing the rebuilt database: "+statusError("install script", res).Error()), false
	default:
		// The install ended without one of its own statuses: the lock or
		// the proof failed first, or it was killed on the node. Once it
		// has written its journal it may have moved files: the backup goes
		// back. Before, nothing was moved: the database is as it was, and
		// restoring the backup over it would undo any transaction since.
		journal, err := r.journalWritten(ctx)
		switch {
		case err != nil:
			r.installUnknown = true
			return r.fail("installing the rebuilt database at %s: %v; whether it moved files is unknown (%v): the next run checks the database "+
				"and restores the backup %s if the install did not finish", r.f.dbpath, statusError("install script", res), err, r.backup.Archive), false
		case journal:
			return r.rollback(ctx, "installing the rebuilt database: "+statusError("install script", res).Error()+"; it ended part way"), false
		}
		return r.discard(ctx, "installing the rebuilt database: "+statusError("install script", res).Error()+"; nothing was moved"), false
	}
	if strings.Contains(string(res.Stdout), "lock none\n") {
		r.out.Warnings = append(r.out.Warnings, fmt.Sprintf(
			"no Python on the node to take rpm's transaction lock %s: the database was proven unchanged since the backup just before the rebuilt copy was installed, without the lock", lock))
	}
	return Outcome{}, true
}

// journalWritten reports whether the install wrote its journal in the
// work directory: it may have moved files then (installScript).
func (r *repairRun) journalWritten(ctx context.Context) (bool, error) {
	res, err := runScript(ctx, r.node, r.cfg.CommandTimeout, "rpmdb-journal", `[ ! -e "$1/journal" ] || echo journal`, r.work)
	if err == nil && res.ExitStatus != 0 {
		err = statusError("looking for the install's journal", res)
	}
	return strings.Contains(string(res.Stdout), "journal"), err
}

// checkSpace fails the repair, with nothing done, when the backup or the
// rebuild would not fit: the archive needs at most the database's size
// (gzip grows incompressible data by a few bytes per block), the rebuild
// a copy and a rebuilt copy beside the database directory.
func (r *repairRun) checkSpace(ctx context.Context) (Outcome, bool) {
	res, err := runScript(ctx, r.node, r.cfg.CommandTimeout, "rpmdb-space", spaceScript, r.f.dbpath, r.cfg.RPMBackupDir)
	if err == nil && res.ExitStatus != 0 {
		err = statusError("space check", res)
	}
	if err != nil {
		return r.fail("rpm database at %s needs a rebuild (%s) but measuring free space failed: %v; nothing was changed", r.f.dbpath, r.problems, err), false
	}
	space := parseSpace(res.Stdout)
	needBackup, needRebuild := space.dbKB+1024, 2*space.dbKB+1024
	if space.backupMount == space.rebuildMount {
		needBackup += needRebuild
	}
	if space.backupKB < needBackup {
		return r.fail("rpm database at %s needs a rebuild (%s) but %s has %d KiB free and the backup needs %d KiB; free space there or choose another backup directory; nothing was changed",
			r.f.dbpath, r.problems, r.cfg.RPMBackupDir, space.backupKB, needBackup), false
	}
	if space.rebuildKB < needRebuild {
		return r.fail("rpm database at %s needs a rebuild (%s) but %s has %d KiB free and the rebuild needs %d KiB; nothing was changed",
			r.f.dbpath, r.problems, path.Dir(r.f.dbpath), space.rebuildKB, needRebuild), false
	}
	return Outcome{}, true
}

// takeBackup archives the database; a failure ends the repair.
func (r *repairRun) takeBackup(ctx context.Context) (Outcome, bool) {
	res, err := runProtected(ctx, r.node, r.cfg.CommandTimeout, "rpmdb-backup", backupScript, nil, r.f.dbpath, r.cfg.RPMBackupDir)
	if err != nil {
		return r.fail("backing up the rpm database %s to %s: %v; nothing else was done", r.f.dbpath, r.cfg.RPMBackupDir, err), false
	}
	if res.ExitStatus != 0 {
		return r.fail("backing up the rpm database %s to %s failed (%s); nothing else was done", r.f.dbpath, r.cfg.RPMBackupDir, firstLines(res.Stderr, 3)), false
	}
	r.backup = parseBackup(res.Stdout)
	if r.backup.Archive == "" || len(r.backup.Sums) == 0 {
		return r.fail("backing up the rpm database %s: the backup reported no archive or no files; nothing else was done", r.f.dbpath), false
	}
	r.out.Changed = true
	r.out.Details["backup"] = r.backup.Archive
	return Outcome{}, true
}

// verify checks the database at dbpath ("" for rpm's own) and that it
// holds every baseline record; it returns what is wrong, or "".
func (r *repairRun) verify(ctx context.Context, dbpath string) string {
	what := "the rebuilt database"
	h, err := checkHealth(ctx, r.node, r.cfg, r.f.snap.HaveTimeout, dbpath)
	if err != nil {
		return fmt.Sprintf("verifying %s: %v", what, err)
	}
	r.countAfter = len(h.Packages)
	r.out.Details["packages_after"] = r.countAfter
	if !h.healthy() {
		return what + " does not verify: " + strings.Join(h.Problems, "; ")
	}
	if lost := missingRecords(r.baseline, h.Packages); len(lost) > 0 {
		return fmt.Sprintf("the rebuild lost %d package %s (%s)", len(lost), plural(len(lost), "record", "records"), strings.Join(clipList(lost, 5), ", "))
	}
	return ""
}

// discard ends a repair whose rebuilt copy is not used: the live database
// was not touched, which the checksums against the backup prove (but for
// sqlite's -shm, a shared-memory index every reader may rewrite).
func (r *repairRun) discard(ctx context.Context, why string) Outcome {
	r.out.Status = StatusFailed
	sums, err := r.sums(ctx)
	proof := "the database at " + r.f.dbpath + " was not modified"
	switch {
	case err != nil:
		proof += fmt.Sprintf(" (could not checksum it: %v)", err)
	case sumsDiffer(r.backup.Sums, sums, volatileDBFile) != "":
		proof = fmt.Sprintf("the database at %s changed since the backup (%s) though the repair did not write to it", r.f.dbpath, sumsDiffer(r.backup.Sums, sums, volatileDBFile))
	default:
		proof += ": byte for byte as in the backup"
	}
	r.out.Details["rolled_back"] = true
	r.out.Msg = fmt.Sprintf("%s; rolled back: %s (packages before: %d, after the rebuild: %s); backup %s",
		why, proof, len(r.baseline), r.afterText(), r.backup.Archive)
	return r.out
}

// rollback restores the backup after the rebuilt database was installed
// and failed, and proves the result byte for byte.
func (r *repairRun) rollback(ctx context.Context, why string) Outcome {
	r.out.Status = StatusFailed
	restoreBy := fmt.Sprintf("tar -xzf %s -C %s", r.backup.Archive, path.Dir(r.f.dbpath))
	change := map[string]any{"dbpath": r.f.dbpath, "backup": r.backup.Archive, "why": why,
		"packages_before": len(r.baseline), "packages_after_rebuild": r.countAfter}
	res, err := runProtected(ctx, r.node, r.cfg.CommandTimeout, "rpmdb-restore", restoreScript, nil, r.f.dbpath, r.backup.Archive, r.backup.sumsText(),
		auditLine(r.cfg, r.host, NameRPMDB, "restore backup", change, "rolled back"),
		auditSummary(r.cfg, NameRPMDB, fmt.Sprintf("restored the backup %s of the rpm database at %s", r.backup.Archive, r.f.dbpath)))
	if err == nil && res.ExitStatus != 0 {
		err = statusError("restore", res)
	}
	if err != nil {
		r.out.Msg = fmt.Sprintf("%s; RESTORING THE BACKUP FAILED: %v; the database at %s may be unusable: empty it and restore by hand with %s",
			why, err, r.f.dbpath, restoreBy)
		return r.out
	}
	if diff := sumsDiffer(r.backup.Sums, parseBackup(res.Stdout).Sums, nil); diff != "" {
		r.out.Msg = fmt.Sprintf("%s; the restored database differs from the backup (%s): restore by hand with %s", why, diff, restoreBy)
		return r.out
	}
	r.out.Details["rolled_back"] = true
	r.out.Msg = fmt.Sprintf("%s; rolled back: restored the backup %s, the database at %s is byte for byte what it was (packages before: %d, after the rebuild: %s)",
		why, r.backup.Archive, r.f.dbpath, len(r.baseline), r.afterText())
	return r.out
}

func (r *repairRun) afterText() string {
	if r.countAfter < 0 {
		return "none readable"
	}
	return strconv.Itoa(r.countAfter)
}

func (r *repairRun) sums(ctx context.Context) (map[string]string, error) {
	res, err := runScript(ctx, r.node, r.cfg.CommandTimeout, "rpmdb-checksums", sumsScript, r.f.dbpath)
	if err == nil && res.ExitStatus != 0 {
		err = statusError("checksums", res)
	}
	if err != nil {
		return nil, err
	}
	return parseBackup(res.Stdout).Sums, nil
}

// cleanup removes the work directory, even when ctx has ended: a leftover
// copy of the database would only take space.
func (r *repairRun) cleanup(ctx context.Context) {
	if r.work == "" || r.installUnknown {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	res, err := runScript(ctx, r.node, r.cfg.CommandTimeout, "rpmdb-cleanup", cleanupScript, r.work)
	if err == nil && res.ExitStatus != 0 {
		err = statusError("rm", res)
	}
	if err != nil {
		r.out.Warnings = append(r.out.Warnings, fmt.Sprintf("removing the work directory %s: %v", r.work, err))
	}
}

func (r *repairRun) fail(format string, args ...any) Outcome {
	r.out.Status = StatusFailed
	r.out.Msg = fmt.Sprintf(format, args...)
	return r.out
}

// prune keeps the newest cfg.RPMBackupKeep archives. A failure to prune
// is a warning: the repair itself stands.
func (RPMDB) prune(ctx context.Context, r *repairRun) {
	archives := append([]string(nil), r.backup.Archives...)
	sort.Strings(archives) // timestamped names sort oldest first
	if len(archives) <= r.cfg.RPMBackupKeep {
		return
	}
	old := archives[:len(archives)-r.cfg.RPMBackupKeep]
	res, err := runCommand(ctx, r.node, r.cfg, "removing old backups", Command{Argv: append([]string{"rm", "-f", "--"}, old...)})
	if err == nil && res.ExitStatus != 0 {
		err = statusError("rm", res)
	}
	if err != nil {
		r.out.Warnings = append(r.out.Warnings, fmt.Sprintf("removing old rpm database backups: %v", err))
		return
	}
	r.out.Details["removed_backups"] = old
}

// spaceInfo is what spaceScript measured, in KiB.
type spaceInfo struct {
	dbKB, backupKB, rebuildKB int64
	backupMount, rebuildMount string
}

func parseSpace(stdout []byte) spaceInfo {
	var s spaceInfo
	for _, line := range strings.Split(string(stdout), "\n") {
		f := strings.SplitN(line, " ", 3)
		switch {
		case len(f) >= 2 && f[0] == "db":
			s.dbKB, _ = strconv.ParseInt(f[1], 10, 64)
		case len(f) == 3 && f[0] == "backup":
			s.backupKB, _ = strconv.ParseInt(f[1], 10, 64)
			s.backupMount = f[2]
		case len(f) == 3 && f[0] == "rebuild":
			s.rebuildKB, _ = strconv.ParseInt(f[1], 10, 64)
			s.rebuildMount = f[2]
		}
	}
	return s
}

// parseBackup reads "archive PATH", "have PATH" and "sum HASH  FILE" lines.
func parseBackup(stdout []byte) *backupInfo {
	b := &backupInfo{Sums: map[string]string{}}
	for _, line := range strings.Split(string(stdout), "\n") {
		switch {
		case strings.HasPrefix(line, "archive "):
			b.Archive = strings.TrimPrefix(line, "archive ")
		case strings.HasPrefix(line, "have "):
			b.Archives = append(b.Archives, strings.TrimPrefix(line, "have "))
		case strings.HasPrefix(line, "sum "):
			if sum, name, ok := strings.Cut(strings.TrimPrefix(line, "sum "), "  "); ok {
				b.Sums[name] = sum
			}
		}
	}
	return b
}

// volatileDBFile reports whether a database file changes without any
// write to the database: sqlite's -shm index and Berkeley DB's __db.*
// environment are rewritten by readers, and the lock file only exists.
// installScript's stable() leaves out the same files.
func volatileDBFile(name string) bool {
	base := path.Base(name)
	return strings.HasSuffix(base, "-shm") || base == ".rpm.lock" || strings.HasPrefix(base, "__db.")
}

// sumsText is the backup's checksums in sha256sum's format, sorted.
func (b *backupInfo) sumsText() string {
	names := make([]string, 0, len(b.Sums))
	for name := range b.Sums {
		names = append(names, name)
	}
	sort.Strings(names)
	var text strings.Builder
	for _, name := range names {
		fmt.Fprintf(&text, "%s  %s\n", b.Sums[name], name)
	}
	return text.String()
}

// sumsDiffer describes how two checksum lists differ, "" when equal;
// files ignore reports (when not nil) are not compared.
func sumsDiffer(want, got map[string]string, ignore func(name string) bool) string {
	ignored := func(name string) bool { return ignore != nil && ignore(name) }
	var diffs []string
	for name, sum := range want {
		if ignored(name) {
			continue
		}
		switch g, ok := got[name]; {
		case !ok:
			diffs = append(diffs, name+" missing")
		case g != sum:
			diffs = append(diffs, name+" changed")
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok && !ignored(name) {
			diffs = append(diffs, name+" extra")
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, ", ")
}

// missingRecords returns the records of before that after lacks, counting
// duplicates (a database may hold the same NEVRA twice).
func missingRecords(before, after []string) []string {
	have := map[string]int{}
	for _, p := range after {
		have[p]++
	}
	var lost []string
	for _, p := range before {
		if have[p] > 0 {
			have[p]--
			continue
		}
		lost = append(lost, p)
	}
	sort.Strings(lost)
	return lost
}

func clipList(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string(nil), s[:n]...), fmt.Sprintf("and %d more", len(s)-n))
}
