package tasks

// Telling rpm queries from everything the rpm tasks must never touch, by
// the command line alone.

import (
	"path"
	"strings"
)

// rpmMode is what an rpm command line does to the database.
type rpmMode int

const (
	// rpmModeOther: no database mode (rpm -E, --showrc, -K …) or not rpm.
	rpmModeOther rpmMode = iota
	// rpmModeQuery: reads the database (-q, --query, rpmquery).
	rpmModeQuery
	// rpmModeVerify: rpm -V checks installed files against the database.
	// It only reads, but a full `rpm -Va` legitimately runs for many
	// minutes and runs packages' %verifyscript, so it is never taken for
	// a hung query.
	rpmModeVerify
	// rpmModeWrite: installs, upgrades, erases, imports keys, or changes
	// file attributes: a transaction, never to be interrupted.
	rpmModeWrite
	// rpmModeDatabase: --rebuilddb, --initdb, --verifydb and the like:
	// database maintenance, also never interrupted.
	rpmModeDatabase
)

func (m rpmMode) String() string {
	switch m {
	case rpmModeQuery:
		return "query"
	case rpmModeVerify:
		return "verify"
	case rpmModeWrite:
		return "transaction"
	case rpmModeDatabase:
		return "database maintenance"
	}
	return "other"
}

// rpmLongModes maps rpm's long mode options to what they do.
var rpmLongModes = map[string]rpmMode{
	"query":     rpmModeQuery,
	"verify":    rpmModeVerify,
	"install":   rpmModeWrite,
	"upgrade":   rpmModeWrite,
	"freshen":   rpmModeWrite,
	"reinstall": rpmModeWrite,
	"erase":     rpmModeWrite,
	"import":    rpmModeWrite,
	"setperms":  rpmModeWrite,
	"setugids":  rpmModeWrite,
	"setcaps":   rpmModeWrite,
	"restore":   rpmModeWrite,
	"delete":    rpmModeWrite,
	"rebuilddb": rpmModeDatabase,
	"initdb":    rpmModeDatabase,
	"verifydb":  rpmModeDatabase,
	"importdb":  rpmModeDatabase,
	"exportdb":  rpmModeDatabase,
}

// rpmLongWithArg are rpm's long options that take the next word as their
// value (unless written --opt=value), so the value is never read as a mode.
var rpmLongWithArg = map[string]bool{
	"root": true, "dbpath": true, "define": true, "undefine": true,
	"predefine": true, "eval": true, "macros": true, "rcfile": true,
	"load": true, "pipe": true, "queryformat": true, "qf": true,
	"target": true, "relocate": true, "prefix": true, "excludepath": true,
}

// rpmShortWithArg are rpm's short options that take a value: the rest of
// the word, or the next word.
const rpmShortWithArg = "rDE"

// classifyRPM reports what an rpm command line does, from the program
// name (rpm, rpmquery, rpmverify, rpmdb, rpmkeys) and its options. When
// options name more than one mode (rpm itself would refuse to run), the
// most dangerous one wins so that such a process is never touched.
func classifyRPM(argv []string) rpmMode {
	if len(argv) == 0 {
		return rpmModeOther
	}
	var query, verify, write, database, installLetter bool
	switch path.Base(argv[0]) {
	case "rpm":
	case "rpmquery":
		query = true
	case "rpmverify":
		verify = true
	case "rpmdb", "rpmkeys":
		// rpmdb only does maintenance (--rebuilddb, --initdb …) and
		// rpmkeys --import writes: both default to "never touch".
	default:
		return rpmModeOther
	}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "--":
			i = len(argv)
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			switch rpmLongModes[name] {
			case rpmModeQuery:
				query = true
			case rpmModeVerify:
				verify = true
			case rpmModeWrite:
				write = true
			case rpmModeDatabase:
				database = true
			}
			if rpmLongWithArg[name] && !hasValue {
				i++
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				c := a[j]
				if strings.IndexByte(rpmShortWithArg, c) >= 0 {
					if j == len(a)-1 {
						i++ // the value is the next word
					}
					break
				}
				switch c {
				case 'q':
					query = true
				case 'V', 'y':
					verify = true
				case 'i':
					// -i installs, except after -q where it means
					// --info (rpm -qi); resolved below.
					installLetter = true
				case 'U', 'F', 'e':
					write = true
				}
			}
		}
	}
	if installLetter && !query {
		write = true
	}
	switch {
	case database:
		return rpmModeDatabase
	case write:
		return rpmModeWrite
	case verify:
		return rpmModeVerify
	case query:
		return rpmModeQuery
	}
	return rpmModeOther
}

// packageManagers run rpm transactions (or drive them); nodefix never
// signals them or anything they started.
var packageManagers = map[string]bool{
	"yum": true, "yum-cron": true, "dnf": true, "dnf-2": true, "dnf-3": true,
	"dnf5": true, "dnf-automatic": true, "microdnf": true, "tdnf": true,
	"packagekitd": true, "zypper": true, "zypp-refresh": true,
	"rpm-ostree": true, "rpm-ostreed": true, "up2date": true,
	"dnfdaemon-system": true, "yumBackend.py": true, "dnf5daemon-server": true,
}

// interpreters may run a package manager as a script (yum is
// `/usr/bin/python /usr/bin/yum …` on EL7).
var interpreters = map[string]bool{
	"python": true, "python2": true, "python3": true, "platform-python": true,
	"perl": true, "sh": true, "bash": true,
}

// isPackageManager reports whether p is a package manager, by its program
// name, its kernel command name (a script's name when run through #!), or
// the script an interpreter runs.
func isPackageManager(p *Process) bool {
	if packageManagers[p.Program()] || packageManagers[p.Comm] {
		return true
	}
	prog := p.Program()
	if interpreters[prog] || strings.HasPrefix(prog, "python") {
		for _, a := range p.Argv[1:] {
			if strings.HasPrefix(a, "-") {
				continue
			}
			return packageManagers[path.Base(a)]
		}
	}
	return false
}

// wrappers start a command and wait for it (nsenter with --fork or -p,
// timeout …). A query started through one is reported with it; the query
// itself is what gets signalled, and the wrapper ends with it.
var wrappers = map[string]bool{
	"nsenter": true, "timeout": true, "env": true, "nice": true,
	"ionice": true, "chrt": true, "taskset": true, "setsid": true,
	"stdbuf": true, "chroot": true, "sudo": true, "runuser": true,
	"su": true, "unshare": true, "flock": true, "nohup": true,
}
