package runner

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/tasks"
)

func serials(t *testing.T, values ...string) []Serial {
	t.Helper()
	var out []Serial
	for _, v := range values {
		s, err := ParseSerial(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// The sizes ansible-playbook 2.14's _get_serialized_batches gives (worked
// through its code: pct_to_int rounds a percentage of all the play's
// hosts down, at least 1; the last value repeats; 0 takes the rest).
func TestBatchSizesAsAnsible(t *testing.T) {
	for _, tc := range []struct {
		hosts  int
		serial []string
		want   []int
	}{
		{10, nil, []int{10}},
		{10, []string{"1"}, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{10, []string{"3"}, []int{3, 3, 3, 1}},
		{10, []string{"1", "50%"}, []int{1, 5, 4}},
		{3, []string{"1", "50%"}, []int{1, 1, 1}}, // int(0.5*3) = 1
		{7, []string{"1", "20%"}, []int{1, 1, 1, 1, 1, 1, 1}},
		{20, []string{"1", "20%"}, []int{1, 4, 4, 4, 4, 3}},
		{10, []string{"1", "5", "100%"}, []int{1, 5, 4}},
		{10, []string{"0"}, []int{10}},
		{10, []string{"2", "0"}, []int{2, 8}},
		{10, []string{"0%"}, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}, // pct_to_int(0%) = min 1
		{4, []string{"30"}, []int{4}},
		{0, []string{"1"}, nil},
	} {
		got := BatchSizes(tc.hosts, serials(t, tc.serial...))
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%d hosts, serial %v: %v, want %v", tc.hosts, tc.serial, got, tc.want)
		}
	}
}

func TestParseSerialRefuses(t *testing.T) {
	for _, bad := range []string{"", "x", "-1", "12.5%", "101%", "1.5", "%"} {
		if _, err := ParseSerial(bad); err == nil {
			t.Errorf("ParseSerial(%q) accepted", bad)
		}
	}
}

func pct(p float64) *float64 { return &p }

// Ansible's comparison: the run aborts when failed / batch > P / 100.
func TestBudgetExceeded(t *testing.T) {
	for _, tc := range []struct {
		budget       Budget
		failed, size int
		want         bool
	}{
		{Budget{}, 5, 5, false},
		{Budget{MaxFailPercentage: pct(0)}, 0, 5, false},
		{Budget{MaxFailPercentage: pct(0)}, 1, 5, true},
		{Budget{MaxFailPercentage: pct(20)}, 1, 5, false}, // 20% is not more than 20%
		{Budget{MaxFailPercentage: pct(20)}, 2, 5, true},
		{Budget{MaxFailPercentage: pct(100)}, 5, 5, false},
		{Budget{MaxFailPercentage: pct(49.9)}, 1, 2, true},
		{Budget{AnyErrorsFatal: true}, 1, 100, true},
		{Budget{AnyErrorsFatal: true}, 0, 100, false},
	} {
		if got := tc.budget.exceeded(tc.failed, tc.size) != ""; got != tc.want {
			t.Errorf("%+v, %d of %d failed: exceeded %t, want %t", tc.budget, tc.failed, tc.size, got, tc.want)
		}
	}
}

// hostLog records which hosts ran which tasks, in order of start.
type hostLog struct {
	mu      sync.Mutex
	started []string
	ran     map[string][]string
}

func (l *hostLog) task(name string, fail map[string]bool, unreachable map[string]bool) fakeTask {
	return fakeTask{name: name, do: func(_ context.Context, _ tasks.Node, host string) tasks.Outcome {
		l.mu.Lock()
		if l.ran == nil {
			l.ran = map[string][]string{}
		}
		l.ran[host] = append(l.ran[host], name)
		l.mu.Unlock()
		if fail[host] {
			return tasks.Failed(name, "broken on %s", host)
		}
		return tasks.Outcome{Task: name, Status: tasks.StatusChanged, Changed: true}
	}}
}

func names(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("h%02d", i))
	}
	return out
}

func statuses(res Result) map[string]Status {
	m := map[string]Status{}
	for _, h := range res.Hosts {
		m[h.Name] = h.Status()
	}
	return m
}

// The "done when", in the runner: a canary that fails with
// --serial 1 --serial 50% --max-fail-percentage 0 touches no other host.
func TestFailingCanaryStopsTheRun(t *testing.T) {
	log := &hostLog{}
	hosts := names(6)
	res := Run(context.Background(), targets(hosts...), Options{
		Tasks:  []tasks.Task{log.task("one", map[string]bool{"h01": true}, nil)},
		Dialer: dialOK(nil),
		Serial: serials(t, "1", "50%"),
		Budget: Budget{MaxFailPercentage: pct(0)},
	})
	if !reflect.DeepEqual(res.Batches, []int{1, 3, 2}) {
		t.Errorf("batches %v, want [1 3 2]", res.Batches)
	}
	if len(log.ran) != 1 || log.ran["h01"] == nil {
		t.Errorf("hosts that ran: %v, want only the canary h01", log.ran)
	}
	for _, h := range res.Hosts[1:] {
		if !h.NotRun || h.Status() != HostNotRun || !strings.Contains(h.Msg, "aborted after batch 1") {
			t.Errorf("%s: %s %q, want not_run, aborted after batch 1", h.Name, h.Status(), h.Msg)
		}
	}
	if res.Abort == nil || res.Abort.Batch != 1 || !strings.Contains(res.Abort.Reason, "--max-fail-percentage 0%") {
		t.Errorf("abort %+v", res.Abort)
	}
	if res.ExitCode() != exitcode.HostFailed {
		t.Errorf("exit code %d, want %d", res.ExitCode(), exitcode.HostFailed)
	}
	err := res.Err()
	if err == nil || !strings.Contains(err.Error(), "aborted after batch 1") || !strings.Contains(err.Error(), "5 hosts not started") {
		t.Errorf("Err() = %v", err)
	}
}

func TestBatchesRunOneAfterAnother(t *testing.T) {
	var mu sync.Mutex
	var events []string // "start h" and "end h" as they happen
	task := fakeTask{name: "t", do: func(ctx context.Context, _ tasks.Node, host string) tasks.Outcome {
		mu.Lock()
		events = append(events, "start "+host)
		mu.Unlock()
		mu.Lock()
		events = append(events, "end "+host)
		mu.Unlock()
		return tasks.Outcome{Task: "t", Status: tasks.StatusOK}
	}}
	res := Run(context.Background(), targets(names(5)...), Options{
		Tasks: []tasks.Task{task}, Dialer: dialOK(nil), Serial: serials(t, "1", "2"),
	})
	batchOf := map[string]int{"h01": 1, "h02": 2, "h03": 2, "h04": 3, "h05": 3}
	// Every host of a batch starts after every host of the batch before
	// it has ended.
	ended := map[int]int{}
	for _, e := range events {
		kind, host, _ := strings.Cut(e, " ")
		b := batchOf[host]
		if kind == "end" {
			ended[b]++
			continue
		}
		if want := map[int]int{1: 0, 2: 1, 3: 2}[b]; b > 1 && ended[b-1] != want {
			t.Errorf("%s started with %d of %d hosts of batch %d ended: %v", host, ended[b-1], want, b-1, events)
		}
	}
	if res.Abort != nil || res.ExitCode() != 0 || !reflect.DeepEqual(res.Batches, []int{1, 2, 2}) {
		t.Errorf("abort %+v, exit %d, batches %v", res.Abort, res.ExitCode(), res.Batches)
	}
}

func TestFailureBudgets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		serial []string
		budget Budget
		fail   []string
		want   map[string]Status
		abort  int // batch, 0: none
	}{{
		name: "within the budget", serial: []string{"2"}, budget: Budget{MaxFailPercentage: pct(50)}, fail: []string{"h01"},
		want: map[string]Status{"h01": HostFailed, "h02": HostChanged, "h03": HostChanged, "h04": HostChanged},
	}, {
		name: "over the budget in batch 2", serial: []string{"2"}, budget: Budget{MaxFailPercentage: pct(49)}, fail: []string{"h03"},
		want:  map[string]Status{"h01": HostChanged, "h02": HostChanged, "h03": HostFailed, "h04": HostChanged, "h05": HostNotRun, "h06": HostNotRun},
		abort: 2,
	}, {
		name: "any errors fatal", serial: []string{"3"}, budget: Budget{AnyErrorsFatal: true}, fail: []string{"h02"},
		want:  map[string]Status{"h01": HostChanged, "h02": HostFailed, "h03": HostChanged, "h04": HostNotRun, "h05": HostNotRun, "h06": HostNotRun},
		abort: 1,
	}, {
		name: "a whole batch failed, no budget", serial: []string{"1", "2"}, fail: []string{"h02", "h03"},
		want:  map[string]Status{"h01": HostChanged, "h02": HostFailed, "h03": HostFailed, "h04": HostNotRun, "h05": HostNotRun, "h06": HostNotRun},
		abort: 2,
	}, {
		name: "no serial, any errors fatal: one batch runs whole", budget: Budget{AnyErrorsFatal: true}, fail: []string{"h01"},
		want:  map[string]Status{"h01": HostFailed, "h02": HostChanged, "h03": HostChanged, "h04": HostChanged, "h05": HostChanged, "h06": HostChanged},
		abort: 1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			fail := map[string]bool{}
			for _, h := range tc.fail {
				fail[h] = true
			}
			log := &hostLog{}
			n := len(tc.want)
			res := Run(context.Background(), targets(names(n)...), Options{
				Tasks:  []tasks.Task{log.task("one", fail, nil)},
				Dialer: dialOK(nil), Serial: serials(t, tc.serial...), Budget: tc.budget,
			})
			if got := statuses(res); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("statuses %v, want %v", got, tc.want)
			}
			switch {
			case tc.abort == 0 && res.Abort != nil:
				t.Errorf("aborted: %+v", res.Abort)
			case tc.abort != 0 && (res.Abort == nil || res.Abort.Batch != tc.abort):
				t.Errorf("abort %+v, want after batch %d", res.Abort, tc.abort)
			}
			if res.ExitCode() != exitcode.HostFailed {
				t.Errorf("exit code %d", res.ExitCode())
			}
		})
	}
}

