package tasks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file holds what every task needs to talk to a node: running one
// command bounded by Config.CommandTimeout, turning a non-zero exit status
// into an error that carries the command's own stderr, and shell scripts
// whose values travel as positional parameters, never spliced into the
// script text.

// sbinPath is appended to PATH in every script: a non-login SSH session
// (and sudo's secure_path on some distributions) often lacks the sbin
// directories where iscsiadm, mount.nfs, hostname and modinfo live.
const sbinPath = `PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/sbin:/sbin"; export PATH`

// scriptTagPrefix starts the first line of every script: it names the
// script in process listings on the node and lets test fakes tell scripts
// apart without parsing shell.
const scriptTagPrefix = "# nodefix:"

// shellScript is the one way tasks run shell: Argv {"sh", "-c", script,
// "nodefix", args...}, so the script reads its values as "$1", "$2"...
// and no value is ever quoted by hand.
func shellScript(tag, script string, args ...string) Command {
	argv := []string{"sh", "-c", scriptTagPrefix + tag + "\n" + sbinPath + "\n" + script, "nodefix"}
	return Command{Argv: append(argv, args...)}
}

// CommandError is a command that ran and exited non-zero.
type CommandError struct {
	// What names the command for the operator ("hostnamectl set-hostname").
	What       string
	ExitStatus int
	Stderr     string
}

func (e *CommandError) Error() string {
	// One line per outcome: a report shows the command's own words, its
	// lines joined.
	var lines []string
	for _, l := range strings.Split(e.Stderr, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	msg := strings.Join(lines, "; ")
	if msg == "" {
		return fmt.Sprintf("%s: exit status %d", e.What, e.ExitStatus)
	}
	return fmt.Sprintf("%s: exit status %d: %s", e.What, e.ExitStatus, msg)
}

// runCommand runs cmd on node, bounded by cfg.CommandTimeout. The error
// says which command did not answer and why; a non-zero exit status is
// not an error here (see runChecked).
func runCommand(ctx context.Context, node Node, cfg Config, what string, cmd Command) (Result, error) {
	return runCommandTimeout(ctx, node, cfg.CommandTimeout, what, cmd)
}

func runCommandTimeout(ctx context.Context, node Node, timeout time.Duration, what string, cmd Command) (Result, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res, err := node.Run(ctx, cmd)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return res, fmt.Errorf("%s: no answer within %s: %w", what, timeout, err)
		}
		return res, fmt.Errorf("%s: %w", what, err)
	}
	return res, nil
}

// runChecked is runCommand where a non-zero exit status is a *CommandError
// carrying the command's stderr.
func runChecked(ctx context.Context, node Node, cfg Config, what string, cmd Command) (Result, error) {
	return runCheckedTimeout(ctx, node, cfg.CommandTimeout, what, cmd)
}

func runCheckedTimeout(ctx context.Context, node Node, timeout time.Duration, what string, cmd Command) (Result, error) {
	res, err := runCommandTimeout(ctx, node, timeout, what, cmd)
	if err != nil {
		return res, err
	}
	if res.ExitStatus != 0 {
		return res, &CommandError{What: what, ExitStatus: res.ExitStatus, Stderr: string(res.Stderr)}
	}
	return res, nil
}

// Gathering many facts in one script saves SSH round trips, which is what
// makes a 500-node fleet fast. A report script prints each fact as a
// section framed by a boundary that is random per call, so no file content
// can be mistaken for a frame:
//
//	<boundary> <name>\n<content>\n<boundary>/ <exit status>\n
//
// The newline before the closing frame is always printed, so content is
// returned byte for byte, trailing newline or not.

// reportFuncs defines s NAME CMD...: print CMD's stdout as section NAME.
// It expects the boundary in $B.
const reportFuncs = `s() { __n=$1; shift; printf '%s %s\n' "$B" "$__n"; "$@" 2>/dev/null; __r=$?; printf '\n%s/ %s\n' "$B" "$__r"; }
` + readFuncs

