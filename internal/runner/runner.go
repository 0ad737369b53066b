// Package runner runs tasks across a fleet: hosts in parallel (bounded by
// forks), tasks in order on each host, every host bounded by a connect
// timeout and every task by a task timeout, so that a stalled host never
// stalls the others. Results flow one way, to an Observer (the reports)
// and into the Result; the runner formats nothing.
package runner

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/inventory"
	"github.com/nodefix/nodefix/tasks"
)

// DefaultForks is how many hosts run at once unless -f says otherwise.
// Ansible's 5 comes from a Python process per host; here a host costs a
// goroutine and one TCP connection, and the time goes to waiting on the
// network and on the node, not to the controller. 50 runs a typical
// cluster in one wave and a 500-node fleet in ten, while keeping the
// burst of simultaneous SSH handshakes (the controller's CPU, the file
// descriptors, a shared bastion's sshd MaxStartups, which defaults to 10
// unauthenticated connections before it starts dropping) within what a
// laptop and a default OpenSSH accept. Raise it for big fleets on a big
// controller.
const DefaultForks = 50

// DefaultConnectTimeout bounds TCP connect, jump hosts, the SSH handshake
// and authentication: Ansible's default connection timeout.
const DefaultConnectTimeout = 10 * time.Second

// DefaultTaskTimeout bounds one task on one host. Tasks bound each of their
// commands (tasks.Config.CommandTimeout); this is the backstop for a task
// as a whole, long enough for an rpm database rebuild on a big node.
const DefaultTaskTimeout = 15 * time.Minute

// Target is one host to run on, as the planner resolved it from the
// inventory.
type Target struct {
	Host tasks.Host
	Conn inventory.Connection
	// Config, when set, is this host's task configuration (its inventory's
	// nodefix_* variables over the command line's); else Options.Config.
	Config *tasks.Config
}

// config is the task configuration for t.
func (o Options) config(t Target) tasks.Config {
	if t.Config != nil {
		return *t.Config
	}
	return o.Config
}

// Dialer connects to a target.
type Dialer interface {
	Dial(ctx context.Context, t Target) (transport.Conn, error)
}

// DialFunc adapts a function to Dialer.
type DialFunc func(ctx context.Context, t Target) (transport.Conn, error)

// Dial implements Dialer.
func (f DialFunc) Dial(ctx context.Context, t Target) (transport.Conn, error) { return f(ctx, t) }

// Observer receives results as they happen, one call at a time.
type Observer interface {
	// HostStarted: the host got a fork and is being connected to.
	HostStarted(host string)
	// TaskDone: a task finished on a host.
	TaskDone(host string, o tasks.Outcome)
	// HostDone: the host is finished (or unreachable, or interrupted).
	HostDone(r HostResult)
}

// Options shape a run.
type Options struct {
	Tasks  []tasks.Task
	Config tasks.Config
	Dialer Dialer
	// Forks bounds how many hosts run at once (0: DefaultForks).
	Forks int
	// ConnectTimeout bounds connecting to one host (0: DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// TaskTimeout bounds one task on one host (0: DefaultTaskTimeout).
	TaskTimeout time.Duration
	// Survey, when set, looks at every target SurveyWants selects before
	// Precheck, changing nothing, and may fill the target in (the hostname
	// task's name for a host the inventory names nothing comes from the
	// host's kubelet, and the precheck must see it). A host the survey
	// cannot reach is unreachable, a host it fails is failed with the
	// survey's error under SurveyTask; neither runs. A surveyed host keeps
	// its connection for the run.
	Survey      func(ctx context.Context, node tasks.Node, t *Target) error
	SurveyWants func(t Target) bool
	SurveyTask  string
	// Precheck runs before any host is touched (the hostname task's
	// fleet-wide uniqueness check): before the survey, so that an
	// inventory at fault is refused without connecting to anything, and
	// again after it on the surveyed targets. An error refuses the whole
	// run.
	Precheck func(ctx context.Context, targets []Target) error
	// Serial splits the hosts into batches run one after the other
	// (--serial, Ansible's serial): each batch finishes before the next
	// starts. None: one batch of every host.
	Serial []Serial
	// Budget is how many failures a batch may have before the run starts
	// no further host (--max-fail-percentage, --any-errors-fatal).
	Budget Budget
	// Observer may be nil.
	Observer Observer
	// WrapNode, when set, decorates the node each task is handed, e.g. to
	// record the commands it runs (-vv); nil hands tasks the connection.
	WrapNode func(host, task string, n tasks.Node) tasks.Node
}

