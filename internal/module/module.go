package module

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/nodefix/nodefix/tasks"
)

// Result is the one JSON object a module prints. Ansible reads changed,
// failed, skipped, msg, diff and warnings; the rest is returned to the
// playbook (register:).
type Result struct {
	Changed bool   `json:"changed"`
	Failed  bool   `json:"failed"`
	Skipped bool   `json:"skipped,omitempty"`
	Msg     string `json:"msg"`
	// Hostname is the name the node was given (or, in check mode, would
	// be given).
	Hostname string `json:"hostname,omitempty"`
	// Identification is identify's answer: the name the hostname task
	// would give the node, and the node's Kubernetes identity.
	Identification *tasks.Identification `json:"identification,omitempty"`
	// Tasks are the outcomes of the tasks that ran, in run order. Not
	// "results": Ansible reads that key as a loop's items.
	Tasks []tasks.Outcome `json:"tasks,omitempty"`
	// NotRun lists the tasks left out after a failed one: a failed task
	// stops the node, as Ansible drops a failed host.
	NotRun []string `json:"not_run,omitempty"`
	// Diff is Ansible's diff format, one entry per task with a diff.
	Diff     []DiffEntry `json:"diff,omitempty"`
	Warnings []string    `json:"warnings,omitempty"`

	// The fleet precheck's findings (fleet_names).
	Conflicts []tasks.HostnameConflict `json:"conflicts,omitempty"`
	Invalid   []tasks.InvalidHostname  `json:"invalid,omitempty"`
	// The fleet identity audit's findings (fleet_identities).
	Findings []tasks.Finding `json:"findings,omitempty"`
}

// DiffEntry is one before/after pair as Ansible's diff callback shows it.
type DiffEntry struct {
	Before       string `json:"before"`
	After        string `json:"after"`
	BeforeHeader string `json:"before_header"`
	AfterHeader  string `json:"after_header"`
}

// Main is the binary module: it reads argsFile, runs, writes the result to
// stdout and returns the exit status (1 when failed, as Ansible's reference
// binary module exits). node is where the tasks run (the local machine);
// hostName names it in messages; version is nodefix's, for the audit trail.
func Main(ctx context.Context, argsFile, version string, node tasks.Node, hostName string, stdout io.Writer) int {
	res := run(ctx, argsFile, version, node, hostName)
	if err := Write(stdout, res); err != nil {
		return 1
	}
	if res.Failed {
		return 1
	}
	return 0
}

func run(ctx context.Context, argsFile, version string, node tasks.Node, hostName string) Result {
	data, err := os.ReadFile(argsFile)
	if err != nil {
		return failed("cannot read the module arguments: %v", err)
	}
	a, err := ParseArgs(data)
	if err != nil {
		return failed("%v", err)
	}
	if err := a.auditDefaults(version, os.Getenv); err != nil {
		return failed("%v", err)
	}
	if a.FleetNames != nil {
		return CheckNames(a.FleetNames)
	}
	if a.FleetIdentities != nil {
		return AuditIdentities(a.FleetIdentities)
	}
	if a.Identify {
		return Identify(ctx, node, hostName, a)
	}
	return Run(ctx, node, hostName, a)
}

// auditDefaults fills what the play did not give for the audit trail: a
// run id of its own, the user that logged in to the node (sudo's
// SUDO_USER, else LOGNAME/USER) and the controller's address (ssh's
// SSH_CLIENT), else "unknown".
func (a *Args) auditDefaults(version string, getenv func(string) string) error {
	au := &a.Config.Audit
	if au.RunID == "" {
		id, err := tasks.NewRunID()
		if err != nil {
			return err
		}
		au.RunID = id
	}
	au.Version = version
	if au.ControllerUser == "" {
		for _, k := range []string{"SUDO_USER", "LOGNAME", "USER"} {
			if v := getenv(k); v != "" {
				au.ControllerUser = v
				break
			}
		}
	}
	if au.ControllerHost == "" {
		if f := strings.Fields(getenv("SSH_CLIENT")); len(f) > 0 {
			au.ControllerHost = f[0]
		}
	}
	for _, v := range []*string{&au.ControllerUser, &au.ControllerHost} {
		if *v == "" {
			*v = "unknown"
		}
	}
	return nil
}

// Write prints res as the single JSON object Ansible expects.
func Write(w io.Writer, res Result) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Messages carry "<cluster>" and "→": keep them readable in -v output.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		buf.Reset()
		_ = enc.Encode(failed("encoding the result: %v", err))
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func failed(format string, args ...any) Result {
	return Result{Failed: true, Msg: fmt.Sprintf(format, args...)}
}

// Run runs the selected tasks in order on node (the machine the module
// runs on). A failed task stops the node: the tasks after it do not run.
func Run(ctx context.Context, node tasks.Node, hostName string, a Args) Result {
	selected, err := tasks.Select(a.Tasks)
	if err != nil {
		return failed("argument 'tasks': %v", err)
	}
	return runTasks(ctx, node, a.host(hostName), selected, a)
}

// host is the node as the hostname task sees it.
func (a Args) host(name string) tasks.Host {
	h := tasks.Host{Name: name, TargetHostname: a.Hostname, TargetSource: a.HostnameSource, SurveyedHostname: a.ExpectedHostname}
	if h.TargetHostname != "" && h.TargetSource == "" {
		h.TargetSource = "the hostname argument"
	}
	return h
}

