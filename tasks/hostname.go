package tasks

import (
	"context"
	"fmt"
	"strings"
)

// Hostname gives a host the OS hostname its K8S_NODENAME says (kubeasz's
// rule, derived and checked fleet-wide by the planner; see
// CheckFleetHostnames), in the kernel, /etc/hostname and /etc/hosts, and
// reports the identities that must be unique across a fleet (Facts, for
// AuditIdentities) and the NFS mounts that keep presenting an old name.
//
// Why: the NFSv4 client presents "Linux NFSv4.x <nodename>"; when every
// node is called localhost, Longhorn's share-manager (nfs-ganesha) sees one
// client that reboots all the time and RWX volumes hang.
type Hostname struct{}

// Name implements Task.
func (Hostname) Name() string { return NameHostname }

// hostState is what the hostname task gathers on a host.
type hostState struct {
	Kernel            string // /proc/sys/kernel/hostname
	EtcHostname       string // first name in /etc/hostname
	EtcHostnameExists bool
	EtcHostnamePath   string // /etc/hostname with symlinks resolved
	Hosts             string // /etc/hosts, byte for byte
	HostsExists       bool
	HostsPath         string
	Systemd           bool // /run/systemd/system: systemd is PID 1
	Hostnamectl       bool
	MachineID         string
	// NFSIdentifier is the per-network-namespace uniquifier ("" unset).
	NFSIdentifier string
	// NFSModuleLoaded: the nfs module's parameters are visible in sysfs.
	NFSModuleLoaded bool
	NFSUniqueID     string
	NFSMounts       []nfsMount
	ISCSIInitiator  string
	NFSConf         string // nfsModprobeConf's content
	NFSConfExists   bool
	NFSState        []staleRecord
	NFSStateExists  bool
	// CloudInit: cloud-init is installed; with PreserveHostname false it
	// sets the hostname from instance metadata at every boot, and with
	// ManageEtcHosts it rewrites /etc/hosts from its template.
	CloudInit        bool
	PreserveHostname bool
	ManageEtcHosts   bool
}

const hostnameGatherScript = `s kernel cat /proc/sys/kernel/hostname
s etc_hostname cat /etc/hostname
s etc_hostname_path readlink -f /etc/hostname
s hosts cat /etc/hosts
s hosts_path readlink -f /etc/hosts
s systemd test -d /run/systemd/system
s hostnamectl command -v hostnamectl
s machine_id cat /etc/machine-id
s nfs_identifier cat ` + nfsIdentifierPath + `
s nfs4_unique_id cat ` + nfsUniqueIDPath + `
s nfs_mounts grep -E ' - nfs4? ' /proc/self/mountinfo
s iscsi_initiator cat /etc/iscsi/initiatorname.iscsi
s nfs_conf cat ` + nfsModprobeConf + `
s nfs_state cat ` + nfsStatePath + `
s cloud_init test -f /etc/cloud/cloud.cfg
s cloud_cfg cat /etc/cloud/cloud.cfg /etc/cloud/cloud.cfg.d/*.cfg
`

// gatherHostState reads everything the task decides on in one round trip.
func gatherHostState(ctx context.Context, node Node, cfg Config) (hostState, error) {
	sec, err := runReport(ctx, node, cfg, "hostname-gather", "gathering hostname facts", hostnameGatherScript)
	if err != nil {
		return hostState{}, err
	}
	kernel, ok := sec["kernel"]
	if !ok || !kernel.OK() || kernel.Line() == "" {
		return hostState{}, fmt.Errorf("gathering hostname facts: cannot read /proc/sys/kernel/hostname")
	}
	st := hostState{
		Kernel:          kernel.Line(),
		EtcHostnamePath: "/etc/hostname",
		HostsPath:       "/etc/hosts",
		Systemd:         sec["systemd"].OK(),
		Hostnamectl:     sec["hostnamectl"].OK() && sec["hostnamectl"].Line() != "",
		MachineID:       sec["machine_id"].Line(),
	}
	if s := sec["etc_hostname"]; s.OK() {
		st.EtcHostnameExists = true
		st.EtcHostname = firstName(s.Content)
	}
	if s := sec["etc_hostname_path"]; s.OK() && strings.HasPrefix(s.Line(), "/") {
		st.EtcHostnamePath = s.Line()
	}
	if s := sec["hosts"]; s.OK() {
		st.HostsExists, st.Hosts = true, s.Content
	}
	if s := sec["hosts_path"]; s.OK() && strings.HasPrefix(s.Line(), "/") {
		st.HostsPath = s.Line()
	}
	if s := sec["nfs_identifier"]; s.OK() && s.Line() != "(null)" {
		st.NFSIdentifier = s.Line()
	}
	if s := sec["nfs4_unique_id"]; s.OK() {
		st.NFSModuleLoaded, st.NFSUniqueID = true, s.Line()
	}
	st.NFSMounts = parseNFSMounts(sec["nfs_mounts"].Content)
	for _, line := range strings.Split(sec["iscsi_initiator"].Content, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "InitiatorName="); ok {
			st.ISCSIInitiator = strings.TrimSpace(v)
			break
		}
	}
	if s := sec["nfs_conf"]; s.OK() {
		st.NFSConfExists, st.NFSConf = true, s.Content
	}
	if s := sec["nfs_state"]; s.OK() {
		st.NFSStateExists, st.NFSState = true, parseNFSState(s.Content)
	}
	if sec["cloud_init"].OK() {
		st.CloudInit = true
		cfg := sec["cloud_cfg"].Content
		st.PreserveHostname = cloudCfgBool(cfg, "preserve_hostname")
		st.ManageEtcHosts = cloudCfgBool(cfg, "manage_etc_hosts")
	}
	return st, nil
}

