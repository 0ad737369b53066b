package tasks

// Protected steps: the node-side scripts that change a node in several
// steps (a rename, the install of a rebuilt rpm database, the NFS
// uniquifier, ending queries) run detached from the command's session,
// so that they finish — or undo themselves — whatever happens to the
// controller: SIGKILLed, its connection dropped, or Ctrl-C (which ends
// every process of a command's session; see the ssh transport).
//
// The command nodefix runs is a waiter: it makes a job directory under
// jobsDir, starts the script there in a session of its own (setsid) with
// its stdin, stdout and stderr in files, waits for it and passes its
// output and exit status on. A waiter that dies leaves the script
// running; the script then removes its own job directory when it ends,
// and the next run removes any job directory whose waiter and script are
// both gone (recoverScript), proven by pid and start time in /proc.

import (
	"context"
	"time"
)

// jobsDir holds one directory per protected step in progress.
const jobsDir = "/var/lib/nodefix/jobs"

// protectMarker is the second line of a protected command's script: test
// fakes recognise it (the body comes first in its arguments).
const protectMarker = "# nodefix-protected"

// startFuncs define nf_start PID (print the process's start time in clock
// ticks since boot, field 22 of /proc/PID/stat; fail when it is gone) and
// nf_alive "PID START" (that very process runs). The command name may
// hold spaces and parentheses: fields are counted after its last ')'.
const startFuncs = `nf_start() { read -r __s <"/proc/$1/stat" 2>/dev/null || return 1; __s=${__s##*) }; set -f; set -- $__s; set +f; [ "$1" != Z ] && printf "%s" "${20}"; }
nf_alive() { [ -n "$1" ] && [ -n "$2" ] && [ "$(nf_start "$1")" = "$2" ]; }
`

// protectJob is what runs in the detached session: $1 the job directory,
// $2 the script, then its arguments.
//
// It holds no single quote: protectWrapper quotes it.
const protectJob = startFuncs + `job=$1; body=$2; shift 2
printf "%s %s\n" "$$" "$(nf_start $$)" >"$job/pid"
sh -c "$body" nodefix "$@" <"$job/in" >"$job/out" 2>"$job/err"
echo $? >"$job/rc"
: >"$job/done"
# Nobody waits any more (the controller is gone): nobody will read the
# result, and the directory goes.
read -r wp ws <"$job/waiter" 2>/dev/null
nf_alive "$wp" "$ws" || rm -rf -- "$job"
`

// protectWrapper is the waiter: $1 the script, then its arguments; its
// stdin becomes the script's. Exit 125: the step could not be started or
// ended without a status.
const protectWrapper = protectMarker + `
` + startFuncs + `body=$1; shift
umask 077
mkdir -p -- ` + jobsDir + ` || { echo "nodefix: cannot create ` + jobsDir + `: the step did not start; nothing changed" >&2; exit 125; }
job=$(mktemp -d ` + jobsDir + `/job.XXXXXX) || { echo "nodefix: cannot make a job directory in ` + jobsDir + `: the step did not start; nothing changed" >&2; exit 125; }
printf '%s %s\n' "$$" "$(nf_start $$)" >"$job/waiter"
cat >"$job/in"
job_script='` + protectJob + `'
if command -v setsid >/dev/null 2>&1; then
	setsid sh -c "$job_script" nodefix-job "$job" "$body" "$@" </dev/null >/dev/null 2>&1 &
else
	# Without setsid the step still outlives a lost connection (no
	# terminal, no output to a closed pipe), not a Ctrl-C.
	sh -c "$job_script" nodefix-job "$job" "$body" "$@" </dev/null >/dev/null 2>&1 &
fi
wait $!
while [ ! -e "$job/done" ]; do
	if [ -s "$job/pid" ]; then
		read -r p s <"$job/pid"
		if ! nf_alive "$p" "$s" && [ ! -e "$job/done" ]; then
			echo "nodefix: the protected step ended without a status" >&2
			rm -rf -- "$job"
			exit 125
		fi
	fi
	sleep 0.1 2>/dev/null || sleep 1
done
cat -- "$job/out"
cat -- "$job/err" >&2
read -r rc <"$job/rc"
rm -rf -- "$job"
exit "${rc:-125}"
`

// protectedScript is shellScript for a protected step: body runs
// detached, with args and the command's stdin.
func protectedScript(tag, body string, args ...string) Command {
	return shellScript(tag, protectWrapper, append([]string{body}, args...)...)
}

// runProtected runs a protected step bounded by d. When d runs out (or
// ctx ends) the waiter is ended and the step itself goes on to its end.
func runProtected(ctx context.Context, node Node, d time.Duration, tag, body string, stdin []byte, args ...string) (Result, error) {
	cmd := protectedScript(tag, body, args...)
	cmd.Stdin = stdin
	return runCommandTimeout(ctx, node, d, tag, cmd)
}
