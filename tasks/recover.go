package tasks

// Recovery: what an interrupted run may leave on a node, and how the next
// run finishes or undoes it. Protected steps always run to their end, so
// what is left comes from steps the node itself cut short (power lost,
// the step killed by hand) or from between steps: a rpmdb work directory
// whose repair's controller is gone, job directories, temporary files.
// Nothing is removed that a live nodefix may hold: a work directory's
// owners (its lease, its install) and every protected step's waiter and
// script are checked by pid and start time in /proc, and a work directory
// any live process names in its arguments (a lease that has made it and
// not yet recorded itself) is held too.

import (
	"context"
	"fmt"
	"strings"
)

// recoverScript: $1 "run" (finish or undo, remove) or "check" (report
// only), $2 the rpm backup directory, then the directories that may hold
// rpmdb work directories. Prints "held PATH", "stale PATH" (check),
// "removed PATH" and "restored DB ARCHIVE" (a database an install left
// half done, put back from the backup its journal names).
const recoverScript = startFuncs + `mode=$1; bdir=$2; shift 2
held() {
	for o in "$1/.owner" "$1/.install"; do [ -s "$o" ] || continue; read -r p s <"$o"; nf_alive "$p" "$s" && return 0; done
	# A lease names its directory before it makes it and records itself
	# in it: a live process with the directory as an argument (the lease,
	# the copy, the install) holds it. The pattern is anchored, so grep's
	# own arguments do not match it.
	pat=$(printf '%s' "$1" | sed 's/[][\\.*^$]/\\&/g')
	grep -qz -- "^$pat\$" /proc/[0-9]*/cmdline 2>/dev/null
}
gone() { if [ "$mode" = run ]; then rm -rf -- "$1" && echo "removed $1"; else echo "stale $1"; fi; }
restore() {
	db=$1; archive=$2; stage=$db/.nodefix-restore
	[ "$mode" = run ] || { echo "stale half-installed $db $archive"; return 1; }
	gzip -t -- "$archive" || return 1
	rm -rf -- "$stage"
	mkdir -- "$stage" && tar -xzf "$archive" -C "$stage" || { rm -rf -- "$stage"; return 1; }
	find "$db" -mindepth 1 -maxdepth 1 ! -name .nodefix-restore -exec rm -rf -- {} + || return 1
	for f in "$stage/${db##*/}"/* "$stage/${db##*/}"/.[!.]* "$stage/${db##*/}"/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		mv -- "$f" "$db"/ || return 1
	done
	rm -rf -- "$stage"
	echo "restored $db $archive"
}
for parent; do
	for w in "$parent"/.nodefix-rpmdb.??????; do
		[ -d "$w" ] || continue
		if held "$w"; then echo "held $w"; continue; fi
		if [ -s "$w/journal" ]; then
			{ read -r db; read -r archive; } <"$w/journal"
			restore "$db" "$archive" || { echo "failed $w"; continue; }
		fi
		gone "$w"
	done
done
live=
for j in ` + jobsDir + `/job.??????; do
	[ -d "$j" ] || continue
	alive=
	for o in "$j/waiter" "$j/pid"; do [ -s "$o" ] && read -r p s <"$o" && nf_alive "$p" "$s" && alive=1; done
	if [ -n "$alive" ]; then live=1; continue; fi
	[ -s "$j/waiter" ] || [ -n "$(find "$j" -maxdepth 0 -mmin +1)" ] || { live=1; continue; }
	gone "$j"
done
[ -z "$live" ] || exit 0
for f in "$bdir"/*.tar.gz.partial /etc/.hosts.nodefix.?????? /etc/.hostname.nodefix.?????? /etc/.hostname.nodefix-old.?????? \
	/etc/.hosts.nodefix-restore.?????? /etc/modprobe.d/.nodefix-nfs.conf.nodefix.?????? ` + "/var/lib/nodefix/.nfs-old-identity.nodefix.??????" + `; do
	[ -e "$f" ] && gone "$f"
done
exit 0
`

// recovery is what recoverNode found and did.
type recovery struct {
	Removed, Stale, Held, Restored []string
}

// recoverNode finishes or undoes what an interrupted run left (check mode
// reports it, changing nothing) and appends an audit record for what it
// changed. dbParents are where rpmdb work directories live.
func recoverNode(ctx context.Context, node Node, cfg Config, host, task string, dbParents ...string) (recovery, error) {
	mode := "run"
	if cfg.Check {
		mode = "check"
	}
	var rec recovery
	res, err := runScript(ctx, node, cfg.CommandTimeout, "recover", recoverScript, append([]string{mode, cfg.RPMBackupDir}, dbParents...)...)
	if err == nil && res.ExitStatus != 0 {
		err = statusError("recovery", res)
	}
	if err != nil {
		return rec, fmt.Errorf("looking for what an interrupted run left: %w", err)
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		verb, what, _ := strings.Cut(line, " ")
		switch verb {
		case "removed":
			rec.Removed = append(rec.Removed, what)
		case "stale":
			rec.Stale = append(rec.Stale, what)
		case "held":
			rec.Held = append(rec.Held, what)
		case "restored":
			rec.Restored = append(rec.Restored, what)
		}
	}
	if len(rec.Removed)+len(rec.Restored) > 0 {
		change := map[string]any{"removed": rec.Removed, "restored_from_backup": rec.Restored}
		line := auditLine(cfg, host, task, "recover an interrupted run", change, "changed")
		summary := auditSummary(cfg, task, fmt.Sprintf("recovered an interrupted run: removed %d leftovers, restored %d half-installed databases", len(rec.Removed), len(rec.Restored)))
		if _, err := runProtected(ctx, node, cfg.CommandTimeout, "audit", auditFuncs+`nf_audit "$1" "$2"`, nil, line, summary); err != nil {
			return rec, fmt.Errorf("writing the audit record of the recovery: %w", err)
		}
	}
	return rec, nil
}

// warnings says what recoverNode found, for the outcome.
func (r recovery) warnings() []string {
	var w []string
	for _, p := range r.Restored {
		w = append(w, "an interrupted install left the rpm database half rebuilt: restored it from its backup ("+p+")")
	}
	if len(r.Removed) > 0 {
		w = append(w, "removed what an interrupted run left: "+strings.Join(r.Removed, ", "))
	}
	if len(r.Stale) > 0 {
		w = append(w, "an interrupted run left: "+strings.Join(r.Stale, ", ")+" (a run finishes or removes it)")
	}
	if len(r.Held) > 0 {
		w = append(w, "another nodefix is repairing this node's rpm database ("+strings.Join(r.Held, ", ")+")")
	}
	return w
}
