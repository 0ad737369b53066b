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

// prepareScript copies the database into a new work directory beside it
// and, for Berkeley DB ($2 = bdb), removes the environment files __db.*
// from the copy: a process that died holding a lock leaves them wedged
// (DB_RUNRECOVERY) and rpm recreates them. $1 dbpath.
const prepareScript = `db=$1; parent=$(dirname -- "$db")
work=$(mktemp -d "$parent/.nodefix-rpmdb.XXXXXX") || exit 40
cp -a -- "$db" "$work/db" || { rm -rf -- "$work"; exit 41; }
rm -rf -- "$work/db"/.nodefix-*
if [ "$2" = bdb ]; then
	for f in "$work/db"/__db.*; do [ -e "$f" ] && rm -f -- "$f" && echo "removed ${f##*/}"; done
fi
echo "work $work"
`

// installScript makes the database directory hold exactly the rebuilt
// files: it removes what the rebuild did not produce (an old -wal, stale
// __db.* files) except the transaction lock file, then moves each rebuilt
// file in (a rename on the same file system, atomic per file). The
// directory itself stays: it may be a mount point. $1 dbpath, $2 work dir.
const installScript = `db=$1; new=$2/db
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
exit 0
`

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
// relative to the database's parent).
const restoreScript = `LC_ALL=C; export LC_ALL
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
}

// repair backs up, rebuilds a copy, verifies, installs, and rolls back if
// needed.
func (t RPMDB) repair(ctx context.Context, node Node, cfg Config, f *dbFacts, before *rpmdbHealth, out Outcome) Outcome {
	r := &repairRun{node: node, cfg: cfg, f: f, out: out, problems: strings.Join(before.Problems, "; "),
		baseline: before.Packages, countAfter: -1}
	if o, ok := r.checkSpace(ctx); !ok {
		return o
	}
	if o, ok := r.takeBackup(ctx); !ok {
		return o
	}
	defer r.cleanup(ctx)

	res, err := runScript(ctx, node, cfg.CommandTimeout, "rpmdb-prepare", prepareScript, f.dbpath, bdbOrEmpty(f.backend))
	if err == nil && res.ExitStatus != 0 {
		err = statusError("copy script", res)
	}
	if err != nil {
		return r.discard(ctx, fmt.Sprintf("copying the database for the rebuild: %v", err))
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if w, ok := strings.CutPrefix(line, "work "); ok {
			r.work = w
		}
	}
	if r.work == "" {
		return r.discard(ctx, "copying the database for the rebuild: no work directory reported")
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
	res, err = runScript(ctx, node, cfg.CommandTimeout, "rpmdb-install", installScript, f.dbpath, r.work)
	if err == nil && res.ExitStatus != 0 {
		err = statusError("install script", res)
	}
	if err != nil {
		return r.rollback(ctx, fmt.Sprintf("installing the rebuilt database: %v", err))
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

func bdbOrEmpty(backend string) string {
	if strings.HasPrefix(backend, "bdb") {
		return "bdb"
	}
	return ""
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
	res, err := runScript(ctx, r.node, r.cfg.CommandTimeout, "rpmdb-backup", backupScript, r.f.dbpath, r.cfg.RPMBackupDir)
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
	case sumsDiffer(r.backup.Sums, sums, "-shm") != "":
		proof = fmt.Sprintf("the database at %s changed since the backup (%s) though the repair did not write to it", r.f.dbpath, sumsDiffer(r.backup.Sums, sums, "-shm"))
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
	var sums strings.Builder
	names := make([]string, 0, len(r.backup.Sums))
	for name := range r.backup.Sums {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&sums, "%s  %s\n", r.backup.Sums[name], name)
	}
	res, err := runScript(ctx, r.node, r.cfg.CommandTimeout, "rpmdb-restore", restoreScript, r.f.dbpath, r.backup.Archive, sums.String())
	if err == nil && res.ExitStatus != 0 {
		err = statusError("restore", res)
	}
	if err != nil {
		r.out.Msg = fmt.Sprintf("%s; RESTORING THE BACKUP FAILED: %v; the database at %s may be unusable: empty it and restore by hand with %s",
			why, err, r.f.dbpath, restoreBy)
		return r.out
	}
	if diff := sumsDiffer(r.backup.Sums, parseBackup(res.Stdout).Sums, ""); diff != "" {
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
	if r.work == "" {
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

// sumsDiffer describes how two checksum lists differ, "" when equal;
// files whose name ends in ignoreSuffix (when not empty) are not compared.
func sumsDiffer(want, got map[string]string, ignoreSuffix string) string {
	ignored := func(name string) bool { return ignoreSuffix != "" && strings.HasSuffix(name, ignoreSuffix) }
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
