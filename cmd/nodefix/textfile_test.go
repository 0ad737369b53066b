package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/promtest"
	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/tasks"
)

// nodefix check --connection local --textfile on this machine: the
// read-only tasks, the file as node_exporter's textfile collector wants
// it, no host label.
func TestCheckLocalWritesTextfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodefix.prom")
	var stdout, stderr bytes.Buffer
	args := []string{"nodefix", "check", "--connection", "local", "--tasks", "longhorn-deps", "--textfile", path}
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	if code == exitcode.Usage {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{
		"\nnodefix_last_run_timestamp_seconds ",
		"\nnodefix_task_result{task=\"longhorn-deps\",result=\"failed\"} ",
		"\nnodefix_longhorn_executable_present{name=\"iscsiadm\"} ",
		"\nnodefix_run_info{mode=\"check\",version=\"" + version + "\"} 1\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q:\n%s", path, want, text)
		}
	}
	if strings.Contains(text, "host=") {
		t.Errorf("a local run's metrics carry a host label:\n%s", text)
	}
	promtest.CheckMetrics(t, data)
}

func TestRunRefusesTextfileWithoutDirectory(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"nodefix", "check", "--connection", "local", "--textfile", "/nonexistent/dir/nodefix.prom"}
	if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != exitcode.Usage {
		t.Errorf("exit %d, want %d", code, exitcode.Usage)
	}
	if want := `--textfile "/nonexistent/dir/nodefix.prom": directory /nonexistent/dir`; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
}

// What the exit code is, and whether the file is written, for each way a
// run can end.
func TestWriteTextfile(t *testing.T) {
	okHost := runner.HostResult{Name: "localhost", Outcomes: []tasks.Outcome{{Task: tasks.NameLonghornDeps, Status: tasks.StatusOK}}}
	failedHost := runner.HostResult{Name: "localhost", Outcomes: []tasks.Outcome{{Task: tasks.NameLonghornDeps, Status: tasks.StatusFailed, Msg: "missing: iscsiadm"}}}
	cases := []struct {
		name     string
		res      runner.Result
		badPath  bool
		code     int
		written  bool
		errWant  []string
		noteWant string
	}{
		{name: "ok: written, exit 0", res: runner.Result{Hosts: []runner.HostResult{okHost}}, code: exitcode.OK, written: true},
		{name: "a failed host: written, exit 2", res: runner.Result{Hosts: []runner.HostResult{failedHost}}, code: exitcode.HostFailed, written: true,
			errWant: []string{"missing: iscsiadm"}},
		{name: "interrupted: not written, exit 99", res: runner.Result{Interrupted: true, Hosts: []runner.HostResult{okHost}}, code: exitcode.Interrupted,
			noteWant: "not written: the run was interrupted; it keeps the last complete run's metrics"},
		{name: "refused: not written, exit 1", res: runner.Result{PrecheckErr: errors.New("two hosts named a")}, code: exitcode.Usage,
			noteWant: "not written: the fleet precheck refused the run"},
		{name: "unwritable: exit 1 though the run was ok", res: runner.Result{Hosts: []runner.HostResult{okHost}}, badPath: true, code: exitcode.Usage,
			errWant: []string{"--textfile: creating a temporary file beside"}},
		{name: "unwritable and a failed host: exit 1, both said", res: runner.Result{Hosts: []runner.HostResult{failedHost}}, badPath: true, code: exitcode.Usage,
			errWant: []string{"--textfile: creating a temporary file beside", "missing: iscsiadm"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "nodefix.prom")
			if c.badPath {
				path = filepath.Join(dir, "gone", "nodefix.prom")
			}
			c.res.Start, c.res.Duration = time.Now(), time.Second
			var stderr bytes.Buffer
			a := &app{stdout: &bytes.Buffer{}, stderr: &stderr}
			o := runOptions{textfile: path, connection: "local", taskNames: []string{tasks.NameLonghornDeps}}
			err := a.writeTextfile(o, "check", c.res, nil)
			if got := exitcode.Of(err); got != c.code {
				t.Errorf("exit code %d, want %d (err %v)", got, c.code, err)
			}
			for _, w := range c.errWant {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
			if !strings.Contains(stderr.String(), c.noteWant) {
				t.Errorf("stderr %q lacks %q", stderr.String(), c.noteWant)
			}
			_, statErr := os.Stat(path)
			if written := statErr == nil; written != c.written {
				t.Errorf("written=%v, want %v", written, c.written)
			}
		})
	}
}