// Once a batch breaks the budget, its hosts still running stop before
// their next task (Ansible stops a play between tasks) and its hosts not
// yet started (forks) never start.
func TestBudgetStopsTheBatchBetweenTasks(t *testing.T) {
	release := make(chan struct{})
	first := fakeTask{name: "first", do: func(ctx context.Context, _ tasks.Node, host string) tasks.Outcome {
		if host == "h01" {
			return tasks.Failed("first", "broken")
		}
		<-release // h02 waits until h01 has failed
		return tasks.Outcome{Task: "first", Status: tasks.StatusChanged, Changed: true}
	}}
	second := okTask("second")
	var res Result
	done := make(chan struct{})
	go func() {
		defer close(done)
		res = Run(context.Background(), targets(names(3)...), Options{
			Tasks: []tasks.Task{first, second}, Dialer: dialOK(nil), Forks: 2,
			Budget: Budget{MaxFailPercentage: pct(0)}, Observer: obsFunc(func(h HostResult) {
				if h.Name == "h01" {
					close(release)
				}
			}),
		})
	}()
	<-done
	h2 := res.Hosts[1]
	if !h2.Stopped || len(h2.Outcomes) != 1 || h2.Status() != HostChanged || !strings.Contains(h2.Msg, "stopped before task second") {
		t.Errorf("h02: stopped %t, %d outcomes, %s %q", h2.Stopped, len(h2.Outcomes), h2.Status(), h2.Msg)
	}
	if h3 := res.Hosts[2]; !h3.NotRun {
		t.Errorf("h03 (waiting for a fork) started: %s", h3.Status())
	}
	if res.Abort == nil || res.Abort.Batch != 1 {
		t.Errorf("abort %+v", res.Abort)
	}
}

// obsFunc is an Observer that only looks at finished hosts.
type obsFunc func(HostResult)

func (obsFunc) HostStarted(string)             {}
func (obsFunc) TaskDone(string, tasks.Outcome) {}
func (f obsFunc) HostDone(h HostResult)        { f(h) }

// An interrupted run starts no further batch.
func TestInterruptStartsNoFurtherBatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	task := fakeTask{name: "t", do: func(context.Context, tasks.Node, string) tasks.Outcome {
		cancel()
		return tasks.Outcome{Task: "t", Status: tasks.StatusOK}
	}}
	res := Run(ctx, targets(names(3)...), Options{Tasks: []tasks.Task{task}, Dialer: dialOK(nil), Serial: serials(t, "1")})
	if !res.Interrupted || res.ExitCode() != exitcode.Interrupted {
		t.Errorf("interrupted %t, exit %d", res.Interrupted, res.ExitCode())
	}
	for _, h := range res.Hosts[1:] {
		if !h.NotRun || !strings.Contains(h.Msg, "interrupted") {
			t.Errorf("%s: %s %q", h.Name, h.Status(), h.Msg)
		}
	}
}
