package testfleet

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Faults are seeded from real processes and files inside a node, the way
// the incidents produced them; nothing here prints text a test expects.

// SetHostname gives the node a new kernel hostname and /etc/hostname, and
// an /etc/hosts as an image built with that name would carry: the NFS
// incident is every node called "localhost".
func (n *Node) SetHostname(ctx context.Context, name string) error {
	_, err := n.Sh(ctx, `hostname "$1" && printf '%s\n' "$1" >/etc/hostname && printf '%s' "$2" >/etc/hosts`, name, debianHosts(name))
	return err
}

// Hostname returns the node's kernel hostname.
func (n *Node) Hostname(ctx context.Context) (string, error) {
	out, err := n.Sh(ctx, "cat /proc/sys/kernel/hostname")
	return strings.TrimSpace(out), err
}

// SetMachineID writes /etc/machine-id (a cloned VM image shares it).
func (n *Node) SetMachineID(ctx context.Context, id string) error {
	_, err := n.Sh(ctx, `printf '%s\n' "$1" >/etc/machine-id`, id)
	return err
}

// SetInitiatorName writes the node's iSCSI initiator name.
func (n *Node) SetInitiatorName(ctx context.Context, iqn string) error {
	_, err := n.Sh(ctx, `mkdir -p /etc/iscsi && printf 'InitiatorName=%s\n' "$1" >/etc/iscsi/initiatorname.iscsi`, iqn)
	return err
}

// StartProcess starts argv in the background inside the node, detached
// from any session the way a daemon's child is, and returns its pid as the
// node sees it. The node's init reaps it when it exits.
func (n *Node) StartProcess(ctx context.Context, argv ...string) (int, error) {
	out, err := n.Sh(ctx, `"$@" </dev/null >/dev/null 2>&1 & echo $!`, argv...)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return 0, fmt.Errorf("on %s: starting %q: no pid in %q", n.Name, argv, out)
	}
	return pid, nil
}

// ProcessAlive reports whether pid (as the node sees it) runs and is not
// a zombie.
func (n *Node) ProcessAlive(ctx context.Context, pid int) (bool, error) {
	out, err := n.Sh(ctx, `s=$(cat /proc/"$1"/stat 2>/dev/null) || exit 0; s=${s##*) }; echo "${s%% *}"`, strconv.Itoa(pid))
	if err != nil {
		return false, err
	}
	state := strings.TrimSpace(out)
	return state != "" && state != "Z" && state != "X", nil
}

// rpmLockScript holds an exclusive lock on the node's rpm database, as a
// wedged process would: in WAL mode only an exclusive locking mode keeps
// readers out, and rpm's sqlite backend then waits for it forever.
const rpmLockScript = `import sqlite3, time
db = sqlite3.connect("/var/lib/rpm/rpmdb.sqlite", isolation_level=None, timeout=30)
db.execute("PRAGMA locking_mode=EXCLUSIVE")
db.execute("BEGIN EXCLUSIVE")
db.execute("SELECT count(*) FROM Packages").fetchall()
time.sleep(86400)
`

// HoldRPMDBLock starts a process (python3, an "unknown" holder as far as
// rpm tooling can tell) that locks the rpm database so that every rpm
// process started afterwards blocks: queries, and transactions too, which
// open the database before they take the transaction lock. It returns
// once the lock is held. It cannot lock a database that a running
// transaction (StartRPMTransaction) reads.
func (n *Node) HoldRPMDBLock(ctx context.Context) (int, error) {
	pid, err := n.StartProcess(ctx, "python3", "-c", rpmLockScript)
	if err != nil {
		return 0, err
	}
	return pid, n.waitLock(ctx, pid, "/var/lib/rpm/rpmdb.sqlite")
}

// StartRPMTransaction installs a package whose %pre scriptlet sleeps: a
// real rpm transaction that holds the transaction lock (.rpm.lock). It
// returns the rpm process's pid once the lock is held. With the database
// locked (HoldRPMDBLock) it would wait like any query and never take the
// lock: start such a blocked install with StartProcess("rpm", "-i",
// "--nodeps", fleet.SlowInstallRPM) instead.
func (n *Node) StartRPMTransaction(ctx context.Context, fleet *Fleet) (int, error) {
	pid, err := n.StartProcess(ctx, "rpm", "-i", "--nodeps", fleet.SlowInstallRPM)
	if err != nil {
		return 0, err
	}
	return pid, n.waitLock(ctx, pid, "/var/lib/rpm/.rpm.lock")
}

// waitLock waits until pid holds a POSIX write lock on path (per
// /proc/locks, whose pids the node sees in its own namespace).
func (n *Node) waitLock(ctx context.Context, pid int, path string) error {
	return n.waitLockMode(ctx, pid, path, "WRITE")
}

