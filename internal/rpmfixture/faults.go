// Package rpmfixture makes real rpm faults on a test node, beyond those
// internal/testfleet seeds itself: many real package records, a database
// corrupted in an index only (records intact), a rebuild that loses
// records or hangs (fault injection through an rpm wrapper, labelled as
// such), a query that ignores SIGTERM, and a backup directory on a full
// file system. Every helper works through tasks.Node, so it runs on a
// fleet node (testfleet.Node implements tasks.Node) or any other node.
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
const corruptScript = sqliteOpen + `
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
	return damage(ctx, node, "corrupting", corruptScript, dbpath)
}

// sqliteOpen starts the damage scripts: it folds sqlite's write-ahead log
// into the database file (so the bytes they change are the ones read) and
// learns the page size. The script gets dbpath as its argument.
const sqliteOpen = `
import sqlite3, struct, sys
db = sys.argv[1] + "/rpmdb.sqlite"
c = sqlite3.connect(db)
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
page_size = c.execute("PRAGMA page_size").fetchone()[0]
`

// damage runs a python3 damage script on the database at dbpath and
// returns the page number it prints.
func damage(ctx context.Context, node tasks.Node, what, script, dbpath string) (int, error) {
	res, err := run(ctx, node, "python3", "-c", script, dbpath)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", what, dbpath, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
}

// leakScript (python3, run on the node) leaks a page of the rpm sqlite
// database, as a crash between growing the file and linking the new page
// does: it appends a zeroed page and counts it in the header's page count.
// `rpm --verifydb` then fails ("Page N is never used") while every record
// reads and transactions still write: damage that leaves the database
// writable, unlike a broken index. A rebuild drops the page.
const leakScript = sqliteOpen + `
pages = c.execute("PRAGMA page_count").fetchone()[0]
c.close()
with open(db, "r+b") as f:
    f.seek(28)
    f.write(struct.pack(">I", pages + 1))
    f.seek(pages * page_size)
    f.write(b"\0" * page_size)
print(pages + 1)
`

// LeakPage leaks a page of the node's sqlite rpm database at dbpath (see
// leakScript) and returns the leaked page's number.
func LeakPage(ctx context.Context, node tasks.Node, dbpath string) (int, error) {
	return damage(ctx, node, "leaking a page of", leakScript, dbpath)
}

// lossyShim is FAULT INJECTION, not a real rpm fault: an rpm wrapper that
// runs the real rpm for everything, and after a successful --rebuilddb
// erases, in the database it rebuilt (rpm's own or --dbpath's), the
// records of the first $DROP packages (rpm -e --justdb: the
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
	db=; prev=
	for a; do
		[ "$prev" = --dbpath ] && db=$a
		prev=$a
	done
	set --
	[ -n "$db" ] && set -- --dbpath "$db"
	victims=$("$real" "$@" -qa --qf '%{NAME}\n' | sort | head -n "$drop")
	[ -z "$victims" ] || "$real" "$@" -e --justdb --nodeps --noscripts $victims >/dev/null 2>&1
	exit 0
	;;
esac
exec "$real" "$@"
`

// InstallLossyRebuild installs the lossyShim as dir/rpm (dir must come
// before the real rpm on the node's PATH: /usr/local/sbin on a fleet
// node, whose /usr is its own overlay) so that `rpm --rebuilddb` drops the first
// drop package records. It returns the real rpm's path.
func InstallLossyRebuild(ctx context.Context, node tasks.Node, dir string, drop int) (string, error) {
	return installShim(ctx, node, dir, strings.ReplaceAll(lossyShim, "%d", strconv.Itoa(drop)))
}

