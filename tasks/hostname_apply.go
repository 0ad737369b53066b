package tasks

import (
	"context"
	"fmt"
	"strings"
)

// hostnameApplyScript renames a host in one round trip, so a connection
// lost half-way cannot leave it half renamed, and undoes what it did when
// a step fails: the old name stays intact.
//
// $1 new name, $2 old kernel name, $3 /etc/hosts path, $4 /etc/hostname
// path, $5 "hostnamectl" or "hostname", $6 set the kernel name (1/0),
// $7 write /etc/hostname (1/0), $8 write /etc/hosts (1/0), $9 /etc/hosts
// is a mount point (1/0), $10 /etc/hostname is a mount point (1/0), $11
// and $12 the audit record and syslog line of the rename, $13 and $14 those
// of a rename that failed and was undone; stdin: the new /etc/hosts.
// Prints "backup PATH" for the /etc/hosts backup. It runs as a protected
// step (runProtected): it ends renamed or as it was, whatever happens to
// the controller.
//
// A file that is a mount point (Docker, kind, k3d and some LXC bind-mount
// /etc/hosts and /etc/hostname) cannot be replaced by a rename: it is
// backed up and written in place, as Ansible's hostname module writes
// /etc/hostname. Temporary files come from mktemp: a predictable name in
// a directory others may write to is an invitation.
const hostnameApplyScript = auditFuncs + `name=$1 old=$2 hosts=$3 hostnamef=$4 method=$5 setname=$6 whostname=$7 whosts=$8 hostsmnt=$9 hostnamemnt=${10}
umask 022
th= tn= hb= backup= touched=
fail() {
	printf 'nodefix: %s\n' "$*" >&2
	[ -z "$th" ] || rm -f "$th"
	[ -z "$tn" ] || rm -f "$tn"
	[ -z "$hb" ] || rm -f "$hb"
	[ -z "$touched" ] || nf_audit "${13}" "${14}"
	exit 1
}
setkernel() {
	if command -v hostname >/dev/null 2>&1; then hostname "$1"; else printf '%s' "$1" >/proc/sys/kernel/hostname; fi
}
# put SRC DST MOUNTED: put SRC's content at DST, by rename or, on a
# mount point, in place; SRC is gone afterwards either way.
put() {
	if [ "$3" = 1 ]; then cat "$1" >"$2" && rm -f "$1"; else mv -f "$1" "$2"; fi
}
restore_hosts() {
	[ -n "$backup" ] || return 0
	r=$(mktemp "${hosts%/*}/.hosts.nodefix-restore.XXXXXX") && cp -p "$backup" "$r" && put "$r" "$hosts" "$hostsmnt" && rm -f "$backup"
}
# Stage every new file next to the one it replaces: a read-only /etc
# fails here, before anything changed.
if [ "$whosts" = 1 ]; then
	th=$(mktemp "${hosts%/*}/.hosts.nodefix.XXXXXX") || { th=; fail "cannot write a new $hosts next to it; nothing changed"; }
	if [ -e "$hosts" ]; then cp -p "$hosts" "$th" || fail "cannot write a new $hosts next to it; nothing changed"; else chmod 644 "$th"; fi
	cat >"$th" || fail "cannot write $th; nothing changed"
	if [ -e "$hosts" ]; then
		base="$hosts.nodefix-$(date +%Y%m%dT%H%M%S)"
		backup=$base n=1
		while [ -e "$backup" ]; do backup="$base.$n"; n=$((n+1)); done
		cp -p "$hosts" "$backup" || { backup=; fail "cannot back up $hosts; nothing changed"; }
	fi
fi
if [ "$method" = hostname ] && [ "$whostname" = 1 ]; then
	tn=$(mktemp "${hostnamef%/*}/.hostname.nodefix.XXXXXX") || { tn=; restore_hosts; fail "cannot write a new $hostnamef next to it; nothing changed"; }
	if [ -e "$hostnamef" ]; then cp -p "$hostnamef" "$tn"; else chmod 644 "$tn"; fi
	printf '%s\n' "$name" >"$tn" || { restore_hosts; fail "cannot write $tn; nothing changed"; }
fi
if [ "$method" = hostnamectl ] && [ -e "$hostnamef" ]; then
	hb=$(mktemp "${hostnamef%/*}/.hostname.nodefix-old.XXXXXX") || { hb=; restore_hosts; fail "cannot save $hostnamef; nothing changed"; }
	cp -p "$hostnamef" "$hb" || { restore_hosts; fail "cannot save $hostnamef; nothing changed"; }
fi
# /etc/hosts first: the new name must resolve the moment it is set (sudo
# resolves the hostname on every call).
if [ -n "$th" ]; then
	touched=1
	put "$th" "$hosts" "$hostsmnt" || { restore_hosts; fail "cannot replace $hosts; nothing changed"; }
	th=
fi
touched=1
if [ "$method" = hostnamectl ]; then
	if [ "$setname" = 1 ] || [ "$whostname" = 1 ]; then
		if ! hostnamectl set-hostname "$name"; then
			[ -z "$hb" ] || put "$hb" "$hostnamef" "$hostnamemnt"
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
		if ! put "$tn" "$hostnamef" "$hostnamemnt"; then
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
nf_audit "${11}" "${12}"
exit 0
`

