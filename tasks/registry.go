package tasks

import (
	"fmt"
	"strings"
	"time"
)

// Task names, in the order they run on a host: a node must be named right
// before anything else reports under its name, hung queries must be gone
// before the database they block on is judged, and the dependency check
// comes last because it only reads.
const (
	NameHostname     = "hostname"
	NameRPMQueries   = "rpm-queries"
	NameRPMDB        = "rpmdb"
	NameLonghornDeps = "longhorn-deps"
)

// Names lists every task in run order.
func Names() []string {
	return []string{NameHostname, NameRPMQueries, NameRPMDB, NameLonghornDeps}
}

// Select returns the tasks named in list (comma-separated names, or "all"
// / empty for every task), always in run order whatever order list has.
func Select(list string) ([]Task, error) {
	want := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if name == "all" {
			for _, n := range Names() {
				want[n] = true
			}
			continue
		}
		if !isTaskName(name) {
			return nil, fmt.Errorf("unknown task %q: choose from %s (or all)", name, strings.Join(Names(), ", "))
		}
		want[name] = true
	}
	var selected []Task
	for _, name := range Names() {
		if len(want) == 0 || want[name] {
			selected = append(selected, newTask(name))
		}
	}
	return selected, nil
}

func isTaskName(name string) bool {
	for _, n := range Names() {
		if n == name {
			return true
		}
	}
	return false
}

func newTask(name string) Task {
	switch name {
	case NameHostname:
		return Hostname{}
	case NameRPMQueries:
		return RPMQueries{}
	case NameRPMDB:
		return RPMDB{}
	case NameLonghornDeps:
		return LonghornDeps{}
	}
	panic("tasks: no constructor for " + name) // Names and newTask disagree: a programming error
}

// DefaultConfig is the configuration the CLI starts from; see each field's
// task for why its default is what it is.
func DefaultConfig() Config {
	return Config{
		// A healthy `rpm -q` answers in well under a second and `rpm -qa`
		// in seconds, but a query may legitimately wait behind a running
		// transaction (a kernel update's scriptlets take minutes). Ten
		// minutes is beyond any such wait, yet short enough that a pile-up
		// (about 6 MiB RSS per blocked rpm 4.18 query, measured) is
		// cleared long before it threatens a node's memory.
		RPMQueryMaxAge: 10 * time.Minute,
		// rpm exits on SIGTERM within milliseconds even while it waits on a
		// lock (measured); the rest of the grace lets a Berkeley DB query
		// release its locks cleanly, which SIGKILL would not.
		RPMQueryGrace: 5 * time.Second,
		// Beside /var/lib/rpm on the same file system as a rule: rpmdb
		// measures the free space for both the archive and the rebuild.
		RPMBackupDir: "/var/lib/nodefix/rpmdb-backups",
		// The backup of the latest repair and two before it: enough to go
		// back past a repair that "succeeded" on an already damaged
		// database, small next to an rpm database (tens of MiB).
		RPMBackupKeep: 3,
		// A transaction that was waiting behind hung queries (the wedged
		// database of the incident) finishes within seconds once
		// rpm-queries has ended them; a longer hold is a real transaction
		// the operator should let finish.
		RPMLockWait:         15 * time.Second,
		CommandTimeout:      2 * time.Minute,
		LonghornExecutables: []string{"iscsiadm", "mount.nfs", "cryptsetup", "dmsetup"},
	}
}
