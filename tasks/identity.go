package tasks

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nodefix/nodefix/internal/nodename"
)

// HostnameConflict is a target name that more than one host would carry.
type HostnameConflict struct {
	Name  string   `json:"name"`
	Hosts []string `json:"hosts"`
}

// InvalidHostname is a host whose target name cannot be a hostname.
type InvalidHostname struct {
	Host string `json:"host"`
	Name string `json:"name"`
	Err  string `json:"error"`
}

// FleetHostnameError is the fleet precheck's refusal: every conflicting
// and every invalid target name, so the operator fixes the inventory once.
type FleetHostnameError struct {
	Conflicts []HostnameConflict
	Invalid   []InvalidHostname
	// sources says where each host's name came from, for the message.
	sources map[string]string
}

func (e *FleetHostnameError) Error() string {
	var b strings.Builder
	b.WriteString("hostname: refusing to rename any host:")
	for _, c := range e.Conflicts {
		fmt.Fprintf(&b, "\n  hosts %s would all be named %q", strings.Join(c.Hosts, ", "), c.Name)
		var from []string
		for _, h := range c.Hosts {
			if src := e.sources[h]; src != "" {
				from = append(from, h+": "+src)
			}
		}
		if len(from) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(from, "; "))
		}
	}
	for _, in := range e.Invalid {
		fmt.Fprintf(&b, "\n  host %s: %s", in.Host, in.Err)
	}
	b.WriteString("\n  fix: give each host a unique, valid name in the inventory (nodefix_hostname, K8S_NODENAME, or k8s_nodename: " +
		"kubeasz lower-cases it and turns '_' into '-'); a host the inventory names nothing keeps the name its kubelet runs as")
	return b.String()
}

// CheckFleetHostnames is the hostname task's fleet precheck. The CLI runs
// it over every host of the inventory (not only the --limit'ed ones: a
// host outside the limit still owns its name) before any host is touched,
// and refuses the whole run when it returns an error (exit code 1). The
// hosts' names are TargetHostname (the inventory's) or, for a host the
// inventory names nothing, SurveyedHostname (its kubelet's); a host with
// neither is not renamed and owns no name. Names are validated again
// here, defensively.
//
// The error is a *FleetHostnameError naming every conflicting host and
// every invalid name.
func CheckFleetHostnames(hosts []Host) error {
	ferr := FleetHostnameError{sources: map[string]string{}}
	byName := map[string][]string{}
	for _, h := range hosts {
		name, src := h.TargetHostname, h.TargetSource
		if name == "" {
			name, src = h.SurveyedHostname, "the node's kubelet"
		}
		ferr.sources[h.Name] = src
		if err := nodename.ValidateHostname(name); err != nil {
			ferr.Invalid = append(ferr.Invalid, InvalidHostname{Host: h.Name, Name: name, Err: err.Error()})
			continue
		}
		// Hostnames compare case-insensitively in DNS; valid names are
		// lower-case already, so this only guards a planner that forgot.
		key := strings.ToLower(name)
		byName[key] = append(byName[key], h.Name)
	}
	for name, owners := range byName {
		if len(owners) > 1 {
			sort.Strings(owners)
			ferr.Conflicts = append(ferr.Conflicts, HostnameConflict{Name: name, Hosts: owners})
		}
	}
	if len(ferr.Conflicts) == 0 && len(ferr.Invalid) == 0 {
		return nil
	}
	sort.Slice(ferr.Conflicts, func(i, j int) bool { return ferr.Conflicts[i].Name < ferr.Conflicts[j].Name })
	sort.Slice(ferr.Invalid, func(i, j int) bool { return ferr.Invalid[i].Host < ferr.Invalid[j].Host })
	return &ferr
}

// Finding is one identity value shared by several hosts.
type Finding struct {
	// Kind is the Fact* constant the value came from.
	Kind  string   `json:"kind"`
	Value string   `json:"value"`
	Hosts []string `json:"hosts"`
}

// auditKinds lists the identities AuditIdentities compares, in report
// order, with what a shared value breaks and what to do about it.
var auditKinds = []struct {
	kind, label, advice string
}{
	{FactHostname, "hostname",
		"NFSv4 servers (Longhorn's share-manager) see one client that keeps rebooting; run `nodefix run --tasks hostname`"},
	{FactMachineID, "machine-id",
		"cloned VM image; on each clone: rm /etc/machine-id && systemd-machine-id-setup (or dbus-uuidgen --ensure=/etc/machine-id), then reboot"},
	{FactNFSIdentifier, "NFS client identity",
		"NFS servers cannot tell these clients apart; rename the hosts, or set a unique nfs4_unique_id (--set-nfs-unique-id)"},
	{FactISCSIInitiator, "iSCSI initiator name",
		"iSCSI targets mix up these initiators' sessions; on each clone: echo \"InitiatorName=$(iscsi-iname)\" > /etc/iscsi/initiatorname.iscsi and restart iscsid"},
}

// String is the finding as one report line.
func (f Finding) String() string {
	label, advice := f.Kind, ""
	for _, k := range auditKinds {
		if k.kind == f.Kind {
			label, advice = k.label, k.advice
		}
	}
	s := fmt.Sprintf("duplicate %s %q on hosts %s", label, f.Value, strings.Join(f.Hosts, ", "))
	if advice != "" {
		s += ": " + advice
	}
	return s
}

// AuditIdentities compares the identity facts every host reported
// (inventory hostname → Outcome.Facts of the hostname task) and returns
// each value that two or more hosts share: duplicate hostnames (the RWX
// hang), machine-ids (cloned VMs), NFS client identities and iSCSI
// initiator names. Findings come in a stable order: by kind, then value.
// The runner calls it after the run, in check mode too.
func AuditIdentities(facts map[string]map[string]string) []Finding {
	var findings []Finding
	for _, k := range auditKinds {
		owners := map[string][]string{}
		for host, f := range facts {
			if v := f[k.kind]; v != "" {
				owners[v] = append(owners[v], host)
			}
		}
		var values []string
		for v, hosts := range owners {
			if len(hosts) > 1 {
				values = append(values, v)
			}
		}
		sort.Strings(values)
		for _, v := range values {
			hosts := owners[v]
			sort.Strings(hosts)
			findings = append(findings, Finding{Kind: k.kind, Value: v, Hosts: hosts})
		}
	}
	return findings
}
