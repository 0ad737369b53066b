package tasks

// One listing of what the rpm tasks need to know about a node: where rpm
// keeps its database, the process table, and who holds which file lock.
// It is a single `sh -c` round trip however many processes there are (the
// incident had thousands of hung queries), and it survives what a process
// table really holds: command lines with spaces, newlines or empty words
// (read NUL-separated from /proc/PID/cmdline), command names with spaces or
// parentheses, kernel threads and zombies with no command line, and
// processes that exit while the listing runs.

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// snapshotScript prints NUL-separated records: a marker "=name" followed by
// that section's items. grep -H -z prints every NUL-terminated word of
// every /proc/PID/cmdline as "PID/cmdline:word", keeping argv's word
// boundaries, and every stat file whole; a pid that exits mid-scan is
// simply missing (its error goes to /dev/null).
//
// $1 is a snapshotDB. The script starts as few programs as it can (rpm,
// stat, getconf, grep): on a VM, starting a program costs milliseconds,
// and this listing runs on every host at least twice per run. Files are
// read with the shell's own read, command -v prints straight into the
// record instead of through $(…).
const snapshotScript = `LC_ALL=C; export LC_ALL
rec() { printf '=%s\0' "$1"; }
val() { printf '%s\0' "$1"; }
` + readFuncs + `cd /proc || exit 97
rec self; val "$$"
rec rpm; command -v rpm 2>/dev/null; printf '\0'
rec timeout; command -v timeout 2>/dev/null; printf '\0'
rec dpkg; command -v dpkg 2>/dev/null; printf '\0'
rpmruns() { for __c in [0-9]*/comm; do read -r __n <"$__c" 2>/dev/null && case $__n in rpm|rpmquery) return 0 ;; esac; done; return 1; }
if command -v rpm >/dev/null 2>&1 && { [ "$1" != db-if-rpm-runs ] || rpmruns; }; then
	nl='
'
	out=$(rpm --eval '%{_dbpath}' --eval '%{_db_backend}' 2>/dev/null)
	dbpath=${out%%"$nl"*}
	backend=${out#*"$nl"}
	[ "$backend" = "$out" ] && backend=
	rec dbpath; val "$dbpath"
	rec backend; val "$backend"
	if [ -n "$dbpath" ] && [ -d "$dbpath" ]; then
		rec dbfiles
		stat -c '%D %i %s %n' -- "$dbpath"/* "$dbpath"/.[!.]* 2>/dev/null
		printf '\0'
		for f in "$dbpath"/__db.*; do
			if [ -e "$f" ]; then
				rec envusers
				grep -l -F -e "$dbpath/__db." [0-9]*/maps 2>/dev/null
				printf '\0'
				break
			fi
		done
	fi
fi
for f in /var/run/yum.pid /run/yum.pid /var/lib/dnf/rpmdb_lock.pid /run/zypp.pid; do
	if [ -f "$f" ]; then rec pidfile; val "$f"; read -r __p <"$f"; val "$__p"; fi
done
rec uptime; cat1 /proc/uptime; printf '\0'
rec getconf; getconf -a 2>/dev/null || printf 'CLK_TCK %s\nPAGESIZE %s\n' "$(getconf CLK_TCK)" "$(getconf PAGESIZE)"; printf '\0'
rec proc; grep -a -H -z '' [0-9]*/stat [0-9]*/cmdline 2>/dev/null
rec locks; cat1 /proc/locks; printf '\0'
rec end
`

// Process is one entry of the process table.
type Process struct {
	PID, PPID int
	// State is the one-letter state from /proc/PID/stat (R, S, D, Z …).
	State byte
	// Comm is the kernel's command name (at most 15 bytes, set by the
	// program); Argv is the command line and is empty for kernel threads
	// and zombies.
	Comm string
	Argv []string
	// StartTicks is the start time in clock ticks since boot: with PID it
	// identifies the process, so a reused pid is never signalled.
	StartTicks uint64
	Age        time.Duration
	RSSBytes   int64
}

// Program is the base name of argv[0], or the command name when the
// process has no command line.
func (p *Process) Program() string {
	if len(p.Argv) > 0 && p.Argv[0] != "" {
		return path.Base(p.Argv[0])
	}
	return p.Comm
}

// CommandLine is the command line for reports, or [comm] without one,
// cut to a length a report line can carry.
func (p *Process) CommandLine() string {
	if len(p.Argv) == 0 {
		return "[" + p.Comm + "]"
	}
	return clip(argvString(p.Argv), maxCommandLine)
}

