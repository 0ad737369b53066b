package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/internal/trace"
	"github.com/nodefix/nodefix/tasks"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it after review):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// sampleRun is an interrupted run with one host in every state.
func sampleRun() runner.Result {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return runner.Result{
		Start:       start,
		Duration:    2500 * time.Millisecond,
		Interrupted: true,
		Hosts: []runner.HostResult{
			{Name: "node01", Duration: time.Second, Outcomes: []tasks.Outcome{
				{Task: "hostname", Status: tasks.StatusChanged, Changed: true, Msg: "renamed localhost to worker-01",
					Diff:    &tasks.Diff{Before: "127.0.0.1 localhost\n127.0.1.1 localhost\n", After: "127.0.0.1 localhost\n127.0.1.1 worker-01\n"},
					Details: map[string]any{"before": "localhost", "after": "worker-01"},
					Facts:   map[string]string{tasks.FactHostname: "worker-01"}},
				{Task: "rpmdb", Status: tasks.StatusSkipped, Msg: "rpm is not installed"},
				{Task: "longhorn-deps", Status: tasks.StatusOK, Msg: "all present", Warnings: []string{"iscsid is not running"}},
			}},
			{Name: "node02-with-a-very-long-inventory-name", Duration: time.Second, Outcomes: []tasks.Outcome{
				{Task: "hostname", Status: tasks.StatusOK, Msg: "already worker-02"},
				{Task: "longhorn-deps", Status: tasks.StatusFailed, Msg: "missing: iscsiadm\ninstall: dnf install iscsi-initiator-utils"},
			}},
			{Name: "node03", Unreachable: true, Msg: "ssh to 127.0.0.3:22: dial tcp 127.0.0.3:22: connect: connection refused",
				Warnings: []string{"permanently added the host key of 127.0.0.3"}},
			{Name: "node04", Interrupted: true, Msg: "during task rpmdb", Outcomes: []tasks.Outcome{
				{Task: "hostname", Status: tasks.StatusOK, Msg: "already worker-04"},
			}},
			{Name: "node05", NotRun: true},
		},
	}
}

var sampleFindings = []Finding{
	{Kind: "machine_id", Value: "0123abcd", Hosts: []string{"node01", "node04"},
		Msg: `duplicate machine-id "0123abcd" on hosts node01, node04: cloned VM image`},
	{Kind: "duplicate hostname", Value: "localhost", Hosts: []string{"node01", "node02"}},
}

// replay feeds the runner's events for res to an observer, as the runner
// would (host by host here; the runner interleaves hosts).
func replay(o runner.Observer, res runner.Result) {
	for _, h := range res.Hosts {
		if h.NotRun {
			continue
		}
		o.HostStarted(h.Name)
		for _, out := range h.Outcomes {
			o.TaskDone(h.Name, out)
		}
		o.HostDone(h)
	}
}

func TestHumanGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		opts HumanOptions
	}{
		{"human.golden", HumanOptions{Diff: true}},
		{"human-color.golden", HumanOptions{Color: true}},
		{"human-progress.golden", HumanOptions{Progress: true, Total: 5}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var buf bytes.Buffer
			h := NewHuman(&buf, tc.opts)
			res := sampleRun()
			replay(h, res)
			h.Recap(res, sampleFindings)
			golden(t, tc.file, buf.Bytes())
			if !tc.opts.Color && bytes.Contains(buf.Bytes(), []byte("\x1b[0;")) {
				t.Error("colour without Color")
			}
		})
	}
}

// The recap's columns line up whatever the host names and counts.
func TestRecapAligned(t *testing.T) {
	var buf bytes.Buffer
	h := NewHuman(&buf, HumanOptions{})
	res := sampleRun()
	res.Interrupted = false
	h.Recap(res, nil)
	var cols []int
	for _, line := range strings.Split(buf.String(), "\n") {
		if i := strings.Index(line, " : ok="); i >= 0 {
			cols = append(cols, i, strings.Index(line, "changed="), strings.Index(line, "skipped="))
		}
	}
	if len(cols) != 12 {
		t.Fatalf("want 4 recap lines (not-run hosts are left out):\n%s", buf.String())
	}
	for i := 3; i < len(cols); i++ {
		if cols[i] != cols[i%3] {
			t.Errorf("recap columns differ:\n%s", buf.String())
			break
		}
	}
}