// cloudCfgBool reads a top-level boolean from cloud-init's configuration
// (cloud.cfg, then cloud.cfg.d/*.cfg in order: the last setting wins).
// manage_etc_hosts may also be "localhost", which rewrites /etc/hosts too.
func cloudCfgBool(content, key string) bool {
	val := false
	for _, line := range strings.Split(content, "\n") {
		v, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, "#")
		switch strings.ToLower(strings.Trim(strings.TrimSpace(v), `"'`)) {
		case "true", "yes", "on", "localhost", "template":
			val = true
		default:
			val = false
		}
	}
	return val
}

// firstName is the name in an /etc/hostname: its first line that is
// neither blank nor a comment (systemd allows comments there).
func firstName(content string) string {
	for _, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	return ""
}

// uniquifier is what new NFS clients will use: the per-namespace
// identifier wins over the module parameter; with the module not loaded,
// the value our modprobe.d file will give it.
func (st hostState) uniquifier() string {
	switch {
	case st.NFSIdentifier != "":
		return st.NFSIdentifier
	case st.NFSModuleLoaded:
		return st.NFSUniqueID
	default:
		return modprobeUniqueID(st.NFSConf)
	}
}

func (st hostState) facts() map[string]string {
	facts := map[string]string{
		FactHostname:      st.Kernel,
		FactNFSIdentifier: nfsIdentity(st.uniquifier(), st.Kernel),
	}
	if st.MachineID != "" {
		facts[FactMachineID] = st.MachineID
	}
	if st.ISCSIInitiator != "" {
		facts[FactISCSIInitiator] = st.ISCSIInitiator
	}
	return facts
}

// resolves reports whether name has an /etc/hosts entry.
func (st hostState) resolves(name string) bool {
	_, ok := hostsResolve(st.Hosts, name)
	return st.HostsExists && ok
}

// hostnamePlan is what the task will change on a host.
type hostnamePlan struct {
	Target         string
	SetKernel      bool
	WriteHostname  bool // /etc/hostname
	WriteHosts     bool
	HostsAfter     string
	UseHostnamectl bool

	Uniquifier     string
	WriteNFSConf   bool
	WriteNFSParam  bool
	NFSNotes       []string // why the uniquifier is or is not set
	ReplacedUnique string   // an nfs4_unique_id we are about to replace
}

// method is how the name is set: hostnamectl where systemd runs (it also
// tells systemd-hostnamed and everything listening to it), elsewhere
// (containers, other init systems) hostname(1) plus /etc/hostname.
func (p hostnamePlan) method() string {
	if p.UseHostnamectl {
		return "hostnamectl"
	}
	return "hostname"
}

func (p hostnamePlan) renames() bool { return p.SetKernel || p.WriteHostname || p.WriteHosts }

func (p hostnamePlan) changes() bool { return p.renames() || p.WriteNFSConf || p.WriteNFSParam }

