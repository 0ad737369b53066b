package tasks

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// LonghornDeps checks that the executables Longhorn needs on the host are
// there and run, the way Longhorn itself checks since 1.7.3
// (longhorn-manager PR #3406, for longhorn/longhorn#10019): by looking for
// the executables, never by asking the package manager. An `rpm -q` per
// node on a timer is what piled up by the thousand on a wedged rpm
// database in the incident. It also warns about what breaks Longhorn
// without a missing file: iscsid not running, kernel modules missing,
// multipathd active. Installing is opt-in (Config.InstallMissing).
type LonghornDeps struct{}

// Name implements Task.
func (LonghornDeps) Name() string { return NameLonghornDeps }

// Distribution families, from /etc/os-release.
const (
	familyRHEL   = "rhel"
	familyDebian = "debian"
	familySUSE   = "suse"
)

// packageFor names, per family, the package that provides each executable
// Longhorn checks (the same packages Longhorn's own check names).
var packageFor = map[string]map[string]string{
	familyRHEL:   {"iscsiadm": "iscsi-initiator-utils", "mount.nfs": "nfs-utils", "cryptsetup": "cryptsetup", "dmsetup": "device-mapper"},
	familyDebian: {"iscsiadm": "open-iscsi", "mount.nfs": "nfs-common", "cryptsetup": "cryptsetup", "dmsetup": "dmsetup"},
	familySUSE:   {"iscsiadm": "open-iscsi", "mount.nfs": "nfs-client", "cryptsetup": "cryptsetup", "dmsetup": "device-mapper"},
}

// longhornModules are the kernel modules Longhorn needs, with what fails
// without them.
var longhornModules = []struct{ name, purpose string }{
	{"iscsi_tcp", "volumes cannot attach over iSCSI"},
	{"nfs", "RWX volumes and NFS backup targets cannot mount"},
	{"dm_crypt", "encrypted volumes cannot open"},
}

// longhornDepsGatherScript: $@ are the executables to look for.
// Executables are looked up with the shell's own `command -v` (PATH is
// extended with the sbin directories first) and run with --version: a
// file that is there but does not run (a missing shared library, a broken
// symlink, noexec) must fail the check too.
const longhornDepsGatherScript = `rv() { if command -v timeout >/dev/null 2>&1; then timeout 10 "$1" --version 2>&1; else "$1" --version 2>&1; fi; }
daemons() { __f=1; for __c in /proc/[0-9]*/comm; do read -r __n <"$__c" 2>/dev/null || continue; case $__n in iscsid|multipathd) printf '%s\n' "$__n"; __f=0;; esac; done; return $__f; }
# One lookup in modules.dep and modules.builtin answers for every module
# that is not loaded (a program per module costs milliseconds on a VM).
modavail() {
	[ -n "${__mods+set}" ] || { read -r __rel </proc/sys/kernel/osrelease; __mods=$(grep -ohE '/(iscsi_tcp|nfs|dm[-_]crypt)\.ko' "/lib/modules/$__rel/modules.dep" "/lib/modules/$__rel/modules.builtin" 2>/dev/null); }
	case "$1" in dm_crypt) __p='/dm[-_]crypt.ko' ;; *) __p="/$1.ko" ;; esac
	for __m in $__mods; do case $__m in $__p) printf '%s\n' "$__m"; return 0 ;; esac; done
	return 1
}
s os_release cat1 /etc/os-release
s kernel cat1 /proc/sys/kernel/osrelease
for e in "$@"; do
	p=$(command -v "$e" 2>/dev/null)
	s "path:$e" printf '%s' "$p"
	[ -z "$p" ] || s "run:$e" rv "$p"
done
for m in iscsi_tcp nfs dm_crypt; do
	s "loaded:$m" test -d "/sys/module/$m"
	# A loaded module is available: spare the lookup.
	[ -d "/sys/module/$m" ] || s "avail:$m" modavail "$m"
done
s filesystems cat1 /proc/filesystems
s procs daemons
s systemd test -d /run/systemd/system
if [ -d /run/systemd/system ]; then
	s units systemctl is-active iscsid.service iscsid.socket multipathd.service multipathd.socket
fi
`