func TestJSONDocument(t *testing.T) {
	res := sampleRun()
	doc := NewDocument(RunInfo{Version: "test", Command: "run", Tasks: []string{"hostname", "rpmdb", "longhorn-deps"}}, res, sampleFindings)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, doc); err != nil {
		t.Fatal(err)
	}
	golden(t, "run.json.golden", buf.Bytes())

	// It parses back, and agrees with the result host by host.
	var back struct {
		ExitCode int `json:"exit_code"`
		Hosts    map[string]struct {
			Status string         `json:"status"`
			Stats  map[string]int `json:"stats"`
			Tasks  []struct {
				Task, Status, Msg string
				Changed           bool
			} `json:"tasks"`
		} `json:"hosts"`
		Summary map[string]int `json:"summary"`
		Fleet   struct {
			Findings []Finding `json:"findings"`
		} `json:"fleet"`
	}
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.ExitCode != 99 {
		t.Errorf("exit_code %d", back.ExitCode)
	}
	for _, h := range res.Hosts {
		got := back.Hosts[h.Name]
		if got.Status != string(h.Status()) || len(got.Tasks) != len(h.Outcomes) {
			t.Errorf("%s: %+v", h.Name, got)
		}
		if got.Stats["ok"] != h.Stats().OK || got.Stats["failed"] != h.Stats().Failed {
			t.Errorf("%s stats %v, want %+v", h.Name, got.Stats, h.Stats())
		}
	}
	wantSummary := map[string]int{"hosts": 5, "ok": 0, "changed": 1, "failed": 1, "unreachable": 1, "skipped": 0, "interrupted": 1, "not_run": 1}
	for k, v := range wantSummary {
		if back.Summary[k] != v {
			t.Errorf("summary %s = %d, want %d", k, back.Summary[k], v)
		}
	}
	if len(back.Fleet.Findings) != 2 {
		t.Errorf("findings %+v", back.Fleet.Findings)
	}
}

func TestJSONRefusedPrecheck(t *testing.T) {
	res := runner.Result{PrecheckErr: errors.New("node01 and node02 would both be worker-01"),
		Hosts: []runner.HostResult{{Name: "node01", NotRun: true}}}
	var buf bytes.Buffer
	WriteJSON(&buf, NewDocument(RunInfo{Command: "run"}, res, nil))
	var back map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	fleet := back["fleet"].(map[string]any)
	pre := fleet["precheck"].(map[string]any)
	if pre["ok"] != false || !strings.Contains(pre["msg"].(string), "worker-01") || back["exit_code"].(float64) != 1 {
		t.Errorf("document %s", buf.String())
	}
	if fleet["findings"] == nil {
		t.Error("findings must be [] not null")
	}
}

func TestLineDiff(t *testing.T) {
	got := lineDiff([]string{"a", "b", "c"}, []string{"a", "x", "c", "d"})
	want := []string{" a", "-b", "+x", " c", "+d"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q want %q", got, want)
	}
}

// warnedRun: eight hosts, six of which lack iscsid, one with a warning of
// its own, and a host key recorded on two.
func warnedRun() runner.Result {
	res := runner.Result{Start: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Duration: time.Second}
	for i := 1; i <= 8; i++ {
		name := fmt.Sprintf("node%02d", i)
		deps := tasks.Outcome{Task: "longhorn-deps", Status: tasks.StatusOK, Msg: "all present"}
		if i <= 6 {
			deps.Warnings = append(deps.Warnings, "iscsid is not running", "kernel module iscsi_tcp is not loaded")
		}
		rpmq := tasks.Outcome{Task: "rpm-queries", Status: tasks.StatusOK, Msg: "no hung rpm query"}
		if i == 8 {
			rpmq.Warnings = []string{"hung rpm queries may be waiting behind pid 4242 (rpm -i slow.rpm)"}
			// The message repeated as a warning (for Ansible) is said once, as the message.
			deps.Status, deps.Msg, deps.Warnings = tasks.StatusSkipped, "rpm is busy", []string{"rpm is busy"}
		}
		h := runner.HostResult{Name: name, Outcomes: []tasks.Outcome{rpmq, deps}}
		if i == 2 || i == 5 {
			h.Warnings = []string{"permanently added the host key of " + name}
		}
		res.Hosts = append(res.Hosts, h)
	}
	return res
}

