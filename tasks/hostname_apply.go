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
// is a mount point (1/0), $10 /etc/hostname is a mount point (1/0); stdin:
// the new /etc/hosts. Prints "backup PATH" for the /etc/hosts backup.
//
// A file that is a mount point (Docker, kind, k3d and some LXC bind-mount
// /etc/hosts and /etc/hostname) cannot be replaced by a rename: it is
// backed up and written in place, as Ansible's hostname module writes
// /etc/hostname. Temporary files come from mktemp: a predictable name in
// a directory others may write to is an invitation.
const hostnameApplyScript = `name=$1 old=$2 hosts=$3 hostnamef=$4 method=$5 setname=$6 whostname=$7 whosts=$8 hostsmnt=$9 hostnamemnt=${10}
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
	put "$th" "$hosts" "$hostsmnt" || { restore_hosts; fail "cannot replace $hosts; nothing changed"; }
	th=
fi
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
exit 0
`

// applyRename runs hostnameApplyScript and returns the /etc/hosts backup.
func applyRename(ctx context.Context, node Node, cfg Config, st hostState, p hostnamePlan) (string, error) {
	cmd := shellScript("hostname-apply", hostnameApplyScript,
		p.Target, st.Kernel, st.HostsPath, st.EtcHostnamePath, p.method(),
		flag(p.SetKernel), flag(p.WriteHostname), flag(p.WriteHosts), flag(st.HostsMounted), flag(st.EtcHostnameMounted))
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