// HostResult is what happened on one host.
type HostResult struct {
	Name string
	// Outcomes of the tasks that ran, in order. After a failed task the
	// host's remaining tasks do not run, as Ansible drops a failed host.
	Outcomes []tasks.Outcome
	// Unreachable: the host could not be connected to, or the connection
	// was lost under a task; Msg says why.
	Unreachable bool
	// Interrupted: the run was interrupted while the host ran. A task that
	// failed as it was cancelled has no outcome (it is no verdict on the
	// host); Msg names it.
	Interrupted bool
	// NotRun: the host never started: the run was interrupted or aborted
	// (the failure budget) before its turn; Msg says which.
	NotRun bool
	// Stopped: the run was aborted while the host ran; the host finished
	// the task it was running and ran no further task (Msg says why).
	Stopped bool
	Msg     string
	// Warnings from connecting (host keys accepted or recorded).
	Warnings []string
	Start    time.Time
	Duration time.Duration
}

// Status is a host's overall state, in Ansible's words where it has them.
type Status string

const (
	HostOK          Status = "ok"
	HostChanged     Status = "changed"
	HostFailed      Status = "failed"
	HostUnreachable Status = "unreachable"
	HostSkipped     Status = "skipped"
	HostInterrupted Status = "interrupted"
	HostNotRun      Status = "not_run"
)

// Status sums up the host: unreachable, failed, interrupted, changed,
// ok, or skipped when every task skipped it.
func (h HostResult) Status() Status {
	st := h.Stats()
	switch {
	case h.NotRun:
		return HostNotRun
	case h.Unreachable:
		return HostUnreachable
	case st.Failed > 0:
		return HostFailed
	case h.Interrupted:
		return HostInterrupted
	case st.Changed > 0:
		return HostChanged
	case st.OK > 0:
		return HostOK
	case st.Skipped > 0:
		return HostSkipped
	}
	return HostOK
}

// Stats are a host's counts in PLAY RECAP. As in Ansible, ok counts the
// changed tasks too.
type Stats struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Unreachable int `json:"unreachable"`
	Failed      int `json:"failed"`
	Skipped     int `json:"skipped"`
}

// Stats counts the host's outcomes.
func (h HostResult) Stats() Stats {
	var s Stats
	for _, o := range h.Outcomes {
		switch o.Status {
		case tasks.StatusOK:
			s.OK++
		case tasks.StatusChanged:
			s.OK++
			s.Changed++
		case tasks.StatusFailed:
			s.Failed++
		case tasks.StatusSkipped:
			s.Skipped++
		}
	}
	if h.Unreachable {
		s.Unreachable = 1
	}
	return s
}

// Result is a whole run.
type Result struct {
	// Hosts in target order.
	Hosts []HostResult
	// Interrupted: the run was cancelled (Ctrl-C).
	Interrupted bool
	// PrecheckErr: the fleet precheck refused the run; no host was touched.
	PrecheckErr error
	// Batches are the sizes of the batches the hosts ran in, in order.
	Batches []int
	// Abort says why the run started no further host after a batch whose
	// failures broke the budget (nil: it did not abort).
	Abort    *Abort
	Start    time.Time
	Duration time.Duration
}

// ExitCode is what ansible-playbook 2.14 would return for the run.
func (r Result) ExitCode() int {
	if r.PrecheckErr != nil {
		return exitcode.Usage
	}
	if r.Interrupted {
		return exitcode.Interrupted
	}
	code := exitcode.OK
	for _, h := range r.Hosts {
		switch h.Status() {
		case HostUnreachable:
			return exitcode.Unreachable
		case HostFailed:
			code = exitcode.HostFailed
		}
	}
	return code
}