// The same warning on many hosts is said once, in WARNINGS, with its
// hosts; hosts finishing in another order change nothing.
func TestWarningsSaidOnce(t *testing.T) {
	res := warnedRun()
	var first []byte
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5, 6, 7}, {7, 5, 3, 1, 0, 2, 4, 6}} {
		var buf bytes.Buffer
		h := NewHuman(&buf, HumanOptions{})
		shuffled := res
		shuffled.Hosts = nil
		for _, i := range order {
			shuffled.Hosts = append(shuffled.Hosts, res.Hosts[i])
		}
		replay(h, shuffled)
		h.Recap(res, nil)
		out := buf.String()
		warnings := out[strings.Index(out, "WARNINGS"):strings.Index(out, "PLAY RECAP")]
		if first == nil {
			first = []byte(warnings)
			golden(t, "human-warnings.golden", buf.Bytes())
		} else if warnings != string(first) {
			t.Errorf("the WARNINGS section depends on the order hosts finish in:\n%s\nthen:\n%s", first, warnings)
		}
		if n := strings.Count(out, "iscsid is not running"); n != 1 {
			t.Errorf("iscsid warning said %d times", n)
		}
		if n := strings.Count(out, "rpm is busy"); n != 1 {
			t.Errorf("a message repeated as a warning is said %d times", n)
		}
		if i := strings.Index(out, "[WARNING]"); i < strings.Index(out, "WARNINGS ***") {
			t.Errorf("a warning before the WARNINGS section:\n%s", out)
		}
	}
	// JSON keeps every warning on every host.
	doc := NewDocument(RunInfo{Command: "run"}, res, nil)
	for i := 1; i <= 6; i++ {
		host := doc.Hosts[fmt.Sprintf("node%02d", i)]
		if len(host.Tasks) != 2 || len(host.Tasks[1].Warnings) != 2 {
			t.Errorf("node%02d in JSON: %+v", i, host.Tasks)
		}
	}
	if w := doc.Hosts["node05"].Warnings; len(w) != 1 {
		t.Errorf("node05's connection warnings in JSON: %q", w)
	}
}