func planHostname(st hostState, target string, cfg Config) hostnamePlan {
	p := hostnamePlan{Target: target}
	if !cfg.KeepHostname {
		p.SetKernel = st.Kernel != target
		p.WriteHostname = !st.EtcHostnameExists || st.EtcHostname != target
		p.HostsAfter, p.WriteHosts = planHosts(st.Hosts, st.Kernel, target, st.HostsExists)
		p.UseHostnamectl = st.Systemd && st.Hostnamectl
	}
	if cfg.SetNFSUniqueID {
		if st.NFSIdentifier != "" {
			p.NFSNotes = append(p.NFSNotes, fmt.Sprintf("%s is set (%s) and takes precedence over nfs4_unique_id: left as it is", nfsIdentifierPath, st.NFSIdentifier))
		} else {
			p.Uniquifier = nfsUniquifier(st.MachineID, target)
			p.WriteNFSConf = !st.NFSConfExists || st.NFSConf != nfsModprobeContent(p.Uniquifier)
			p.WriteNFSParam = st.NFSModuleLoaded && st.NFSUniqueID != p.Uniquifier
			if p.WriteNFSParam && st.NFSUniqueID != "" {
				p.ReplacedUnique = st.NFSUniqueID
			}
			if !st.NFSModuleLoaded {
				p.NFSNotes = append(p.NFSNotes, "the nfs module is not loaded: nfs4_unique_id applies when it loads (modprobe.d)")
			}
		}
	}
	return p
}

// describe lists the plan's changes, in the past tense or, for check
// mode, as what would change.
func (p hostnamePlan) describe(st hostState, would bool) []string {
	verb := func(done, planned string) string {
		if would {
			return planned
		}
		return done
	}
	var parts []string
	if p.SetKernel {
		parts = append(parts, fmt.Sprintf("%s %s → %s (%s)", verb("renamed", "would rename"), st.Kernel, p.Target, p.method()))
	}
	if p.WriteHostname {
		parts = append(parts, fmt.Sprintf("%s %s (was %q)", verb("wrote", "would write"), st.EtcHostnamePath, st.EtcHostname))
	}
	if p.WriteHosts {
		entry, _ := hostsResolve(p.HostsAfter, p.Target)
		parts = append(parts, fmt.Sprintf("%s %s entry %q", verb("set", "would set"), st.HostsPath, entry))
	}
	if p.WriteNFSConf || p.WriteNFSParam {
		parts = append(parts, fmt.Sprintf("%s nfs4_unique_id=%s", verb("set", "would set"), p.Uniquifier))
	}
	return parts
}