// installShim writes an rpm wrapper (body with %s for the real rpm's
// path) to dir/rpm.
func installShim(ctx context.Context, node tasks.Node, dir, body string) (string, error) {
	res, err := sh(ctx, node, `command -v rpm`)
	if err != nil {
		return "", fmt.Errorf("finding rpm: %w", err)
	}
	real := strings.TrimSpace(string(res.Stdout))
	if strings.HasPrefix(real, dir+"/") {
		return "", fmt.Errorf("rpm on PATH is already the shim %s", real)
	}
	body = strings.Replace(body, "%s", real, 1)
	res, err = node.Run(ctx, tasks.Command{Argv: []string{"sh", "-c", `mkdir -p -- "$1" && cat > "$1/rpm" && chmod 755 "$1/rpm" && command -v rpm`, "sh", dir}, Stdin: []byte(body)})
	if err == nil && res.ExitStatus != 0 {
		err = fmt.Errorf("exit status %d: %s", res.ExitStatus, res.Stderr)
	}
	if err != nil {
		return "", fmt.Errorf("installing an rpm shim in %s: %w", dir, err)
	}
	if got := strings.TrimSpace(string(res.Stdout)); got != dir+"/rpm" {
		return "", fmt.Errorf("installed %s/rpm but rpm on PATH is %s: %s must come first", dir, got, dir)
	}
	return real, nil
}

// hungShim is FAULT INJECTION: an rpm wrapper whose --rebuilddb never
// finishes (it sleeps in place of rpm), standing for a rebuild wedged on
// a lock or a dying disk. Every other rpm command runs the real rpm.
const hungShim = `#!/bin/sh
# nodefix test fault injection: rpm --rebuilddb that hangs.
real=%s
case " $* " in
*" --rebuilddb "*) exec sleep 86400 ;;
esac
exec "$real" "$@"
`

// InstallHungRebuild installs hungShim as dir/rpm (see
// InstallLossyRebuild for dir) and returns the real rpm's path.
func InstallHungRebuild(ctx context.Context, node tasks.Node, dir string) (string, error) {
	return installShim(ctx, node, dir, hungShim)
}

// RemoveShim removes dir/rpm again.
func RemoveShim(ctx context.Context, node tasks.Node, dir string) error {
	_, err := sh(ctx, node, `rm -f -- "$1/rpm"`, dir)
	return err
}

// IgnoringTERM returns argv wrapped so that it runs with SIGTERM ignored:
// the disposition survives exec, and rpm -q keeps it (measured with rpm
// 4.18), so only SIGKILL ends such a query. Start it with the node's own
// process starter (testfleet's Node.StartProcess).
func IgnoringTERM(argv ...string) []string {
	return append([]string{"bash", "-c", `trap '' TERM; exec "$@"`, "bash"}, argv...)
}

// MountFull mounts a tmpfs at dir inside the node's mount namespace with
// room for inodes files and directories, dir itself included, and 64 MiB
// of blocks: df shows plenty free, yet creating one entry more fails with
// ENOSPC, "No space left on device", as on a file system that filled up.
// With inodes 1 nothing can be created in dir; with 2, one directory.
func MountFull(ctx context.Context, node tasks.Node, dir string, inodes int) error {
	_, err := sh(ctx, node, `mkdir -p -- "$1" && mount -t tmpfs -o "size=64m,nr_inodes=$2,mode=755" nodefix-full "$1"`, dir, strconv.Itoa(inodes))
	if err != nil {
		return fmt.Errorf("mounting a full file system at %s: %w", dir, err)
	}
	return nil
}

