// Package metrics renders a nodefix run for Prometheus: node_exporter's
// textfile collector reads the file nodefix check --textfile writes, so
// the monitoring a cluster already has sees a hung rpm query, a broken rpm
// database or a wrong hostname at the next check, long before the
// incidents grow (DESIGN.md).
//
// The metrics are another rendering of the run's JSON document
// (report.Document), and a task's details are read as that document shows
// them: the JSON report is their public form.
//
// The text exposition format is written by hand: it is a few lines of
// escaping, and the Prometheus client library would bring protobuf and its
// data model into a static binary that runs on every node. Tests check the
// output with the real promtool and a real node_exporter.
package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/nodefix/nodefix/internal/report"
	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/tasks"
)

// Options shape the rendering.
type Options struct {
	// HostLabel adds host="<inventory name>" to every host's series: a
	// controller's run over an inventory. A run on the node itself
	// (--connection local) leaves it out; node_exporter's instance
	// already names the node.
	HostLabel bool
}

// taskResults are the task results nodefix_task_result has a series for.
var taskResults = []tasks.Status{tasks.StatusOK, tasks.StatusChanged, tasks.StatusFailed, tasks.StatusSkipped}

// family is one metric with its HELP and TYPE lines.
type family struct {
	name, help, typ string
	samples         []sample
}

type sample struct {
	labels []label
	value  float64
}

type label struct{ name, value string }

// Families, in the order the file lists them.
const (
	mLastRun       = "nodefix_last_run_timestamp_seconds"
	mDuration      = "nodefix_run_duration_seconds"
	mRunInfo       = "nodefix_run_info"
	mReachable     = "nodefix_host_reachable"
	mTaskResult    = "nodefix_task_result"
	mRPMQueries    = "nodefix_rpm_queries"
	mRPMHung       = "nodefix_rpm_hung_queries"
	mRPMRSS        = "nodefix_rpm_queries_rss_bytes"
	mRPMDBHealthy  = "nodefix_rpmdb_healthy"
	mHostnameMatch = "nodefix_hostname_matches_node_name"
	mLonghornExec  = "nodefix_longhorn_executable_present"
	mNFSIdentity   = "nodefix_nfs_client_identity_info"
	mFleetDup      = "nodefix_fleet_duplicate_identity"
)

func newFamilies() []*family {
	g := func(name, help string) *family { return &family{name: name, help: help, typ: "gauge"} }
	return []*family{
		g(mLastRun, "When the last complete nodefix check or run of this host ended, in seconds since the epoch."),
		g(mDuration, "How long the last nodefix check or run took on this host, in seconds."),
		g(mRunInfo, "The last nodefix run: its mode (check: nothing changed; run) and nodefix's version; always 1."),
		g(mReachable, "1 when the controller's last run reached the host, 0 when it was unreachable."),
		g(mTaskResult, "1 for the result each task had in the last run (ok, changed, failed, skipped), 0 for the others; in check mode changed means it would change. All 0: the task did not run."),
		g(mRPMQueries, "rpm query processes running on the host (hung and young), as the last run left it."),
		g(mRPMHung, "rpm query processes running longer than --rpm-query-max-age, as the last run left the host."),
		g(mRPMRSS, "Resident memory of the rpm query processes running on the host, in bytes, as the last run left it."),
		g(mRPMDBHealthy, "1 when the rpm database opens and verifies (rpm -qa, rpm --verifydb), 0 when it does not, as the last run left it."),
		g(mHostnameMatch, "1 when the OS hostname is the node's Kubernetes node name (the kubelet's, else the name nodefix plans), 0 when it differs."),
		g(mLonghornExec, "1 when an executable Longhorn needs is on PATH and runs, 0 when it is missing or broken."),
		g(mNFSIdentity, "The identity this host's NFSv4 client presents to servers; always 1. Two hosts with one identity hang Longhorn RWX volumes."),
		g(mFleetDup, "How many hosts share one identity value (kind: hostname, machine_id, nfs_client_identifier, iscsi_initiator_name); only values two or more hosts share."),
	}
}

