package tasks

import (
	"context"
	"fmt"
	"strings"

	"github.com/nodefix/nodefix/internal/nodename"
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
		// hostnamectl replaces /etc/hostname by a rename, which a bind mount refuses.
		p.UseHostnamectl = st.Systemd && st.Hostnamectl && !st.EtcHostnameMounted
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
	if host.TargetHostname != "" && (!cfg.KeepHostname || cfg.SetNFSUniqueID) {
		// The planner validated it already; a module caller may not have.
		if err := nodename.ValidateHostname(host.TargetHostname); err != nil {
			return Failed(NameHostname, "host %s: the name from %s: %v (fix nodefix_hostname, K8S_NODENAME or k8s_nodename in the inventory)",
				host.Name, orInventory(host.TargetSource), err)
		}
	}
	// Temporary files a rename cut short on the node left (protected
	// steps finish; a node that lost power does not).
	rec, err := recoverNode(ctx, node, cfg, host.Name, NameHostname)
	if err != nil {
		// Housekeeping: the task itself can still judge and rename.
		rec.Stale = append(rec.Stale, err.Error())
	}
	before, err := gatherHostState(ctx, node, cfg)
	if err != nil {
		return Failed(NameHostname, "%v", err)
	}
	d := decideName(host, before.Identity, cfg)
	keepRequested := cfg.KeepHostname
	out := Outcome{Task: NameHostname, Status: StatusOK, Facts: before.facts(), Details: map[string]any{
		"hostname_before": before.Kernel,
	}}
	identityDetails(out.Details, host, before.Identity, d)
	out.Warnings = append(out.Warnings, rec.warnings()...)
	out.Warnings = append(out.Warnings, d.Warnings...)
	if d.Refusal != "" {
		if !cfg.KeepHostname || cfg.SetNFSUniqueID {
			out.Status, out.Msg = StatusFailed, fmt.Sprintf("host %s: %s", host.Name, d.Refusal)
			return out
		}
		// --keep-hostname renames nothing: the disagreement is news, not
		// a failure.
		out.Warnings = append(out.Warnings, d.Refusal)
		d.Target = ""
	}
	if d.Target == "" {
		if cfg.SetNFSUniqueID && d.Refusal == "" {
			out.Status, out.Msg = StatusFailed, fmt.Sprintf("host %s: %s; the NFS uniquifier is made from the node's name: set nodefix_hostname", host.Name, noNameMsg(before))
			return out
		}
		// Nothing to rename to: the task still gathers and reports.
		cfg.KeepHostname = true
	}
	target := d.Target
	plan := planHostname(before, target, cfg)
	out.Details["method"] = plan.method()
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
	okMsg := func(st hostState) string {
		switch {
		case keepRequested:
			return fmt.Sprintf("hostname %s kept (--keep-hostname)", st.Kernel)
		case d.Target == "":
			return noNameMsg(st)
		}
		return fmt.Sprintf("hostname is %s in the kernel, /etc/hostname and /etc/hosts (%s)", st.Kernel, d.Source)
	}

	// Mounts made under a name this run (or an earlier one) replaced.
	recs, _, _ := staleNFS(before.NFSState, before.NFSMounts)
	if plan.SetKernel {
		recs = recordsFor(recs, before.Kernel, before.NFSMounts)
	}

	if cfg.Check {
		out.Warnings = append(out.Warnings, nfsStaleWarnings(recs, before.NFSMounts, true)...)
		if !plan.changes() {
			out.Msg = okMsg(before)
			return out
		}
		out.Status, out.Changed = StatusChanged, true
		out.Msg = strings.Join(plan.describe(before, true), "; ")
		return out
	}

	if plan.renames() {
		backup, err := applyRename(ctx, node, cfg, host.Name, before, plan)
		if err != nil {
			out.Status = StatusFailed
			out.Msg = err.Error()
			// The script undoes its steps; say so only once it is seen.
			// hostname_after is what the host is called now, not the plan.
			delete(out.Details, "hostname_after")
			if now, gerr := gatherHostState(ctx, node, cfg); gerr == nil {
				out.Facts = now.facts()
				out.Details["hostname_after"] = now.Kernel
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
		warn, err := applyNFSUniquifier(ctx, node, cfg, host.Name, before, plan)
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
		out.Msg = okMsg(after)
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

// Identification is what the hostname task would name a host, judged
// from the inventory and the node, and the node's own identity.
type Identification struct {
	// Target is the name the task would give the host ("" none),
	// TargetSource where it came from.
	Target       string       `json:"target"`
	TargetSource string       `json:"target_source,omitempty"`
	Node         NodeIdentity `json:"node"`
	// Hostname is the host's current kernel hostname.
	Hostname string `json:"hostname"`
}

// Identify gathers and decides what the hostname task would rename host
// to, changing nothing. An error means the task would refuse the host.
func (Hostname) Identify(ctx context.Context, node Node, host Host, cfg Config) (Identification, error) {
	st, err := gatherHostState(ctx, node, cfg)
	if err != nil {
		return Identification{}, err
	}
	d := decideName(host, st.Identity, cfg)
	id := Identification{Target: d.Target, TargetSource: d.Source, Node: st.Identity, Hostname: st.Kernel}
	if d.Refusal != "" {
		return id, fmt.Errorf("host %s: %s", host.Name, d.Refusal)
	}
	return id, nil
}

// Survey is the name Identify finds: the runner asks it of the hosts the
// inventory names nothing, before any host is touched, so that the fleet
// precheck checks the names their kubelets give against every other
// host's. "" means the host would not be renamed.
func (h Hostname) Survey(ctx context.Context, node Node, host Host, cfg Config) (string, error) {
	id, err := h.Identify(ctx, node, host, cfg)
	return id.Target, err
}

// noNameMsg: neither the inventory nor the node names the host.
func noNameMsg(st hostState) string {
	return fmt.Sprintf("no node name for this host: the inventory gives none (nodefix_hostname, K8S_NODENAME, k8s_nodename) "+
		"and the node runs no kubelet; hostname %s left as it is", st.Kernel)
}

// identityDetails reports both sides of the name decision: what the
// inventory planned, what the node's kubelet says, and the outcome.
func identityDetails(details map[string]any, host Host, id NodeIdentity, d nameDecision) {
	details["target"] = d.Target
	if d.Target != "" {
		details["target_source"] = d.Source
	}
	if host.TargetHostname != "" {
		details["inventory_name"] = host.TargetHostname
		details["inventory_name_source"] = host.TargetSource
	}
	if !id.Kubelet {
		return
	}
	details["node_name"] = id.Name
	details["node_name_source"] = id.Source
	details["node_name_by"] = map[bool]string{true: "hostname", false: "override"}[id.ByHostname]
	details["node_name_evidence"] = id.Evidence
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