// readFuncs define cat1 FILE and catn FILE...: cat(1) for text files in
// the shell itself. Starting a program costs milliseconds on a VM and the
// gathers read dozens of small files on every host; the shell's read
// keeps every byte of a text file (and a last line without newline) but
// NULs. Like cat, they fail for a file they cannot read and go on.
const readFuncs = `cat1() { [ -r "$1" ] && [ ! -d "$1" ] || return 1; while IFS= read -r __l; do printf '%s\n' "$__l"; done <"$1"; [ -z "$__l" ] || printf '%s' "$__l"; }
catn() { __s=0; for __f in "$@"; do cat1 "$__f" || __s=1; done; return $__s; }
`

// newBoundary returns a fresh section boundary.
func newBoundary() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux; a fixed boundary would still
		// parse every ordinary file.
		return "--nodefix-boundary--"
	}
	return "--nodefix-" + hex.EncodeToString(b[:])
}

// section is one fact from a report script.
type section struct {
	Content string
	Status  int
}

// OK reports whether the command behind the section succeeded.
func (s section) OK() bool { return s.Status == 0 }

// Line is the content's first line without surrounding blanks.
func (s section) Line() string {
	first, _, _ := strings.Cut(s.Content, "\n")
	return strings.TrimSpace(first)
}

// parseSections reads a report script's stdout. A section that is opened
// but never closed (the script was cut short) is an error: half a file
// must never be taken for the whole of it.
func parseSections(out []byte, boundary string) (map[string]section, error) {
	sections := map[string]section{}
	open := []byte(boundary + " ")
	closing := []byte("\n" + boundary + "/ ")
	rest := out
	for len(rest) > 0 {
		if !bytes.HasPrefix(rest, open) {
			// Anything outside sections (a login banner, a shell profile's
			// chatter) is skipped up to the next frame.
			i := bytes.Index(rest, append([]byte("\n"), open...))
			if i < 0 {
				break
			}
			rest = rest[i+1:]
			continue
		}
		header, body, ok := bytes.Cut(rest[len(open):], []byte("\n"))
		if !ok {
			return nil, fmt.Errorf("report cut short in the header of section %q", header)
		}
		name := string(header)
		end := bytes.Index(body, closing)
		if end < 0 {
			return nil, fmt.Errorf("report cut short in section %q", name)
		}
		content := body[:end]
		statusLine, after, _ := bytes.Cut(body[end+len(closing):], []byte("\n"))
		status, err := strconv.Atoi(string(statusLine))
		if err != nil {
			return nil, fmt.Errorf("section %q: bad exit status %q", name, statusLine)
		}
		sections[name] = section{Content: string(content), Status: status}
		rest = after
	}
	return sections, nil
}

// runReport runs a report script (reportFuncs + body, boundary as $1,
// extra values as $2...) and parses its sections.
func runReport(ctx context.Context, node Node, cfg Config, tag, what, body string, args ...string) (map[string]section, error) {
	boundary := newBoundary()
	script := `B=$1; shift` + "\n" + reportFuncs + body
	res, err := runCommand(ctx, node, cfg, what, shellScript(tag, script, append([]string{boundary}, args...)...))
	if err != nil {
		return nil, err
	}
	sections, err := parseSections(res.Stdout, boundary)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (exit status %d, stderr: %s)", what, err, res.ExitStatus, strings.TrimSpace(string(res.Stderr)))
	}
	if res.ExitStatus != 0 {
		return nil, &CommandError{What: what, ExitStatus: res.ExitStatus, Stderr: string(res.Stderr)}
	}
	return sections, nil
}

// writeFileScript replaces $1 atomically with stdin: a temporary file in
// the same directory (so the rename cannot cross filesystems), mode $2,
// then rename. The directory is created if missing.
const writeFileScript = `path=$1 mode=$2
dir=${path%/*}; [ -n "$dir" ] || dir=/
mkdir -p "$dir" || exit 1
tmp=$(mktemp "$dir/.${path##*/}.nodefix.XXXXXX") || exit 1
if cat >"$tmp" && chmod "$mode" "$tmp" && mv -f "$tmp" "$path"; then exit 0; fi
rm -f "$tmp"
exit 1
`

// writeFileAtomic replaces path on node with content (mode e.g. "0644").
func writeFileAtomic(ctx context.Context, node Node, cfg Config, path, mode string, content []byte) error {
	cmd := shellScript("write-file", writeFileScript, path, mode)
	cmd.Stdin = content
	_, err := runChecked(ctx, node, cfg, "writing "+path, cmd)
	return err
}
