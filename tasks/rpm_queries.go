package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// RPMQueries ends rpm queries that have run longer than
// Config.RPMQueryMaxAge: SIGTERM first, SIGKILL only for what survives
// Config.RPMQueryGrace. It never signals an rpm transaction, a package
// manager, anything started by one, or anything holding rpm's transaction
// lock: killing those is what breaks systems and corrupts Berkeley DB
// databases. Verify mode (rpm -V) is left alone too: it only reads, but
// `rpm -Va` legitimately runs for many minutes.
type RPMQueries struct{}

// Name implements Task.
func (RPMQueries) Name() string { return NameRPMQueries }

// killPoll is how often the ending script looks whether its targets are
// gone; killWait is how long it waits for SIGKILL to take effect.
const (
	killPoll = 200 * time.Millisecond
	killWait = 5 * time.Second
)

// queryTarget is a query to end and why.
type queryTarget struct {
	Proc *Process
	// Reason: "older than the maximum age", or the lock it holds that
	// hung queries wait behind.
	Reason string
	// Wrappers are the nsenter/timeout … processes it runs under.
	Wrappers []*Process
	// Result: what became of it (sigterm, sigkill, exited,
	// uninterruptible, survived), or "would end" in check mode.
	Result string
}

// leftHolder is a lock holder that hung queries may wait behind but that is
// not a query, so it is reported and left running.
type leftHolder struct {
	Proc *Process
	PID  int
	Kind string
	File string
}

// queryPlan is what rpm-queries decided from one listing.
type queryPlan struct {
	Targets []*queryTarget
	Left    []leftHolder
	// Protected are transactions and package managers seen (never touched).
	Protected []*Process
	// Young counts queries still within the maximum age, YoungRSS their
	// resident memory.
	Young    int
	YoungRSS int64
	// Verifying are rpm -V processes older than the maximum age, left.
	Verifying []*Process
}