// maxCommandLine bounds a command line in reports: enough to tell
// processes apart, short of the multi-kilobyte scripts some run.
const maxCommandLine = 200

// fileID names a file the way /proc/locks does.
type fileID struct {
	Major, Minor uint32
	Inode        uint64
}

// FileLock is one line of /proc/locks.
type FileLock struct {
	// Kind is POSIX (fcntl), FLOCK, OFDLCK, LEASE …
	Kind string
	// Write is true for a WRITE (exclusive) lock.
	Write bool
	// PID holds the lock, or waits for it when Waiting; -1 for OFD locks.
	PID     int
	File    fileID
	Waiting bool
}

// pidFile is a package manager's pid file and the pid it names.
type pidFile struct {
	Path string
	PID  int
}

// rpmSnapshot is one listing of a node.
type rpmSnapshot struct {
	// Self is the listing shell's own pid, to leave out of any decision.
	Self int
	// RPMPath is where rpm is on the node's PATH, empty without rpm.
	RPMPath string
	// HaveTimeout: the node has timeout(1) to bound commands itself.
	HaveTimeout bool
	// HaveDpkg: dpkg is on PATH (a Debian-family host, where rpm is at
	// most a tool and not the package manager).
	HaveDpkg bool
	// DBPath and Backend are rpm's %{_dbpath} and %{_db_backend}.
	DBPath, Backend string
	// DBExists: DBPath is a directory; DBFiles maps the files in it (by
	// the identity /proc/locks uses) to their names, DBSizes their sizes.
	DBExists bool
	DBFiles  map[fileID]string
	DBSizes  map[string]int64
	// EnvUsers are pids that map a Berkeley DB environment file __db.*.
	EnvUsers []int
	PIDFiles []pidFile
	Procs    map[int]*Process
	Locks    []FileLock
}

// snapshotDB says what a listing needs of the rpm database: its path,
// backend and files (for lock holders).
type snapshotDB string

const (
	// withDB: always (rpmdb decides on the database itself).
	withDB snapshotDB = "db"
	// dbIfRPMRuns: only when an rpm process runs (rpm-queries: with no
	// rpm process there is nothing to end, and on a healthy host the
	// listing spares rpm's own start, the dearest part of it).
	dbIfRPMRuns snapshotDB = "db-if-rpm-runs"
)

// takeSnapshot lists the node in one round trip.
func takeSnapshot(ctx context.Context, node Node, cfg Config, db snapshotDB) (*rpmSnapshot, error) {
	res, err := runScript(ctx, node, cfg.CommandTimeout, "rpm-snapshot", snapshotScript, string(db))
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	if res.ExitStatus != 0 {
		return nil, statusError("listing processes", res)
	}
	snap, err := parseSnapshot(res.Stdout)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	return snap, nil
}