// Identify answers identify: what the hostname task would name the node
// (judged against its kubelet, as a run judges it), changing nothing. A
// playbook runs it on the nodes the inventory names nothing, before its
// fleet precheck. A node the task would refuse fails here already.
func Identify(ctx context.Context, node tasks.Node, hostName string, a Args) Result {
	id, err := tasks.Hostname{}.Identify(ctx, node, a.host(hostName), a.Config)
	res := Result{Identification: &id, Hostname: id.Target}
	if err != nil {
		res.Failed, res.Msg = true, err.Error()
		return res
	}
	switch {
	case id.Target == "":
		res.Msg = fmt.Sprintf("no node name: the inventory gives none and the node runs no kubelet; hostname %s stays", id.Hostname)
	default:
		res.Msg = fmt.Sprintf("node name %s (%s)", id.Target, id.TargetSource)
	}
	return res
}

func runTasks(ctx context.Context, node tasks.Node, host tasks.Host, selected []tasks.Task, a Args) Result {
	var res Result
	for i, t := range selected {
		tctx, cancel := context.WithTimeout(ctx, a.TaskTimeout)
		o := t.Apply(tctx, node, host, a.Config)
		timedOut := errors.Is(tctx.Err(), context.DeadlineExceeded)
		cancel()
		if o.Task == "" {
			o.Task = t.Name()
		}
		if timedOut && o.Status == tasks.StatusFailed {
			o.Msg = fmt.Sprintf("%s (the task ran out of its %s; raise task_timeout)", o.Msg, a.TaskTimeout)
		}
		res.Tasks = append(res.Tasks, o)
		if o.Status == tasks.StatusFailed {
			for _, rest := range selected[i+1:] {
				res.NotRun = append(res.NotRun, rest.Name())
			}
			break
		}
	}
	summarize(&res, a)
	return res
}

// summarize fills the module-level fields from the task outcomes.
func summarize(res *Result, a Args) {
	var msgs []string
	skipped := len(res.Tasks) > 0
	for _, o := range res.Tasks {
		res.Changed = res.Changed || o.Changed
		if o.Status != tasks.StatusSkipped {
			skipped = false
		}
		for _, w := range o.Warnings {
			res.Warnings = append(res.Warnings, o.Task+": "+w)
		}
		if a.Config.Diff && o.Diff != nil {
			res.Diff = append(res.Diff, DiffEntry{Before: o.Diff.Before, After: o.Diff.After, BeforeHeader: o.Task, AfterHeader: o.Task})
		}
		if o.Task == tasks.NameHostname && !a.Config.KeepHostname {
			if after, ok := o.Details["hostname_after"].(string); ok {
				res.Hostname = after
			}
		}
		if o.Status == tasks.StatusFailed {
			res.Failed = true
		}
	}
	if res.Failed {
		// The failed task's message first and alone: it is what Ansible
		// shows on the host's FAILED! line.
		last := res.Tasks[len(res.Tasks)-1]
		msgs = append(msgs, fmt.Sprintf("%s: %s", last.Task, last.Msg))
		if len(res.NotRun) > 0 {
			msgs = append(msgs, "not run after the failure: "+strings.Join(res.NotRun, ", "))
		}
	} else {
		for _, o := range res.Tasks {
			msgs = append(msgs, fmt.Sprintf("%s: %s", o.Task, o.Msg))
		}
	}
	res.Skipped = skipped && !res.Failed
	res.Msg = strings.Join(msgs, "; ")
}

// CheckNames is the fleet precheck for a playbook: every host's planned
// hostname (inventory hostname → name), checked with the same rule the
// CLI applies before a fleet run (tasks.CheckFleetHostnames). A host with
// no name is reported as invalid: a playbook puts a host in the map only
// when it is to be renamed or already owns a name.
func CheckNames(names map[string]string) Result {
	hosts := make([]tasks.Host, 0, len(names))
	for h, n := range names {
		hosts = append(hosts, tasks.Host{Name: h, TargetHostname: n})
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	err := tasks.CheckFleetHostnames(hosts)
	if err == nil {
		return Result{Msg: fmt.Sprintf("the %d planned hostnames are valid and unique", len(hosts))}
	}
	res := failed("%v", err)
	var ferr *tasks.FleetHostnameError
	if errors.As(err, &ferr) {
		res.Conflicts, res.Invalid = ferr.Conflicts, ferr.Invalid
	}
	return res
}

// AuditIdentities compares the identity facts the hostname task reported
// on every host (tasks.AuditIdentities): a value two hosts share (hostname,
// machine-id, NFS client identity, iSCSI initiator name) is a warning with
// what to do, never a failure: nothing was changed because of it.
func AuditIdentities(facts map[string]map[string]string) Result {
	findings := tasks.AuditIdentities(facts)
	res := Result{Findings: findings}
	if len(findings) == 0 {
		res.Msg = fmt.Sprintf("the identities of the %d hosts are unique", len(facts))
		return res
	}
	for _, f := range findings {
		res.Warnings = append(res.Warnings, f.String())
	}
	res.Msg = fmt.Sprintf("%d identities are shared between hosts: %s", len(findings), strings.Join(res.Warnings, "; "))
	return res
}