// planQueries decides from one listing which processes to end.
func planQueries(snap *rpmSnapshot, maxAge time.Duration) *queryPlan {
	plan := &queryPlan{}
	txLock := map[int]bool{}
	for _, pid := range snap.transactionLockHolders() {
		txLock[pid] = true
	}
	isTransaction := func(p *Process) bool {
		if txLock[p.PID] || isPackageManager(p) {
			return true
		}
		m := classifyRPM(p.Argv)
		return m == rpmModeWrite || m == rpmModeDatabase
	}
	// protected: a transaction, or started by one (a scriptlet's rpm -q).
	protected := func(p *Process) bool {
		if isTransaction(p) {
			return true
		}
		for _, a := range snap.ancestors(p) {
			if isTransaction(a) {
				return true
			}
		}
		return false
	}
	// query: an rpm query that may be ended.
	query := func(p *Process) bool {
		return p.PID != snap.Self && p.State != 'Z' && p.State != 'X' &&
			classifyRPM(p.Argv) == rpmModeQuery && !protected(p)
	}
	targeted := map[int]bool{}
	addTarget := func(p *Process, reason string) {
		if targeted[p.PID] {
			return
		}
		targeted[p.PID] = true
		var wrapped []*Process
		for _, a := range snap.ancestors(p) {
			if !wrappers[a.Program()] {
				break
			}
			wrapped = append(wrapped, a)
		}
		plan.Targets = append(plan.Targets, &queryTarget{Proc: p, Reason: reason, Wrappers: wrapped})
	}

	for _, pid := range snap.sortedPIDs() {
		p := snap.Procs[pid]
		if p.PID == snap.Self {
			continue
		}
		if isTransaction(p) {
			plan.Protected = append(plan.Protected, p)
			continue
		}
		switch {
		case query(p) && p.Age >= maxAge:
			addTarget(p, "running longer than "+maxAge.String())
		case query(p):
			plan.Young++
			plan.YoungRSS += p.RSSBytes
		case classifyRPM(p.Argv) == rpmModeVerify && p.Age >= maxAge:
			plan.Verifying = append(plan.Verifying, p)
		}
	}
	if len(plan.Targets) == 0 {
		return plan
	}

	// Hung queries may be waiting behind whoever holds a lock others
	// cannot get past: a write lock on a database file; a lock someone
	// waits for in fcntl (shown with "->"); or a read lock on a file
	// another process holds a write lock on (sqlite's polling writers
	// never show as waiting: a reader keeping a writer from committing,
	// while the writer's pending lock keeps every new reader out, is how
	// a single stuck query wedges a rollback-journal database). A holder
	// that is a query is ended too whatever its age; anything else is
	// named and left.
	waitedFor := map[fileID]bool{}
	writers := map[fileID]map[int]bool{}
	for _, l := range snap.dbLocks() {
		switch {
		case l.Waiting:
			waitedFor[l.File] = true
		case l.Write:
			if writers[l.File] == nil {
				writers[l.File] = map[int]bool{}
			}
			writers[l.File][l.PID] = true
		}
	}
	blocks := func(l heldLock) bool {
		if l.Write || waitedFor[l.File] {
			return true
		}
		for pid := range writers[l.File] {
			if pid != l.PID {
				return true
			}
		}
		return false
	}
	seen := map[int]bool{}
	for _, l := range snap.dbLocks() {
		if l.Waiting || l.PID <= 0 || !blocks(l) || seen[l.PID] {
			continue
		}
		seen[l.PID] = true
		p, ok := snap.Procs[l.PID]
		switch {
		case !ok:
			plan.Left = append(plan.Left, leftHolder{PID: l.PID, Kind: "not visible", File: l.Name})
		case targeted[p.PID]:
		case query(p):
			if p.Age < maxAge {
				plan.Young--
				plan.YoungRSS -= p.RSSBytes
			}
			addTarget(p, "holds a lock on "+l.Name+" that hung queries wait behind")
		case isTransaction(p) || protected(p):
			plan.Left = append(plan.Left, leftHolder{Proc: p, PID: p.PID, Kind: "transaction", File: l.Name})
		default:
			plan.Left = append(plan.Left, leftHolder{Proc: p, PID: p.PID, Kind: "unknown process", File: l.Name})
		}
	}
	return plan
}

// queriesRSS is the resident memory of every query the plan counted, hung
// and young: what a pile-up costs the node, before any query is hung.
func (p *queryPlan) queriesRSS() int64 {
	rss := p.YoungRSS
	for _, tg := range p.Targets {
		rss += tg.Proc.RSSBytes
	}
	return rss
}

// endScript signals each target "pid:starttime:comm" only while that
// exact process is alive (a pid reused since the listing has another start
// time), SIGTERM first, polls until all are gone or the grace is over,
// then SIGKILLs the survivors and waits for them. It prints "term PID",
// "kill PID" or "gone PID" (already gone, not signalled). It runs as a
// protected step and appends the audit record: $3 is the record up to
// its list of queries, then one JSON fragment per target (the query up
// to its signal) after its spec, in pairs; the script adds each query's
// signal and the record's end.
//
// $1 grace steps, $2 kill steps, $3 the record's head, $4 its syslog
// line, $5 the number n of targets, then n specs, then n fragments (an
// empty one: the query is counted, not listed).
const endScript = auditFuncs + `grace_steps=$1; kill_steps=$2; head=$3; summary=$4; n=$5; shift 5
i=1 keep=
while [ "$i" -le "$n" ]; do
	eval "spec=\${$i}; frag=\${$((i+n))}"
	eval "frag_${spec%%:*}=\$frag"
	keep="$keep \"\${$i}\""
	i=$((i+1))
done
eval "set -- $keep"
same() {
	want=$2; comm=$3; s=
	read -r s < "/proc/$1/stat" 2>/dev/null || return 1
	c=${s#*\(}; c=${c%\)*}
	[ "$c" = "$comm" ] || return 1
	rest=${s##*\) }
	set -f; set -- $rest; set +f
	[ "$1" != Z ] && [ "$1" != X ] && [ "${20}" = "$want" ]
}
any_alive() {
	for spec; do
		pid=${spec%%:*}; r=${spec#*:}
		if same "$pid" "${r%%:*}" "${r#*:}"; then return 0; fi
	done
	return 1
}
for spec; do
	pid=${spec%%:*}; r=${spec#*:}
	if same "$pid" "${r%%:*}" "${r#*:}" && kill -TERM "$pid" 2>/dev/null; then
		echo "term $pid"
		eval "sig_$pid=SIGTERM"
	else
		echo "gone $pid"
	fi
done
i=0
while [ "$i" -lt "$grace_steps" ] && any_alive "$@"; do sleep 0.2; i=$((i+1)); done
for spec; do
	pid=${spec%%:*}; r=${spec#*:}
	if same "$pid" "${r%%:*}" "${r#*:}" && kill -KILL "$pid" 2>/dev/null; then echo "kill $pid"; eval "sig_$pid=SIGKILL"; fi
done
i=0
while [ "$i" -lt "$kill_steps" ] && any_alive "$@"; do sleep 0.2; i=$((i+1)); done
rec= sep= ended=
for spec; do
	pid=${spec%%:*}
	eval "f=\$frag_$pid; sig=\${sig_$pid:-}"
	[ -n "$sig" ] || continue
	ended=1
	[ -n "$f" ] || continue
	rec="$rec$sep$f$sig\"}"; sep=,
done
[ -z "$ended" ] || nf_audit "$head$rec]},\"outcome\":\"changed\"}" "$summary"
exit 0
`