// parseSnapshot reads snapshotScript's output.
func parseSnapshot(out []byte) (*rpmSnapshot, error) {
	tokens := strings.Split(string(out), "\x00")
	snap := &rpmSnapshot{
		DBFiles: map[fileID]string{},
		DBSizes: map[string]int64{},
		Procs:   map[int]*Process{},
	}
	var (
		uptime   float64
		clk      = 0
		pageSize int64
		ended    bool
		stats    = map[int]string{}
		argvs    = map[int][]string{}
	)
	next := func(i *int) string {
		*i++
		if *i < len(tokens) {
			return tokens[*i]
		}
		return ""
	}
	for i := 0; i < len(tokens); i++ {
		tok := tokens[i]
		if !strings.HasPrefix(tok, "=") {
			if tok == "" {
				continue
			}
			return nil, fmt.Errorf("unexpected listing record %q", clip(tok, 60))
		}
		switch section := tok[1:]; section {
		case "self":
			snap.Self, _ = strconv.Atoi(next(&i))
		case "rpm":
			snap.RPMPath = strings.TrimSpace(next(&i))
		case "timeout":
			snap.HaveTimeout = next(&i) != ""
		case "dpkg":
			snap.HaveDpkg = next(&i) != ""
		case "dbpath":
			snap.DBPath = strings.TrimSpace(next(&i))
		case "backend":
			snap.Backend = strings.TrimSpace(next(&i))
		case "dbfiles":
			snap.DBExists = true
			parseDBFiles(next(&i), snap)
		case "envusers":
			for _, line := range strings.Split(next(&i), "\n") {
				if pid, ok := pidOfProcPath(line, "/maps"); ok {
					snap.EnvUsers = append(snap.EnvUsers, pid)
				}
			}
		case "pidfile":
			p := next(&i)
			if pid, err := strconv.Atoi(strings.TrimSpace(next(&i))); err == nil && pid > 0 {
				snap.PIDFiles = append(snap.PIDFiles, pidFile{Path: p, PID: pid})
			}
		case "uptime":
			fields := strings.Fields(next(&i))
			if len(fields) > 0 {
				uptime, _ = strconv.ParseFloat(fields[0], 64)
			}
		case "getconf":
			for _, line := range strings.Split(next(&i), "\n") {
				switch f := strings.Fields(line); {
				case len(f) == 2 && f[0] == "CLK_TCK":
					clk, _ = strconv.Atoi(f[1])
				case len(f) == 2 && f[0] == "PAGESIZE":
					pageSize, _ = strconv.ParseInt(f[1], 10, 64)
				}
			}
		case "proc":
			// Records "PID/stat:…" and "PID/cmdline:…", as grep -H -z
			// prints them.
			for i+1 < len(tokens) {
				rec := tokens[i+1]
				slash := strings.IndexByte(rec, '/')
				if slash <= 0 {
					break
				}
				pid, err := strconv.Atoi(rec[:slash])
				if err != nil {
					break
				}
				if body, ok := strings.CutPrefix(rec[slash:], "/stat:"); ok {
					stats[pid] = body
				} else if body, ok := strings.CutPrefix(rec[slash:], "/cmdline:"); ok {
					argvs[pid] = append(argvs[pid], body)
				} else {
					break
				}
				i++
			}
		case "locks":
			snap.Locks = parseLocks(next(&i))
		case "end":
			ended = true
		default:
			return nil, fmt.Errorf("unknown listing section %q", section)
		}
	}
	if !ended {
		return nil, fmt.Errorf("listing was cut short (no end marker)")
	}
	if clk <= 0 || uptime <= 0 || pageSize <= 0 {
		return nil, fmt.Errorf("listing lacks uptime, clock ticks or page size")
	}
	if len(stats) == 0 {
		return nil, fmt.Errorf("listing holds no process: /proc unreadable or grep without -z")
	}
	for pid, body := range stats {
		p, err := parseStat(pid, body)
		if err != nil {
			continue // a torn read of a process that was exiting
		}
		p.Argv = argvs[pid]
		p.Age = time.Duration((uptime - float64(p.StartTicks)/float64(clk)) * float64(time.Second))
		if p.Age < 0 {
			p.Age = 0
		}
		p.RSSBytes *= pageSize
		snap.Procs[pid] = p
	}
	return snap, nil
}

// parseStat reads /proc/PID/stat. The command name sits between the first
// "(" and the last ")" and may itself hold spaces and parentheses.
func parseStat(pid int, body string) (*Process, error) {
	open := strings.IndexByte(body, '(')
	closing := strings.LastIndexByte(body, ')')
	if open < 0 || closing < open {
		return nil, fmt.Errorf("stat of %d: no command name", pid)
	}
	fields := strings.Fields(body[closing+1:])
	// fields[0] is stat field 3 (state); starttime is field 22, rss 24.
	if len(fields) < 22 || len(fields[0]) != 1 {
		return nil, fmt.Errorf("stat of %d: %d fields", pid, len(fields)+2)
	}
	ppid, err1 := strconv.Atoi(fields[1])
	start, err2 := strconv.ParseUint(fields[19], 10, 64)
	rss, err3 := strconv.ParseInt(fields[21], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, fmt.Errorf("stat of %d: bad number", pid)
	}
	return &Process{
		PID:        pid,
		PPID:       ppid,
		State:      fields[0][0],
		Comm:       body[open+1 : closing],
		StartTicks: start,
		RSSBytes:   rss,
	}, nil
}