// Err aggregates every host's failure, nil when every host is fine; it
// carries the run's exit code (see exitcode.Of).
func (r Result) Err() error {
	if r.PrecheckErr != nil {
		return exitcode.With(exitcode.Usage, fmt.Errorf("fleet precheck refused the run, no host was touched: %w", r.PrecheckErr))
	}
	var errs *multierror.Error
	notRun := 0
	for _, h := range r.Hosts {
		switch h.Status() {
		case HostUnreachable:
			errs = multierror.Append(errs, fmt.Errorf("%s: unreachable: %s", h.Name, h.Msg))
		case HostFailed:
			for _, o := range h.Outcomes {
				if o.Status == tasks.StatusFailed {
					errs = multierror.Append(errs, fmt.Errorf("%s: %s: %s", h.Name, o.Task, o.Msg))
				}
			}
		case HostInterrupted:
			errs = multierror.Append(errs, fmt.Errorf("%s: interrupted (%s)", h.Name, h.Msg))
		case HostNotRun:
			notRun++
		}
	}
	if r.Abort != nil {
		errs = multierror.Append(errs, fmt.Errorf("aborted after batch %d: %s", r.Abort.Batch, r.Abort.Reason))
	}
	if notRun > 0 {
		errs = multierror.Append(errs, fmt.Errorf("%d hosts not started", notRun))
	}
	if r.Interrupted {
		errs = multierror.Append(errs, errors.New("interrupted"))
	}
	if errs == nil {
		return nil
	}
	errs.ErrorFormat = listErrors
	return exitcode.With(r.ExitCode(), errs)
}

// listErrors prints one line per error, the hosts easy to grep.
func listErrors(errs []error) string {
	lines := make([]string, len(errs))
	for i, err := range errs {
		lines[i] = "  " + strings.ReplaceAll(err.Error(), "\n", "\n    ")
	}
	return fmt.Sprintf("%d problem(s):\n%s", len(errs), strings.Join(lines, "\n"))
}

// Run runs opts.Tasks on every target. Cancelling ctx (Ctrl-C) starts no
// new host and cancels the running ones; Run still returns the partial
// result.
func Run(ctx context.Context, targets []Target, opts Options) (res Result) {
	if opts.Forks <= 0 {
		opts.Forks = DefaultForks
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.TaskTimeout <= 0 {
		opts.TaskTimeout = DefaultTaskTimeout
	}
	res = Result{Start: time.Now(), Hosts: make([]HostResult, len(targets))}
	defer func() { res.Duration = time.Since(res.Start) }()
	for i, t := range targets {
		res.Hosts[i] = HostResult{Name: t.Host.Name, NotRun: true}
	}
	r := &run{opts: opts, obs: opts.Observer}
	targets = append([]Target(nil), targets...)
	held := make([]transport.Conn, len(targets))
	defer func() {
		for _, c := range held {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	finished := make([]bool, len(targets))
	precheck := func() bool {
		if opts.Precheck == nil {
			return true
		}
		if err := opts.Precheck(ctx, targets); err != nil {
			for i, t := range targets {
				res.Hosts[i] = HostResult{Name: t.Host.Name, NotRun: true}
			}
			res.PrecheckErr = err
			return false
		}
		return true
	}
	if !precheck() {
		return res
	}
	if opts.Survey != nil && r.survey(ctx, targets, held, finished, res.Hosts) > 0 {
		if ctx.Err() != nil {
			res.Interrupted = true
			return res
		}
		if !precheck() {
			return res
		}
	}
	r.reportSurveyed(res.Hosts, finished)
	res.Batches = BatchSizes(len(targets), opts.Serial)
	first := 0
	for b, size := range res.Batches {
		batch := batchRun{first: first, size: size}
		first += size
		if ctx.Err() != nil {
			break // interrupted: start no new batch
		}
		r.batch(ctx, &batch, targets, held, finished, res.Hosts)
		if ctx.Err() != nil {
			break
		}
		reason := batch.reason()
		if reason == "" && batch.failed == size && b < len(res.Batches)-1 {
			// Ansible ends a play whose whole batch failed, budget or not.
			reason = fmt.Sprintf("every host of the batch (%d) failed or was unreachable", size)
		}
		if reason != "" {
			res.Abort = &Abort{Batch: b + 1, Reason: reason}
			break
		}
	}
	res.Interrupted = ctx.Err() != nil
	for i := range res.Hosts {
		if !res.Hosts[i].NotRun {
			continue
		}
		switch {
		case res.Interrupted:
			res.Hosts[i].Msg = "not started: the run was interrupted"
		case res.Abort != nil:
			res.Hosts[i].Msg = fmt.Sprintf("not started: the run was aborted after batch %d (%s)", res.Abort.Batch, res.Abort.Reason)
		}
	}
	return res
}

// batchRun is one batch's progress: its hosts are targets[first:first+size].
type batchRun struct {
	first, size int
	mu          sync.Mutex
	failed      int
	stop        string // why the batch's remaining hosts stop ("" go on)
}

// count adds a finished host and checks the budget; it returns whether
// the batch must stop.
func (b *batchRun) count(h HostResult, budget Budget) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st := h.Status(); st == HostFailed || st == HostUnreachable {
		b.failed++
	}
	if b.stop == "" {
		b.stop = budget.exceeded(b.failed, b.size)
	}
}

func (b *batchRun) reason() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stop
}

// batch runs the hosts of one batch, forks at a time. Hosts the survey
// finished count with their batch. Once the batch's failures break the
// budget, its hosts not yet started stay not run and the running ones
// stop before their next task, as Ansible stops a play between tasks.
func (r *run) batch(ctx context.Context, b *batchRun, targets []Target, held []transport.Conn, finished []bool, hosts []HostResult) {
	for i := b.first; i < b.first+b.size; i++ {
		if finished[i] {
			b.count(hosts[i], r.opts.Budget)
		}
	}
	sem := make(chan struct{}, r.opts.Forks)
	var wg sync.WaitGroup
	for i := b.first; i < b.first+b.size; i++ {
		if finished[i] {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			continue // interrupted: start no new host
		}
		if b.reason() != "" {
			<-sem
			continue // aborted: start no new host
		}
		t := targets[i]
		conn := held[i]
		held[i] = nil // the host closes it
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h := r.host(ctx, t, conn, b.reason)
			hosts[i] = h
			b.count(h, r.opts.Budget)
			r.hostDone(h)
		}()
	}
	wg.Wait()
}