// execCheck is one executable as found on the host.
type execCheck struct {
	Name     string `json:"-"`
	Path     string `json:"path,omitempty"`
	Runnable bool   `json:"runnable"`
	Version  string `json:"version,omitempty"`
	// Problem says why the executable does not count: not found, or
	// what running it printed.
	Problem string `json:"problem,omitempty"`
}

// depsState is what longhorn-deps gathers.
type depsState struct {
	OSName, OSID string
	OSLike       []string
	Family       string
	Kernel       string
	Executables  []execCheck
	// Modules: name → "loaded", "available" or "missing".
	Modules          map[string]string
	Systemd          bool
	ISCSIDRunning    bool
	MultipathdActive bool
}

func (d depsState) missing() []execCheck {
	var m []execCheck
	for _, e := range d.Executables {
		if !e.Runnable {
			m = append(m, e)
		}
	}
	return m
}

func gatherDeps(ctx context.Context, node Node, cfg Config, executables []string) (depsState, error) {
	sec, err := runReport(ctx, node, cfg, "longhorn-deps-gather", "gathering Longhorn dependencies", longhornDepsGatherScript, executables...)
	if err != nil {
		return depsState{}, err
	}
	d := depsState{Kernel: sec["kernel"].Line(), Modules: map[string]string{}, Systemd: sec["systemd"].OK()}
	osr := parseOSRelease(sec["os_release"].Content)
	d.OSID, d.OSName = strings.ToLower(osr["ID"]), osr["PRETTY_NAME"]
	if d.OSName == "" {
		d.OSName = osr["NAME"]
	}
	d.OSLike = strings.Fields(strings.ToLower(osr["ID_LIKE"]))
	d.Family = osFamily(d.OSID, d.OSLike)

	for _, name := range executables {
		e := execCheck{Name: name, Path: sec["path:"+name].Line()}
		run, ran := sec["run:"+name]
		switch {
		case e.Path == "":
			e.Problem = "not found in PATH, /usr/sbin or /sbin"
		case !ran:
			e.Problem = "found at " + e.Path + " but not run"
		case run.Status == 124:
			e.Problem = fmt.Sprintf("%s --version did not finish within 10s", e.Path)
		case run.Status == 126 || run.Status == 127 || run.Status > 128:
			e.Problem = fmt.Sprintf("%s does not run (exit status %d): %s", e.Path, run.Status, firstLine(run.Content))
		default:
			// Any other status ran the program: dmsetup --version exits 0
			// but complains without a device-mapper driver; an unknown
			// option is an error that proves the binary runs.
			e.Runnable, e.Version = true, versionLine(run.Content)
		}
		d.Executables = append(d.Executables, e)
	}

	filesystems := sec["filesystems"].Content
	for _, m := range longhornModules {
		switch {
		case sec["loaded:"+m.name].OK():
			d.Modules[m.name] = "loaded"
		case m.name == "nfs" && hasFilesystem(filesystems, "nfs4"):
			d.Modules[m.name] = "loaded"
		case sec["avail:"+m.name].OK() && strings.TrimSpace(sec["avail:"+m.name].Content) != "":
			d.Modules[m.name] = "available"
		default:
			d.Modules[m.name] = "missing"
		}
	}

	procs := strings.Fields(sec["procs"].Content)
	d.ISCSIDRunning = contains(procs, "iscsid")
	d.MultipathdActive = contains(procs, "multipathd")
	if units, ok := sec["units"]; ok {
		// systemctl is-active prints one state per unit, in order.
		states := strings.Fields(units.Content)
		active := func(i int) bool { return i < len(states) && states[i] == "active" }
		d.ISCSIDRunning = d.ISCSIDRunning || active(0) || active(1)
		d.MultipathdActive = d.MultipathdActive || active(2) || active(3)
	}
	return d, nil
}

func hasFilesystem(procFilesystems, fs string) bool {
	for _, line := range strings.Split(procFilesystems, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == fs {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// versionLine picks the line of --version output that names a version
// (dmsetup complains about the missing driver first).
func versionLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(strings.ToLower(line), "version") {
			return strings.TrimSpace(line)
		}
	}
	return firstLine(s)
}

// parseOSRelease reads os-release's KEY=value lines, quotes removed.
func parseOSRelease(content string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(content, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil && (strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "'")) {
			v = u
		} else {
			v = strings.Trim(v, `"'`)
		}
		m[k] = v
	}
	return m
}

