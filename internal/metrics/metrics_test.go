package metrics

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/promtest"
	"github.com/nodefix/nodefix/internal/report"
	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/tasks"
)

var allTasks = []string{tasks.NameHostname, tasks.NameRPMQueries, tasks.NameRPMDB, tasks.NameLonghornDeps}

// started is 2026-11-23 10:00:00 UTC; runs take 2.5 s.
var started = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

const endedText = "1795428002.5"

func doc(command string, check bool, taskNames []string, hosts []runner.HostResult, findings ...report.Finding) report.Document {
	res := runner.Result{Start: started, Duration: 2500 * time.Millisecond, Hosts: hosts}
	return report.NewDocument(report.RunInfo{Version: "v1.2.3", Command: command, CheckMode: check, Tasks: taskNames}, res, findings)
}

// Outcomes as the tasks report them on a node broken as in the incidents:
// called localhost while its kubelet runs as worker-07, 8 hung rpm queries
// and 2 young ones, a corrupt rpm database, no iscsiadm.
func incidentOutcomes() []tasks.Outcome {
	return []tasks.Outcome{
		{Task: tasks.NameHostname, Status: tasks.StatusChanged, Changed: true,
			Details: map[string]any{"hostname_before": "localhost", "hostname_after": "worker-07", "target": "worker-07", "node_name": "worker-07", "method": "hostnamectl"},
			Facts:   map[string]string{tasks.FactHostname: "localhost", tasks.FactNFSIdentifier: "localhost"}},
		{Task: tasks.NameRPMQueries, Status: tasks.StatusChanged, Changed: true,
			Details: map[string]any{"hung_queries": 8, "young_queries": 2, "queries_rss_bytes": int64(10 * 6 << 20), "rss_bytes": int64(8 * 6 << 20)}},
		{Task: tasks.NameRPMDB, Status: tasks.StatusChanged, Changed: true,
			Details: map[string]any{"backend": "sqlite", "packages": 9, "healthy": false}},
		{Task: tasks.NameLonghornDeps, Status: tasks.StatusFailed,
			Details: map[string]any{"executables": map[string]map[string]any{
				"iscsiadm":  {"runnable": false, "problem": "not found"},
				"mount.nfs": {"path": "/sbin/mount.nfs", "runnable": true},
			}}},
	}
}

