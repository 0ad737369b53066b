package tasks

import (
	"context"
	"fmt"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
)

// scriptTag returns the tag of a command built by shellScript, and its
// positional parameters ($1...); ok is false for any other command.
func scriptTag(cmd Command) (tag string, args []string, ok bool) {
	if len(cmd.Argv) < 4 || cmd.Argv[0] != "sh" || cmd.Argv[1] != "-c" {
		return "", nil, false
	}
	first, rest, _ := strings.Cut(cmd.Argv[2], "\n")
	tag, ok = strings.CutPrefix(first, scriptTagPrefix)
	if !ok {
		return "", nil, false
	}
	if isProtected(rest) {
		return tag, cmd.Argv[5:], true // the body comes first
	}
	return tag, cmd.Argv[4:], true
}

// isProtected: a protected step's script (after its tag line), whose
// first argument is the body.
func isProtected(script string) bool {
	_, rest, _ := strings.Cut(script, "\n") // the PATH line
	return strings.HasPrefix(rest, protectMarker+"\n")
}

// renderSection formats one section as a report script prints it.
func renderSection(boundary, name, content string, status int) string {
	return fmt.Sprintf("%s %s\n%s\n%s/ %d\n", boundary, name, content, boundary, status)
}

// fakeHost is a scripted node for unit tests: it answers the tasks'
// scripts from an in-memory host (files, kernel name, processes) and
// applies the changes they ask for, so a test can run a task twice and
// look at the result. Failures are injected per script tag.
type fakeHost struct {
	t  *testing.T
	mu sync.Mutex

	kernel      string
	files       map[string]string // path → content; absent means missing
	readonly    map[string]bool   // paths whose writes fail
	systemd     bool
	hostnamectl bool
	mountinfo   string
	procs       []string
	// kubeProcs is the kube_procs section as the node prints it ("p PID
	// COMM" then "a ARG" lines); kubelet files and certificates are files.
	kubeProcs   string
	units       map[string]string // systemd unit → is-active state
	modules     map[string]string // kernel module → "loaded", "available"
	filesystems string
	paths       map[string]string // executable → path found by command -v
	runStatus   map[string]int    // executable → exit status of --version
	runOutput   map[string]string

	// fail answers a script tag with this result instead of running it.
	fail map[string]Result
	// onFail runs when an injected failure is returned (a script that
	// failed half-way and could not undo its steps).
	onFail func(*fakeHost)
	// connErr makes Run fail as a lost connection would.
	connErr error
	// afterApply runs after a successful hostname-apply (something on the
	// host undoing the rename, say).
	afterApply func(*fakeHost)
	// installs maps a package to the executables installing it provides.
	installs map[string][]string
	// audits are the records appended by the audit writer (tag "audit").
	audits []string

	calls []string // script tags (or argv[0]) in order
	stdin map[string][]byte
	args  map[string][]string
}

func newFakeHost(t *testing.T) *fakeHost {
	return &fakeHost{
		t:           t,
		kernel:      "localhost",
		files:       map[string]string{},
		readonly:    map[string]bool{},
		units:       map[string]string{},
		modules:     map[string]string{},
		paths:       map[string]string{},
		runStatus:   map[string]int{},
		runOutput:   map[string]string{},
		fail:        map[string]Result{},
		installs:    map[string][]string{},
		stdin:       map[string][]byte{},
		args:        map[string][]string{},
		filesystems: "nodev\tproc\n\text4\n",
	}
}

func (f *fakeHost) called(tag string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == tag {
			n++
		}
	}
	return n
}

func (f *fakeHost) Run(ctx context.Context, cmd Command) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.connErr != nil {
		return Result{}, f.connErr
	}
	tag, args, ok := scriptTag(cmd)
	if !ok {
		f.calls = append(f.calls, cmd.Argv[0])
		if len(cmd.Argv) == 3 && cmd.Argv[0] == "rm" && cmd.Argv[1] == "-f" {
			delete(f.files, cmd.Argv[2])
			return Result{}, nil
		}
		f.t.Errorf("fake host: unexpected command %q", cmd.Argv)
		return Result{ExitStatus: 127}, nil
	}
	f.calls = append(f.calls, tag)
	f.stdin[tag] = cmd.Stdin
	f.args[tag] = args
	if r, ok := f.fail[tag]; ok {
		if f.onFail != nil {
			f.onFail(f)
		}
		return r, nil
	}
	switch tag {
	case "recover":
		return Result{}, nil // nothing left by an interrupted run
	case "hostname-gather":
		return f.hostnameGather(args[0]), nil
	case "hostname-apply":
		return f.hostnameApply(args, string(cmd.Stdin)), nil
	case "write-file":
		if f.readonly[args[0]] {
			return Result{ExitStatus: 1, Stderr: []byte("Read-only file system")}, nil
		}
		f.files[args[0]] = string(cmd.Stdin)
		return Result{}, nil
	case "nfs-unique-id":
		conf, wconf, wparam, uniq := args[0], args[1] == "1", args[2] == "1", args[3]
		if wconf {
			if f.readonly[conf] {
				return Result{ExitStatus: 1, Stderr: []byte("Read-only file system")}, nil
			}
			f.files[conf] = string(cmd.Stdin)
		}
		if wparam {
			if _, ok := f.files[nfsUniqueIDPath]; !ok || f.readonly[nfsUniqueIDPath] {
				return Result{Stdout: []byte("param-failed\n")}, nil
			}
			f.files[nfsUniqueIDPath] = uniq + "\n"
		}
		return Result{}, nil
	case "audit":
		f.audits = append(f.audits, args[0])
		return Result{}, nil
	case "longhorn-deps-gather":
		return f.depsGather(args[0], args[1:]), nil
	case "longhorn-deps-install":
		for _, pkg := range args[1:] {
			for _, e := range f.installs[pkg] {
				f.paths[e] = "/usr/sbin/" + e
				f.runStatus[e] = 0
			}
		}
		return Result{Stdout: []byte("installed\n")}, nil
	}
	f.t.Errorf("fake host: unexpected script %q", tag)
	return Result{ExitStatus: 127}, nil
}

