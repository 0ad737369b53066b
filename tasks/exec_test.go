package tasks

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSections(t *testing.T) {
	b := "--nodefix-b"
	tests := []struct {
		name    string
		out     string
		want    map[string]section
		wantErr string
	}{
		{
			name: "content byte for byte, with and without final newline, banner skipped",
			out: "Welcome to the node\n" + renderSection(b, "a", "x\ny\n", 0) + renderSection(b, "b", "no newline", 1) +
				renderSection(b, "empty", "", 0),
			want: map[string]section{"a": {"x\ny\n", 0}, "b": {"no newline", 1}, "empty": {"", 0}},
		},
		{
			name: "content that looks like a frame of another boundary",
			out:  renderSection(b, "f", "--nodefix-other x\n--nodefix-other/ 0\n", 0),
			want: map[string]section{"f": {"--nodefix-other x\n--nodefix-other/ 0\n", 0}},
		},
		{
			name:    "a section cut short is an error, not half a file",
			out:     b + " hosts\n127.0.0.1 localhost\n",
			wantErr: `cut short in section "hosts"`,
		},
		{
			name:    "bad status",
			out:     b + " x\n\n" + b + "/ zero\n",
			wantErr: "bad exit status",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSections([]byte(tc.out), b)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// The report frame and values round-trip through a real sh: a value with
// quotes, $, backquotes and newlines reaches the script untouched as a
// positional parameter.
func TestReportScriptRealShell(t *testing.T) {
	nasty := "it's \"$(touch /tmp/nodefix-pwned)\" `id` $HOME\nline2"
	sec, err := runReport(context.Background(), localNode{}, DefaultConfig(), "test", "test report",
		`s value printf '%s' "$1"
s fails false
s path sh -c 'echo "$PATH"'
`, nasty)
	if err != nil {
		t.Fatal(err)
	}
	if sec["value"].Content != nasty || !sec["value"].OK() {
		t.Errorf("value %q", sec["value"].Content)
	}
	if sec["fails"].OK() {
		t.Error("false reported success")
	}
	if !strings.HasSuffix(sec["path"].Line(), ":/usr/local/sbin:/usr/sbin:/sbin") {
		t.Errorf("PATH not extended: %q", sec["path"].Line())
	}
}

type blockingNode struct{}

func (blockingNode) Run(ctx context.Context, _ Command) (Result, error) {
	<-ctx.Done()
	return Result{}, ctx.Err()
}

func TestRunCheckedTimeoutAndStatus(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CommandTimeout = 20 * time.Millisecond
	_, err := runChecked(context.Background(), blockingNode{}, cfg, "a hung command", Command{Argv: []string{"x"}})
	if err == nil || !strings.Contains(err.Error(), "a hung command: no answer within 20ms") {
		t.Errorf("timeout error: %v", err)
	}
	_, err = runChecked(context.Background(), localNode{}, cfg, "failing", shellScript("t", `echo "first" >&2; echo "second" >&2; exit 3`))
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitStatus != 3 || err.Error() != "failing: exit status 3: first; second" {
		t.Errorf("command error: %v", err)
	}
}
