package rpmfixture

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nodefix/nodefix/tasks"
)

// run runs argv on node and insists on exit status 0.
func run(ctx context.Context, node tasks.Node, argv ...string) (tasks.Result, error) {
	res, err := node.Run(ctx, tasks.Command{Argv: argv})
	if err != nil {
		return res, err
	}
	if res.ExitStatus != 0 {
		return res, fmt.Errorf("%s: exit status %d: %s%s", strings.Join(argv[:min(len(argv), 3)], " "), res.ExitStatus,
			strings.TrimSpace(string(res.Stderr)), strings.TrimSpace(string(res.Stdout)))
	}
	return res, nil
}

// sh runs a fixed script with values as positional parameters.
func sh(ctx context.Context, node tasks.Node, script string, args ...string) (tasks.Result, error) {
	return run(ctx, node, append([]string{"sh", "-c", script, "sh"}, args...)...)
}

// seedScript builds n empty noarch packages PREFIX01..PREFIXnn with one
// rpmbuild run (subpackages of one spec, no files) in a scratch directory
// and records them in the node's rpm database with rpm -i --justdb
// --nodeps: real records, no files installed. $1 prefix, $2 n.
const seedScript = `set -e
prefix=$1; n=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
spec=$work/seed.spec
{
	printf 'Name: %s\nVersion: 1.0\nRelease: 1\nSummary: nodefix test package\nLicense: MIT\nBuildArch: noarch\n' "$prefix"
	printf '%%description\nnodefix test package\n'
	i=1
	while [ "$i" -le "$n" ]; do
		name=$(printf '%s%02d' "$prefix" "$i")
		printf '%%package -n %s\nSummary: nodefix test package %d\n%%description -n %s\nt\n%%files -n %s\n' "$name" "$i" "$name" "$name"
		i=$((i+1))
	done
} > "$spec"
rpmbuild -bb --quiet --define "_topdir $work/top" "$spec" >/dev/null
rpm -i --justdb --nodeps "$work"/top/RPMS/noarch/"$prefix"[0-9]*.rpm 2>/dev/null
`