// Apply implements Task.
func (t RPMQueries) Apply(ctx context.Context, node Node, host Host, cfg Config) Outcome {
	out := Outcome{Task: NameRPMQueries}
	if cfg.RPMQueryMaxAge <= 0 {
		return Failed(NameRPMQueries, "rpm query max age must be positive, got %s", cfg.RPMQueryMaxAge)
	}
	snap, err := takeSnapshot(ctx, node, cfg, dbIfRPMRuns)
	if err != nil {
		return Failed(NameRPMQueries, "%v", err)
	}
	if snap.RPMPath == "" {
		out.Status = StatusSkipped
		out.Msg = "rpm is not installed on this host (no rpm on PATH): nothing to check"
		return out
	}
	plan := planQueries(snap, cfg.RPMQueryMaxAge)
	out.Details = map[string]any{
		"max_age_seconds":     cfg.RPMQueryMaxAge.Seconds(),
		"hung_queries":        len(plan.Targets),
		"young_queries":       plan.Young,
		"queries_rss_bytes":   plan.queriesRSS(),
		"transactions":        processList(plan.Protected),
		"left_lock_holders":   holderList(plan.Left),
		"verify_left_running": processList(plan.Verifying),
	}
	for _, h := range plan.Left {
		out.Warnings = append(out.Warnings, fmt.Sprintf("hung rpm queries may be waiting behind pid %d (%s, %s) holding a lock on %s; left running",
			h.PID, h.Kind, holderCommand(h), h.File))
	}
	if len(plan.Targets) == 0 {
		out.Status = StatusOK
		out.Msg = fmt.Sprintf("no rpm query running longer than %s", cfg.RPMQueryMaxAge)
		return out
	}
	var rss int64
	for _, tg := range plan.Targets {
		rss += tg.Proc.RSSBytes
	}
	if cfg.Check {
		for _, tg := range plan.Targets {
			tg.Result = "would end"
		}
		out.Details["queries"] = targetList(plan.Targets)
		out.Details["rss_bytes"] = rss
		out.Status, out.Changed = StatusChanged, true
		out.Msg = fmt.Sprintf("would end %d hung rpm %s (%s RSS)", len(plan.Targets), plural(len(plan.Targets), "query", "queries"), humanBytes(rss))
		return out
	}
	return t.end(ctx, node, cfg, host.Name, plan, backendOf(snap), out)
}

// auditQueriesMax is how many ended queries one audit record lists; the
// record counts the others (a record is one write, see auditMaxLine).
const auditQueriesMax = 12

