// Package trace records what lies under a result, for -vv and -vvv: the
// commands each task ran on each host (argv, exit status, duration and,
// when asked, the start and end of their output) and the steps of
// connecting to the host. The runner hands each task a node wrapped by
// Log.Wrap, the SSH dialer reports its steps to Log.Step, and the human
// report takes a host's records (Log.Take) as the host's tasks finish, so
// that one host's lines are printed together.
//
// No secret reaches a record: become passwords are written by the
// transport beneath the node a task sees, a command's stdin is counted but
// never kept, and the dialer's steps name keys and methods, not passwords
// or passphrases.
package trace

import (
	"context"
	"sync"
	"time"

	"github.com/nodefix/nodefix/tasks"
)

// Options shape a Log.
type Options struct {
	// KeepOutput is how many bytes of each command's stdout and of its
	// stderr are kept: the first and the last half of it when the output
	// is longer. 0 keeps only the sizes (-vv).
	KeepOutput int
	// Now is the clock commands are timed with (nil: time.Now).
	Now func() time.Time
}

// Command is one command a task ran.
type Command struct {
	Task       string
	Argv       []string
	StdinBytes int
	// ExitStatus is meaningful when Err is empty.
	ExitStatus int
	// Err says why the command did not run or its status is unknown
	// (connection lost, timed out, cancelled).
	Err      string
	Duration time.Duration
	Stdout   Output
	Stderr   Output
}

// Output is what was kept of one output stream.
type Output struct {
	// Head is the start of the output, Tail its end: Tail is empty unless
	// the output was cut, and then Size-len(Head)-len(Tail) bytes between
	// them were dropped.
	Head, Tail []byte
	Size       int
}

// Dropped is how many bytes were left out between Head and Tail.
func (o Output) Dropped() int { return o.Size - len(o.Head) - len(o.Tail) }

// Entries are what was recorded on one host since the last Take.
type Entries struct {
	Steps    []string
	Commands []Command
}

// Empty reports whether nothing was recorded.
func (e Entries) Empty() bool { return len(e.Steps) == 0 && len(e.Commands) == 0 }

// Log records for every host of a run. It is safe for concurrent use.
type Log struct {
	opts  Options
	mu    sync.Mutex
	hosts map[string]*Entries
}

// New returns an empty Log.
func New(opts Options) *Log {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Log{opts: opts, hosts: map[string]*Entries{}}
}

// Step records a step of connecting to host.
func (l *Log) Step(host, step string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries(host).Steps = append(l.entries(host).Steps, step)
}

// Take returns what was recorded on host since the last Take, and forgets
// it: a long run keeps no more than the records of the tasks running.
func (l *Log) Take(host string) Entries {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.hosts[host]
	if !ok {
		return Entries{}
	}
	delete(l.hosts, host)
	return *e
}

func (l *Log) entries(host string) *Entries {
	e, ok := l.hosts[host]
	if !ok {
		e = &Entries{}
		l.hosts[host] = e
	}
	return e
}

// Wrap returns n recording every command task runs on host through it.
// It has the signature of runner.Options.WrapNode.
func (l *Log) Wrap(host, task string, n tasks.Node) tasks.Node {
	return &node{log: l, host: host, task: task, inner: n}
}

type node struct {
	log        *Log
	host, task string
	inner      tasks.Node
}

// Run implements tasks.Node.
func (n *node) Run(ctx context.Context, cmd tasks.Command) (tasks.Result, error) {
	start := n.log.opts.Now()
	res, err := n.inner.Run(ctx, cmd)
	c := Command{
		Task:       n.task,
		Argv:       append([]string(nil), cmd.Argv...),
		StdinBytes: len(cmd.Stdin),
		ExitStatus: res.ExitStatus,
		Duration:   n.log.opts.Now().Sub(start),
		Stdout:     keep(res.Stdout, n.log.opts.KeepOutput),
		Stderr:     keep(res.Stderr, n.log.opts.KeepOutput),
	}
	if err != nil {
		c.Err = err.Error()
	}
	n.log.mu.Lock()
	e := n.log.entries(n.host)
	e.Commands = append(e.Commands, c)
	n.log.mu.Unlock()
	return res, err
}

// keep copies at most limit bytes of b: all of it, or its first and last
// halves (the start says what a command was doing, the end how it failed).
func keep(b []byte, limit int) Output {
	o := Output{Size: len(b)}
	switch {
	case limit <= 0:
	case len(b) <= limit:
		o.Head = append([]byte(nil), b...)
	default:
		o.Head = append([]byte(nil), b[:limit/2]...)
		o.Tail = append([]byte(nil), b[len(b)-(limit-limit/2):]...)
	}
	return o
}
