package tasks

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// RPMDB makes sure the rpm database opens and verifies, and rebuilds it
// when it does not: back up the database directory, rebuild, verify, and
// compare the package records; a rebuild that lost a record, failed to
// verify or hung is rolled back to the backup byte for byte. It refuses to
// touch a database a transaction holds.
type RPMDB struct{}

// Name implements Task.
func (RPMDB) Name() string { return NameRPMDB }

// qaFormat prints one line per package record; EPOCH is part of it so two
// records that differ only by epoch stay apart.
const qaFormat = `%{NAME}-%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}.%{ARCH}\n`

// rpmdbHealth is what rpm says about its database.
type rpmdbHealth struct {
	// Packages are the records rpm -qa could read, one NEVRA each.
	Packages []string
	// Problems says what is wrong, empty when the database is healthy.
	Problems []string
	// VerifySupported: this rpm has --verifydb.
	VerifySupported bool
}

func (h *rpmdbHealth) healthy() bool { return len(h.Problems) == 0 }

// dbFacts is the database as one listing found it.
type dbFacts struct {
	snap    *rpmSnapshot
	backend string
	dbpath  string
	// staleEnv are Berkeley DB __db.* environment files no process maps.
	staleEnv []string
	envInUse bool
}

// Apply implements Task.
func (t RPMDB) Apply(ctx context.Context, node Node, _ Host, cfg Config) Outcome {
	out := Outcome{Task: NameRPMDB}
	if cfg.RPMBackupKeep < 1 {
		return Failed(NameRPMDB, "rpm backup keep must be at least 1 (the backup a repair just made), got %d", cfg.RPMBackupKeep)
	}
	if !path.IsAbs(cfg.RPMBackupDir) {
		return Failed(NameRPMDB, "rpm backup dir must be an absolute path, got %q", cfg.RPMBackupDir)
	}
	snap, err := takeSnapshot(ctx, node, cfg)
	if err != nil {
		return Failed(NameRPMDB, "%v", err)
	}
	if snap.RPMPath == "" {
		out.Status = StatusSkipped
		out.Msg = "rpm is not installed on this host (no rpm on PATH): no rpm database to check"
		return out
	}
	facts, skip := dbFactsOf(snap, cfg.RPMBackupDir)
	if skip != nil {
		return *skip
	}
	out.Details = map[string]any{"backend": facts.backend, "dbpath": facts.dbpath}
	if refusal := transactionHolders(snap); len(refusal) > 0 {
		out.Details["holders"] = refusal
		return t.refuse(out, refusal)
	}

	health, err := checkHealth(ctx, node, cfg, snap.HaveTimeout)
	if err != nil {
		return Failed(NameRPMDB, "checking the rpm database at %s: %v", facts.dbpath, err)
	}
	out.Details["packages"] = len(health.Packages)
	out.Details["verifydb_supported"] = health.VerifySupported
	if len(facts.staleEnv) > 0 {
		out.Details["stale_env_files"] = facts.staleEnv
	}
	if health.healthy() {
		out.Status = StatusOK
		out.Msg = fmt.Sprintf("rpm database (%s at %s) opens and verifies: %d packages", facts.backend, facts.dbpath, len(health.Packages))
		if len(facts.staleEnv) > 0 {
			out.Warnings = append(out.Warnings, fmt.Sprintf("Berkeley DB environment files no process uses: %s (harmless while the database opens; removed on the next repair)", strings.Join(facts.staleEnv, ", ")))
		}
		return out
	}
	out.Details["problems"] = health.Problems
	if cfg.Check {
		out.Status, out.Changed = StatusChanged, true
		out.Msg = fmt.Sprintf("would back up and rebuild the rpm database at %s: %s", facts.dbpath, strings.Join(health.Problems, "; "))
		return out
	}
	if facts.envInUse {
		return Failed(NameRPMDB, "rpm database at %s needs a rebuild (%s) but its Berkeley DB environment is in use by pids %v; end them (the rpm-queries task ends hung queries) and run again",
			facts.dbpath, strings.Join(health.Problems, "; "), snap.EnvUsers)
	}
	return t.repair(ctx, node, cfg, facts, health, out)
}