// verboseRun: node01 fails longhorn-deps on a broken iscsiadm, node02 is
// unreachable; traces as the CLI records them at each level.
func verboseRun(level int) (runner.Result, func(string) trace.Entries) {
	res := runner.Result{Start: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Duration: time.Second, Hosts: []runner.HostResult{
		{Name: "node01", Outcomes: []tasks.Outcome{
			{Task: "hostname", Status: tasks.StatusOK, Msg: "already worker-01",
				Details: map[string]any{"hostname_before": "worker-01", "hostname_after": "worker-01"},
				Facts:   map[string]string{tasks.FactMachineID: "0123abcd"}},
			{Task: "longhorn-deps", Status: tasks.StatusFailed, Msg: "iscsiadm does not run: exit status 1: iscsiadm: broken",
				Details: map[string]any{"broken": []string{"iscsiadm"}}},
		}},
		{Name: "node02", Unreachable: true, Msg: "ssh to 127.0.0.2:22: connect: connection refused"},
	}}
	keep := func(s string) trace.Output {
		if level < 3 {
			return trace.Output{Size: len(s)}
		}
		return trace.Output{Head: []byte(s), Size: len(s)}
	}
	script := "# nodefix:hostname-gather\nPATH=\"$PATH:/usr/sbin\"; export PATH\nhostname\ncat /etc/hostname"
	queue := map[string][]trace.Entries{
		"node01": {
			{Commands: []trace.Command{
				{Task: "hostname", Argv: []string{"sh", "-c", script, "nodefix", "worker-01"}, Duration: 14 * time.Millisecond,
					Stdout: keep("worker-01\nworker-01\n")},
				{Task: "hostname", Argv: []string{"cat", "/proc/sys/kernel/random/boot_id"}, Duration: 900 * time.Microsecond,
					Stdout: keep("\x1b[31mred\x1b[0m and \xff\n"), StdinBytes: 5},
			}},
			{Commands: []trace.Command{
				{Task: "longhorn-deps", Argv: []string{"iscsiadm", "--version"}, ExitStatus: 1, Duration: 3 * time.Millisecond,
					Stderr: keep("iscsiadm: broken\n")},
				{Task: "longhorn-deps", Argv: []string{"rpm", "-qa"}, Duration: 1500 * time.Millisecond,
					Stdout: func() trace.Output {
						if level < 3 {
							return trace.Output{Size: 9000}
						}
						return trace.Output{Head: []byte("pkg-1\npkg-2\npk"), Tail: []byte("g-999\npkg-1000\n"), Size: 9000}
					}()},
				{Task: "longhorn-deps", Argv: []string{"dmsetup", "version"}, Duration: 2 * time.Minute, Err: "dmsetup: no answer within 2m0s: context deadline exceeded"},
				// The same script again: -vvv shows it in full once.
				{Task: "longhorn-deps", Argv: []string{"sh", "-c", script, "nodefix", "again"}, Duration: 5 * time.Millisecond},
			}},
		},
		"node02": {},
	}
	if level >= 3 {
		queue["node01"][0].Steps = []string{
			"ssh: connecting to 127.0.0.1:22 as root",
			"ssh: host key ssh-ed25519 SHA256:abc is recorded in /tmp/known_hosts:1",
			"ssh: authenticated as root with public key ssh-ed25519 SHA256:xyz (/tmp/client_ed25519)",
		}
		queue["node02"] = []trace.Entries{{Steps: []string{"ssh: connecting to 127.0.0.2:22 as root"}}}
	}
	take := func(host string) trace.Entries {
		q := queue[host]
		if len(q) == 0 {
			return trace.Entries{}
		}
		queue[host] = q[1:]
		return q[0]
	}
	if level < 2 {
		take = nil
	}
	return res, take
}

func TestHumanVerboseGolden(t *testing.T) {
	for level, file := range map[int]string{1: "human-v.golden", 2: "human-vv.golden", 3: "human-vvv.golden"} {
		t.Run(file, func(t *testing.T) {
			res, take := verboseRun(level)
			var buf bytes.Buffer
			h := NewHuman(&buf, HumanOptions{Verbosity: level, Trace: take})
			replay(h, res)
			h.Recap(res, nil)
			golden(t, file, buf.Bytes())
			out := buf.String()
			for _, c := range []struct {
				from, until int // shown from -v×from to -v×until (0: on)
				text        string
			}{
				{1, 0, `details: {"hostname_after":"worker-01","hostname_before":"worker-01"}`},
				{1, 0, `facts: {"machine_id":"0123abcd"}`},
				{2, 0, "<node01> longhorn-deps: EXEC iscsiadm --version (rc=1, 3ms)"},
				{2, 2, "<node01> hostname: EXEC sh -c '# nodefix:hostname-gather … (4 lines)' nodefix worker-01 (rc=0, 14ms)"},
				{3, 0, "<node01> hostname: EXEC sh -c '# nodefix:hostname-gather\n    PATH="},
				{2, 0, "no exit status after 2m0s: dmsetup: no answer"},
				{3, 0, "<node01> longhorn-deps: EXEC sh -c '# nodefix:hostname-gather … (4 lines, shown in full above)' nodefix again (rc=0, 5ms)"},
				{3, 0, "    stderr (17 bytes):\n      iscsiadm: broken\n"},
				{3, 0, "[… 8971 bytes left out …]"},
				{3, 0, `\x1b[31mred\x1b[0m and ` + "\uFFFD"},
				{3, 0, "<node02> ssh: connecting to 127.0.0.2:22 as root"},
				{3, 0, "stdin: 5 bytes (not shown)"},
			} {
				want := level >= c.from && (c.until == 0 || level <= c.until)
				if got := strings.Contains(out, c.text); got != want {
					t.Errorf("-%s: %q shown %v, want %v", strings.Repeat("v", level), c.text, got, want)
				}
			}
			if strings.Contains(out, "\x1b") {
				t.Error("a raw escape from a command's output reached the terminal")
			}
		})
	}
}
