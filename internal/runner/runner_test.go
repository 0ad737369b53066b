package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/tasks"
)

// fakeTask does what its script says for each host.
type fakeTask struct {
	name string
	// do returns the outcome for a host; it may block on ctx.
	do func(ctx context.Context, node tasks.Node, host string) tasks.Outcome
}

func (f fakeTask) Name() string { return f.name }
func (f fakeTask) Apply(ctx context.Context, node tasks.Node, host tasks.Host, _ tasks.Config) tasks.Outcome {
	return f.do(ctx, node, host.Name)
}

func okTask(name string) fakeTask {
	return fakeTask{name: name, do: func(context.Context, tasks.Node, string) tasks.Outcome {
		return tasks.Outcome{Task: name, Status: tasks.StatusOK}
	}}
}

// fakeConn is a connected host that records the commands it ran.
type fakeConn struct {
	mu     sync.Mutex
	closed bool
	lost   error
}

func (c *fakeConn) Run(ctx context.Context, cmd tasks.Command) (tasks.Result, error) {
	return tasks.Result{}, ctx.Err()
}
func (c *fakeConn) Close() error { c.mu.Lock(); c.closed = true; c.mu.Unlock(); return nil }
func (c *fakeConn) Lost() error  { c.mu.Lock(); defer c.mu.Unlock(); return c.lost }
func (c *fakeConn) Warnings() []string {
	return []string{"a warning"}
}

// recorder is an Observer that keeps the order of events.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string)         { r.mu.Lock(); r.events = append(r.events, s); r.mu.Unlock() }
func (r *recorder) HostStarted(h string) { r.add("start " + h) }
func (r *recorder) TaskDone(h string, o tasks.Outcome) {
	r.add(fmt.Sprintf("task %s %s %s", h, o.Task, o.Status))
}
func (r *recorder) HostDone(h HostResult) { r.add(fmt.Sprintf("done %s %s", h.Name, h.Status())) }

func targets(names ...string) []Target {
	var ts []Target
	for _, n := range names {
		ts = append(ts, Target{Host: tasks.Host{Name: n}})
	}
	return ts
}

func dialOK(conns *sync.Map) Dialer {
	return DialFunc(func(ctx context.Context, t Target) (transport.Conn, error) {
		c := &fakeConn{}
		if conns != nil {
			conns.Store(t.Host.Name, c)
		}
		return c, nil
	})
}

func TestTasksRunInOrderAndAFailedHostStops(t *testing.T) {
	var order sync.Map // host → []task
	record := func(name string, status tasks.Status, failOn string) fakeTask {
		return fakeTask{name: name, do: func(_ context.Context, _ tasks.Node, host string) tasks.Outcome {
			v, _ := order.LoadOrStore(host, &[]string{})
			*v.(*[]string) = append(*v.(*[]string), name)
			if host == failOn {
				return tasks.Failed(name, "broken on %s", host)
			}
			return tasks.Outcome{Task: name, Status: status, Changed: status == tasks.StatusChanged}
		}}
	}
	var conns sync.Map
	rec := &recorder{}
	res := Run(context.Background(), targets("a", "b", "c"), Options{
		Tasks: []tasks.Task{
			record("one", tasks.StatusChanged, ""),
			record("two", tasks.StatusOK, "b"),
			record("three", tasks.StatusSkipped, ""),
		},
		Dialer:   dialOK(&conns),
		Observer: rec,
	})
	for _, h := range []string{"a", "c"} {
		v, _ := order.Load(h)
		if got := strings.Join(*v.(*[]string), ","); got != "one,two,three" {
			t.Errorf("%s ran %s, want one,two,three", h, got)
		}
	}
	v, _ := order.Load("b")
	if got := strings.Join(*v.(*[]string), ","); got != "one,two" {
		t.Errorf("b ran %s, want one,two: a failed host stops", got)
	}
	want := map[string]Stats{
		"a": {OK: 2, Changed: 1, Skipped: 1},
		"b": {OK: 1, Changed: 1, Failed: 1},
		"c": {OK: 2, Changed: 1, Skipped: 1},
	}
	for _, h := range res.Hosts {
		if h.Stats() != want[h.Name] {
			t.Errorf("%s stats %+v, want %+v", h.Name, h.Stats(), want[h.Name])
		}
		if c, _ := conns.Load(h.Name); !c.(*fakeConn).closed {
			t.Errorf("%s: connection not closed", h.Name)
		}
		if len(h.Warnings) != 1 {
			t.Errorf("%s: connection warnings not kept: %q", h.Name, h.Warnings)
		}
	}
	if res.ExitCode() != exitcode.HostFailed {
		t.Errorf("exit code %d, want %d", res.ExitCode(), exitcode.HostFailed)
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "b: two: broken on b") || exitcode.Of(err) != exitcode.HostFailed {
		t.Errorf("Err() = %v (code %d)", err, exitcode.Of(err))
	}
	// Per host, events come in order: start, tasks, done.
	for _, h := range []string{"a", "b", "c"} {
		var seq []string
		for _, e := range rec.events {
			if strings.Fields(e)[1] == h {
				seq = append(seq, strings.Fields(e)[0])
			}
		}
		wantSeq := "start,task,task,task,done"
		if h == "b" {
			wantSeq = "start,task,task,done"
		}
		if strings.Join(seq, ",") != wantSeq {
			t.Errorf("%s events %v, want %s", h, seq, wantSeq)
		}
	}
}