func (f *fakeHost) hostnameGather(boundary string) Result {
	var b strings.Builder
	sec := func(name, content string, status int) { b.WriteString(renderSection(boundary, name, content, status)) }
	file := func(name, path string) {
		if c, ok := f.files[path]; ok {
			sec(name, c, 0)
		} else {
			sec(name, "", 1)
		}
	}
	b.WriteString("a login banner the parser must skip\n")
	sec("kernel", f.kernel+"\n", 0)
	file("etc_hostname", "/etc/hostname")
	sec("etc_hostname_path", "/etc/hostname\n", 0)
	file("hosts", "/etc/hosts")
	sec("hosts_path", "/etc/hosts\n", 0)
	sec("systemd", "", map[bool]int{true: 0, false: 1}[f.systemd])
	if f.hostnamectl {
		sec("hostnamectl", "/usr/bin/hostnamectl\n", 0)
	} else {
		sec("hostnamectl", "", 1)
	}
	file("machine_id", "/etc/machine-id")
	file("nfs_identifier", nfsIdentifierPath)
	file("nfs4_unique_id", nfsUniqueIDPath)
	var nfs []string
	for _, line := range strings.Split(f.mountinfo, "\n") {
		if strings.Contains(line, " - nfs ") || strings.Contains(line, " - nfs4 ") {
			nfs = append(nfs, line)
		}
	}
	if len(nfs) > 0 {
		sec("nfs_mounts", strings.Join(nfs, "\n")+"\n", 0)
	} else {
		sec("nfs_mounts", "", 1)
	}
	var etcMounts []string
	for _, line := range strings.Split(f.mountinfo, "\n") {
		if strings.Contains(line, " /etc/hosts ") || strings.Contains(line, " /etc/hostname ") {
			etcMounts = append(etcMounts, line)
		}
	}
	sec("etc_mounts", strings.Join(etcMounts, "\n"), map[bool]int{true: 0, false: 1}[len(etcMounts) > 0])
	sec("kube_procs", f.kubeProcs, map[bool]int{true: 0, false: 1}[f.kubeProcs != ""])
	kubeFiles, kubeCerts := f.kubeletSections()
	sec("kube_files", kubeFiles, map[bool]int{true: 0, false: 1}[kubeFiles != ""])
	sec("kube_certs", kubeCerts, map[bool]int{true: 0, false: 1}[kubeCerts != ""])
	file("iscsi_initiator", "/etc/iscsi/initiatorname.iscsi")
	file("nfs_conf", nfsModprobeConf)
	file("nfs_state", nfsStatePath)
	if c, ok := f.files["/etc/cloud/cloud.cfg"]; ok {
		sec("cloud_init", "", 0)
		sec("cloud_cfg", c+f.files["/etc/cloud/cloud.cfg.d/99.cfg"], 0)
	} else {
		sec("cloud_init", "", 1)
		sec("cloud_cfg", "", 1)
	}
	return Result{Stdout: []byte(b.String())}
}