func TestRender(t *testing.T) {
	fixedOutcomes := []tasks.Outcome{
		{Task: tasks.NameHostname, Status: tasks.StatusChanged, Changed: true,
			Details: map[string]any{"hostname_before": "localhost", "hostname_after": "worker-07", "target": "worker-07", "node_name": "worker-07"},
			Facts:   map[string]string{tasks.FactHostname: "worker-07", tasks.FactNFSIdentifier: "worker-07"}},
		{Task: tasks.NameRPMQueries, Status: tasks.StatusChanged, Changed: true,
			Details: map[string]any{"hung_queries": 8, "young_queries": 2, "queries_rss_bytes": int64(60 << 20),
				"hung_queries_after": 0, "young_queries_after": 1, "queries_rss_bytes_after": int64(6 << 20)}},
		{Task: tasks.NameRPMDB, Status: tasks.StatusChanged, Changed: true,
			Details: map[string]any{"healthy": false, "healthy_after": true}},
	}
	cases := []struct {
		name   string
		doc    report.Document
		opts   Options
		want   []string // lines that must be there
		absent []string // prefixes no line may have
	}{
		{
			name: "check on the node (run --check): the incidents as found",
			doc:  doc("run", true, allTasks, []runner.HostResult{{Name: "localhost", Duration: 2 * time.Second, Outcomes: incidentOutcomes()}}),
			want: []string{
				"nodefix_last_run_timestamp_seconds " + endedText,
				"nodefix_run_duration_seconds 2",
				`nodefix_run_info{mode="check",version="v1.2.3"} 1`,
				`nodefix_task_result{task="hostname",result="ok"} 0`,
				`nodefix_task_result{task="hostname",result="changed"} 1`,
				`nodefix_task_result{task="rpmdb",result="changed"} 1`,
				`nodefix_task_result{task="longhorn-deps",result="failed"} 1`,
				`nodefix_task_result{task="longhorn-deps",result="skipped"} 0`,
				"nodefix_rpm_queries 10",
				"nodefix_rpm_hung_queries 8",
				"nodefix_rpm_queries_rss_bytes 62914560",
				"nodefix_rpmdb_healthy 0",
				"nodefix_hostname_matches_node_name 0",
				`nodefix_longhorn_executable_present{name="iscsiadm"} 0`,
				`nodefix_longhorn_executable_present{name="mount.nfs"} 1`,
				`nodefix_nfs_client_identity_info{identity="localhost"} 1`,
				"# HELP nodefix_rpm_hung_queries rpm query processes running longer than --rpm-query-max-age, as the last run left the host.",
				"# TYPE nodefix_rpm_hung_queries gauge",
			},
			absent: []string{"nodefix_host_reachable", "nodefix_fleet_duplicate_identity", `nodefix_task_result{host=`},
		},
		{
			name: "run on the node: the state the run leaves",
			doc:  doc("run", false, allTasks[:3], []runner.HostResult{{Name: "localhost", Duration: time.Second, Outcomes: fixedOutcomes}}),
			want: []string{
				`nodefix_run_info{mode="run",version="v1.2.3"} 1`,
				"nodefix_rpm_queries 1",
				"nodefix_rpm_hung_queries 0",
				"nodefix_rpm_queries_rss_bytes 6291456",
				"nodefix_rpmdb_healthy 1",
				"nodefix_hostname_matches_node_name 1",
				`nodefix_nfs_client_identity_info{identity="worker-07"} 1`,
			},
			// longhorn-deps was not selected: no series for it at all.
			absent: []string{`nodefix_task_result{task="longhorn-deps"`, "nodefix_longhorn_executable_present"},
		},
		{
			name: "a task that did not run (the host failed before it) has every result 0; skipped rpm tasks report no rpm state",
			doc: doc("check", true, allTasks, []runner.HostResult{{Name: "localhost", Outcomes: []tasks.Outcome{
				{Task: tasks.NameHostname, Status: tasks.StatusOK, Details: map[string]any{"hostname_before": "worker-07"}},
				{Task: tasks.NameRPMQueries, Status: tasks.StatusSkipped, Msg: "rpm is not installed"},
				{Task: tasks.NameRPMDB, Status: tasks.StatusFailed, Msg: "rpm reports no usable database path"},
			}}}),
			want: []string{
				`nodefix_task_result{task="rpm-queries",result="skipped"} 1`,
				`nodefix_task_result{task="rpmdb",result="failed"} 1`,
				`nodefix_task_result{task="longhorn-deps",result="ok"} 0`,
				`nodefix_task_result{task="longhorn-deps",result="changed"} 0`,
				`nodefix_task_result{task="longhorn-deps",result="failed"} 0`,
				`nodefix_task_result{task="longhorn-deps",result="skipped"} 0`,
			},
			// No node name or target is known: no hostname sample.
			absent: []string{"nodefix_rpm_", "nodefix_rpmdb_healthy", "nodefix_hostname_matches_node_name", "nodefix_longhorn_executable_present", "nodefix_nfs_client_identity_info"},
		},
		{
			name: "from the controller: a host label, reachability, and the fleet's duplicates",
			doc: doc("check", true, allTasks, []runner.HostResult{
				{Name: "node01", Duration: 3 * time.Second, Outcomes: incidentOutcomes()},
				{Name: "node02", Duration: time.Second, Outcomes: fixedOutcomes},
				{Name: "node03", Unreachable: true, Msg: "connection refused"},
			}, report.Finding{Kind: tasks.FactHostname, Value: "localhost", Hosts: []string{"node01", "node04"}},
				report.Finding{Kind: tasks.FactMachineID, Value: "5e2c", Hosts: []string{"node01", "node02", "node04"}}),
			opts: Options{HostLabel: true},
			want: []string{
				`nodefix_last_run_timestamp_seconds{host="node01"} ` + endedText,
				`nodefix_run_duration_seconds{host="node01"} 3`,
				`nodefix_run_duration_seconds{host="node02"} 1`,
				`nodefix_host_reachable{host="node01"} 1`,
				`nodefix_host_reachable{host="node03"} 0`,
				`nodefix_task_result{host="node01",task="rpmdb",result="changed"} 1`,
				`nodefix_task_result{host="node03",task="rpmdb",result="failed"} 0`,
				`nodefix_rpm_hung_queries{host="node01"} 8`,
				`nodefix_rpm_hung_queries{host="node02"} 0`,
				`nodefix_rpmdb_healthy{host="node01"} 0`,
				`nodefix_hostname_matches_node_name{host="node02"} 1`,
				`nodefix_longhorn_executable_present{host="node01",name="iscsiadm"} 0`,
				`nodefix_nfs_client_identity_info{host="node01",identity="localhost"} 1`,
				`nodefix_fleet_duplicate_identity{kind="hostname",value="localhost"} 2`,
				`nodefix_fleet_duplicate_identity{kind="machine_id",value="5e2c"} 3`,
				`nodefix_run_info{mode="check",version="v1.2.3"} 1`,
			},
			// The unreachable host was not checked: no fresh timestamp,
			// no state.
			absent: []string{`nodefix_last_run_timestamp_seconds{host="node03"}`, `nodefix_run_duration_seconds{host="node03"}`, `nodefix_rpm_hung_queries{host="node03"}`},
		},
		{
			name: "label values are escaped",
			doc: doc("check", true, []string{tasks.NameHostname}, []runner.HostResult{{Name: `n"1\`, Outcomes: []tasks.Outcome{
				{Task: tasks.NameHostname, Status: tasks.StatusOK, Facts: map[string]string{tasks.FactNFSIdentifier: "a\"b\\c\nd\xff"}},
			}}}),
			opts: Options{HostLabel: true},
			want: []string{`nodefix_nfs_client_identity_info{host="n\"1\\",identity="a\"b\\c\nd` + "\uFFFD" + `"} 1`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, c.doc, c.opts); err != nil {
				t.Fatal(err)
			}
			lines := map[string]bool{}
			for _, l := range strings.Split(buf.String(), "\n") {
				lines[l] = true
			}
			for _, w := range c.want {
				if !lines[w] {
					t.Errorf("no line %q in:\n%s", w, buf.String())
				}
			}
			for l := range lines {
				for _, a := range c.absent {
					if strings.HasPrefix(l, a) {
						t.Errorf("unexpected line %q", l)
					}
				}
			}
			promtest.CheckMetrics(t, buf.Bytes())
		})
	}
}

func TestHostnameMatches(t *testing.T) {
	cases := []struct {
		name         string
		check        bool
		details      map[string]any
		facts        map[string]string
		match, known bool
	}{
		{name: "renamed to the kubelet's name", details: map[string]any{"hostname_before": "localhost", "hostname_after": "worker-07", "node_name": "worker-07", "target": "worker-07"}, match: true, known: true},
		{name: "check mode: hostname_after is only the plan", check: true, details: map[string]any{"hostname_before": "localhost", "hostname_after": "worker-07", "target": "worker-07"}, known: true},
		{name: "check mode, already right", check: true, details: map[string]any{"hostname_before": "worker-07", "hostname_after": "worker-07", "target": "worker-07"}, match: true, known: true},
		{name: "the kubelet's name wins over the target", details: map[string]any{"hostname_before": "k8s-10-0-0-7", "node_name": "worker-07", "target": "k8s-10-0-0-7"}, known: true},
		{name: "no kubelet: the target", details: map[string]any{"hostname_before": "worker-07", "target": "worker-07"}, match: true, known: true},
		{name: "kept hostname (no hostname_after) differing from the node name", details: map[string]any{"hostname_before": "localhost", "node_name": "worker-07", "target": ""}, known: true},
		{name: "the fact (the name last read on the host) wins over a plan a failed run left", details: map[string]any{"hostname_before": "localhost", "hostname_after": "worker-07", "target": "worker-07"},
			facts: map[string]string{tasks.FactHostname: "localhost"}, known: true},
		{name: "neither node name nor target: unknown", details: map[string]any{"hostname_before": "localhost", "target": ""}},
		{name: "no hostname known: unknown", details: map[string]any{"node_name": "worker-07"}},
		{name: "a failed task without details: unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := tasks.Outcome{Task: tasks.NameHostname, Details: c.details, Facts: c.facts}
			match, known := hostnameMatches(o, c.check)
			if match != c.match || known != c.known {
				t.Errorf("match=%v known=%v, want match=%v known=%v", match, known, c.match, c.known)
			}
		})
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1: "1", 1795428002.5: "1795428002.5", 62914560: "62914560", 0.25: "0.25", 1e21: "1000000000000000000000"} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", v, got, want)
		}
	}
}
