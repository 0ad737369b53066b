package tasks

import (
	"context"
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