// Apply implements Task.
func (Hostname) Apply(ctx context.Context, node Node, host Host, cfg Config) Outcome {
	target := host.TargetHostname
	if !cfg.KeepHostname || cfg.SetNFSUniqueID {
		if err := validateNodeName(target); err != nil {
			return Failed(NameHostname, "host %s: target hostname: %v (fix k8s_nodename in the inventory)", host.Name, err)
		}
	}
	before, err := gatherHostState(ctx, node, cfg)
	if err != nil {
		return Failed(NameHostname, "%v", err)
	}
	plan := planHostname(before, target, cfg)
	out := Outcome{Task: NameHostname, Status: StatusOK, Facts: before.facts(), Details: map[string]any{
		"hostname_before": before.Kernel,
		"method":          plan.method(),
	}}
	if !cfg.KeepHostname {
		out.Details["hostname_after"] = target
	}
	if cfg.Diff && plan.changes() {
		out.Diff = &Diff{Before: diffText(before, before.Hosts, before.NFSConf), After: diffText(afterOf(before, plan), plan.hostsAfterOr(before), plan.nfsConfAfterOr(before))}
	}
	out.Warnings = append(out.Warnings, plan.NFSNotes...)
	if !cfg.KeepHostname {
		out.Warnings = append(out.Warnings, cloudInitWarnings(before)...)
	}
	if plan.ReplacedUnique != "" {
		out.Warnings = append(out.Warnings, fmt.Sprintf("replacing nfs4_unique_id %q, which nodefix did not set", plan.ReplacedUnique))
	}

	// Mounts made under a name this run (or an earlier one) replaced.
	recs, _, _ := staleNFS(before.NFSState, before.NFSMounts)
	if plan.SetKernel {
		recs = recordsFor(recs, before.Kernel, before.NFSMounts)
	}

	if cfg.Check {
		out.Warnings = append(out.Warnings, nfsStaleWarnings(recs, before.NFSMounts, true)...)
		if !plan.changes() {
			out.Msg = okMsg(before, cfg)
			return out
		}
		out.Status, out.Changed = StatusChanged, true
		out.Msg = strings.Join(plan.describe(before, true), "; ")
		return out
	}

	if plan.renames() {
		backup, err := applyRename(ctx, node, cfg, before, plan)
		if err != nil {
			out.Status = StatusFailed
			out.Msg = err.Error()
			// The script undoes its steps; say so only once it is seen.
			if now, gerr := gatherHostState(ctx, node, cfg); gerr == nil {
				out.Facts = now.facts()
				if now.Kernel != before.Kernel || now.EtcHostname != before.EtcHostname || now.Hosts != before.Hosts {
					out.Changed = true
					out.Msg += fmt.Sprintf("; and the old state could not be fully restored: kernel hostname %q, %s %q", now.Kernel, now.EtcHostnamePath, now.EtcHostname)
				}
			}
			return out
		}
		if backup != "" {
			out.Details["hosts_backup"] = backup
		}
	}
	renamed := plan
	renamed.WriteNFSConf, renamed.WriteNFSParam = false, false
	done := renamed.describe(before, false)
	if plan.WriteNFSConf || plan.WriteNFSParam {
		warn, err := applyNFSUniquifier(ctx, node, cfg, plan)
		if err != nil {
			out.Status = StatusFailed
			out.Msg = strings.Join(append(done, fmt.Sprintf("setting nfs4_unique_id failed: %v", err)), "; ")
			out.Changed = plan.renames()
			return out
		}
		out.Warnings = append(out.Warnings, warn...)
	}
	// Remember the mounts made under the old name for later runs; forget
	// the record once they are all gone. Neither is a change to report:
	// it is nodefix's own bookkeeping.
	switch {
	case len(recs) > 0 && (plan.SetKernel || len(recs) != len(before.NFSState)):
		if err := writeFileAtomic(ctx, node, cfg, nfsStatePath, "0644", []byte(formatNFSState(recs))); err != nil {
			out.Warnings = append(out.Warnings, fmt.Sprintf("cannot record the NFS mounts made under the old name for later runs: %v", err))
		}
	case len(recs) == 0 && before.NFSStateExists:
		if _, err := runChecked(ctx, node, cfg, "removing "+nfsStatePath, Command{Argv: []string{"rm", "-f", nfsStatePath}}); err != nil {
			out.Warnings = append(out.Warnings, err.Error())
		}
	}

	after := before
	done = plan.describe(before, false)
	if plan.changes() {
		after, err = gatherHostState(ctx, node, cfg)
		if err != nil {
			out.Status, out.Changed = StatusFailed, true
			out.Msg = fmt.Sprintf("%s; verifying failed: %v", strings.Join(done, "; "), err)
			return out
		}
		out.Facts = after.facts()
		if problems := verifyHostname(after, plan, cfg); len(problems) > 0 {
			out.Status, out.Changed = StatusFailed, true
			out.Msg = fmt.Sprintf("%s; but verifying found: %s", strings.Join(done, "; "), strings.Join(problems, "; "))
			return out
		}
	}
	out.Warnings = append(out.Warnings, nfsStaleWarnings(recs, after.NFSMounts, false)...)
	if _, affected, _ := staleNFS(recs, after.NFSMounts); len(affected) > 0 {
		out.Details["nfs_mounts_with_old_identity"] = affected
	}
	if !plan.changes() {
		out.Msg = okMsg(after, cfg)
		return out
	}
	out.Status, out.Changed = StatusChanged, true
	out.Msg = strings.Join(done, "; ")
	return out
}

// cloudInitWarnings: a rename that cloud-init undoes at the next boot is
// the incident coming back after a maintenance reboot.
func cloudInitWarnings(st hostState) []string {
	if !st.CloudInit {
		return nil
	}
	var w []string
	if !st.PreserveHostname {
		w = append(w, "cloud-init is installed without preserve_hostname: true, so it may set the hostname from instance metadata at the next boot; "+
			"add 'preserve_hostname: true' in /etc/cloud/cloud.cfg.d/99-hostname.cfg")
	}
	if st.ManageEtcHosts {
		w = append(w, "cloud-init rewrites /etc/hosts at every boot (manage_etc_hosts): the entry for this name comes from its template, not from this file")
	}
	return w
}

func okMsg(st hostState, cfg Config) string {
	if cfg.KeepHostname {
		return fmt.Sprintf("hostname %s kept (--keep-hostname)", st.Kernel)
	}
	return fmt.Sprintf("hostname is %s in the kernel, /etc/hostname and /etc/hosts", st.Kernel)
}

