package tasks

// What the rpm tasks add to exec.go's way of running commands: a bound
// enforced on the node itself (timeout(1)), so that a hung rpm is ended
// there and not merely abandoned by the transport, and short error texts
// (rpm --verifydb can print a line per damaged b-tree cell).

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// killAfter is how long a command bounded on the node by timeout(1) gets
// between SIGTERM and SIGKILL.
const killAfter = 10 * time.Second

// boundSlack is what the caller waits beyond a node-side bound, so that
// the node's timeout(1) reports first (exit 124 or 137) and we learn the
// command was ended rather than losing the node's answer.
const boundSlack = killAfter + 5*time.Second

// runScript runs a tagged script (see shellScript) bounded by d.
func runScript(ctx context.Context, node Node, d time.Duration, tag, body string, args ...string) (Result, error) {
	return runCommandTimeout(ctx, node, d, tag, shellScript(tag, body, args...))
}

// runBounded runs argv on the node under timeout(1) when the node has it.
// timedOut reports that the bound ended the command.
func runBounded(ctx context.Context, node Node, haveTimeout bool, d time.Duration, argv ...string) (res Result, timedOut bool, err error) {
	what := argvString(argv)
	if !haveTimeout || d <= 0 {
		res, err = runCommandTimeout(ctx, node, d, what, Command{Argv: argv})
		return res, false, err
	}
	secs := strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
	bounded := append([]string{"timeout", "-k", strconv.Itoa(int(killAfter / time.Second)), secs}, argv...)
	res, err = runCommandTimeout(ctx, node, d+boundSlack, what, Command{Argv: bounded})
	if err != nil {
		return res, false, err
	}
	// 124: timeout sent SIGTERM and the command ended; 137: it needed
	// the SIGKILL. Anything else is the command's own status.
	return res, res.ExitStatus == 124 || res.ExitStatus == 137, nil
}

// statusError is a *CommandError for a command that ran and failed, with
// the first lines of its stderr (or stdout when stderr is empty).
func statusError(what string, res Result) error {
	msg := firstLines(res.Stderr, 3)
	if msg == "" {
		msg = firstLines(res.Stdout, 3)
	}
	return &CommandError{What: what, ExitStatus: res.ExitStatus, Stderr: msg}
}

// firstLines returns up to n non-empty lines of b joined by "; ".
func firstLines(b []byte, n int) string {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		out = append(out, line)
		if len(out) == n {
			break
		}
	}
	return strings.Join(out, "; ")
}

// argvString renders argv for messages: words with spaces or quotes are
// quoted so the reader sees the boundaries. It is never run by a shell.
func argvString(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			b.WriteString(strconv.Quote(a))
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}