func TestForksBoundParallelism(t *testing.T) {
	for _, forks := range []int{1, 3, 10} {
		var running, peak atomic.Int32
		task := fakeTask{name: "t", do: func(context.Context, tasks.Node, string) tasks.Outcome {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			running.Add(-1)
			return tasks.Outcome{Task: "t", Status: tasks.StatusOK}
		}}
		var names []string
		for i := 0; i < 12; i++ {
			names = append(names, fmt.Sprintf("h%02d", i))
		}
		res := Run(context.Background(), targets(names...), Options{Tasks: []tasks.Task{task}, Dialer: dialOK(nil), Forks: forks})
		want := int32(min(forks, 12))
		if peak.Load() != want {
			t.Errorf("forks %d: peak parallelism %d, want %d", forks, peak.Load(), want)
		}
		if res.ExitCode() != 0 {
			t.Errorf("exit %d", res.ExitCode())
		}
	}
}

// A host that stalls (in connecting, or in a task) ends unreachable or
// failed at its timeout while the others finish.
func TestStalledHostsDoNotStallOthers(t *testing.T) {
	dialer := DialFunc(func(ctx context.Context, tg Target) (transport.Conn, error) {
		if tg.Host.Name == "stall-connect" {
			<-ctx.Done()
			return nil, fmt.Errorf("handshake: %w", ctx.Err())
		}
		return &fakeConn{}, nil
	})
	task := fakeTask{name: "t", do: func(ctx context.Context, _ tasks.Node, host string) tasks.Outcome {
		if host == "stall-task" {
			<-ctx.Done()
			return tasks.Failed("t", "command cancelled: %v", ctx.Err())
		}
		return tasks.Outcome{Task: "t", Status: tasks.StatusChanged, Changed: true}
	}}
	start := time.Now()
	res := Run(context.Background(), targets("stall-connect", "stall-task", "fine1", "fine2"), Options{
		Tasks: []tasks.Task{task}, Dialer: dialer, Forks: 2,
		ConnectTimeout: 200 * time.Millisecond, TaskTimeout: 300 * time.Millisecond,
	})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("run took %v", took)
	}
	got := map[string]Status{}
	for _, h := range res.Hosts {
		got[h.Name] = h.Status()
	}
	want := map[string]Status{"stall-connect": HostUnreachable, "stall-task": HostFailed, "fine1": HostChanged, "fine2": HostChanged}
	for h, s := range want {
		if got[h] != s {
			t.Errorf("%s: %s, want %s", h, got[h], s)
		}
	}
	if msg := res.Hosts[1].Outcomes[0].Msg; !strings.Contains(msg, "timed out after 300ms") {
		t.Errorf("timeout message %q", msg)
	}
	if res.ExitCode() != exitcode.Unreachable {
		t.Errorf("exit %d, want 4 (unreachable wins over failed)", res.ExitCode())
	}
}