// osFamily maps os-release's ID and ID_LIKE to a package family ("" when
// unknown; then no package is named rather than a wrong one).
func osFamily(id string, like []string) string {
	for _, x := range append([]string{id}, like...) {
		switch {
		case x == "rhel" || x == "centos" || x == "fedora" || x == "rocky" || x == "almalinux" ||
			x == "ol" || x == "amzn" || x == "anolis" || x == "circle" || x == "navy":
			return familyRHEL
		case x == "debian" || x == "ubuntu" || x == "raspbian" || x == "linuxmint" || x == "pop":
			return familyDebian
		case x == "suse" || x == "sles" || x == "sled" || x == "sle-micro" || x == "sl-micro" || strings.HasPrefix(x, "opensuse"):
			return familySUSE
		}
	}
	return ""
}

// packagesFor returns the packages providing the missing executables on
// family, and the executables no package is known for.
func packagesFor(family string, missing []execCheck) (pkgs, unknown []string) {
	seen := map[string]bool{}
	for _, e := range missing {
		pkg := packageFor[family][e.Name]
		if pkg == "" {
			unknown = append(unknown, e.Name)
			continue
		}
		if !seen[pkg] {
			seen[pkg] = true
			pkgs = append(pkgs, pkg)
		}
	}
	return pkgs, unknown
}

// installCommand is how an operator installs pkgs on family, for messages.
func installCommand(family string, pkgs []string) string {
	switch family {
	case familyRHEL:
		return "dnf install -y " + strings.Join(pkgs, " ") + " (yum on older releases)"
	case familyDebian:
		return "apt-get install -y " + strings.Join(pkgs, " ")
	case familySUSE:
		return "zypper install -y " + strings.Join(pkgs, " ")
	}
	return ""
}

// longhornDepsInstallScript: $1 the family, then the packages. apt's
// package lists may be missing or stale on a node: a failed install is
// retried once after apt-get update.
const longhornDepsInstallScript = `fam=$1; shift
case $fam in
rhel)
	if command -v dnf >/dev/null 2>&1; then dnf install -y "$@"; else yum install -y "$@"; fi ;;
debian)
	DEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND
	apt-get install -y --no-install-recommends "$@" || { apt-get update && apt-get install -y --no-install-recommends "$@"; } ;;
suse)
	zypper --non-interactive install --no-recommends "$@" ;;
*)
	echo "nodefix: no package manager known for this distribution" >&2; exit 1 ;;
esac
`

// installTimeout bounds a package installation, which downloads and so
// takes longer than any other command a task runs.
func installTimeout(cfg Config) time.Duration {
	return max(cfg.CommandTimeout, 10*time.Minute)
}

