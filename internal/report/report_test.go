package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/runner"
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