// applyRename runs hostnameApplyScript and returns the /etc/hosts backup.
func applyRename(ctx context.Context, node Node, cfg Config, host string, st hostState, p hostnamePlan) (string, error) {
	var stdin []byte
	if p.WriteHosts {
		stdin = []byte(p.HostsAfter)
	}
	change := renameChange(st, p)
	what := "renaming " + st.Kernel + " to " + p.Target
	res, err := runProtected(ctx, node, cfg.CommandTimeout, "hostname-apply", hostnameApplyScript, stdin,
		p.Target, st.Kernel, st.HostsPath, st.EtcHostnamePath, p.method(),
		flag(p.SetKernel), flag(p.WriteHostname), flag(p.WriteHosts), flag(st.HostsMounted), flag(st.EtcHostnameMounted),
		auditLine(cfg, host, NameHostname, "rename", change, "changed"),
		auditSummary(cfg, NameHostname, fmt.Sprintf("renamed %s to %s", st.Kernel, p.Target)),
		auditLine(cfg, host, NameHostname, "rename", change, "failed, rolled back"),
		auditSummary(cfg, NameHostname, fmt.Sprintf("renaming %s to %s failed and was undone", st.Kernel, p.Target)))
	if err == nil && res.ExitStatus != 0 {
		err = &CommandError{What: what, ExitStatus: res.ExitStatus, Stderr: string(res.Stderr)}
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if b, ok := strings.CutPrefix(line, "backup "); ok {
			return b, nil
		}
	}
	return "", nil
}

// renameChange is the audit trail's account of a rename: each name and
// file, before and after.
func renameChange(st hostState, p hostnamePlan) map[string]any {
	c := map[string]any{"method": p.method(), "hostname": map[string]string{"old": st.Kernel, "new": p.Target}}
	if p.WriteHostname {
		c["etc_hostname"] = map[string]string{"path": st.EtcHostnamePath, "old": st.EtcHostname, "new": p.Target}
	}
	if p.WriteHosts {
		old, _ := hostsResolve(st.Hosts, p.Target)
		entry, _ := hostsResolve(p.HostsAfter, p.Target)
		c["etc_hosts"] = map[string]string{"path": st.HostsPath, "old_entry": old, "new_entry": entry}
	}
	return c
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// nfsApplyScript sets the NFS client uniquifier in one protected step
// (runProtected): the modprobe.d file that persists it (replaced
// atomically, stdin its content) and the live module parameter, with the
// audit record. $1 the modprobe.d file, $2 write it (1/0), $3 write the
// live parameter (1/0), $4 the uniquifier, $5 $6 the audit record and
// syslog line, $7 $8 those when the live parameter could not be written
// (it then applies at the next module load). Prints "param-failed" then.
const nfsApplyScript = auditFuncs + `conf=$1
umask 022
if [ "$2" = 1 ]; then
	dir=${conf%/*}
	mkdir -p -- "$dir" || exit 1
	tmp=$(mktemp "$dir/.${conf##*/}.nodefix.XXXXXX") || exit 1
	if ! { cat >"$tmp" && chmod 0644 "$tmp" && mv -f -- "$tmp" "$conf"; }; then rm -f -- "$tmp"; exit 1; fi
fi
if [ "$3" = 1 ] && ! { printf '%s' "$4" >` + nfsUniqueIDPath + `; } 2>/dev/null; then
	echo param-failed
	nf_audit "$7" "$8"
	exit 0
fi
nf_audit "$5" "$6"
exit 0
`

// applyNFSUniquifier persists the uniquifier in modprobe.d and sets the
// live module parameter when the module is loaded. A live parameter that
// cannot be written is a warning: the persisted one applies at the next
// module load.
func applyNFSUniquifier(ctx context.Context, node Node, cfg Config, host string, st hostState, p hostnamePlan) ([]string, error) {
	change := map[string]any{
		"nfs4_unique_id": map[string]string{"old": st.NFSUniqueID, "new": p.Uniquifier},
		"modprobe_conf":  map[string]any{"path": nfsModprobeConf, "old": modprobeUniqueID(st.NFSConf), "written": p.WriteNFSConf},
		"live_parameter": p.WriteNFSParam,
	}
	failedLive := map[string]any{}
	for k, v := range change {
		failedLive[k] = v
	}
	failedLive["live_parameter"] = "could not be written: applies at the next load of the nfs module"
	summary := fmt.Sprintf("set nfs4_unique_id %s (was %q)", p.Uniquifier, st.NFSUniqueID)
	res, err := runProtected(ctx, node, cfg.CommandTimeout, "nfs-unique-id", nfsApplyScript, []byte(nfsModprobeContent(p.Uniquifier)),
		nfsModprobeConf, flag(p.WriteNFSConf), flag(p.WriteNFSParam), p.Uniquifier,
		auditLine(cfg, host, NameHostname, "set nfs4_unique_id", change, "changed"), auditSummary(cfg, NameHostname, summary),
		auditLine(cfg, host, NameHostname, "set nfs4_unique_id", failedLive, "changed"), auditSummary(cfg, NameHostname, summary+" (persisted only)"))
	if err == nil && res.ExitStatus != 0 {
		err = &CommandError{What: "writing " + nfsModprobeConf, ExitStatus: res.ExitStatus, Stderr: string(res.Stderr)}
	}
	if err != nil {
		return nil, err
	}
	if strings.Contains(string(res.Stdout), "param-failed") {
		return []string{fmt.Sprintf("writing %s failed: nfs4_unique_id applies when the nfs module is next loaded", nfsUniqueIDPath)}, nil
	}
	return nil, nil
}