// parseDBFiles reads `stat -c '%D %i %s %n'` lines: the device number in
// hex (st_dev, as the kernel encodes it), the inode, the size, the path.
func parseDBFiles(block string, snap *rpmSnapshot) {
	for _, line := range strings.Split(block, "\n") {
		parts := strings.SplitN(line, " ", 4)
		if len(parts) != 4 {
			continue
		}
		dev, err1 := strconv.ParseUint(parts[0], 16, 64)
		inode, err2 := strconv.ParseUint(parts[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		id := fileID{Major: devMajor(dev), Minor: devMinor(dev), Inode: inode}
		size, _ := strconv.ParseInt(parts[2], 10, 64)
		name := path.Base(parts[3])
		snap.DBFiles[id] = name
		snap.DBSizes[name] = size
	}
}

// devMajor and devMinor split a Linux dev_t (glibc's gnu_dev_major and
// gnu_dev_minor encoding, which is the kernel's new_encode_dev).
func devMajor(dev uint64) uint32 {
	return uint32(((dev >> 8) & 0xfff) | ((dev >> 32) & ^uint64(0xfff)))
}
func devMinor(dev uint64) uint32 { return uint32((dev & 0xff) | ((dev >> 12) & ^uint64(0xff))) }

// parseFileID reads "MAJOR:MINOR:INODE" as /proc/locks prints it: major
// and minor in hex, the inode in decimal.
func parseFileID(s string) (fileID, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return fileID{}, false
	}
	major, err1 := strconv.ParseUint(parts[0], 16, 32)
	minor, err2 := strconv.ParseUint(parts[1], 16, 32)
	inode, err3 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return fileID{}, false
	}
	return fileID{Major: uint32(major), Minor: uint32(minor), Inode: inode}, true
}

// parseLocks reads /proc/locks:
//
//	1: POSIX  ADVISORY  WRITE 11571 fe:00:9978041 0 EOF
//	1: -> POSIX  ADVISORY  WRITE 11600 fe:00:9978041 0 EOF
//
// where "->" marks a process waiting for the lock above it.
func parseLocks(block string) []FileLock {
	var locks []FileLock
	for _, line := range strings.Split(block, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		f = f[1:] // the ordinal "N:"
		waiting := false
		if f[0] == "->" {
			waiting = true
			f = f[1:]
		}
		if len(f) < 5 {
			continue
		}
		pid, err := strconv.Atoi(f[3])
		if err != nil {
			continue
		}
		id, ok := parseFileID(f[4])
		if !ok {
			continue
		}
		locks = append(locks, FileLock{Kind: f[0], Write: f[2] == "WRITE", PID: pid, File: id, Waiting: waiting})
	}
	return locks
}

// pidOfProcPath reads the pid out of "PID/suffix".
func pidOfProcPath(s, suffix string) (int, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasSuffix(s, suffix) {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSuffix(s, suffix))
	return pid, err == nil
}

// dbLocks returns the locks held on (or waited for on) files of the rpm
// database, with the file's name.
func (s *rpmSnapshot) dbLocks() []heldLock {
	var out []heldLock
	for _, l := range s.Locks {
		if name, ok := s.DBFiles[l.File]; ok {
			out = append(out, heldLock{FileLock: l, Name: name})
		}
	}
	return out
}

// heldLock is a lock on a named database file.
type heldLock struct {
	FileLock
	Name string
}

// transactionLockHolders are the pids holding a write lock on rpm's
// transaction lock file .rpm.lock.
func (s *rpmSnapshot) transactionLockHolders() []int {
	var pids []int
	for _, l := range s.dbLocks() {
		if l.Name == ".rpm.lock" && l.Write && !l.Waiting && l.PID > 0 {
			pids = append(pids, l.PID)
		}
	}
	return uniqueSorted(pids)
}

// ancestors returns p's parent chain, nearest first, stopping at pid 1,
// at a pid outside the listing, or at a loop.
func (s *rpmSnapshot) ancestors(p *Process) []*Process {
	var chain []*Process
	seen := map[int]bool{p.PID: true}
	for pid := p.PPID; pid > 1 && !seen[pid]; {
		parent, ok := s.Procs[pid]
		if !ok {
			break
		}
		seen[pid] = true
		chain = append(chain, parent)
		pid = parent.PPID
	}
	return chain
}

// sortedPIDs returns the listing's pids in order, for stable reports.
func (s *rpmSnapshot) sortedPIDs() []int {
	pids := make([]int, 0, len(s.Procs))
	for pid := range s.Procs {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids
}

func uniqueSorted(in []int) []int {
	sort.Ints(in)
	out := in[:0]
	for i, v := range in {
		if i == 0 || v != in[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	s = string(bytes.ToValidUTF8([]byte(s), []byte("?")))
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