// dbFactsOf reads backend and path from a listing; a non-nil outcome means
// there is nothing to check.
func dbFactsOf(snap *rpmSnapshot, backupDir string) (*dbFacts, *Outcome) {
	f := &dbFacts{snap: snap, dbpath: path.Clean(snap.DBPath)}
	if snap.DBPath == "" || !path.IsAbs(f.dbpath) || strings.Contains(f.dbpath, "%") {
		o := Failed(NameRPMDB, "rpm reports no usable database path (%%{_dbpath} = %q)", f.dbpath)
		return nil, &o
	}
	f.backend = backendOf(snap)
	if f.backend == "" {
		if snap.HaveDpkg {
			return nil, &Outcome{Task: NameRPMDB, Status: StatusSkipped,
				Msg: fmt.Sprintf("no rpm database at %s and dpkg is present: rpm is not this host's package manager", f.dbpath)}
		}
		o := Failed(NameRPMDB, "no rpm database at %s (backend %q): restore it from a backup (nodefix keeps them in %s) before running package tools", f.dbpath, snap.Backend, backupDir)
		return nil, &o
	}
	users := map[int]bool{}
	for _, pid := range snap.EnvUsers {
		users[pid] = true
	}
	f.envInUse = len(users) > 0
	if !f.envInUse {
		for name := range snap.DBSizes {
			if strings.HasPrefix(name, "__db.") {
				f.staleEnv = append(f.staleEnv, name)
			}
		}
		sort.Strings(f.staleEnv)
	}
	return f, nil
}

// backendOf names the database backend, from %{_db_backend} when rpm
// defines it (4.14 and later) and from the files otherwise (rpm 4.11 on
// EL7 has no such macro and only Berkeley DB). Empty: no database there.
func backendOf(snap *rpmSnapshot) string {
	has := func(name string) bool { _, ok := snap.DBSizes[name]; return ok }
	b := snap.Backend
	if b == "" || strings.Contains(b, "%") {
		switch {
		case has("rpmdb.sqlite"):
			b = "sqlite"
		case has("Packages.db"):
			b = "ndb"
		default:
			b = "bdb"
		}
	}
	switch {
	case !snap.DBExists:
		return ""
	case b == "sqlite" && has("rpmdb.sqlite"),
		b == "ndb" && has("Packages.db"),
		(b == "bdb" || b == "bdb_ro") && has("Packages"):
		return b
	}
	return ""
}

// dbHolder is a process that keeps rpmdb from touching the database.
type dbHolder struct {
	PID     int    `json:"pid"`
	Command string `json:"command"`
	Why     string `json:"why"`
}