// Sums returns the SHA-256 of every file under dir on the node, keyed by
// path relative to dir: equal maps mean byte-for-byte equal trees.
func Sums(ctx context.Context, node tasks.Node, dir string) (map[string]string, error) {
	res, err := sh(ctx, node, `cd -- "$1" && find . -type f -exec sha256sum -- {} +`, dir)
	if err != nil {
		return nil, fmt.Errorf("checksumming %s: %w", dir, err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if sum, name, ok := strings.Cut(line, "  "); ok {
			sums[strings.TrimPrefix(name, "./")] = sum
		}
	}
	return sums, nil
}

// Files lists the names in dir on the node; exists is false when dir does
// not exist.
func Files(ctx context.Context, node tasks.Node, dir string) (names []string, exists bool, err error) {
	res, err := sh(ctx, node, `[ -d "$1" ] || exit 0; echo dir; ls -A -- "$1"`, dir)
	if err != nil {
		return nil, false, err
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) == 0 {
		return nil, false, nil
	}
	return f[1:], true, nil
}

// failingLiveVerifyShim is FAULT INJECTION: an rpm wrapper under which,
// once a --rebuilddb has run, `rpm --verifydb` of the node's own database
// (no --dbpath) fails. It makes a repair whose rebuilt copy verified fail
// after installing it, so that the real restore of the backup runs.
const failingLiveVerifyShim = `#!/bin/sh
# nodefix test fault injection: the live database fails to verify after a rebuild.
real=%s
mark=/run/nodefix-fault-rebuilt
case " $* " in
*" --rebuilddb "*)
	"$real" "$@" || exit $?
	: > "$mark"
	exit 0
	;;
*" --dbpath "*) ;;
*" --verifydb "*)
	if [ -e "$mark" ]; then
		echo "error: verify: injected fault (nodefix test)" >&2
		exit 1
	fi
	;;
esac
exec "$real" "$@"
`

// InstallFailingLiveVerify installs failingLiveVerifyShim as dir/rpm (see
// InstallLossyRebuild for dir) and returns the real rpm's path.
func InstallFailingLiveVerify(ctx context.Context, node tasks.Node, dir string) (string, error) {
	return installShim(ctx, node, dir, failingLiveVerifyShim)
}

// buildScript builds an empty noarch package NAME-1.0-1 with rpmbuild
// and copies it to a directory. $1 name, $2 directory.
const buildScript = `set -e
name=$1; out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'Name: %s\nVersion: 1.0\nRelease: 1\nSummary: nodefix test package\nLicense: MIT\nBuildArch: noarch\n%%description\nnodefix test package\n%%files\n' "$name" > "$work/p.spec"
rpmbuild -bb --quiet --define "_topdir $work/top" "$work/p.spec" >/dev/null
mkdir -p -- "$out"
cp -- "$work/top/RPMS/noarch/$name-1.0-1.noarch.rpm" "$out/"
echo "$out/$name-1.0-1.noarch.rpm"
`

// BuildPackage builds a real, empty package named name on the node into
// dir and returns the package file's path.
func BuildPackage(ctx context.Context, node tasks.Node, name, dir string) (string, error) {
	res, err := sh(ctx, node, buildScript, name, dir)
	if err != nil {
		return "", fmt.Errorf("building package %s: %w", name, err)
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// transactionDuringRebuildShim is FAULT INJECTION of timing only: an rpm
// wrapper whose first --rebuilddb, once the real rebuild succeeded,
// installs a package file into the node's own database with the real rpm
// (-i --justdb): a dnf transaction that started and ended while rpmdb
// rebuilt its copy, leaving no holder behind, only its record. Every
// other rpm command runs the real rpm.
const transactionDuringRebuildShim = `#!/bin/sh
# nodefix test fault injection: a transaction that runs during a rebuild.
real=%s
mark=/run/nodefix-fault-transaction-done
case " $* " in
*" --rebuilddb "*)
	"$real" "$@" || exit $?
	if [ ! -e "$mark" ]; then
		: > "$mark"
		out=$("$real" -i --justdb --nodeps "$NODEFIX_FAULT_PACKAGE" 2>&1) || {
			printf 'nodefix test fault injection: the transaction failed: %s\n' "$out" >&2
			exit 1
		}
	fi
	exit 0
	;;
esac
exec "$real" "$@"
`

// InstallTransactionDuringRebuild installs transactionDuringRebuildShim
// as dir/rpm (see InstallLossyRebuild for dir); the transaction installs
// the package file pkg. It returns the real rpm's path.
func InstallTransactionDuringRebuild(ctx context.Context, node tasks.Node, dir, pkg string) (string, error) {
	quoted := "'" + strings.ReplaceAll(pkg, "'", `'\''`) + "'"
	return installShim(ctx, node, dir, strings.Replace(transactionDuringRebuildShim, `"$NODEFIX_FAULT_PACKAGE"`, quoted, 1))
}
