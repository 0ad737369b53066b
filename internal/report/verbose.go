package report

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nodefix/nodefix/internal/trace"
	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/tasks"
)

// What each -v adds, as in Ansible: -v a task's details, -vv the commands
// it ran with their exit status and duration, -vvv their output and the
// steps of connecting. A host's lines are printed together, in the order
// things happened: connecting, the commands, then the task's result line.
const (
	verboseDetails  = 1
	verboseCommands = 2
	verboseOutput   = 3
)

// argWidth is how much of one argument -vv shows: enough for a script's
// first line ("# nodefix:TAG", which names it), not the script.
const argWidth = 72

// commandWidth bounds the command line -vvv shows in full: the longest
// script nodefix runs is a few KiB.
const commandWidth = 8192

const colorBlue = "\x1b[0;34m" // Ansible's colour for verbose output

// traced prints what was recorded on host since its last result: the
// steps of connecting and the commands run.
func (h *Human) traced(host string) {
	if h.opts.Trace == nil {
		return
	}
	e := h.opts.Trace(host)
	for _, s := range e.Steps {
		h.traceLine(fmt.Sprintf("<%s> %s", host, s))
	}
	for _, c := range e.Commands {
		h.command(host, c)
	}
}

func (h *Human) traceLine(text string) {
	text = strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n    ")
	fmt.Fprintln(h.w, h.paint(colorBlue, text))
}

// command prints one command: "<node01> rpmdb: EXEC rpm --verifydb (rc=0,
// 31ms)", and at -vvv what it wrote.
func (h *Human) command(host string, c trace.Command) {
	full := h.opts.Verbosity >= verboseOutput
	result := fmt.Sprintf("rc=%d, %s", c.ExitStatus, duration(c.Duration))
	if c.Err != "" {
		result = fmt.Sprintf("no exit status after %s: %s", duration(c.Duration), c.Err)
	}
	h.traceLine(fmt.Sprintf("<%s> %s: EXEC %s (%s)", host, c.Task, h.commandLine(c.Argv, full), result))
	if !full {
		return
	}
	if c.StdinBytes > 0 {
		h.traceLine(fmt.Sprintf("    stdin: %d bytes (not shown)", c.StdinBytes))
	}
	h.output("stdout", c.Stdout)
	h.output("stderr", c.Stderr)
}

func (h *Human) output(name string, o trace.Output) {
	if o.Size == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "    %s (%d bytes", name, o.Size)
	if o.Dropped() > 0 {
		fmt.Fprintf(&b, ", the first %d and the last %d shown", len(o.Head), len(o.Tail))
	}
	b.WriteString("):")
	text := printable(o.Head)
	if o.Dropped() > 0 {
		text = strings.TrimSuffix(text, "\n") + fmt.Sprintf("\n[… %d bytes left out …]\n", o.Dropped()) + printable(o.Tail)
	}
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		b.WriteString("\n      " + l)
	}
	fmt.Fprintln(h.w, h.paint(colorBlue, b.String()))
}

// commandLine shows argv as a shell would read it. Short of full, each
// argument is cut to its first line and argWidth bytes; in full, a script
// (an argument of several lines) is shown once per run, and cut where it
// comes again: every host runs the same few scripts.
func (h *Human) commandLine(argv []string, full bool) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		switch {
		case !full:
			a = shorten(a, "")
		case strings.Contains(a, "\n") && h.scriptsShown[a]:
			a = shorten(a, ", shown in full above")
		case strings.Contains(a, "\n"):
			if h.scriptsShown == nil {
				h.scriptsShown = map[string]bool{}
			}
			h.scriptsShown[a] = true
		}
		words[i] = transport.ShellQuote(printable([]byte(a)))
	}
	line := strings.Join(words, " ")
	if full && len(line) > commandWidth {
		line = line[:commandWidth] + fmt.Sprintf("… [%d more bytes]", len(line)-commandWidth)
	}
	return line
}

func shorten(a, note string) string {
	more := ""
	if i := strings.IndexByte(a, '\n'); i >= 0 {
		more = fmt.Sprintf(" … (%d lines%s)", strings.Count(a, "\n")+1, note)
		a = a[:i]
	}
	if len(a) > argWidth {
		cut := argWidth
		for cut > 0 && !utf8.RuneStart(a[cut]) {
			cut--
		}
		a = a[:cut] + "…"
	}
	return a + more
}

// printable keeps text and newlines and shows every other control byte
// escaped (\x1b…), so that a command's output cannot move the cursor or
// recolour the operator's terminal; invalid UTF-8 shows as U+FFFD.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	var out strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t':
			out.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&out, `\x%02x`, r)
		default:
			out.WriteRune(r)
		}
	}
	return out.String()
}

func duration(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// details prints -v's task details and facts, as JSON (keys sorted).
func (h *Human) details(color string, o tasks.Outcome) {
	for _, part := range []struct {
		name  string
		value any
		empty bool
	}{
		{"details", o.Details, len(o.Details) == 0},
		{"facts", o.Facts, len(o.Facts) == 0},
	} {
		if part.empty {
			continue
		}
		data, err := json.Marshal(part.value)
		if err != nil {
			data = []byte(fmt.Sprintf("%v", part.value))
		}
		fmt.Fprintln(h.w, h.paint(color, "    "+part.name+": "+printable(data)))
	}
}