// Seed records n real packages named prefix01…prefixNN in the node's rpm
// database (its default %{_dbpath}) and returns their names.
func Seed(ctx context.Context, node tasks.Node, prefix string, n int) ([]string, error) {
	if _, err := sh(ctx, node, seedScript, prefix, strconv.Itoa(n)); err != nil {
		return nil, fmt.Errorf("seeding %d packages: %w", n, err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%02d", prefix, i+1)
	}
	return names, nil
}

// Packages returns the node's rpm -qa, one NAME per record, and rpm's
// exit status and stderr.
func Packages(ctx context.Context, node tasks.Node) ([]string, tasks.Result, error) {
	res, err := node.Run(ctx, tasks.Command{Argv: []string{"rpm", "-qa", "--qf", "%{NAME}\n"}})
	if err != nil {
		return nil, res, err
	}
	return strings.Fields(string(res.Stdout)), res, nil
}

// corruptScript (python3, run on the node) damages the rpm sqlite
// database the way a torn write does, in an index rather than in the
// package records: it overwrites the cell-pointer array of the Name index's
// root b-tree page (found through sqlite_master, so it does not depend on
// the layout) with 0xFF bytes. Afterwards `rpm --verifydb` fails ("Offset
// 65535 out of range"), `rpm -qa` still reads every record, and `rpm -q
// NAME` answers "package NAME is not installed" for a package that is:
// the lie a broken database tells Longhorn's dependency check. A rebuild
// recreates the index from the records and loses nothing.
const corruptScript = `
import sqlite3, sys
db = sys.argv[1] + "/rpmdb.sqlite"
c = sqlite3.connect(db)
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
page_size = c.execute("PRAGMA page_size").fetchone()[0]
root = c.execute("SELECT rootpage FROM sqlite_master WHERE name = 'Name_key_idx'").fetchone()[0]
c.close()
with open(db, "r+b") as f:
    f.seek((root - 1) * page_size)
    kind = f.read(1)[0]
    header = 8 if kind in (10, 13) else 12
    f.seek((root - 1) * page_size + header)
    f.write(b"\xff" * 16)
print(root)
`

// CorruptIndex corrupts the node's sqlite rpm database at dbpath (see
// corruptScript) and returns the damaged page number.
func CorruptIndex(ctx context.Context, node tasks.Node, dbpath string) (int, error) {
	res, err := run(ctx, node, "python3", "-c", corruptScript, dbpath)
	if err != nil {
		return 0, fmt.Errorf("corrupting %s: %w", dbpath, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
}

// lossyShim is FAULT INJECTION, not a real rpm fault: an rpm wrapper that
// runs the real rpm for everything, and after a successful --rebuilddb
// erases the records of the first $DROP packages (rpm -e --justdb: the
// database stays valid and verifies, it just holds fewer packages). It
// stands for a rebuild that silently loses records, which a real rpm does
// on damaged Berkeley DB pages; rpmdb must notice and roll back.
const lossyShim = `#!/bin/sh
# nodefix test fault injection: rpm --rebuilddb that loses records.
real=%s
drop=%d
case " $* " in
*" --rebuilddb "*)
	"$real" "$@" || exit $?
	victims=$("$real" -qa --qf '%%{NAME}\n' | sort | head -n "$drop")
	[ -z "$victims" ] || "$real" -e --justdb --nodeps --noscripts $victims >/dev/null 2>&1
	exit 0
	;;
esac
exec "$real" "$@"
`

// InstallLossyRebuild installs the lossyShim as dir/rpm (dir must come
// before the real rpm on the node's PATH: /usr/local/sbin in a Sandbox,
// /usr/sbin on a fleet node) so that `rpm --rebuilddb` drops the first
// drop package records. It returns the real rpm's path.
func InstallLossyRebuild(ctx context.Context, node tasks.Node, dir string, drop int) (string, error) {
	res, err := sh(ctx, node, `command -v rpm`)
	if err != nil {
		return "", fmt.Errorf("finding rpm: %w", err)
	}
	real := strings.TrimSpace(string(res.Stdout))
	if strings.HasPrefix(real, dir+"/") {
		return "", fmt.Errorf("rpm on PATH is already %s", real)
	}
	body := fmt.Sprintf(lossyShim, real, drop)
	if _, err := node.Run(ctx, tasks.Command{Argv: []string{"sh", "-c", `cat > "$1/rpm" && chmod 755 "$1/rpm"`, "sh", dir}, Stdin: []byte(body)}); err != nil {
		return "", fmt.Errorf("installing the lossy rebuild shim: %w", err)
	}
	return real, nil
}

// startScript starts "$@" detached (stdio on /dev/null, its own session)
// with argv[0] shown as $1 when $1 is not empty, and prints its pid. bash's
// exec -a sets argv[0]; the pid printed is the program's own, because
// setsid and bash exec into it.
const startScript = `name=$1; shift
if [ -n "$name" ]; then
	setsid bash -c 'n=$1; shift; exec -a "$n" "$@"' bash "$name" "$@" </dev/null >/dev/null 2>&1 &
else
	setsid "$@" </dev/null >/dev/null 2>&1 &
fi
echo $!
`

// Start starts argv detached on the node, shown in the process table with
// argv[0] = name when name is not empty (`Start(ctx, n, "dnf", "sleep",
// "600")` is a process named dnf), and returns its pid.
func Start(ctx context.Context, node tasks.Node, name string, argv ...string) (int, error) {
	res, err := sh(ctx, node, startScript, append([]string{name}, argv...)...)
	if err != nil {
		return 0, fmt.Errorf("starting %v: %w", argv, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
}

// StartIgnoringTERM starts argv with SIGTERM ignored (the disposition
// survives exec, and rpm -q keeps it): a query that only SIGKILL ends.
func StartIgnoringTERM(ctx context.Context, node tasks.Node, argv ...string) (int, error) {
	return Start(ctx, node, "", append([]string{"bash", "-c", `trap '' TERM; exec "$@"`, "bash"}, argv...)...)
}

// holdScript (python3) takes sqlite's exclusive lock on the rpm database
// and keeps it: locking_mode=EXCLUSIVE makes sqlite keep the lock on the
// database file itself after the first read, so even WAL readers get
// SQLITE_BUSY, and rpm's busy handler makes every rpm that opens the
// database wait, indefinitely: rpm -q hangs, rpm -i hangs before it can
// take its transaction lock.
const holdScript = `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1] + "/rpmdb.sqlite", isolation_level=None)
c.execute("PRAGMA locking_mode=EXCLUSIVE")
c.execute("BEGIN EXCLUSIVE")
c.execute("SELECT count(*) FROM Packages").fetchall()
while True:
    time.sleep(3600)
`

// waitLockScript waits until pid $1 shows in /proc/locks.
const waitLockScript = `i=0
while [ "$i" -lt 100 ]; do
	grep -q " $1 " /proc/locks && exit 0
	sleep 0.1; i=$((i+1))
done
echo "pid $1 took no lock in 10s" >&2
exit 1
`

// HoldDBLock starts a python3 process holding sqlite's exclusive lock on
// the rpm database at dbpath (see holdScript), waits until the lock shows
// in /proc/locks, and returns its pid. Every rpm started afterwards hangs.
func HoldDBLock(ctx context.Context, node tasks.Node, dbpath string) (int, error) {
	pid, err := Start(ctx, node, "", "python3", "-c", holdScript, dbpath)
	if err != nil {
		return 0, err
	}
	if _, err := sh(ctx, node, waitLockScript, strconv.Itoa(pid)); err != nil {
		return 0, fmt.Errorf("holding the rpm database lock: %w", err)
	}
	return pid, nil
}

// slowScript builds a package whose %pre scriptlet sleeps: rpm -i of it is a
// real transaction that holds rpm's transaction lock (.rpm.lock, a POSIX
// write lock in /proc/locks) for as long as the scriptlet runs.
const slowScript = `set -e
name=$1; secs=$2
work=$(mktemp -d)
printf 'Name: %s\nVersion: 1.0\nRelease: 1\nSummary: slow\nLicense: MIT\nBuildArch: noarch\n%%description\nslow\n%%pre\nsleep %s\n%%files\n' "$name" "$secs" > "$work/slow.spec"
rpmbuild -bb --quiet --define "_topdir $work/top" "$work/slow.spec" >/dev/null
echo "$work/top/RPMS/noarch/$name-1.0-1.noarch.rpm"
`

// StartTransaction builds a package named name whose %pre sleeps secs and
// starts `rpm -i --nodeps` of it detached, returning rpm's pid. If the
// database is free, the transaction takes .rpm.lock and holds it while
// the scriptlet sleeps; behind a HoldDBLock it waits to open the database.
// Use WaitTransactionLock to know it holds the lock.
func StartTransaction(ctx context.Context, node tasks.Node, name string, secs int) (int, error) {
	res, err := sh(ctx, node, slowScript, name, strconv.Itoa(secs))
	if err != nil {
		return 0, fmt.Errorf("building %s: %w", name, err)
	}
	return Start(ctx, node, "", "rpm", "-i", "--nodeps", strings.TrimSpace(string(res.Stdout)))
}

// WaitTransactionLock waits until pid holds a lock in /proc/locks (for a
// transaction: .rpm.lock).
func WaitTransactionLock(ctx context.Context, node tasks.Node, pid int) error {
	_, err := sh(ctx, node, waitLockScript, strconv.Itoa(pid))
	return err
}

// Alive reports which of pids are still running on the node (zombies
// count as gone).
func Alive(ctx context.Context, node tasks.Node, pids ...int) (map[int]bool, error) {
	args := make([]string, len(pids))
	for i, p := range pids {
		args[i] = strconv.Itoa(p)
	}
	res, err := sh(ctx, node, `for p; do
	s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
	case "${s##*) }" in Z*|X*) continue;; esac
	echo "$p"
done`, args...)
	if err != nil {
		return nil, err
	}
	alive := map[int]bool{}
	for _, f := range strings.Fields(string(res.Stdout)) {
		p, _ := strconv.Atoi(f)
		alive[p] = true
	}
	return alive, nil
}