// transactionHolders lists what holds the database for writing: the
// transaction lock .rpm.lock, a live yum/dnf/zypper pid file, an rpm
// process in a writing mode (it may still be waiting to take the lock),
// a package manager that runs transactions, or any other process with a
// write lock on a database file. Queries are not holders: rpm-queries
// deals with hung ones.
func transactionHolders(snap *rpmSnapshot) []dbHolder {
	var out []dbHolder
	seen := map[int]bool{}
	add := func(pid int, why string) {
		if seen[pid] || pid == snap.Self {
			return
		}
		seen[pid] = true
		cmd := "not in this host's process table"
		if p, ok := snap.Procs[pid]; ok {
			cmd = p.CommandLine()
		}
		out = append(out, dbHolder{PID: pid, Command: cmd, Why: why})
	}
	for _, pid := range snap.transactionLockHolders() {
		add(pid, "holds the transaction lock "+path.Join(snap.DBPath, ".rpm.lock"))
	}
	for _, pf := range snap.PIDFiles {
		if _, alive := snap.Procs[pf.PID]; alive {
			add(pf.PID, "named by the live pid file "+pf.Path)
		}
	}
	for _, l := range snap.dbLocks() {
		if !l.Write || l.Waiting || l.PID <= 0 {
			continue
		}
		if p, ok := snap.Procs[l.PID]; ok && classifyRPM(p.Argv) == rpmModeQuery {
			continue
		}
		add(l.PID, "holds a write lock on "+path.Join(snap.DBPath, l.Name))
	}
	for _, pid := range snap.sortedPIDs() {
		p := snap.Procs[pid]
		if p.State == 'Z' {
			continue
		}
		switch m := classifyRPM(p.Argv); {
		case m == rpmModeWrite || m == rpmModeDatabase:
			add(pid, "rpm "+m.String()+" in progress")
		case isPackageManager(p) && !idleDaemons[p.Program()] && !idleDaemons[p.Comm]:
			add(pid, "package manager running")
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// idleDaemons are package-management daemons that run all the time; they
// take the transaction lock when they do work, which is caught above.
var idleDaemons = map[string]bool{
	"packagekitd": true, "rpm-ostreed": true, "dnfdaemon-system": true, "dnf5daemon-server": true,
}

func (RPMDB) refuse(out Outcome, holders []dbHolder) Outcome {
	var parts []string
	for _, h := range holders {
		parts = append(parts, fmt.Sprintf("pid %d (%s): %s", h.PID, h.Command, h.Why))
	}
	out.Status = StatusFailed
	out.Msg = fmt.Sprintf("refusing to check or repair the rpm database while a transaction holds it: %s; run again when it has finished",
		strings.Join(parts, "; "))
	return out
}

// checkHealth runs rpm -qa and rpm --verifydb, each bounded.
func checkHealth(ctx context.Context, node Node, cfg Config, haveTimeout bool) (*rpmdbHealth, error) {
	h := &rpmdbHealth{}
	res, timedOut, err := runBounded(ctx, node, haveTimeout, cfg.CommandTimeout, "rpm", "-qa", "--qf", qaFormat)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			h.Packages = append(h.Packages, line)
		}
	}
	switch {
	case timedOut:
		h.Problems = append(h.Problems, fmt.Sprintf("rpm -qa did not finish within %s", cfg.CommandTimeout))
	default:
		if errs := rpmErrors(res.Stderr); len(errs) > 0 {
			h.Problems = append(h.Problems, "rpm -qa: "+strings.Join(errs, "; "))
		} else if res.ExitStatus != 0 {
			h.Problems = append(h.Problems, statusError("rpm -qa", res).Error())
		}
	}

	res, timedOut, err = runBounded(ctx, node, haveTimeout, cfg.CommandTimeout, "rpm", "--verifydb")
	if err != nil {
		return nil, err
	}
	h.VerifySupported = !unsupportedOption(res)
	switch {
	case timedOut:
		h.Problems = append(h.Problems, fmt.Sprintf("rpm --verifydb did not finish within %s", cfg.CommandTimeout))
	case !h.VerifySupported:
	case res.ExitStatus != 0:
		h.Problems = append(h.Problems, statusError("rpm --verifydb", res).Error())
	}
	return h, nil
}

// rpmErrors picks the lines rpm marks as errors, and the Berkeley DB and
// sqlite messages that come without the "error:" prefix.
func rpmErrors(stderr []byte) []string {
	var out []string
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		low := strings.ToLower(line)
		if strings.HasPrefix(low, "error:") || strings.Contains(line, "DB_RUNRECOVERY") ||
			strings.Contains(low, "cannot open packages") || strings.Contains(low, "database disk image is malformed") ||
			strings.Contains(line, "BDB0") {
			out = append(out, line)
			if len(out) == 5 {
				break
			}
		}
	}
	return out
}

// unsupportedOption reports rpm's answer to an option it does not know.
func unsupportedOption(res Result) bool {
	if res.ExitStatus == 0 {
		return false
	}
	s := strings.ToLower(string(res.Stderr))
	return strings.Contains(s, "unknown option") || strings.Contains(s, "unrecognized option")
}

// spaceScript prints the database's size, the free space where the backup
// and the rebuild go (with their mount points), and rpm's leftover rebuild
// directories. $1 dbpath, $2 backup dir.
const spaceScript = `# nodefix: rpmdb space
LC_ALL=C; export LC_ALL
db=$1; d=$2
while [ ! -d "$d" ]; do d=$(dirname -- "$d"); done
du -sk -- "$db" | { read -r k _; echo "db $k"; }
df -Pk -- "$d" | { read -r _; read -r _ _ _ avail _ mnt; echo "backup $avail $mnt"; }
df -Pk -- "$(dirname -- "$db")" | { read -r _; read -r _ _ _ avail _ mnt; echo "rebuild $avail $mnt"; }
for r in "$db"rebuilddb.*; do [ -d "$r" ] && echo "leftover $r"; done
exit 0
`

