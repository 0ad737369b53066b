package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/promtest"
	"github.com/nodefix/nodefix/internal/testfleet"
	"github.com/nodefix/nodefix/tasks"
)

// The incidents seen the way an operator sees them: nodefix check
// --textfile, a real node_exporter's textfile collector, a scrape over
// loopback, and the alert rules evaluated by promtool on what was scraped.
//
// Every node of the fleet is called localhost (the RWX hang); node02 has 8
// hung rpm queries and a corrupt rpm database. The checks run from the
// controller (one file, a host label per host) and on node01 and node02
// themselves (--connection local, each read by a node_exporter running
// inside that node, so that node_uname_info carries the node's own name).
func TestMonitorIncidentsThroughNodeExporter(t *testing.T) {
	promtest.RequireTools(t, promtest.Promtool, promtest.NodeExporter)
	f := testfleet.New(t, testfleet.Options{Nodes: 3, Hostname: func(int) string { return "localhost" }})
	ctx := context.Background()
	node01, node02 := f.Nodes[0], f.Nodes[1]

	if err := node02.CorruptRPMDB(ctx); err != nil {
		t.Fatal(err)
	}
	// Eight rpm queries whose output nobody reads: each blocks writing to
	// a pipe and never ends, as a hung query does.
	if _, err := node02.Sh(ctx, `mkfifo /run/nodefix-hung-queries
sleep 86400 </run/nodefix-hung-queries >/dev/null 2>&1 &
for i in 1 2 3 4 5 6 7 8; do
	rpm -qa --qf '%{NAME}%-70000{VERSION}\n' >/run/nodefix-hung-queries 2>/dev/null </dev/null &
done`); err != nil {
		t.Fatal(err)
	}
	// --rpm-query-max-age 1s below: let them be older than that.
	time.Sleep(1500 * time.Millisecond)

	// /tmp is the machine's own inside the nodes: one directory serves all.
	dir := t.TempDir()
	textfileDir := func(name string) string {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	ctrlDir, dir01, dir02 := textfileDir("controller"), textfileDir("node01"), textfileDir("node02")

	r := nodefix(t, "check", "-i", f.InventoryYAML, "--rpm-query-max-age", "1s", "--json", "--textfile", filepath.Join(ctrlDir, "nodefix.prom"))
	if r.code != exitcode.OK {
		t.Fatalf("nodefix check from the controller: exit %d, want 0", r.code)
	}
	// node02's inventory names it (k8s_nodename worker-02) and it has no
	// kubelet: the hostname task's target, which its hostname is not.
	if target := hostnameTarget(t, r.stdout, "node02"); target != "worker-02" {
		t.Errorf("node02: hostname target %q, want worker-02", target)
	}
	bin := nodefixBinary(t)
	for _, c := range []struct {
		node *testfleet.Node
		dir  string
	}{{node01, dir01}, {node02, dir02}} {
		res, err := c.node.Run(ctx, tasks.Command{Argv: []string{bin, "check", "--connection", "local", "-e", "k8s_nodename=" + c.node.K8sNodename,
			"--rpm-query-max-age", "1s", "--textfile", filepath.Join(c.dir, "nodefix.prom")}})
		if err != nil || res.ExitStatus != 0 {
			t.Fatalf("nodefix check --connection local on %s: %v, exit %d\n%s%s", c.node.Name, err, res.ExitStatus, res.Stdout, res.Stderr)
		}
	}

	for _, d := range []string{ctrlDir, dir01, dir02} {
		data, err := os.ReadFile(filepath.Join(d, "nodefix.prom"))
		if err != nil {
			t.Fatal(err)
		}
		promtest.CheckMetrics(t, data)
	}

	ctrlAddr := startNodeExporter(t, ctrlDir, nil)
	addr01 := startNodeExporter(t, dir01, node01)
	addr02 := startNodeExporter(t, dir02, node02)
	ctrl, local01, local02 := scrape(t, ctrlAddr), scrape(t, addr01), scrape(t, addr02)

	// The three incidents, from the controller's file, per host.
	ctrl.want(t, 8, "nodefix_rpm_hung_queries", "host", "node02")
	ctrl.want(t, 8, "nodefix_rpm_queries", "host", "node02")
	ctrl.want(t, 0, "nodefix_rpm_hung_queries", "host", "node01")
	ctrl.want(t, 0, "nodefix_rpmdb_healthy", "host", "node02")
	ctrl.want(t, 1, "nodefix_rpmdb_healthy", "host", "node03")
	ctrl.want(t, 0, "nodefix_hostname_matches_node_name", "host", "node02")
	ctrl.want(t, 3, "nodefix_fleet_duplicate_identity", "kind", "hostname", "value", "localhost")
	ctrl.want(t, 1, "nodefix_task_result", "host", "node02", "task", "rpm-queries", "result", "changed")
	ctrl.want(t, 1, "nodefix_task_result", "host", "node02", "task", "rpmdb", "result", "changed")
	ctrl.want(t, 1, "nodefix_host_reachable", "host", "node03")
	ctrl.want(t, 0, "node_textfile_scrape_error")

	// The same from the node itself, without a host label; node_exporter's
	// own node_uname_info shows the duplicate name with no nodefix at all.
	local02.want(t, 8, "nodefix_rpm_hung_queries")
	local02.want(t, 0, "nodefix_rpmdb_healthy")
	local02.want(t, 0, "nodefix_hostname_matches_node_name")
	if rss := local02.value(t, "nodefix_rpm_queries_rss_bytes"); rss <= 0 {
		t.Errorf("nodefix_rpm_queries_rss_bytes %v on node02, want the hung queries' memory", rss)
	}
	local02.want(t, 1, "node_uname_info", "nodename", "localhost")
	local02.want(t, 0, "node_textfile_scrape_error")
	local01.want(t, 0, "nodefix_rpm_hung_queries")
	local01.want(t, 1, "nodefix_rpmdb_healthy")
	local01.want(t, 1, "node_uname_info", "nodename", "localhost")
	for _, s := range append(local01.samples, local02.samples...) {
		if _, ok := s.labels["host"]; ok && strings.HasPrefix(s.name, "nodefix_") {
			t.Errorf("a local check's metric carries a host label: %s", s.series)
		}
	}
	identity := local02.label(t, "nodefix_nfs_client_identity_info", "identity")

	// The alert rules, on what was scraped.
	rules, err := filepath.Abs("../../deploy/prometheus/nodefix-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	alert := func(name string, labels ...string) string {
		l := append([]string{"alertname", name, "alertstate", "firing"}, labels...)
		return seriesText("ALERTS", pairs(l...))
	}
	on := func(addr string, labels ...string) []string {
		return append([]string{"instance", addr, "job", "node"}, labels...)
	}
	// Every host is called localhost, not its name: from the controller
	// (3) and from two nodes.
	hostnameAlerts := alertTest{expr: `count(ALERTS{alertname="NodefixHostnameNotNodeName"})`, want: []string{"{}"}, value: 5}
	checkAlerts(t, rules, map[string][]*exposition{ctrlAddr: {ctrl}, addr01: {local01}, addr02: {local02}}, []alertTest{
		{expr: `ALERTS{alertname="NodefixRPMQueriesHung"}`, want: []string{
			alert("NodefixRPMQueriesHung", append(on(ctrlAddr, "host", "node02"), "severity", "warning")...),
			alert("NodefixRPMQueriesHung", append(on(addr02), "severity", "warning")...)}},
		{expr: `ALERTS{alertname="NodefixRPMQueriesPilingUp"}`, want: []string{
			alert("NodefixRPMQueriesPilingUp", append(on(ctrlAddr, "host", "node02"), "severity", "critical")...),
			alert("NodefixRPMQueriesPilingUp", append(on(addr02), "severity", "critical")...)}},
		{expr: `ALERTS{alertname="NodefixRPMDBBroken"}`, want: []string{
			alert("NodefixRPMDBBroken", append(on(ctrlAddr, "host", "node02"), "severity", "critical")...),
			alert("NodefixRPMDBBroken", append(on(addr02), "severity", "critical")...)}},
		{expr: `ALERTS{alertname="NodefixDuplicateIdentity",kind="hostname"}`, want: []string{
			alert("NodefixDuplicateIdentity", append(on(ctrlAddr, "kind", "hostname", "value", "localhost"), "severity", "critical")...)}},
		{expr: `ALERTS{alertname="NodefixDuplicateNFSClientIdentity"}`, want: []string{
			alert("NodefixDuplicateNFSClientIdentity", "identity", identity, "severity", "critical")}},
		{expr: `ALERTS{alertname="NodeDuplicateNodename"}`, want: []string{
			alert("NodeDuplicateNodename", "nodename", "localhost", "severity", "critical")}},
		hostnameAlerts,
		{expr: `ALERTS{alertname="NodefixTaskFailed"}`},
	})
}

// hostnameTarget reads from a --json document the name the hostname task
// gives host (details target).
func hostnameTarget(t *testing.T, stdout, host string) string {
	t.Helper()
	var doc struct {
		Hosts map[string]struct {
			Tasks []struct {
				Task    string         `json:"task"`
				Details map[string]any `json:"details"`
			} `json:"tasks"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	for _, o := range doc.Hosts[host].Tasks {
		if o.Task == tasks.NameHostname {
			target, _ := o.Details["target"].(string)
			return target
		}
	}
	t.Fatalf("--json: no hostname task on %s", host)
	return ""
}

// startNodeExporter runs Debian's node_exporter on a free loopback port,
// reading textfiles from dir: inside node when one is given (its
// namespaces; the nodes share this machine's network), else here. The
// collectors beyond textfile and uname are off: they need more of the
// machine than a test should depend on.
func startNodeExporter(t *testing.T, dir string, node *testfleet.Node) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	argv := []string{promtest.NodeExporter, "--web.listen-address=" + addr, "--collector.disable-defaults",
		"--collector.textfile", "--collector.textfile.directory=" + dir, "--collector.uname", "--web.disable-exporter-metrics"}
	if node != nil {
		// The node's init ends it with the node.
		if _, err := node.StartProcess(context.Background(), argv...); err != nil {
			t.Fatal(err)
		}
	} else {
		cmd := exec.Command(argv[0], argv[1:]...)
		log, err := os.Create(filepath.Join(t.TempDir(), "node_exporter.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			log.Close()
		})
	}
	// Wait until it answers, a bounded number of tries.
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if i == 300 {
			t.Fatalf("node_exporter on %s does not answer: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exposition is one scrape, parsed.
type exposition struct {
	addr    string
	samples []expSample
}

type expSample struct {
	name   string
	labels map[string]string
	value  float64
	series string
}

func scrape(t *testing.T, addr string) *exposition {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	e := &exposition{addr: addr}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSampleLine(line)
		if err != nil {
			t.Fatalf("scrape of %s: %v", addr, err)
		}
		e.samples = append(e.samples, s)
	}
	t.Logf("scrape of %s:\n%s", addr, body)
	return e
}

// parseSampleLine reads `name{l="v",…} value` (no timestamp: node_exporter
// writes none).
func parseSampleLine(line string) (expSample, error) {
	s := expSample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, fmt.Errorf("no value in %q", line)
	}
	s.name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for rest != "" && rest[0] != '}' {
			eq := strings.IndexByte(rest, '=')
			if eq < 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return s, fmt.Errorf("bad labels in %q", line)
			}
			name := rest[:eq]
			rest = rest[eq+2:]
			var v strings.Builder
			for {
				if rest == "" {
					return s, fmt.Errorf("unterminated label value in %q", line)
				}
				c := rest[0]
				rest = rest[1:]
				if c == '"' {
					break
				}
				if c == '\\' && rest != "" {
					switch rest[0] {
					case 'n':
						c = '\n'
					default:
						c = rest[0]
					}
					rest = rest[1:]
				}
				v.WriteByte(c)
			}
			s.labels[name] = v.String()
			rest = strings.TrimPrefix(rest, ",")
		}
		if rest == "" {
			return s, fmt.Errorf("unterminated labels in %q", line)
		}
		rest = rest[1:]
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
	if err != nil {
		return s, fmt.Errorf("value in %q: %v", line, err)
	}
	s.value = v
	s.series = line[:len(line)-len(rest)]
	return s, nil
}

// find returns the one sample of name whose labels include kv.
func (e *exposition) find(t *testing.T, name string, kv ...string) expSample {
	t.Helper()
	want := pairs(kv...)
	var found []expSample
	for _, s := range e.samples {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("scrape of %s: %d samples of %s%v, want 1", e.addr, len(found), name, want)
	}
	return found[0]
}

func (e *exposition) wantNone(t *testing.T, name string) {
	t.Helper()
	for _, s := range e.samples {
		if s.name == name {
			t.Errorf("scrape of %s: unexpected %s", e.addr, s.series)
		}
	}
}

func (e *exposition) value(t *testing.T, name string, kv ...string) float64 {
	t.Helper()
	return e.find(t, name, kv...).value
}

func (e *exposition) label(t *testing.T, name, label string) string {
	t.Helper()
	return e.find(t, name).labels[label]
}

func (e *exposition) want(t *testing.T, v float64, name string, kv ...string) {
	t.Helper()
	if got := e.value(t, name, kv...); got != v {
		t.Errorf("scrape of %s: %s%v = %v, want %v", e.addr, name, pairs(kv...), got, v)
	}
}

func pairs(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// seriesText writes a series as PromQL and promtool tests read it.
func seriesText(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.Quote(labels[k]))
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// alertTest is a PromQL query on ALERTS and the series it must return,
// all with the value (1 when 0).
type alertTest struct {
	expr  string
	want  []string
	value float64
}

// checkAlerts runs promtool test rules on the scraped samples (every
// nodefix_* and node_uname_info series, as Prometheus would label them
// from each scrape target) and the alert rules.
func checkAlerts(t *testing.T, rules string, scrapes map[string][]*exposition, tests []alertTest) {
	t.Helper()
	type sampleOut struct {
		Labels string  `yaml:"labels"`
		Value  float64 `yaml:"value"`
	}
	type exprTest struct {
		Expr       string      `yaml:"expr"`
		EvalTime   string      `yaml:"eval_time"`
		ExpSamples []sampleOut `yaml:"exp_samples"`
	}
	type series struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	var input []series
	for addr, exps := range scrapes {
		for _, e := range exps {
			for _, s := range e.samples {
				if !strings.HasPrefix(s.name, "nodefix_") && s.name != "node_uname_info" {
					continue
				}
				labels := map[string]string{"instance": addr, "job": "node"}
				for k, v := range s.labels {
					labels[k] = v
				}
				v := strconv.FormatFloat(s.value, 'f', -1, 64)
				input = append(input, series{Series: seriesText(s.name, labels), Values: strings.Repeat(v+" ", 3) + v})
			}
		}
	}
	var exprs []exprTest
	for _, at := range tests {
		et := exprTest{Expr: at.expr, EvalTime: "1m", ExpSamples: []sampleOut{}}
		v := at.value
		if v == 0 {
			v = 1
		}
		for _, w := range at.want {
			et.ExpSamples = append(et.ExpSamples, sampleOut{Labels: w, Value: v})
		}
		exprs = append(exprs, et)
	}
	suite := map[string]any{
		"rule_files":          []string{rules},
		"evaluation_interval": "1m",
		"tests": []map[string]any{{
			"interval":         "1m",
			"input_series":     input,
			"promql_expr_test": exprs,
		}},
	}
	data, err := yaml.Marshal(suite)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "scraped-alerts.yml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtest.Promtool, "test", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool test rules on the scraped series: %v\n%s\ntest file:\n%s", err, out, data)
	}
}