// Apply implements Task.
func (LonghornDeps) Apply(ctx context.Context, node Node, host Host, cfg Config) (out Outcome) {
	executables := cfg.LonghornExecutables
	if len(executables) == 0 {
		executables = DefaultConfig().LonghornExecutables
	}
	for _, e := range executables {
		if e == "" || strings.ContainsAny(e, "/ \t\n") {
			return Failed(NameLonghornDeps, "invalid executable name %q in the longhorn-deps list: give bare names such as iscsiadm", e)
		}
	}
	d, err := gatherDeps(ctx, node, cfg, executables)
	if err != nil {
		return Failed(NameLonghornDeps, "%v", err)
	}
	out = Outcome{Task: NameLonghornDeps, Status: StatusOK, Details: d.details(), Warnings: d.warnings()}
	missing := d.missing()
	if len(missing) == 0 {
		out.Msg = strings.Join(executables, ", ") + " found and runnable"
		return out
	}
	pkgs, unknown := packagesFor(d.Family, missing)
	out.Details["missing"] = names(missing)
	out.Details["packages"] = pkgs

	if !cfg.InstallMissing || len(unknown) > 0 || len(pkgs) == 0 {
		out.Status = StatusFailed
		out.Msg = "missing: " + describeMissing(missing) + "; " + installAdvice(d, pkgs, unknown, cfg.InstallMissing)
		return out
	}
	if cfg.Check {
		out.Status, out.Changed = StatusChanged, true
		out.Msg = fmt.Sprintf("missing: %s; would install %s", describeMissing(missing), strings.Join(pkgs, " "))
		return out
	}
	args := append([]string{d.Family}, pkgs...)
	defer auditInstall(ctx, node, cfg, host.Name, pkgs, names(missing), &out)
	if _, err := runCheckedTimeout(ctx, node, installTimeout(cfg), "installing "+strings.Join(pkgs, " "), shellScript("longhorn-deps-install", longhornDepsInstallScript, args...)); err != nil {
		out.Status = StatusFailed
		out.Msg = fmt.Sprintf("missing: %s; %v", describeMissing(missing), tailLines(err.Error(), 5))
		return out
	}
	after, err := gatherDeps(ctx, node, cfg, executables)
	if err != nil {
		out.Status, out.Changed = StatusFailed, true
		out.Msg = fmt.Sprintf("installed %s; verifying failed: %v", strings.Join(pkgs, " "), err)
		return out
	}
	out.Details, out.Warnings = after.details(), after.warnings()
	out.Details["installed"] = pkgs
	out.Changed = true
	if still := after.missing(); len(still) > 0 {
		out.Status = StatusFailed
		out.Msg = fmt.Sprintf("installed %s, but still missing: %s", strings.Join(pkgs, " "), describeMissing(still))
		return out
	}
	out.Status = StatusChanged
	out.Msg = fmt.Sprintf("installed %s; %s found and runnable", strings.Join(pkgs, " "), strings.Join(executables, ", "))
	return out
}

func names(execs []execCheck) []string {
	var n []string
	for _, e := range execs {
		n = append(n, e.Name)
	}
	return n
}

func describeMissing(missing []execCheck) string {
	var parts []string
	for _, e := range missing {
		parts = append(parts, fmt.Sprintf("%s (%s)", e.Name, e.Problem))
	}
	return strings.Join(parts, ", ")
}

func installAdvice(d depsState, pkgs, unknown []string, installMissing bool) string {
	osName := d.OSName
	if osName == "" {
		osName = "this distribution (no /etc/os-release)"
	}
	var parts []string
	if len(pkgs) > 0 {
		s := fmt.Sprintf("install on %s: %s", osName, installCommand(d.Family, pkgs))
		if !installMissing {
			s += " (or rerun with --install-missing)"
		}
		parts = append(parts, s)
	}
	if len(unknown) > 0 {
		parts = append(parts, fmt.Sprintf("install the package that provides %s on %s (nodefix does not know its name there)", strings.Join(unknown, ", "), osName))
	}
	return strings.Join(parts, "; ")
}

// tailLines keeps the last n lines of a long message (a package manager's
// output), where its error is.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) <= n {
		return strings.Join(lines, " / ")
	}
	return lines[0] + " / … / " + strings.Join(lines[len(lines)-n+1:], " / ")
}

func (d depsState) details() map[string]any {
	execs := map[string]execCheck{}
	for _, e := range d.Executables {
		execs[e.Name] = e
	}
	return map[string]any{
		"os":                d.OSName,
		"os_family":         d.Family,
		"kernel":            d.Kernel,
		"executables":       execs,
		"kernel_modules":    d.Modules,
		"iscsid_running":    d.ISCSIDRunning,
		"multipathd_active": d.MultipathdActive,
	}
}

func (d depsState) warnings() []string {
	var w []string
	if !d.ISCSIDRunning {
		if d.Systemd {
			w = append(w, "iscsid is not running (neither iscsid.service nor iscsid.socket is active): Longhorn volumes cannot attach; systemctl enable --now iscsid")
		} else {
			w = append(w, "iscsid is not running: Longhorn volumes cannot attach; start iscsid")
		}
	}
	for _, m := range longhornModules {
		if d.Modules[m.name] == "missing" {
			w = append(w, fmt.Sprintf("kernel module %s is neither loaded nor available for kernel %s: %s; install the kernel's extra modules package", m.name, d.Kernel, m.purpose))
		}
	}
	if d.MultipathdActive {
		w = append(w, "multipathd is active: it is known to take over Longhorn's block devices; blacklist them (https://longhorn.io/kb/troubleshooting-volume-with-multipath)")
	}
	return w
}