// backupScript archives the database directory to a new timestamped
// .tar.gz under the backup dir, tests the archive, and prints its path,
// the SHA-256 of every file (to prove a restore byte for byte) and the
// archives there now. Written to a .partial name first, so a disk that
// fills up leaves no half archive behind; a backup dir it created is
// removed again on failure. $1 dbpath, $2 backup dir.
const backupScript = `# nodefix: rpmdb backup
LC_ALL=C; export LC_ALL
db=$1; dir=$2
parent=$(dirname -- "$db"); base=$(basename -- "$db")
created=
[ -d "$dir" ] || created=1
fail() { rm -f -- "$tmp"; [ -n "$created" ] && rmdir -- "$dir" 2>/dev/null; exit "$1"; }
tmp=
mkdir -p -- "$dir" || fail 10
chmod 700 -- "$dir" || fail 10
ts=$(date -u +%Y%m%dT%H%M%SZ)
archive=$dir/rpmdb-$ts.tar.gz; n=0
while [ -e "$archive" ]; do n=$((n+1)); archive=$dir/rpmdb-$ts-$n.tar.gz; done
tmp=$archive.partial
tar -czf "$tmp" -C "$parent" -- "$base" || fail 11
gzip -t -- "$tmp" || fail 12
mv -- "$tmp" "$archive" || fail 13
echo "archive $archive"
cd -- "$parent" || exit 14
find "$base" -type f -exec sha256sum -- {} + | sed 's/^/sum /'
for a in "$dir"/rpmdb-*.tar.gz; do [ -f "$a" ] && echo "have $a"; done
exit 0
`

// envScript removes Berkeley DB environment files when (checked again
// now) no process maps them. $1 dbpath.
const envScript = `# nodefix: rpmdb remove environment
cd /proc || exit 1
users=$(grep -l -F -e "$1/__db." [0-9]*/maps 2>/dev/null)
if [ -n "$users" ]; then echo "in use by $users" >&2; exit 20; fi
for f in "$1"/__db.*; do
	[ -e "$f" ] || continue
	rm -f -- "$f" || exit 21
	echo "removed $f"
done
exit 0
`