// queriesAuditHead is the audit record of ending plan's queries up to
// its list, and its syslog line: endScript appends the queries it
// signalled.
func queriesAuditHead(cfg Config, host string, plan *queryPlan) (string, string) {
	var rss int64
	for _, tg := range plan.Targets {
		rss += tg.Proc.RSSBytes
	}
	_, omitted := clipped(plan.Targets, auditQueriesMax)
	change := map[string]any{"hung_queries": len(plan.Targets), "rss_bytes": rss, "not_listed": omitted}
	line := auditLine(cfg, host, NameRPMQueries, "end hung queries", change, "")
	// line ends with ..."change":{...},"outcome":""}: reopen the change
	// object for the list.
	cut := strings.LastIndex(line, `},"outcome":`)
	head := line[:cut] + `,"queries":[`
	summary := auditSummary(cfg, NameRPMQueries, fmt.Sprintf("ended %d hung rpm %s (%s RSS)", len(plan.Targets), plural(len(plan.Targets), "query", "queries"), humanBytes(rss)))
	return head, summary
}

// queryAuditFragment is one query for the audit record, up to its signal:
// endScript closes it with the signal it sent. Only the first
// auditQueriesMax queries are listed.
func queryAuditFragment(tg *queryTarget) string {
	p := tg.Proc
	cmd := p.CommandLine()
	if len(cmd) > 120 {
		cmd = cmd[:120] + "…"
	}
	b, _ := json.Marshal(map[string]any{"pid": p.PID, "age_seconds": int64(p.Age.Seconds()), "rss_bytes": p.RSSBytes, "command": cmd})
	return strings.TrimSuffix(string(b), "}") + `,"signal":"`
}