func (n *Node) waitLockMode(ctx context.Context, pid int, path, mode string) error {
	script := `ino=$(stat -c %i "$2") || exit 1
while read -r _ _ _ mode p dev_ino _; do
	[ "$mode" = "$3" ] && [ "$p" = "$1" ] && [ "${dev_ino##*:}" = "$ino" ] && exit 0
done </proc/locks
exit 3`
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := n.Sh(ctx, script, strconv.Itoa(pid), path, mode)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			alive, _ := n.ProcessAlive(ctx, pid)
			return fmt.Errorf("on %s: pid %d (alive: %v) holds no %s lock on %s after 10s", n.Name, pid, alive, mode, path)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Wedge is the process chain of a wedged rpm database (see WedgeRPMDB).
type Wedge struct {
	// ReaderPID is the hung rpm query holding the database's shared lock.
	ReaderPID int
	// WriterPID is the rpm transaction waiting for the exclusive lock.
	WriterPID int
}

// WedgeRPMDB wedges the node's rpm database the way a stuck query does,
// with rpm processes only:
//
//  1. the database is put in sqlite's rollback-journal mode (as a
//     database last written without WAL is), where readers and writers
//     exclude each other;
//  2. a query (`rpm -qa` with a wide --qf) whose output nobody reads
//     blocks writing to its pipe while it holds the shared lock — the
//     hung query;
//  3. a transaction (`rpm -i --justdb --replacepkgs` of PendingUpdateRPM,
//     so that it waits again once an earlier wedge has installed it) takes the
//     transaction lock and sqlite's pending lock, and waits for the
//     reader;
//  4. from then on every new rpm query waits behind the pending lock:
//     start them with StartRPMQueries.
//
// Ending the hung reader (SIGTERM, or SIGKILL: sqlite survives it) lets
// the transaction finish and every waiting query answer.
func (n *Node) WedgeRPMDB(ctx context.Context, fleet *Fleet) (Wedge, error) {
	if _, err := n.Sh(ctx, `python3 -c 'import sqlite3; db = sqlite3.connect("/var/lib/rpm/rpmdb.sqlite"); db.execute("PRAGMA journal_mode=DELETE").fetchall(); db.close()'`); err != nil {
		return Wedge{}, err
	}
	var w Wedge
	// The reader's output goes to a consumer that never reads it.
	// A wedge seeded before (and healed since) leaves its fifo and the
	// consumer behind: replace both, so that seeding repeats (make bench).
	out, err := n.Sh(ctx, `[ -f /run/nodefix-wedge.pid ] && kill "$(cat /run/nodefix-wedge.pid)" 2>/dev/null
rm -f /run/nodefix-wedge && mkfifo /run/nodefix-wedge
sleep 86400 </run/nodefix-wedge >/dev/null 2>&1 &
echo $! >/run/nodefix-wedge.pid
rpm -qa --qf '%{NAME}%-70000{VERSION}
' >/run/nodefix-wedge 2>/dev/null </dev/null &
echo $!`)
	if err != nil {
		return Wedge{}, err
	}
	if w.ReaderPID, err = strconv.Atoi(strings.TrimSpace(out)); err != nil {
		return Wedge{}, fmt.Errorf("on %s: wedge reader pid %q", n.Name, out)
	}
	if err := n.waitLockMode(ctx, w.ReaderPID, "/var/lib/rpm/rpmdb.sqlite", "READ"); err != nil {
		return w, err
	}
	if w.WriterPID, err = n.StartProcess(ctx, "rpm", "-i", "--justdb", "--nodeps", "--replacepkgs", fleet.PendingUpdateRPM); err != nil {
		return w, err
	}
	return w, n.waitLock(ctx, w.WriterPID, "/var/lib/rpm/.rpm.lock")
}

// RPMQueryForms are the ways rpm queries run on a Longhorn node: plain,
// through nsenter as longhorn-manager runs them, and under timeout.
var RPMQueryForms = [][]string{
	{"rpm", "-q", "iscsi-initiator-utils"},
	{"nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid", "--", "rpm", "-q", "iscsi-initiator-utils"},
	{"timeout", "86400", "rpm", "-q", "--whatprovides", "iscsiadm"},
	{"/usr/bin/rpm", "-qa"},
}

// StartRPMQueries starts count real rpm queries, cycling through
// RPMQueryForms. With the database locked (HoldRPMDBLock) they hang.
func (n *Node) StartRPMQueries(ctx context.Context, count int) ([]int, error) {
	var pids []int
	for i := 0; i < count; i++ {
		pid, err := n.StartProcess(ctx, RPMQueryForms[i%len(RPMQueryForms)]...)
		if err != nil {
			return pids, err
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// dnfLookalike stands in for dnf: like the real one it is a python script
// at /usr/bin/dnf, so the process table shows "/usr/bin/python3
// /usr/bin/dnf …" with comm "dnf". It only sleeps.
const dnfLookalike = "#!/usr/bin/python3\n# nodefix test fleet: a process that looks like dnf and must never be killed\nimport time\ntime.sleep(86400)\n"

// StartDNF starts a dnf-named process (see dnfLookalike).
func (n *Node) StartDNF(ctx context.Context, args ...string) (int, error) {
	if _, err := n.Sh(ctx, `printf '%s' "$1" >/usr/bin/dnf && chmod 755 /usr/bin/dnf`, dnfLookalike); err != nil {
		return 0, err
	}
	return n.StartProcess(ctx, append([]string{"/usr/bin/dnf"}, args...)...)
}

// corruptScript overwrites the start of two index pages of the sqlite
// rpm database (the Name and Providename indexes) with garbage: `rpm
// --verifydb` then fails and `rpm -q NAME` answers "not installed" with
// "database disk image is malformed", while the Packages table — what
// --rebuilddb reads — keeps every record, as in the incident's
// recoverable corruption.
const corruptScript = `import sqlite3
path = "/var/lib/rpm/rpmdb.sqlite"
db = sqlite3.connect(path)
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
pages = [r[0] for r in db.execute("SELECT rootpage FROM sqlite_master WHERE name IN ('Name_key_idx', 'Providename_key_idx')")]
size = db.execute("PRAGMA page_size").fetchone()[0]
db.close()
with open(path, "r+b") as f:
    for p in pages:
        f.seek((p - 1) * size)
        f.write(b"\xde\xad\xbe\xef" * 16)
`

// CorruptRPMDB damages the node's rpm database (see corruptScript) and
// checks that `rpm --verifydb` now fails.
func (n *Node) CorruptRPMDB(ctx context.Context) error {
	if _, err := n.Sh(ctx, `python3 -c "$1"`, corruptScript); err != nil {
		return err
	}
	if _, err := n.Sh(ctx, "rpm --verifydb"); err == nil {
		return fmt.Errorf("on %s: rpm --verifydb still passes after corruption", n.Name)
	}
	return nil
}

// RemoveExecutable deletes an executable from the node's own /usr (the
// machine's copy is untouched: /usr is an overlay per node).
func (n *Node) RemoveExecutable(ctx context.Context, name string) error {
	_, err := n.Sh(ctx, `p=$(command -v "$1") || { echo "$1 not on PATH" >&2; exit 1; }
rm -f "$p" && ! command -v "$1" >/dev/null`, name)
	return err
}

// StopSSHD stops the node's sshd: connections are refused (unreachable);
// the node and its processes live on.
func (n *Node) StopSSHD(ctx context.Context) error {
	if _, err := n.Sh(ctx, `kill "$(cat "$1")"`, n.path("sshd.pid")); err != nil {
		return err
	}
	for n.answers(ctx) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// StartSSHD starts the node's sshd again after StopSSHD.
func (n *Node) StartSSHD(ctx context.Context) error {
	os.Remove(n.path("sshd.pid"))
	if _, err := n.Sh(ctx, `/usr/sbin/sshd -f "$1" -E "$2"`, n.path("sshd_config"), n.path("sshd.log")); err != nil {
		return err
	}
	return n.waitSSH(ctx)
}

// DropConnections cuts every SSH connection to the node as a network
// failure would: it SIGKILLs the sshd processes that serve them (by pid,
// inside the node), not the listener, and not what runs in their
// sessions, which lose their connection with the client. New connections
// are accepted as before. It returns how many sshd processes it ended.
func (n *Node) DropConnections(ctx context.Context) (int, error) {
	out, err := n.Sh(ctx, `l=$(cat "$1") c=0
for d in /proc/[0-9]*; do
	p=${d#/proc/}
	[ "$p" = "$l" ] && continue
	read -r comm <"$d/comm" 2>/dev/null || continue
	case $comm in sshd|sshd-session|sshd-auth) kill -KILL "$p" 2>/dev/null && c=$((c+1)) ;; esac
done
echo "$c"`, n.path("sshd.pid"))
	if err != nil {
		return 0, err
	}
	var ended int
	_, err = fmt.Sscan(out, &ended)
	return ended, err
}

// StallSSHD freezes the node's sshd (SIGSTOP): TCP connections are
// accepted by the kernel but no SSH banner ever comes, as on an
// overloaded or half-dead host. ResumeSSHD undoes it.
func (n *Node) StallSSHD(ctx context.Context) error {
	_, err := n.Sh(ctx, `kill -STOP "$(cat "$1")"`, n.path("sshd.pid"))
	return err
}

// ResumeSSHD continues a stalled sshd.
func (n *Node) ResumeSSHD(ctx context.Context) error {
	_, err := n.Sh(ctx, `kill -CONT "$(cat "$1")"`, n.path("sshd.pid"))
	return err
}

// ChangeHostKey gives the node new host keys, as a reinstalled host (or
// an impostor) has; the fleet's known_hosts keeps the old ones.
func (n *Node) ChangeHostKey(ctx context.Context) error {
	for _, kt := range []string{"ed25519", "ecdsa"} {
		if _, err := writeKey(n.path("ssh_host_"+kt+"_key"), kt, "root@"+n.Name+"-reinstalled"); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	// sshd re-executes itself on SIGHUP and loads the new keys.
	if _, err := n.Sh(ctx, `kill -HUP "$(cat "$1")"`, n.path("sshd.pid")); err != nil {
		return err
	}
	time.Sleep(50 * time.Millisecond)
	return n.waitSSH(ctx)
}

// running reports whether the node's PID 1 is still running (for
// teardown tests).
func (n *Node) running() bool {
	return n.InitPID > 0 && syscall.Kill(n.InitPID, 0) == nil && processExists(n.InitPID)
}