// restoreScript puts the backup back: it extracts the archive into a
// staging directory inside the database directory (same file system, so
// the final moves are renames that need no space), checks it against the
// backup's checksums, empties the database directory but for the staging
// (the directory itself stays: it may be a mount point), moves the files
// in, and prints the checksums of the result. Rebuild directories rpm left
// since the backup are removed. $1 dbpath, $2 archive, $3 checksum list
// (sha256sum -c format, paths relative to the database's parent), then the
// leftover rebuild directories that were there before and stay.
const restoreScript = `# nodefix: rpmdb restore
LC_ALL=C; export LC_ALL
db=$1; archive=$2; sums=$3; shift 3
parent=$(dirname -- "$db"); base=$(basename -- "$db")
stage=$db/.nodefix-restore
gzip -t -- "$archive" || exit 30
for r in "$db"rebuilddb.*; do
	[ -d "$r" ] || continue
	keep=
	for k; do [ "$k" = "$r" ] && keep=1; done
	[ -n "$keep" ] || { rm -rf -- "$r" && echo "removed $r"; }
done
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

// repair backs up, rebuilds, verifies, and rolls back if needed.
func (t RPMDB) repair(ctx context.Context, node Node, cfg Config, f *dbFacts, before *rpmdbHealth, out Outcome) Outcome {
	fail := func(format string, args ...any) Outcome {
		out.Status = StatusFailed
		out.Msg = fmt.Sprintf(format, args...)
		return out
	}
	problems := strings.Join(before.Problems, "; ")

	// Space: the archive needs at most the database's size (gzip never
	// grows rpm databases by more than a few bytes per block), the rebuild
	// writes a second copy next to the database directory.
	res, err := run(ctx, node, cfg, script(spaceScript, f.dbpath, cfg.RPMBackupDir)...)
	if err != nil || res.ExitStatus != 0 {
		if err == nil {
			err = statusError("space check", res)
		}
		return fail("rpm database at %s needs a rebuild (%s) but measuring free space failed: %v; nothing was changed", f.dbpath, problems, err)
	}
	space := parseSpace(res.Stdout)
	needBackup, needRebuild := space.dbKB+1024, space.dbKB+1024
	if space.backupMount == space.rebuildMount {
		needBackup += needRebuild
	}
	if space.backupKB < needBackup {
		return fail("rpm database at %s needs a rebuild (%s) but %s has %d KiB free and the backup needs %d KiB; free space there or choose another --rpm-backup-dir; nothing was changed",
			f.dbpath, problems, cfg.RPMBackupDir, space.backupKB, needBackup)
	}
	if space.rebuildKB < needRebuild {
		return fail("rpm database at %s needs a rebuild (%s) but %s has %d KiB free and the rebuild needs %d KiB; nothing was changed",
			f.dbpath, problems, path.Dir(f.dbpath), space.rebuildKB, needRebuild)
	}

	// Backup. A failure here (a full disk) ends the repair with nothing
	// else done.
	res, err = run(ctx, node, cfg, script(backupScript, f.dbpath, cfg.RPMBackupDir)...)
	if err != nil {
		return fail("backing up the rpm database %s to %s: %v; nothing else was done", f.dbpath, cfg.RPMBackupDir, err)
	}
	if res.ExitStatus != 0 {
		return fail("backing up the rpm database %s to %s failed (%s); nothing else was done", f.dbpath, cfg.RPMBackupDir, firstLines(res.Stderr, 3))
	}
	backup := parseBackup(res.Stdout)
	if backup.Archive == "" || len(backup.Sums) == 0 {
		return fail("backing up the rpm database %s: the backup script reported no archive or no files; nothing else was done", f.dbpath)
	}
	out.Changed = true
	out.Details["backup"] = backup.Archive
	countBefore := len(before.Packages)
	baseline := before.Packages

	// Berkeley DB: remove the environment files. A process that died
	// holding a lock leaves them wedged (DB_RUNRECOVERY); rpm recreates
	// them. The records readable without them are the better baseline.
	if strings.HasPrefix(f.backend, "bdb") && len(f.staleEnv) > 0 {
		res, err := run(ctx, node, cfg, script(envScript, f.dbpath)...)
		if err != nil || res.ExitStatus != 0 {
			if err == nil {
				err = statusError("removing environment files", res)
			}
			return t.rollback(ctx, node, cfg, f, backup, space, countBefore, -1, out,
				fmt.Sprintf("removing the Berkeley DB environment files: %v", err))
		}
		out.Details["removed_env_files"] = f.staleEnv
		if again, err := checkHealth(ctx, node, cfg, f.snap.HaveTimeout); err == nil && len(again.Packages) > len(baseline) {
			baseline = again.Packages
			countBefore = len(baseline)
		}
	}
	out.Details["packages_before"] = countBefore

	// Rebuild, bounded on the node: a hung rebuild is ended there.
	res, timedOut, err := runBounded(ctx, node, f.snap.HaveTimeout, cfg.CommandTimeout, "rpm", "--rebuilddb")
	switch {
	case err != nil:
		return t.rollback(ctx, node, cfg, f, backup, space, countBefore, -1, out, fmt.Sprintf("rpm --rebuilddb: %v", err))
	case timedOut:
		return t.rollback(ctx, node, cfg, f, backup, space, countBefore, -1, out,
			fmt.Sprintf("rpm --rebuilddb did not finish within %s and was ended", cfg.CommandTimeout))
	case res.ExitStatus != 0:
		return t.rollback(ctx, node, cfg, f, backup, space, countBefore, -1, out, statusError("rpm --rebuilddb", res).Error())
	}

	after, err := checkHealth(ctx, node, cfg, f.snap.HaveTimeout)
	if err != nil {
		return t.rollback(ctx, node, cfg, f, backup, space, countBefore, -1, out, fmt.Sprintf("verifying the rebuilt database: %v", err))
	}
	countAfter := len(after.Packages)
	out.Details["packages_after"] = countAfter
	if !after.healthy() {
		return t.rollback(ctx, node, cfg, f, backup, space, countBefore, countAfter, out,
			"the rebuilt database does not verify: "+strings.Join(after.Problems, "; "))
	}
	if lost := missingRecords(baseline, after.Packages); len(lost) > 0 {
		return t.rollback(ctx, node, cfg, f, backup, space, countBefore, countAfter, out,
			fmt.Sprintf("the rebuild lost %d package %s (%s)", len(lost), plural(len(lost), "record", "records"), strings.Join(clipList(lost, 5), ", ")))
	}
	t.prune(ctx, node, cfg, backup, &out)
	out.Status = StatusChanged
	out.Msg = fmt.Sprintf("rebuilt the rpm database at %s (%s; was: %s): %d packages before, %d after, verifies clean; backup %s",
		f.dbpath, f.backend, problems, countBefore, countAfter, backup.Archive)
	return out
}

// rollback restores the backup after a failed rebuild and proves the
// database is byte for byte what it was. countAfter < 0: no count.
func (t RPMDB) rollback(ctx context.Context, node Node, cfg Config, f *dbFacts, backup *backupInfo, space spaceInfo, countBefore, countAfter int, out Outcome, why string) Outcome {
	out.Status = StatusFailed
	after := "no count"
	if countAfter >= 0 {
		after = strconv.Itoa(countAfter)
	}
	// A transaction that started since the backup would lose its work if
	// the backup went back over it.
	if snap, err := takeSnapshot(ctx, node, cfg); err == nil {
		if holders := transactionHolders(snap); len(holders) > 0 {
			out.Details["holders"] = holders
			out.Msg = fmt.Sprintf("%s; NOT restoring the backup %s because pid %d (%s) now holds the database (%s): restore by hand when it has finished (tar -xzf %s -C %s)",
				why, backup.Archive, holders[0].PID, holders[0].Command, holders[0].Why, backup.Archive, path.Dir(f.dbpath))
			return out
		}
	}
	var sums strings.Builder
	names := make([]string, 0, len(backup.Sums))
	for name := range backup.Sums {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&sums, "%s  %s\n", backup.Sums[name], name)
	}
	args := append([]string{f.dbpath, backup.Archive, sums.String()}, space.leftovers...)
	res, err := run(ctx, node, cfg, script(restoreScript, args...)...)
	if err != nil || res.ExitStatus != 0 {
		if err == nil {
			err = statusError("restore", res)
		}
		out.Msg = fmt.Sprintf("%s; RESTORING THE BACKUP FAILED: %v; the database at %s may be unusable: restore it by hand with tar -xzf %s -C %s",
			why, err, f.dbpath, backup.Archive, path.Dir(f.dbpath))
		return out
	}
	restored := parseBackup(res.Stdout).Sums
	if diff := sumsDiffer(backup.Sums, restored); diff != "" {
		out.Msg = fmt.Sprintf("%s; the restored database differs from the backup (%s): restore it by hand with tar -xzf %s -C %s",
			why, diff, backup.Archive, path.Dir(f.dbpath))
		return out
	}
	out.Details["restored"] = true
	t.prune(ctx, node, cfg, backup, &out)
	out.Msg = fmt.Sprintf("%s; restored the backup %s: the database at %s is byte for byte what it was (packages before: %d, after the rebuild: %s)",
		why, backup.Archive, f.dbpath, countBefore, after)
	return out
}

// prune keeps the newest cfg.RPMBackupKeep archives. A failure to prune
// is a warning: the repair itself stands.
func (RPMDB) prune(ctx context.Context, node Node, cfg Config, backup *backupInfo, out *Outcome) {
	archives := append([]string(nil), backup.Archives...)
	sort.Strings(archives) // timestamped names sort oldest first
	if len(archives) <= cfg.RPMBackupKeep {
		return
	}
	old := archives[:len(archives)-cfg.RPMBackupKeep]
	res, err := run(ctx, node, cfg, append([]string{"rm", "-f", "--"}, old...)...)
	if err == nil && res.ExitStatus != 0 {
		err = statusError("rm", res)
	}
	if err != nil {
		out.Warnings = append(out.Warnings, fmt.Sprintf("removing old rpm database backups: %v", err))
		return
	}
	out.Details["removed_backups"] = old
}

// spaceInfo is what spaceScript measured, in KiB.
type spaceInfo struct {
	dbKB, backupKB, rebuildKB int64
	backupMount, rebuildMount string
	leftovers                 []string
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
		case len(f) >= 2 && f[0] == "leftover":
			s.leftovers = append(s.leftovers, strings.TrimPrefix(line, "leftover "))
		}
	}
	return s
}

func parseBackup(stdout []byte) *backupInfo {
	b := &backupInfo{Sums: map[string]string{}}
	for _, line := range strings.Split(string(stdout), "\n") {
		switch {
		case strings.HasPrefix(line, "archive "):
			b.Archive = strings.TrimPrefix(line, "archive ")
		case strings.HasPrefix(line, "have "):
			b.Archives = append(b.Archives, strings.TrimPrefix(line, "have "))
		case strings.HasPrefix(line, "sum "):
			sum, name, ok := strings.Cut(strings.TrimPrefix(line, "sum "), "  ")
			if ok {
				b.Sums[name] = sum
			}
		}
	}
	return b
}

// sumsDiffer describes how two checksum lists differ, "" when equal.
func sumsDiffer(want, got map[string]string) string {
	var diffs []string
	for name, sum := range want {
		switch g, ok := got[name]; {
		case !ok:
			diffs = append(diffs, name+" missing")
		case g != sum:
			diffs = append(diffs, name+" changed")
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
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