// end signals the plan's targets, then lists the processes again to learn
// which are really gone.
func (RPMQueries) end(ctx context.Context, node Node, cfg Config, host string, plan *queryPlan, backend string, out Outcome) Outcome {
	graceSteps := int((max(cfg.RPMQueryGrace, 0) + killPoll - 1) / killPoll)
	killSteps := int(killWait / killPoll)
	head, summary := queriesAuditHead(cfg, host, plan)
	args := []string{strconv.Itoa(graceSteps), strconv.Itoa(killSteps), head, summary, strconv.Itoa(len(plan.Targets))}
	for _, tg := range plan.Targets {
		args = append(args, fmt.Sprintf("%d:%d:%s", tg.Proc.PID, tg.Proc.StartTicks, tg.Proc.Comm))
	}
	for i, tg := range plan.Targets {
		frag := ""
		if i < auditQueriesMax {
			frag = queryAuditFragment(tg)
		}
		args = append(args, frag)
	}
	bound := max(cfg.RPMQueryGrace, 0) + killWait + cfg.CommandTimeout
	res, err := runProtected(ctx, node, bound, "rpm-queries-end", endScript, nil, args...)
	if err != nil {
		return Failed(NameRPMQueries, "ending %d hung rpm queries: %v", len(plan.Targets), err)
	}
	if res.ExitStatus != 0 {
		return Failed(NameRPMQueries, "ending %d hung rpm queries: %v", len(plan.Targets), statusError("signal script", res))
	}
	signalled := map[int]string{}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		verb, pidText, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidText)
		if err != nil {
			continue
		}
		switch verb {
		case "term", "gone":
			signalled[pid] = verb
		case "kill":
			signalled[pid] = "kill"
		}
	}

	after, err := takeSnapshot(ctx, node, cfg, dbIfRPMRuns)
	if err != nil {
		return Failed(NameRPMQueries, "signalled %d hung rpm queries but could not list processes again to verify: %v", len(plan.Targets), err)
	}
	// The node as the run leaves it, judged as the first listing was:
	// what monitoring (--textfile) reports after a run.
	left := planQueries(after, cfg.RPMQueryMaxAge)
	out.Details["hung_queries_after"] = len(left.Targets)
	out.Details["young_queries_after"] = left.Young
	out.Details["queries_rss_bytes_after"] = left.queriesRSS()
	var termed, killed, exited int
	var freed int64
	var stuck, survived []string
	for _, tg := range plan.Targets {
		p := tg.Proc
		if now, ok := after.Procs[p.PID]; ok && now.StartTicks == p.StartTicks && now.State != 'Z' && now.State != 'X' {
			if now.State == 'D' {
				tg.Result = "uninterruptible"
				stuck = append(stuck, fmt.Sprintf("%d (%s)", p.PID, p.CommandLine()))
			} else {
				tg.Result = "survived"
				survived = append(survived, fmt.Sprintf("%d (%s)", p.PID, p.CommandLine()))
			}
			continue
		}
		switch signalled[p.PID] {
		case "term":
			tg.Result = "sigterm"
			termed++
		case "kill":
			tg.Result = "sigkill"
			killed++
		default:
			tg.Result = "exited"
			exited++
			continue
		}
		freed += p.RSSBytes
	}
	out.Details["queries"] = targetList(plan.Targets)
	out.Details["ended_sigterm"] = termed
	out.Details["ended_sigkill"] = killed
	out.Details["exited_before_signal"] = exited
	out.Details["rss_freed_bytes"] = freed
	out.Details["uninterruptible"] = len(stuck)
	if len(stuck) > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%d rpm %s in uninterruptible sleep (D) did not end: %s; the SIGKILL is pending and takes effect when the kernel call returns (look for hung storage or NFS)",
			len(stuck), plural(len(stuck), "query", "queries"), strings.Join(stuck, ", ")))
	}
	if killed > 0 && strings.HasPrefix(backend, "bdb") {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%d rpm %s needed SIGKILL; a Berkeley DB rpm database may need recovery (the rpmdb task checks it next)",
			killed, plural(killed, "query", "queries")))
	}
	ended := termed + killed
	out.Changed = ended > 0
	out.Msg = fmt.Sprintf("ended %d hung rpm %s (%d by SIGTERM, %d by SIGKILL), %s RSS freed",
		ended, plural(ended, "query", "queries"), termed, killed, humanBytes(freed))
	if exited > 0 {
		out.Msg += fmt.Sprintf("; %d exited by themselves", exited)
	}
	if len(stuck) > 0 {
		out.Msg += fmt.Sprintf("; %d left in uninterruptible sleep", len(stuck))
	}
	switch {
	case len(survived) > 0:
		out.Status = StatusFailed
		out.Msg += fmt.Sprintf("; %d still running after SIGKILL: %s", len(survived), strings.Join(survived, ", "))
	case out.Changed:
		out.Status = StatusChanged
	default:
		out.Status = StatusOK
	}
	return out
}

func processList(ps []*Process) []map[string]any {
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, map[string]any{
			"pid": p.PID, "age_seconds": int64(p.Age.Seconds()), "state": string(p.State),
			"command": p.CommandLine(),
		})
	}
	return out
}

func targetList(ts []*queryTarget) []map[string]any {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Proc.PID < ts[j].Proc.PID })
	out := make([]map[string]any, 0, len(ts))
	for _, tg := range ts {
		p := tg.Proc
		m := map[string]any{
			"pid": p.PID, "age_seconds": int64(p.Age.Seconds()), "state": string(p.State),
			"rss_bytes": p.RSSBytes, "command": p.CommandLine(), "reason": tg.Reason,
			"result": tg.Result,
		}
		if len(tg.Wrappers) > 0 {
			m["wrappers"] = processList(tg.Wrappers)
		}
		out = append(out, m)
	}
	return out
}

func holderList(hs []leftHolder) []map[string]any {
	out := make([]map[string]any, 0, len(hs))
	for _, h := range hs {
		out = append(out, map[string]any{"pid": h.PID, "kind": h.Kind, "file": h.File, "command": holderCommand(h)})
	}
	return out
}

func holderCommand(h leftHolder) string {
	if h.Proc == nil {
		return "not in this host's process table"
	}
	return h.Proc.CommandLine()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// humanBytes renders a byte count in binary units for messages.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
