package trace

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodefix/nodefix/tasks"
)

// fakeNode answers every command with what results holds for its first
// argument.
type fakeNode map[string]struct {
	res tasks.Result
	err error
}

func (f fakeNode) Run(_ context.Context, cmd tasks.Command) (tasks.Result, error) {
	r := f[cmd.Argv[0]]
	return r.res, r.err
}

// clock advances by step at every reading.
func clock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(step)
		return t
	}
}

func TestWrapRecordsCommands(t *testing.T) {
	node := fakeNode{
		"ok":     {res: tasks.Result{Stdout: []byte("hello\n"), ExitStatus: 0}},
		"failed": {res: tasks.Result{Stderr: []byte("iscsiadm: broken\n"), ExitStatus: 1}},
		"lost":   {err: errors.New("connection lost")},
		"long":   {res: tasks.Result{Stdout: []byte(strings.Repeat("a", 100) + strings.Repeat("z", 100))}},
	}
	for _, tc := range []struct {
		name       string
		keepOutput int
		argv       []string
		stdin      string
		want       Command
	}{
		{"exit status and duration", 0, []string{"ok", "x"}, "",
			Command{Task: "t", Argv: []string{"ok", "x"}, Duration: time.Second, Stdout: Output{Size: 6}}},
		{"output kept", 64, []string{"ok"}, "",
			Command{Task: "t", Argv: []string{"ok"}, Duration: time.Second, Stdout: Output{Head: []byte("hello\n"), Size: 6}}},
		{"failure", 64, []string{"failed"}, "",
			Command{Task: "t", Argv: []string{"failed"}, ExitStatus: 1, Duration: time.Second, Stderr: Output{Head: []byte("iscsiadm: broken\n"), Size: 17}}},
		{"an error, no status", 64, []string{"lost"}, "",
			Command{Task: "t", Argv: []string{"lost"}, Err: "connection lost", Duration: time.Second}},
		{"stdin counted, not kept", 64, []string{"ok"}, "secret input",
			Command{Task: "t", Argv: []string{"ok"}, StdinBytes: 12, Duration: time.Second, Stdout: Output{Head: []byte("hello\n"), Size: 6}}},
		{"long output: its start and its end", 10, []string{"long"}, "",
			Command{Task: "t", Argv: []string{"long"}, Duration: time.Second, Stdout: Output{Head: []byte("aaaaa"), Tail: []byte("zzzzz"), Size: 200}}},
		{"an odd limit", 5, []string{"long"}, "",
			Command{Task: "t", Argv: []string{"long"}, Duration: time.Second, Stdout: Output{Head: []byte("aa"), Tail: []byte("zzz"), Size: 200}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(Options{KeepOutput: tc.keepOutput, Now: clock(time.Second)})
			n := l.Wrap("node01", "t", node)
			res, err := n.Run(context.Background(), tasks.Command{Argv: tc.argv, Stdin: []byte(tc.stdin)})
			// The task sees what the node answered, untouched.
			want := node[tc.argv[0]]
			if string(res.Stdout) != string(want.res.Stdout) || res.ExitStatus != want.res.ExitStatus || !errors.Is(err, want.err) {
				t.Errorf("the task saw %+v, %v", res, err)
			}
			got := l.Take("node01")
			if len(got.Commands) != 1 {
				t.Fatalf("%d commands recorded", len(got.Commands))
			}
			if c := got.Commands[0]; !equal(c, tc.want) {
				t.Errorf("recorded\n%+v\nwant\n%+v", c, tc.want)
			}
			if strings.Contains(string(got.Commands[0].Stdout.Head), "secret") {
				t.Error("stdin kept")
			}
		})
	}
}

func equal(a, b Command) bool {
	return a.Task == b.Task && strings.Join(a.Argv, "\x00") == strings.Join(b.Argv, "\x00") && a.StdinBytes == b.StdinBytes &&
		a.ExitStatus == b.ExitStatus && a.Err == b.Err && a.Duration == b.Duration &&
		string(a.Stdout.Head) == string(b.Stdout.Head) && string(a.Stdout.Tail) == string(b.Stdout.Tail) && a.Stdout.Size == b.Stdout.Size &&
		string(a.Stderr.Head) == string(b.Stderr.Head) && a.Stderr.Size == b.Stderr.Size
}

// Take hands over each host's records once, steps and commands in the
// order they came, hosts apart.
func TestTakeByHost(t *testing.T) {
	l := New(Options{})
	node := fakeNode{"x": {}}
	l.Step("node01", "connecting")
	l.Step("node02", "connecting to node02")
	l.Wrap("node01", "hostname", node).Run(context.Background(), tasks.Command{Argv: []string{"x", "1"}})
	l.Wrap("node01", "rpmdb", node).Run(context.Background(), tasks.Command{Argv: []string{"x", "2"}})
	got := l.Take("node01")
	if strings.Join(got.Steps, "|") != "connecting" || len(got.Commands) != 2 ||
		got.Commands[0].Task != "hostname" || got.Commands[1].Argv[1] != "2" {
		t.Errorf("node01: %+v", got)
	}
	if again := l.Take("node01"); !again.Empty() {
		t.Errorf("taken twice: %+v", again)
	}
	if got := l.Take("node02"); len(got.Steps) != 1 || len(got.Commands) != 0 {
		t.Errorf("node02: %+v", got)
	}
	// A caller's argv changed later does not change the record.
	argv := []string{"x", "before"}
	l.Wrap("node03", "t", node).Run(context.Background(), tasks.Command{Argv: argv})
	argv[1] = "after"
	if got := l.Take("node03"); got.Commands[0].Argv[1] != "before" {
		t.Errorf("argv not copied: %q", got.Commands[0].Argv)
	}
}
