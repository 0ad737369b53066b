package tasks

// A scripted node for unit tests of the rpm tasks: it answers each command
// the tasks run (named by the "# nodefix:TAG" first line of a script, or
// by rpm's mode) from a table, and records what was run.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// fakeCall is one command a task ran on the fake node.
type fakeCall struct {
	// Name: the script's name ("rpm-snapshot", "rpmdb-backup" …), or
	// "rpm -qa", "rpm --verifydb", "rpm --rebuilddb", "rm".
	Name string
	// DBPath is rpm's --dbpath, if given.
	DBPath string
	// Args are a script's positional parameters, or the command's argv.
	Args []string
	// Bounded: run under timeout(1).
	Bounded bool
}

type fakeAnswer struct {
	res Result
	err error
}

type fakeNode struct {
	t *testing.T
	// answers maps a call name to the answers for successive calls (the
	// last one repeats); a name with no answer fails the test.
	answers map[string][]fakeAnswer
	// An rpm command with --dbpath is answered from name+" @copy" when
	// that has answers (the rebuilt copy), else from name.
	calls []fakeCall
	// work is the work directory the repair's lease named: answers say
	// it where they say workDir.
	work string
	mu   sync.Mutex
}

func newFakeNode(t *testing.T) *fakeNode {
	return &fakeNode{t: t, answers: map[string][]fakeAnswer{}}
}

// on queues answers for a call name.
func (f *fakeNode) on(name string, results ...Result) *fakeNode {
	for _, r := range results {
		f.answers[name] = append(f.answers[name], fakeAnswer{res: r})
	}
	return f
}

// onErr queues a transport error for a call name.
func (f *fakeNode) onErr(name string, err error) *fakeNode {
	f.answers[name] = append(f.answers[name], fakeAnswer{err: err})
	return f
}

func (f *fakeNode) Run(ctx context.Context, cmd Command) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := parseFakeCall(cmd.Argv)
	f.calls = append(f.calls, call)
	switch call.Name {
	case "rpmdb-lease":
		// The lease holds the work directory until it is ended: here it
		// ends at once.
		return Result{}, nil
	case "rpmdb-prepare":
		f.work = call.Args[1] // the lease's work directory
	case "recover":
		if len(f.answers["recover"]) == 0 {
			return Result{}, nil // nothing left by an interrupted run
		}
	}
	key := call.Name
	if call.DBPath != "" {
		if _, ok := f.answers[key+" @copy"]; ok {
			key += " @copy"
		}
	}
	queue := f.answers[key]
	if len(queue) == 0 {
		f.t.Errorf("fake node: unexpected command %q (argv %q)", key, cmd.Argv)
		return Result{ExitStatus: 127}, nil
	}
	a := queue[0]
	if len(queue) > 1 {
		f.answers[key] = queue[1:]
	}
	if f.work != "" {
		a.res.Stdout = []byte(strings.ReplaceAll(string(a.res.Stdout), workDir, f.work))
	}
	return a.res, a.err
}

// ran reports how many calls had name.
func (f *fakeNode) ran(name string) int {
	n := 0
	for _, c := range f.calls {
		if c.Name == name {
			n++
		}
	}
	return n
}

// call returns the i-th call named name.
func (f *fakeNode) call(name string, i int) fakeCall {
	f.t.Helper()
	for _, c := range f.calls {
		if c.Name == name {
			if i == 0 {
				return c
			}
			i--
		}
	}
	f.t.Fatalf("no call %q number %d in %v", name, i, f.calls)
	return fakeCall{}
}

func parseFakeCall(argv []string) fakeCall {
	c := fakeCall{Args: argv}
	if len(argv) >= 3 && argv[0] == "sh" && argv[1] == "-c" {
		first, _, _ := strings.Cut(argv[2], "\n")
		c.Name = strings.TrimPrefix(first, scriptTagPrefix)
		skip := 4
		if isProtected(strings.TrimPrefix(argv[2], first+"\n")) {
			skip = 5 // a protected step: the body comes first
		}
		if len(argv) > skip {
			c.Args = argv[skip:]
		} else {
			c.Args = nil
		}
		return c
	}
	if len(argv) > 4 && argv[0] == "timeout" {
		// The rebuilt copy's --dbpath is in the lease's work directory.
		c.Bounded = true
		argv = argv[4:]
	}
	if argv[0] == "rpm" {
		var mode []string
		for i := 1; i < len(argv); i++ {
			switch a := argv[i]; {
			case a == "--dbpath" && i+1 < len(argv):
				c.DBPath = argv[i+1]
				i++
			case a == "--qf":
				i++
			case strings.HasPrefix(a, "-"):
				mode = append(mode, a)
			}
		}
		c.Name = "rpm " + strings.Join(mode, " ")
		return c
	}
	c.Name = argv[0]
	return c
}