// survey runs opts.Survey on the targets it wants, forks at a time, and
// says how many it looked at. A host that ends there (unreachable,
// failed) is finished; the others keep their connection in held.
func (r *run) survey(ctx context.Context, targets []Target, held []transport.Conn, finished []bool, hosts []HostResult) int {
	sem := make(chan struct{}, r.opts.Forks)
	var wg sync.WaitGroup
	wanted := 0
	for i := range targets {
		if r.opts.SurveyWants != nil && !r.opts.SurveyWants(targets[i]) {
			continue
		}
		wanted++
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			h := HostResult{Name: targets[i].Host.Name, Start: start}
			conn, err := r.dial(ctx, targets[i])
			switch {
			case ctx.Err() != nil:
				if conn != nil {
					_ = conn.Close()
				}
				return
			case err != nil:
				h.Unreachable, h.Msg = true, err.Error()
			default:
				tctx, cancel := context.WithTimeout(ctx, r.opts.TaskTimeout)
				err = r.opts.Survey(tctx, r.node(conn, targets[i].Host.Name, r.opts.SurveyTask), &targets[i])
				cancel()
				if w, ok := conn.(transport.Warner); ok {
					h.Warnings = w.Warnings()
				}
				if err == nil {
					held[i] = conn
					return
				}
				_ = conn.Close()
				if ctx.Err() != nil {
					return
				}
				if lost := connLost(conn); lost != nil {
					h.Unreachable, h.Msg = true, fmt.Sprintf("connection lost while surveying: %v", lost)
				} else {
					h.Outcomes = []tasks.Outcome{tasks.Failed(r.opts.SurveyTask, "%v", err)}
				}
			}
			h.Duration = time.Since(start)
			hosts[i], finished[i] = h, true
		}()
	}
	wg.Wait()
	return wanted
}

// reportSurveyed tells the observer about the hosts the survey finished,
// once the run goes ahead.
func (r *run) reportSurveyed(hosts []HostResult, finished []bool) {
	for i, h := range hosts {
		if !finished[i] {
			continue
		}
		r.hostStarted(h.Name)
		for _, o := range h.Outcomes {
			r.taskDone(h.Name, o)
		}
		r.hostDone(h)
	}
}

// dial connects to t within the connect timeout.
func (r *run) dial(ctx context.Context, t Target) (transport.Conn, error) {
	dialCtx, cancel := context.WithTimeout(ctx, r.opts.ConnectTimeout)
	defer cancel()
	return r.opts.Dialer.Dial(dialCtx, t)
}