func TestLostConnectionIsUnreachable(t *testing.T) {
	conn := &fakeConn{}
	task := fakeTask{name: "t", do: func(context.Context, tasks.Node, string) tasks.Outcome {
		conn.mu.Lock()
		conn.lost = errors.New("no answer from the server for 45s")
		conn.mu.Unlock()
		return tasks.Failed("t", "running rpm: connection lost")
	}}
	res := Run(context.Background(), targets("h"), Options{Tasks: []tasks.Task{task},
		Dialer: DialFunc(func(context.Context, Target) (transport.Conn, error) { return conn, nil })})
	h := res.Hosts[0]
	if h.Status() != HostUnreachable || !strings.Contains(h.Msg, "no answer from the server") {
		t.Errorf("status %s msg %q", h.Status(), h.Msg)
	}
	if res.ExitCode() != exitcode.Unreachable {
		t.Errorf("exit %d", res.ExitCode())
	}
}

func TestPanickingTaskFailsOnlyItsHost(t *testing.T) {
	task := fakeTask{name: "t", do: func(_ context.Context, _ tasks.Node, host string) tasks.Outcome {
		if host == "bad" {
			panic("boom")
		}
		return tasks.Outcome{Task: "t", Status: tasks.StatusOK}
	}}
	res := Run(context.Background(), targets("bad", "good"), Options{Tasks: []tasks.Task{task}, Dialer: dialOK(nil)})
	if res.Hosts[0].Status() != HostFailed || !strings.Contains(res.Hosts[0].Outcomes[0].Msg, "boom") {
		t.Errorf("bad: %+v", res.Hosts[0])
	}
	if res.Hosts[1].Status() != HostOK {
		t.Errorf("good: %s", res.Hosts[1].Status())
	}
}

// Cancelling the run (Ctrl-C) starts no new host, cancels running ones and
// keeps what finished.
func TestCancelStartsNoNewHost(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int32
	var conns sync.Map
	h0done := make(chan struct{})
	task := fakeTask{name: "t", do: func(ctx context.Context, _ tasks.Node, host string) tasks.Outcome {
		if host == "h0" {
			defer close(h0done)
			return tasks.Outcome{Task: "t", Status: tasks.StatusOK}
		}
		<-h0done
		if started.Add(1) == 3 { // h1, h2 and h3 (which took h0's fork) are running
			cancel()
		}
		<-ctx.Done()
		return tasks.Failed("t", "cancelled")
	}}
	var names []string
	for i := 0; i < 10; i++ {
		names = append(names, fmt.Sprintf("h%d", i))
	}
	res := Run(ctx, targets(names...), Options{Tasks: []tasks.Task{okTask("first"), task}, Dialer: dialOK(&conns), Forks: 3})
	if !res.Interrupted || res.ExitCode() != exitcode.Interrupted {
		t.Fatalf("interrupted %t exit %d", res.Interrupted, res.ExitCode())
	}
	var st []string
	for _, h := range res.Hosts {
		st = append(st, string(h.Status()))
	}
	// h0 finished; h1, h2, h3 were running (interrupted, their cancelled
	// task not counted as failed); no host after them started.
	want := "ok,interrupted,interrupted,interrupted"
	if got := strings.Join(st[:4], ","); got != want {
		t.Errorf("first hosts %s, want %s", got, want)
	}
	for i, s := range st[4:] {
		if s != string(HostNotRun) {
			t.Errorf("h%d: %s, want not_run", i+4, s)
		}
		if _, ok := conns.Load(fmt.Sprintf("h%d", i+4)); ok {
			t.Errorf("h%d was connected to after the interrupt", i+4)
		}
	}
	if h := res.Hosts[1]; h.Stats() != (Stats{OK: 1}) {
		t.Errorf("interrupted host keeps its finished tasks only: %+v", h.Stats())
	}
	conns.Range(func(k, v any) bool {
		if !v.(*fakeConn).closed {
			t.Errorf("%s: connection left open", k)
		}
		return true
	})
}

func TestPrecheckRefusesBeforeAnyHost(t *testing.T) {
	dialed := false
	res := Run(context.Background(), targets("a"), Options{
		Tasks:    []tasks.Task{okTask("t")},
		Dialer:   DialFunc(func(context.Context, Target) (transport.Conn, error) { dialed = true; return &fakeConn{}, nil }),
		Precheck: func(context.Context, []Target) error { return errors.New("a and b would both be named worker-1") },
	})
	if dialed {
		t.Error("a host was touched")
	}
	if res.ExitCode() != exitcode.Usage || !strings.Contains(res.Err().Error(), "worker-1") {
		t.Errorf("exit %d err %v", res.ExitCode(), res.Err())
	}
	if h := res.Hosts[0]; h.Name != "a" || h.Status() != HostNotRun {
		t.Errorf("host %q %s, want a not_run", h.Name, h.Status())
	}
}

