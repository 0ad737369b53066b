package tasks

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestProtectJobHasNoSingleQuote(t *testing.T) {
	if strings.Contains(protectJob, "'") {
		t.Fatal("protectJob holds a single quote: protectWrapper quotes it in single quotes")
	}
}

// A protected step passes its stdin, arguments, output and exit status
// through, and leaves no job directory.
func TestProtectedStepRunsLikeAScript(t *testing.T) {
	n := newNSNode(t, nsNodeOptions{})
	res, err := runProtected(context.Background(), n, time.Minute, "protect-test",
		`read -r line; printf 'in=%s args=%s,%s\n' "$line" "$1" "$2"; echo oops >&2; exit 3`,
		[]byte("hello\n"), "a b", "c")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "in=hello args=a b,c\n" || res.ExitStatus != 3 || string(res.Stderr) != "oops\n" {
		t.Errorf("stdout %q, stderr %q, status %d", got, res.Stderr, res.ExitStatus)
	}
	if left := n.sh(`ls -A ` + jobsDir); left != "" {
		t.Errorf("job directories left: %s", left)
	}
}

// The waiter ended (the controller's session killed, as Ctrl-C does):
// the step runs to its end in its own session and removes its own job
// directory.
func TestProtectedStepOutlivesItsWaiter(t *testing.T) {
	n := newNSNode(t, nsNodeOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := runProtected(ctx, n, time.Minute, "protect-test",
			`: >/var/tmp/started; while [ ! -e /var/tmp/go ]; do sleep 0.05; done; echo finished >/var/tmp/result`, nil)
		done <- err
	}()
	n.sh(`until [ -e /var/tmp/started ]; do sleep 0.05; done`)
	// End every process of the waiter's session, as the ssh transport's
	// Ctrl-C does (nsNode's commands run in the node's session of PID 1:
	// kill the waiter shells by their script instead).
	n.sh(`for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = "$$" ] && continue
		case $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) in *nodefix-protected*) kill -KILL "${p#/proc/}";; esac
	done`)
	cancel()
	<-done
	n.sh(`: >/var/tmp/go; until [ -e /var/tmp/result ]; do sleep 0.05; done`)
	if got := strings.TrimSpace(n.read("/var/tmp/result")); got != "finished" {
		t.Errorf("result %q", got)
	}
	n.sh(`i=0; while [ -n "$(ls -A ` + jobsDir + `)" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done`)
	if left := n.sh(`ls -A ` + jobsDir); left != "" {
		t.Errorf("job directories left after the step ended: %s", left)
	}
}

// The signal script, for real: the queries it ended, with the signal each
// got, in one audit line on the node.
func TestEndScriptWritesItsAuditRecord(t *testing.T) {
	n := newNSNode(t, nsNodeOptions{})
	pids := strings.Fields(n.sh(`sleep 1001 </dev/null >/dev/null 2>&1 & echo $!; (trap '' TERM; exec sleep 1002) </dev/null >/dev/null 2>&1 & echo $!`))
	var targets []*queryTarget
	for _, p := range pids {
		pid, _ := strconv.Atoi(p)
		start := strings.Fields(n.sh(`read -r s </proc/$1/stat; s=${s##*) }; set -- $s; echo ${20}`, p))[0]
		ticks, _ := strconv.ParseUint(start, 10, 64)
		targets = append(targets, &queryTarget{Proc: &Process{PID: pid, StartTicks: ticks, Comm: "sleep", Argv: []string{"sleep", "100x"}, RSSBytes: 4096}})
	}
	cfg := DefaultConfig()
	cfg.RPMQueryGrace = 400 * time.Millisecond
	cfg.Audit = Audit{RunID: "0123456789abcdef", Version: "test", ControllerUser: "ops", ControllerHost: "ctl"}
	out := RPMQueries{}.end(context.Background(), n, cfg, "node01", &queryPlan{Targets: targets}, "sqlite", Outcome{Details: map[string]any{}})
	t.Logf("%s: %s", out.Status, out.Msg)
	var rec struct {
		Time    string `json:"time"`
		RunID   string `json:"run_id"`
		Task    string `json:"task"`
		Outcome string `json:"outcome"`
		Change  struct {
			Hung    int `json:"hung_queries"`
			Queries []struct {
				PID    int    `json:"pid"`
				Signal string `json:"signal"`
				RSS    int64  `json:"rss_bytes"`
			} `json:"queries"`
		} `json:"change"`
	}
	lines := strings.Split(strings.TrimSpace(n.read(AuditLogPath)), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d audit lines, want 1:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, lines[0])
	}
	if rec.RunID != "0123456789abcdef" || rec.Task != NameRPMQueries || rec.Outcome != "changed" || rec.Time == "" || rec.Change.Hung != 2 || len(rec.Change.Queries) != 2 {
		t.Fatalf("record %+v", rec)
	}
	want := map[string]string{pids[0]: "SIGTERM", pids[1]: "SIGKILL"}
	for _, q := range rec.Change.Queries {
		if want[strconv.Itoa(q.PID)] != q.Signal || q.RSS != 4096 {
			t.Errorf("query %+v, want signal %s", q, want[strconv.Itoa(q.PID)])
		}
	}
	if mode := n.sh(`stat -c '%a' /var/log/nodefix /var/log/nodefix/changes.jsonl`); mode != "750\n640\n" {
		t.Errorf("modes %q, want 750 640", mode)
	}
}