type run struct {
	opts Options
	mu   sync.Mutex // serialises observer calls
	obs  Observer
}

func (r *run) hostStarted(name string) {
	if r.obs != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.obs.HostStarted(name)
	}
}

func (r *run) taskDone(name string, o tasks.Outcome) {
	if r.obs != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.obs.TaskDone(name, o)
	}
}

func (r *run) hostDone(h HostResult) {
	if r.obs != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.obs.HostDone(h)
	}
}

// host runs every task on one target, on conn when the survey left one
// open.
// stop says why the run was aborted ("" while it goes on): the host then
// runs no further task.
func (r *run) host(ctx context.Context, t Target, conn transport.Conn, stop func() string) (h HostResult) {
	h = HostResult{Name: t.Host.Name, Start: time.Now()}
	// A named result: the deferred assignment reaches the caller.
	defer func() { h.Duration = time.Since(h.Start) }()
	r.hostStarted(h.Name)

	var err error
	if conn == nil {
		conn, err = r.dial(ctx, t)
	}
	if ctx.Err() != nil {
		if conn != nil {
			_ = conn.Close()
		}
		h.Interrupted, h.Msg = true, "while connecting"
		return h
	}
	if err != nil {
		h.Unreachable, h.Msg = true, err.Error()
		return h
	}
	defer conn.Close()
	if w, ok := conn.(transport.Warner); ok {
		h.Warnings = w.Warnings()
	}

	for i, task := range r.opts.Tasks {
		if ctx.Err() != nil {
			h.Interrupted, h.Msg = true, "before task "+task.Name()
			return h
		}
		if why := stop(); why != "" && i > 0 {
			h.Stopped, h.Msg = true, fmt.Sprintf("stopped before task %s: the run was aborted (%s)", task.Name(), why)
			return h
		}
		o, timedOut := r.apply(ctx, task, r.node(conn, t.Host.Name, task.Name()), t)
		if ctx.Err() != nil && o.Status == tasks.StatusFailed {
			// Most likely failed because it was cancelled: not a verdict.
			h.Interrupted, h.Msg = true, "during task "+task.Name()
			return h
		}
		if lost := connLost(conn); lost != nil && o.Status == tasks.StatusFailed {
			// The connection broke under the task: Ansible calls that
			// unreachable, and so do we; the task's own message says what
			// it was doing.
			h.Unreachable = true
			h.Msg = fmt.Sprintf("connection lost during task %s: %v", task.Name(), lost)
			return h
		}
		if timedOut {
			o = timeoutOutcome(task.Name(), o, r.opts.TaskTimeout)
		}
		h.Outcomes = append(h.Outcomes, o)
		r.taskDone(h.Name, o)
		if o.Status == tasks.StatusFailed {
			return h
		}
	}
	return h
}

// node is what a task sees of the host's connection.
func (r *run) node(conn transport.Conn, host, task string) tasks.Node {
	if r.opts.WrapNode == nil {
		return conn
	}
	return r.opts.WrapNode(host, task, conn)
}

// apply runs one task with the task timeout, turning a panic into a
// failed outcome so that one broken task cannot take the fleet down.
func (r *run) apply(ctx context.Context, task tasks.Task, node tasks.Node, t Target) (o tasks.Outcome, timedOut bool) {
	tctx, cancel := context.WithTimeout(ctx, r.opts.TaskTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			o = tasks.Failed(task.Name(), "internal error in task %s: %v\n%s", task.Name(), p, debug.Stack())
		}
		timedOut = errors.Is(tctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	}()
	o = task.Apply(tctx, node, t.Host, r.opts.config(t))
	if o.Task == "" {
		o.Task = task.Name()
	}
	return o, false
}

func timeoutOutcome(task string, o tasks.Outcome, limit time.Duration) tasks.Outcome {
	msg := fmt.Sprintf("task %s timed out after %v (--task-timeout)", task, limit)
	if o.Msg != "" {
		msg += ": " + o.Msg
	}
	o.Status, o.Msg, o.Task = tasks.StatusFailed, msg, task
	return o
}

func connLost(c transport.Conn) error {
	if l, ok := c.(transport.Lost); ok {
		return l.Lost()
	}
	return nil
}