// nfsStaleWarnings says which mounts still present an old name.
func nfsStaleWarnings(recs []staleRecord, mounts []nfsMount, would bool) []string {
	_, affected, oldNames := staleNFS(recs, mounts)
	if len(affected) == 0 {
		return nil
	}
	verb := "keep"
	if would {
		verb = "would keep"
	}
	return []string{fmt.Sprintf("%d NFS mount(s) %s presenting the old hostname %s to their NFS server until every mount to that server "+
		"is unmounted and mounted again (scale the workloads using them down and up, or drain the node): %s",
		len(affected), verb, quoteJoin(oldNames), describeMounts(affected))}
}

func quoteJoin(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// afterOf is the state the plan leads to, for --diff.
func afterOf(st hostState, p hostnamePlan) hostState {
	if p.SetKernel {
		st.Kernel = p.Target
	}
	if p.WriteHostname {
		st.EtcHostname, st.EtcHostnameExists = p.Target, true
	}
	return st
}

func (p hostnamePlan) hostsAfterOr(st hostState) string {
	if p.WriteHosts {
		return p.HostsAfter
	}
	return st.Hosts
}

func (p hostnamePlan) nfsConfAfterOr(st hostState) string {
	if p.WriteNFSConf {
		return nfsModprobeContent(p.Uniquifier)
	}
	return st.NFSConf
}

func diffText(st hostState, hosts, nfsConf string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostname: %s\n%s: %s\n", st.Kernel, st.EtcHostnamePath, st.EtcHostname)
	fmt.Fprintf(&b, "%s:\n%s", st.HostsPath, hosts)
	if !strings.HasSuffix(hosts, "\n") {
		b.WriteString("\n")
	}
	if nfsConf != "" {
		fmt.Fprintf(&b, "%s:\n%s", nfsModprobeConf, nfsConf)
	}
	return b.String()
}

// verifyHostname reads back what the plan promised.
func verifyHostname(st hostState, p hostnamePlan, cfg Config) []string {
	var problems []string
	if !cfg.KeepHostname {
		if st.Kernel != p.Target {
			problems = append(problems, fmt.Sprintf("the kernel hostname is %q", st.Kernel))
		}
		if st.EtcHostname != p.Target {
			problems = append(problems, fmt.Sprintf("%s says %q", st.EtcHostnamePath, st.EtcHostname))
		}
		if !st.resolves(p.Target) {
			problems = append(problems, fmt.Sprintf("%s has no entry for %s", st.HostsPath, p.Target))
		}
	}
	if p.WriteNFSConf && modprobeUniqueID(st.NFSConf) != p.Uniquifier {
		problems = append(problems, fmt.Sprintf("%s does not set nfs4_unique_id=%s", nfsModprobeConf, p.Uniquifier))
	}
	return problems
}

// hostnameApplyScript renames a host in one round trip, so a connection
// lost half-way cannot leave it half renamed, and undoes what it did when
// a step fails: the old name stays intact.
//
// $1 new name, $2 old kernel name, $3 /etc/hosts path, $4 /etc/hostname
// path, $5 "hostnamectl" or "hostname", $6 set the kernel name (1/0),
// $7 write /etc/hostname (1/0), $8 write /etc/hosts (1/0); stdin: the new
// /etc/hosts. Prints "backup PATH" for the /etc/hosts backup.
const hostnameApplyScript = `name=$1 old=$2 hosts=$3 hostnamef=$4 method=$5 setname=$6 whostname=$7 whosts=$8
umask 022
th= tn= hb= backup=
fail() {
	printf 'nodefix: %s\n' "$*" >&2
	[ -z "$th" ] || rm -f "$th"
	[ -z "$tn" ] || rm -f "$tn"
	[ -z "$hb" ] || rm -f "$hb"
	exit 1
}
setkernel() {
	if command -v hostname >/dev/null 2>&1; then hostname "$1"; else printf '%s' "$1" >/proc/sys/kernel/hostname; fi
}
restore_hosts() {
	[ -n "$backup" ] || return 0
	cp -p "$backup" "$hosts.nodefix-restore.$$" && mv -f "$hosts.nodefix-restore.$$" "$hosts" && rm -f "$backup"
}
# Stage every new file next to the one it replaces: a read-only /etc
# fails here, before anything changed.
if [ "$whosts" = 1 ]; then
	th="${hosts%/*}/.hosts.nodefix.$$"
	if [ -e "$hosts" ]; then cp -p "$hosts" "$th" || fail "cannot write a new $hosts next to it; nothing changed"; fi
	cat >"$th" || fail "cannot write $th; nothing changed"
	if [ -e "$hosts" ]; then
		base="$hosts.nodefix-$(date +%Y%m%dT%H%M%S)"
		backup=$base n=1
		while [ -e "$backup" ]; do backup="$base.$n"; n=$((n+1)); done
		cp -p "$hosts" "$backup" || { backup=; fail "cannot back up $hosts; nothing changed"; }
	fi
fi
if [ "$method" = hostname ] && [ "$whostname" = 1 ]; then
	tn="${hostnamef%/*}/.hostname.nodefix.$$"
	printf '%s\n' "$name" >"$tn" || { restore_hosts; fail "cannot write $tn; nothing changed"; }
fi
if [ "$method" = hostnamectl ] && [ -e "$hostnamef" ]; then
	hb="${hostnamef%/*}/.hostname.nodefix-old.$$"
	cp -p "$hostnamef" "$hb" || { restore_hosts; fail "cannot save $hostnamef; nothing changed"; }
fi
# /etc/hosts first: the new name must resolve the moment it is set (sudo
# resolves the hostname on every call).
if [ -n "$th" ]; then
	mv -f "$th" "$hosts" || { restore_hosts; fail "cannot replace $hosts; nothing changed"; }
	th=
fi
if [ "$method" = hostnamectl ]; then
	if [ "$setname" = 1 ] || [ "$whostname" = 1 ]; then
		if ! hostnamectl set-hostname "$name"; then
			[ -z "$hb" ] || mv -f "$hb" "$hostnamef"
			hb=
			setkernel "$old"
			restore_hosts
			fail "hostnamectl set-hostname $name failed; hostname $old kept"
		fi
	fi
else
	if [ "$setname" = 1 ]; then
		setkernel "$name" || { restore_hosts; fail "setting the kernel hostname to $name failed; hostname $old kept"; }
	fi
	if [ -n "$tn" ]; then
		if ! mv -f "$tn" "$hostnamef"; then
			[ "$setname" != 1 ] || setkernel "$old"
			restore_hosts
			fail "cannot replace $hostnamef; hostname $old kept"
		fi
		tn=
	fi
fi
[ -z "$hb" ] || rm -f "$hb"
# SELinux: files renamed into /etc keep the temporary file's label.
if command -v restorecon >/dev/null 2>&1; then restorecon "$hosts" "$hostnamef" 2>/dev/null; fi
[ -z "$backup" ] || printf 'backup %s\n' "$backup"
exit 0
`

// applyRename runs hostnameApplyScript and returns the /etc/hosts backup.
func applyRename(ctx context.Context, node Node, cfg Config, st hostState, p hostnamePlan) (string, error) {
	cmd := shellScript("hostname-apply", hostnameApplyScript,
		p.Target, st.Kernel, st.HostsPath, st.EtcHostnamePath, p.method(),
		flag(p.SetKernel), flag(p.WriteHostname), flag(p.WriteHosts))
	if p.WriteHosts {
		cmd.Stdin = []byte(p.HostsAfter)
	}
	res, err := runChecked(ctx, node, cfg, "renaming "+st.Kernel+" to "+p.Target, cmd)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if b, ok := strings.CutPrefix(line, "backup "); ok {
			return b, nil
		}
	}
	return "", nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// nfsParamScript writes the live nfs4_unique_id: $1 the value.
const nfsParamScript = `printf '%s' "$1" >` + nfsUniqueIDPath + `
`

// applyNFSUniquifier persists the uniquifier in modprobe.d and sets the
// live module parameter when the module is loaded. A live parameter that
// cannot be written is a warning: the persisted one applies at the next
// module load.
func applyNFSUniquifier(ctx context.Context, node Node, cfg Config, p hostnamePlan) ([]string, error) {
	if p.WriteNFSConf {
		if err := writeFileAtomic(ctx, node, cfg, nfsModprobeConf, "0644", []byte(nfsModprobeContent(p.Uniquifier))); err != nil {
			return nil, err
		}
	}
	if p.WriteNFSParam {
		if _, err := runChecked(ctx, node, cfg, "writing "+nfsUniqueIDPath, shellScript("nfs-unique-id", nfsParamScript, p.Uniquifier)); err != nil {
			return []string{fmt.Sprintf("%v: nfs4_unique_id applies when the nfs module is next loaded", err)}, nil
		}
	}
	return nil, nil
}