// Render writes the run in the text exposition format, one family after
// another, hosts in name order.
func Render(w io.Writer, doc report.Document, opts Options) error {
	fams := newFamilies()
	byName := map[string]*family{}
	for _, f := range fams {
		byName[f.name] = f
	}
	add := func(name string, v float64, labels ...label) {
		byName[name].samples = append(byName[name].samples, sample{labels: labels, value: v})
	}

	ended := float64(doc.Started.UnixNano())/1e9 + doc.Duration
	mode := "run"
	if doc.Nodefix.CheckMode {
		mode = "check" // nodefix check, or run --check
	}
	add(mRunInfo, 1, label{"mode", mode}, label{"version", doc.Nodefix.Version})

	hosts := make([]string, 0, len(doc.Hosts))
	for name := range doc.Hosts {
		hosts = append(hosts, name)
	}
	sort.Strings(hosts)
	for _, name := range hosts {
		h := doc.Hosts[name]
		var host []label
		if opts.HostLabel {
			host = []label{{"host", name}}
		}
		with := func(more ...label) []label { return append(append([]label(nil), host...), more...) }

		if opts.HostLabel {
			reached := 1.0
			if h.Status == runner.HostUnreachable {
				reached = 0
			}
			add(mReachable, reached, with()...)
		}
		// A host the run could not check has no fresh results: no
		// timestamp, so that staleness alerts see it.
		if h.Status != runner.HostUnreachable {
			add(mLastRun, ended, with()...)
			add(mDuration, h.Duration, with()...)
		}

		outcomes := map[string]tasks.Outcome{}
		for _, o := range h.Tasks {
			outcomes[o.Task] = o
		}
		for _, task := range doc.Nodefix.Tasks {
			o, ran := outcomes[task]
			for _, r := range taskResults {
				add(mTaskResult, b2f(ran && o.Status == r), with(label{"task", task}, label{"result", string(r)})...)
			}
		}

		if o, ok := outcomes[tasks.NameRPMQueries]; ok {
			d := detailsOf(o)
			if n, ok := afterOr(d, "hung_queries"); ok {
				add(mRPMHung, n, with()...)
				if young, ok := afterOr(d, "young_queries"); ok {
					add(mRPMQueries, n+young, with()...)
				}
			}
			if rss, ok := afterOr(d, "queries_rss_bytes"); ok {
				add(mRPMRSS, rss, with()...)
			}
		}
		if o, ok := outcomes[tasks.NameRPMDB]; ok {
			d := detailsOf(o)
			healthy, ok := d["healthy_after"].(bool)
			if !ok {
				healthy, ok = d["healthy"].(bool)
			}
			if ok {
				add(mRPMDBHealthy, b2f(healthy), with()...)
			}
		}
		if o, ok := outcomes[tasks.NameHostname]; ok {
			if match, known := hostnameMatches(o, doc.Nodefix.CheckMode); known {
				add(mHostnameMatch, b2f(match), with()...)
			}
			if id := o.Facts[tasks.FactNFSIdentifier]; id != "" {
				add(mNFSIdentity, 1, with(label{"identity", id})...)
			}
		}
		if o, ok := outcomes[tasks.NameLonghornDeps]; ok {
			execs, _ := detailsOf(o)["executables"].(map[string]any)
			names := make([]string, 0, len(execs))
			for n := range execs {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				e, _ := execs[n].(map[string]any)
				runnable, _ := e["runnable"].(bool)
				add(mLonghornExec, b2f(runnable), with(label{"name", n})...)
			}
		}
	}
	for _, f := range doc.Fleet.Findings {
		add(mFleetDup, float64(len(f.Hosts)), label{"kind", f.Kind}, label{"value", f.Value})
	}

	var buf bytes.Buffer
	for _, f := range fams {
		if len(f.samples) == 0 {
			continue
		}
		fmt.Fprintf(&buf, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.typ)
		for _, s := range f.samples {
			buf.WriteString(f.name)
			if len(s.labels) > 0 {
				buf.WriteByte('{')
				for i, l := range s.labels {
					if i > 0 {
						buf.WriteByte(',')
					}
					fmt.Fprintf(&buf, "%s=\"%s\"", l.name, escapeLabel(l.value))
				}
				buf.WriteByte('}')
			}
			buf.WriteByte(' ')
			buf.WriteString(formatValue(s.value))
			buf.WriteByte('\n')
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// hostnameMatches compares the host's hostname as the run leaves it with
// its node name: the kubelet's (node_name) where the node has a kubelet,
// else the name the hostname task gives the host (target). known is false
// when either is unknown.
func hostnameMatches(o tasks.Outcome, check bool) (match, known bool) {
	d := detailsOf(o)
	str := func(k string) string { s, _ := d[k].(string); return s }
	want := str("node_name")
	if want == "" {
		want = str("target")
	}
	// The hostname fact is what the task last read on the host. Without
	// it: in check mode hostname_after is only the plan, so the host is
	// still called hostname_before; a run leaves hostname_after.
	current := o.Facts[tasks.FactHostname]
	if current == "" && !check {
		current = str("hostname_after")
	}
	if current == "" {
		current = str("hostname_before")
	}
	if want == "" || current == "" {
		return false, false
	}
	return current == want, true
}

// detailsOf returns a task's details as the JSON report shows them:
// numbers as float64, structs as maps.
func detailsOf(o tasks.Outcome) map[string]any {
	if len(o.Details) == 0 {
		return nil
	}
	b, err := json.Marshal(o.Details)
	if err != nil {
		// The JSON report marshals the same values; a task that put in
		// something JSON cannot hold gets no metrics from its details.
		return nil
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		return nil
	}
	return d
}

// afterOr reads key+"_after" (the state a run left) or, when the task did
// not act, key (the state it found).
func afterOr(d map[string]any, key string) (float64, bool) {
	if v, ok := d[key+"_after"].(float64); ok {
		return v, true
	}
	v, ok := d[key].(float64)
	return v, ok
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// escapeHelp escapes a HELP text: backslash and line feed.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// escapeLabel escapes a label value: backslash, double quote and line
// feed. Values are UTF-8 (identities and names read on hosts); invalid
// bytes become U+FFFD, as the format admits nothing else.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

// formatValue writes integers without an exponent (a timestamp reads as
// one) and other numbers in their shortest exact form.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