// ok is a successful Result with stdout.
func ok(stdout string) Result { return Result{Stdout: []byte(stdout)} }

// status is a Result with an exit status and stderr.
func status(code int, stderr string) Result { return Result{ExitStatus: code, Stderr: []byte(stderr)} }

// fakeProc is one process of a fake snapshot.
type fakeProc struct {
	pid, ppid int
	state     byte
	comm      string
	argv      []string
	// ageSec is the age in seconds; rssPages the RSS in pages (4096 B).
	ageSec   int
	rssPages int
}

// fakeSnap builds snapshotScript output.
type fakeSnap struct {
	rpm, dbpath, backend string
	noTimeout, dpkg      bool
	// dbfiles: name → "DEVHEX INODE SIZE" (as stat -c '%D %i %s').
	dbfiles  map[string]string
	noDBDir  bool
	envUsers []int
	pidFiles map[string]string
	procs    []fakeProc
	locks    string
}

const fakeUptime = 100000 // seconds
const fakeClk = 100

func (s fakeSnap) bytes() []byte {
	var b strings.Builder
	rec := func(name string, vals ...string) {
		b.WriteString("=" + name + "\x00")
		for _, v := range vals {
			b.WriteString(v + "\x00")
		}
	}
	rec("self", "99999")
	rec("rpm", s.rpm)
	to := "/usr/bin/timeout"
	if s.noTimeout {
		to = ""
	}
	rec("timeout", to)
	dpkg := ""
	if s.dpkg {
		dpkg = "/usr/bin/dpkg"
	}
	rec("dpkg", dpkg)
	if s.rpm != "" {
		rec("dbpath", s.dbpath)
		rec("backend", s.backend)
		if !s.noDBDir {
			var lines []string
			for name, st := range s.dbfiles {
				lines = append(lines, st+" "+s.dbpath+"/"+name)
			}
			rec("dbfiles", strings.Join(lines, "\n")+"\n")
			if len(s.envUsers) > 0 {
				var l []string
				for _, p := range s.envUsers {
					l = append(l, fmt.Sprintf("%d/maps", p))
				}
				rec("envusers", strings.Join(l, "\n")+"\n")
			}
		}
	}
	for path, pid := range s.pidFiles {
		rec("pidfile", path, pid)
	}
	rec("uptime", fmt.Sprintf("%d.00 12345.00\n", fakeUptime))
	// What `getconf -a` prints, in part.
	rec("getconf", "CHAR_BIT                           8\nCLK_TCK                            100\nPAGESIZE                           4096\nPAGE_SIZE                          4096\n")
	b.WriteString("=proc\x00")
	for _, p := range s.procs {
		state := p.state
		if state == 0 {
			state = 'S'
		}
		start := (fakeUptime - p.ageSec) * fakeClk
		// Fields 3…24: state ppid pgrp session tty tpgid flags minflt
		// cminflt majflt cmajflt utime stime cutime cstime priority nice
		// threads itreal starttime vsize rss.
		fmt.Fprintf(&b, "%d/stat:%d (%s) %c %d 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %d 1000 %d 0 0\n\x00",
			p.pid, p.pid, p.comm, state, p.ppid, start, p.rssPages)
	}
	for _, p := range s.procs {
		for _, a := range p.argv {
			fmt.Fprintf(&b, "%d/cmdline:%s\x00", p.pid, a)
		}
	}
	rec("locks", s.locks)
	rec("end")
	return []byte(b.String())
}

// sqliteSnap is a healthy-looking EL9 node: rpm, sqlite at /var/lib/rpm.
func sqliteSnap(procs ...fakeProc) fakeSnap {
	return fakeSnap{
		rpm: "/usr/bin/rpm", dbpath: "/var/lib/rpm", backend: "sqlite",
		dbfiles: map[string]string{
			"rpmdb.sqlite":     "fd00 1001 229376",
			"rpmdb.sqlite-shm": "fd00 1002 32768",
			"rpmdb.sqlite-wal": "fd00 1003 0",
			".rpm.lock":        "fd00 1004 0",
		},
		procs: append([]fakeProc{{pid: 1, ppid: 0, comm: "systemd", argv: []string{"/usr/lib/systemd/systemd"}, ageSec: 90000}}, procs...),
	}
}