// kubeletSections prints the kube_files and kube_certs sections as the
// gather's kfiles and kcerts do: the naming lines of kubelet files, the
// certificate blocks of certificate files.
func (f *fakeHost) kubeletSections() (files, certs string) {
	var fb, cb strings.Builder
	for _, pattern := range kubeletFiles {
		for _, p := range f.sortedPaths() {
			if ok, _ := path.Match(pattern, p); !ok {
				continue
			}
			fmt.Fprintf(&fb, "f %s\n", p)
			for _, l := range strings.Split(strings.TrimSuffix(f.files[p], "\n"), "\n") {
				for _, needle := range []string{"hostname-override", "node-name", "NODE_NAME", "with-node-id", "WITH_NODE_ID"} {
					if strings.Contains(l, needle) {
						fmt.Fprintf(&fb, "l %s\n", l)
						break
					}
				}
			}
		}
	}
	for _, p := range kubeletCerts {
		content, ok := f.files[p]
		if !ok {
			continue
		}
		fmt.Fprintf(&cb, "f %s\n", p)
		in := false
		for _, l := range strings.Split(strings.TrimSuffix(content, "\n"), "\n") {
			if strings.HasPrefix(l, "-----BEGIN CERTIFICATE-----") {
				in = true
			}
			if in {
				fmt.Fprintf(&cb, "c %s\n", l)
			}
			if strings.HasPrefix(l, "-----END CERTIFICATE-----") {
				in = false
			}
		}
	}
	return fb.String(), cb.String()
}

func (f *fakeHost) sortedPaths() []string {
	var paths []string
	for p := range f.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

func (f *fakeHost) hostnameApply(args []string, stdin string) Result {
	name, hosts, hostnamef, method := args[0], args[2], args[3], args[4]
	if len(args) != 14 {
		f.t.Errorf("hostname-apply takes 14 arguments, got %q", args)
	}
	setname, whostname, whosts := args[5] == "1", args[6] == "1", args[7] == "1"
	if whosts && f.readonly[hosts] || whostname && f.readonly[hostnamef] {
		return Result{ExitStatus: 1, Stderr: []byte("mv: cannot move: Read-only file system\nnodefix: cannot replace; hostname " + args[1] + " kept\n")}
	}
	var out string
	if whosts {
		if old, ok := f.files[hosts]; ok {
			backup := hosts + ".nodefix-20250101T000000"
			f.files[backup] = old
			out = "backup " + backup + "\n"
		}
		f.files[hosts] = stdin
	}
	if method == "hostnamectl" {
		f.kernel = name
		f.files[hostnamef] = name + "\n"
	} else {
		if setname {
			f.kernel = name
		}
		if whostname {
			f.files[hostnamef] = name + "\n"
		}
	}
	if f.afterApply != nil {
		f.afterApply(f)
	}
	return Result{Stdout: []byte(out)}
}

func (f *fakeHost) depsGather(boundary string, execs []string) Result {
	var b strings.Builder
	sec := func(name, content string, status int) { b.WriteString(renderSection(boundary, name, content, status)) }
	if c, ok := f.files["/etc/os-release"]; ok {
		sec("os_release", c, 0)
	} else {
		sec("os_release", "", 1)
	}
	sec("kernel", "6.1.0-test\n", 0)
	for _, e := range execs {
		p := f.paths[e]
		sec("path:"+e, p, 0)
		if p != "" {
			out := f.runOutput[e]
			if out == "" {
				out = e + " version 1.0\n"
			}
			sec("run:"+e, out, f.runStatus[e])
		}
	}
	for _, m := range []string{"iscsi_tcp", "nfs", "dm_crypt"} {
		sec("loaded:"+m, "", map[bool]int{true: 0, false: 1}[f.modules[m] == "loaded"])
		if f.modules[m] == "available" {
			sec("avail:"+m, "/lib/modules/6.1.0-test/kernel/"+m+".ko\n", 0)
		} else {
			sec("avail:"+m, "", 1)
		}
	}
	sec("filesystems", f.filesystems, 0)
	var procs []string
	for _, p := range f.procs {
		if p == "iscsid" || p == "multipathd" {
			procs = append(procs, p)
		}
	}
	sec("procs", strings.Join(procs, "\n"), map[bool]int{true: 0, false: 1}[len(procs) > 0])
	sec("systemd", "", map[bool]int{true: 0, false: 1}[f.systemd])
	if f.systemd {
		var states []string
		for _, u := range []string{"iscsid.service", "iscsid.socket", "multipathd.service", "multipathd.socket"} {
			s := f.units[u]
			if s == "" {
				s = "inactive"
			}
			states = append(states, s)
		}
		sec("units", strings.Join(states, "\n")+"\n", 3)
	}
	return Result{Stdout: []byte(b.String())}
}

// fileList is the fake host's files, for failure messages.
func (f *fakeHost) fileList() string {
	var names []string
	for p := range f.files {
		names = append(names, p)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// localNode runs commands on this machine. Tests use it only for
// commands that read (gather scripts): nothing that changes a host runs
// outside a namespace on this shared machine.
type localNode struct{}

func (localNode) Run(ctx context.Context, cmd Command) (Result, error) {
	c := exec.CommandContext(ctx, cmd.Argv[0], cmd.Argv[1:]...)
	if cmd.Stdin != nil {
		c.Stdin = strings.NewReader(string(cmd.Stdin))
	}
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	res := Result{Stdout: []byte(stdout.String()), Stderr: []byte(stderr.String())}
	if ee, ok := err.(*exec.ExitError); ok {
		res.ExitStatus = ee.ExitCode()
		return res, nil
	}
	return res, err
}
