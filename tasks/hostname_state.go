package tasks

import (
	"context"
	"fmt"
	"strings"
)

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
	// HostsMounted, EtcHostnameMounted: the file is a mount point (a
	// container's bind mount) and must be written in place.
	HostsMounted       bool
	EtcHostnameMounted bool
	// Identity is the node's Kubernetes identity, from its kubelet.
	Identity NodeIdentity
}

var hostnameGatherScript = `nfsmounts() { __f=1; while IFS= read -r __l; do case $__l in *' - nfs '*|*' - nfs4 '*) printf '%s\n' "$__l"; __f=0;; esac; done </proc/self/mountinfo; return $__f; }
etcmounts() { __f=1; while IFS= read -r __l; do case $__l in *' /etc/hosts '*|*' /etc/hostname '*) printf '%s\n' "$__l"; __f=0;; esac; done </proc/self/mountinfo; return $__f; }
resolve() { if [ -L "$1" ]; then readlink -f "$1"; else [ -e "$1" ] && printf '%s\n' "$1"; fi; }
s kernel cat1 /proc/sys/kernel/hostname
s etc_hostname cat1 /etc/hostname
s etc_hostname_path resolve /etc/hostname
s hosts cat1 /etc/hosts
s hosts_path resolve /etc/hosts
s systemd test -d /run/systemd/system
s hostnamectl command -v hostnamectl
s machine_id cat1 /etc/machine-id
s nfs_identifier cat1 ` + nfsIdentifierPath + `
s nfs4_unique_id cat1 ` + nfsUniqueIDPath + `
s nfs_mounts nfsmounts
s iscsi_initiator cat1 /etc/iscsi/initiatorname.iscsi
s nfs_conf cat1 ` + nfsModprobeConf + `
s nfs_state cat1 ` + nfsStatePath + `
s cloud_init test -f /etc/cloud/cloud.cfg
s cloud_cfg catn /etc/cloud/cloud.cfg /etc/cloud/cloud.cfg.d/*.cfg
s etc_mounts etcmounts
` + nodeIdentityGather

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
	if mounts := sec["etc_mounts"]; mounts.OK() {
		st.HostsMounted = isMountPoint(mounts.Content, "/etc/hosts", st.HostsPath)
		st.EtcHostnameMounted = isMountPoint(mounts.Content, "/etc/hostname", st.EtcHostnamePath)
	}
	st.Identity = parseNodeIdentity(sec["kube_procs"], sec["kube_files"], sec["kube_certs"], st.Kernel)
	if sec["cloud_init"].OK() {
		st.CloudInit = true
		cfg := sec["cloud_cfg"].Content
		st.PreserveHostname = cloudCfgBool(cfg, "preserve_hostname")
		st.ManageEtcHosts = cloudCfgBool(cfg, "manage_etc_hosts")
	}
	return st, nil
}

// isMountPoint reports whether any of paths is the mount point (the fifth
// field) of a /proc/self/mountinfo line in content.
func isMountPoint(content string, paths ...string) bool {
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		for _, p := range paths {
			if f[4] == p {
				return true
			}
		}
	}
	return false
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
