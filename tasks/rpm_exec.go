package tasks

// Helpers the rpm tasks share for running commands on a node. They belong
// to no single task; when another task needs the same (hostname.go and
// longhorn_deps.go grow their own twins in parallel), merge them here.

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// killAfter is how long a command bounded on the node by timeout(1) gets
// between SIGTERM and SIGKILL.
const killAfter = 10 * time.Second

// boundSlack is what the caller's context waits beyond a node-side bound,
// so that the node's timeout(1) reports first (exit 124/137) and we learn
// the command was ended rather than losing the node's answer.
const boundSlack = killAfter + 5*time.Second

// run runs argv on node with cfg.CommandTimeout as the bound.
func run(ctx context.Context, node Node, cfg Config, argv ...string) (Result, error) {
	return runWithin(ctx, node, cfg.CommandTimeout, Command{Argv: argv})
}

// runWithin runs cmd on node, giving up after d (no bound when d <= 0).
// A command still running then is the transport's to end; use boundedArgv
// when the node itself must end it (rpm --rebuilddb).
func runWithin(ctx context.Context, node Node, d time.Duration, cmd Command) (Result, error) {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	res, err := node.Run(ctx, cmd)
	if err != nil {
		return res, fmt.Errorf("running %s: %w", argvString(cmd.Argv), err)
	}
	return res, nil
}

// script builds the only kind of shell command the tasks run: a fixed
// script with every value passed as a positional parameter ($1, $2 …), so
// nothing a node or an operator supplies is ever parsed as shell.
func script(body string, args ...string) []string {
	return append([]string{"sh", "-c", body, "sh"}, args...)
}

// runBounded runs argv on the node under timeout(1) when the node has it,
// so that a hung command is ended on the node itself and not only
// abandoned by the transport. timedOut reports that the bound ended it.
func runBounded(ctx context.Context, node Node, haveTimeout bool, d time.Duration, argv ...string) (res Result, timedOut bool, err error) {
	if !haveTimeout || d <= 0 {
		res, err = runWithin(ctx, node, d, Command{Argv: argv})
		return res, false, err
	}
	secs := strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
	bounded := append([]string{"timeout", "-k", strconv.Itoa(int(killAfter / time.Second)), secs}, argv...)
	res, err = runWithin(ctx, node, d+boundSlack, Command{Argv: bounded})
	if err != nil {
		return res, false, err
	}
	// 124: timeout sent SIGTERM and the command ended; 137: it needed
	// the SIGKILL. Anything else is the command's own status.
	return res, res.ExitStatus == 124 || res.ExitStatus == 137, nil
}

// statusError describes a command that ran and failed, with the first
// lines of what it said on stderr.
func statusError(what string, res Result) error {
	msg := firstLines(res.Stderr, 3)
	if msg == "" {
		msg = firstLines(res.Stdout, 3)
	}
	if msg == "" {
		return fmt.Errorf("%s: exit status %d", what, res.ExitStatus)
	}
	return fmt.Errorf("%s: exit status %d: %s", what, res.ExitStatus, msg)
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

// trimOutput returns b without surrounding white space, as a string.
func trimOutput(b []byte) string { return string(bytes.TrimSpace(b)) }