func TestExitCodes(t *testing.T) {
	ok := HostResult{Outcomes: []tasks.Outcome{{Status: tasks.StatusOK}}}
	changed := HostResult{Outcomes: []tasks.Outcome{{Status: tasks.StatusChanged}}}
	failed := HostResult{Outcomes: []tasks.Outcome{{Status: tasks.StatusFailed}}}
	unreach := HostResult{Unreachable: true}
	for _, tc := range []struct {
		name string
		r    Result
		want int
	}{
		{"all ok", Result{Hosts: []HostResult{ok, changed}}, 0},
		{"failed", Result{Hosts: []HostResult{ok, failed}}, 2},
		{"unreachable", Result{Hosts: []HostResult{unreach, ok}}, 4},
		{"unreachable and failed", Result{Hosts: []HostResult{failed, unreach}}, 4},
		{"interrupted", Result{Hosts: []HostResult{failed, unreach}, Interrupted: true}, 99},
		{"precheck", Result{PrecheckErr: errors.New("dup")}, 1},
	} {
		if got := tc.r.ExitCode(); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
		if got := exitcode.Of(tc.r.Err()); got != tc.want {
			t.Errorf("%s: exitcode.Of(Err()) = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// A host's result carries how long it took (JSON's duration_seconds).
func TestHostDurationIsRecorded(t *testing.T) {
	const work = 30 * time.Millisecond
	slow := fakeTask{name: "slow", do: func(context.Context, tasks.Node, string) tasks.Outcome {
		time.Sleep(work)
		return tasks.Outcome{Task: "slow", Status: tasks.StatusOK}
	}}
	res := Run(context.Background(), targets("a", "b"), Options{Tasks: []tasks.Task{slow}, Dialer: dialOK(nil)})
	for _, h := range res.Hosts {
		if h.Duration < work {
			t.Errorf("host %s: duration %v, want at least %v", h.Name, h.Duration, work)
		}
	}
	if res.Duration < work {
		t.Errorf("run: duration %v, want at least %v", res.Duration, work)
	}
}

// The survey looks at the hosts it wants before the precheck, which sees
// what it found; a surveyed host runs on the connection the survey opened.
func TestSurveyFeedsThePrecheckAndKeepsItsConnection(t *testing.T) {
	var dials sync.Map // host → count
	var conns sync.Map // host → []*fakeConn
	dialer := DialFunc(func(ctx context.Context, t Target) (transport.Conn, error) {
		n, _ := dials.LoadOrStore(t.Host.Name, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		if t.Host.Name == "gone" {
			return nil, errors.New("connection refused")
		}
		c := &fakeConn{}
		v, _ := conns.LoadOrStore(t.Host.Name, &[]*fakeConn{})
		*v.(*[]*fakeConn) = append(*v.(*[]*fakeConn), c)
		return c, nil
	})
	ts := targets("named", "fromnode", "refused", "gone")
	ts[0].Host.TargetHostname = "worker-1"
	var seen []string
	var prechecks int
	var ran sync.Map
	res := Run(context.Background(), ts, Options{
		Tasks: []tasks.Task{fakeTask{name: "hostname", do: func(_ context.Context, _ tasks.Node, host string) tasks.Outcome {
			ran.Store(host, true)
			return tasks.Outcome{Task: "hostname", Status: tasks.StatusOK}
		}}},
		Dialer:      dialer,
		SurveyWants: func(t Target) bool { return t.Host.TargetHostname == "" },
		SurveyTask:  "hostname",
		Survey: func(ctx context.Context, node tasks.Node, t *Target) error {
			if t.Host.Name == "refused" {
				return errors.New("the node's own sources disagree")
			}
			t.Host.SurveyedHostname = "worker-2"
			return nil
		},
		Precheck: func(_ context.Context, ts []Target) error {
			prechecks++
			seen = seen[:0]
			for _, t := range ts {
				seen = append(seen, t.Host.Name+"="+t.Host.TargetHostname+t.Host.SurveyedHostname)
			}
			return nil
		},
	})
	if prechecks != 2 || strings.Join(seen, " ") != "named=worker-1 fromnode=worker-2 refused= gone=" {
		t.Errorf("%d prechecks, the last saw %v", prechecks, seen)
	}
	want := map[string]Status{"named": HostOK, "fromnode": HostOK, "refused": HostFailed, "gone": HostUnreachable}
	for _, h := range res.Hosts {
		if h.Status() != want[h.Name] {
			t.Errorf("%s: %s (%s %v), want %s", h.Name, h.Status(), h.Msg, h.Outcomes, want[h.Name])
		}
		_, didRun := ran.Load(h.Name)
		if didRun != (want[h.Name] == HostOK) {
			t.Errorf("%s: tasks ran %v", h.Name, didRun)
		}
		n, _ := dials.Load(h.Name)
		if got := n.(*atomic.Int32).Load(); got != 1 {
			t.Errorf("%s dialed %d times, want once", h.Name, got)
		}
	}
	if o := res.Hosts[2].Outcomes; len(o) != 1 || o[0].Task != "hostname" || !strings.Contains(o[0].Msg, "disagree") {
		t.Errorf("refused host's outcome %+v", o)
	}
	conns.Range(func(k, v any) bool {
		for _, c := range *v.(*[]*fakeConn) {
			if !c.closed {
				t.Errorf("%s: a connection was left open", k)
			}
		}
		return true
	})
	if res.ExitCode() != exitcode.Unreachable {
		t.Errorf("exit %d", res.ExitCode())
	}
}

// A collision only the survey reveals refuses the run: no host is run.
func TestSurveyedCollisionRefusesTheRun(t *testing.T) {
	var ran atomic.Bool
	res := Run(context.Background(), targets("a", "b"), Options{
		Tasks: []tasks.Task{fakeTask{name: "hostname", do: func(context.Context, tasks.Node, string) tasks.Outcome {
			ran.Store(true)
			return tasks.Outcome{Status: tasks.StatusOK}
		}}},
		Dialer: dialOK(nil),
		Survey: func(_ context.Context, _ tasks.Node, t *Target) error {
			t.Host.SurveyedHostname = "same"
			return nil
		},
		Precheck: func(_ context.Context, ts []Target) error {
			if ts[0].Host.SurveyedHostname != "" && ts[0].Host.SurveyedHostname == ts[1].Host.SurveyedHostname {
				return errors.New("a and b would both be named same")
			}
			return nil
		},
	})
	if ran.Load() || res.ExitCode() != exitcode.Usage {
		t.Errorf("ran %v, exit %d", ran.Load(), res.ExitCode())
	}
	for _, h := range res.Hosts {
		if h.Status() != HostNotRun {
			t.Errorf("%s: %s", h.Name, h.Status())
		}
	}
}

// WrapNode decorates the node every task is handed, told which host and
// which task; the connection itself is still what the runner checks and
// closes.
func TestWrapNode(t *testing.T) {
	type wrapped struct {
		tasks.Node
		host, task string
	}
	var mu sync.Mutex
	var seen []string
	probe := func(name string) fakeTask {
		return fakeTask{name: name, do: func(_ context.Context, node tasks.Node, host string) tasks.Outcome {
			w, ok := node.(wrapped)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				seen = append(seen, host+" "+name+": not wrapped")
			} else {
				seen = append(seen, fmt.Sprintf("%s %s: wrapped for %s %s", host, name, w.host, w.task))
			}
			return tasks.Outcome{Task: name, Status: tasks.StatusOK}
		}}
	}
	var conns sync.Map
	res := Run(context.Background(), targets("a"), Options{
		Tasks:  []tasks.Task{probe("one"), probe("two")},
		Dialer: dialOK(&conns),
		WrapNode: func(host, task string, n tasks.Node) tasks.Node {
			if _, ok := n.(*fakeConn); !ok {
				t.Errorf("WrapNode got %T, want the connection", n)
			}
			return wrapped{n, host, task}
		},
	})
	if got := strings.Join(seen, "; "); got != "a one: wrapped for a one; a two: wrapped for a two" {
		t.Errorf("tasks saw: %s", got)
	}
	if c, _ := conns.Load("a"); !c.(*fakeConn).closed || res.Hosts[0].Status() != HostOK {
		t.Errorf("connection closed %v, host %s", c.(*fakeConn).closed, res.Hosts[0].Status())
	}
}
