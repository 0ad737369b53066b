// Package report turns a run's results into what people and programs
// read: Ansible-like lines as hosts finish tasks, a progress line on a
// terminal, PLAY RECAP, and one JSON document (--json). It only reads
// results; it never changes them.
package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/internal/trace"
	"github.com/nodefix/nodefix/tasks"
)

// Finding is one fleet-wide observation, such as an identity two hosts
// share (from the identity audit) or a refused fleet precheck.
type Finding struct {
	// Kind names what was compared, e.g. "duplicate hostname".
	Kind string `json:"kind"`
	// Value is what the hosts share.
	Value string `json:"value,omitempty"`
	// Hosts are the hosts concerned, in inventory order.
	Hosts []string `json:"hosts"`
	// Msg says what it means and what to do.
	Msg string `json:"msg"`
}

// HumanOptions shape human output.
type HumanOptions struct {
	// Color: ANSI colours (only on a terminal, never with NO_COLOR).
	Color bool
	// Progress: redraw a "hosts done / total" line (only on a terminal).
	Progress bool
	// Diff: show the before/after of what tasks changed (--diff).
	Diff bool
	// Total is how many hosts the run targets (for the progress line).
	Total int
	// Verbosity is the number of -v: 1 adds each task's details; 2 the
	// commands Trace recorded; 3 their output and the connection steps
	// (which Trace holds only then).
	Verbosity int
	// Trace, when set, hands over what was recorded on a host since its
	// last result (trace.Log.Take).
	Trace func(host string) trace.Entries
}

// Human writes Ansible-like output. It implements runner.Observer; the
// runner calls it one event at a time.
type Human struct {
	w    io.Writer
	opts HumanOptions

	mu sync.Mutex // Warning may come from another goroutine (Ctrl-C)

	started, done, failed, unreachable int
	progressShown                      bool

	// Warnings are said once, in Recap: the same warning on many hosts
	// is one line naming them all.
	warnings  []*warnGroup
	warnIndex map[warnKey]*warnGroup

	// scriptsShown are the scripts -vvv has shown in full.
	scriptsShown map[string]bool
}

// NewHuman writes to w.
func NewHuman(w io.Writer, opts HumanOptions) *Human {
	return &Human{w: w, opts: opts}
}

const (
	colorReset  = "\x1b[0m"
	colorGreen  = "\x1b[0;32m"
	colorYellow = "\x1b[0;33m"
	colorRed    = "\x1b[0;31m"
	colorCyan   = "\x1b[0;36m"
	colorPurple = "\x1b[0;35m"
)

func (h *Human) paint(color, s string) string {
	if !h.opts.Color || color == "" {
		return s
	}
	return color + s + colorReset
}

// statusWord is the line prefix Ansible uses for a task result.
func statusWord(s tasks.Status) (string, string) {
	switch s {
	case tasks.StatusOK:
		return "ok", colorGreen
	case tasks.StatusChanged:
		return "changed", colorYellow
	case tasks.StatusFailed:
		return "failed", colorRed
	case tasks.StatusSkipped:
		return "skipping", colorCyan
	}
	return string(s), ""
}

// HostStarted implements runner.Observer.
func (h *Human) HostStarted(string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started++
	h.redraw()
}

// TaskDone implements runner.Observer.
func (h *Human) TaskDone(host string, o tasks.Outcome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clear()
	h.traced(host)
	word, color := statusWord(o.Status)
	h.line(color, fmt.Sprintf("%s: [%s] => %s", word, host, o.Task), o.Msg)
	if h.opts.Verbosity >= verboseDetails {
		h.details(color, o)
	}
	for _, w := range o.Warnings {
		if w == o.Msg {
			continue // a task repeats its message as a warning for Ansible, which hides messages
		}
		h.collectWarning(o.Task, host, w)
	}
	if h.opts.Diff && o.Diff != nil {
		h.diff(host, o.Task, o.Diff)
	}
	h.redraw()
}

// HostDone implements runner.Observer.
func (h *Human) HostDone(r runner.HostResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clear()
	h.traced(r.Name) // connecting to an unreachable host; an interrupted task's commands
	h.done++
	switch r.Status() {
	case runner.HostUnreachable:
		h.unreachable++
		h.line(colorRed, fmt.Sprintf("unreachable: [%s]", r.Name), r.Msg)
	case runner.HostFailed:
		h.failed++
	case runner.HostInterrupted:
		h.line(colorPurple, fmt.Sprintf("interrupted: [%s]", r.Name), r.Msg)
	}
	for _, w := range r.Warnings {
		h.collectWarning("", r.Name, w)
	}
	h.redraw()
}

// line prints "head => msg", continuation lines of msg indented.
func (h *Human) line(color, head, msg string) {
	text := head
	if msg != "" {
		if strings.Contains(head, "=>") {
			text += ": " + msg
		} else {
			text += " => " + msg
		}
	}
	text = strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n    ")
	fmt.Fprintln(h.w, h.paint(color, text))
}

func (h *Human) warning(msg string) {
	msg = strings.ReplaceAll(strings.TrimRight(msg, "\n"), "\n", "\n    ")
	fmt.Fprintln(h.w, h.paint(colorPurple, "[WARNING]: "+msg))
}

// Warning prints a run-wide warning (such as host key checking being off).
func (h *Human) Warning(msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clear()
	h.warning(msg)
	h.redraw()
}

func (h *Human) diff(host, task string, d *tasks.Diff) {
	fmt.Fprintln(h.w, h.paint(colorCyan, fmt.Sprintf("--- before: [%s] %s", host, task)))
	fmt.Fprintln(h.w, h.paint(colorCyan, fmt.Sprintf("+++ after: [%s] %s", host, task)))
	for _, l := range lineDiff(splitLines(d.Before), splitLines(d.After)) {
		switch l[0] {
		case '-':
			fmt.Fprintln(h.w, h.paint(colorRed, l))
		case '+':
			fmt.Fprintln(h.w, h.paint(colorGreen, l))
		default:
			fmt.Fprintln(h.w, l)
		}
	}
}

// progress: only on a terminal; erased before anything else is printed.
func (h *Human) redraw() {
	if !h.opts.Progress || h.opts.Total < 2 {
		return
	}
	running := h.started - h.done
	s := fmt.Sprintf("[ %d/%d hosts done, %d running", h.done, h.opts.Total, running)
	if h.failed > 0 {
		s += fmt.Sprintf(", %d failed", h.failed)
	}
	if h.unreachable > 0 {
		s += fmt.Sprintf(", %d unreachable", h.unreachable)
	}
	fmt.Fprint(h.w, "\r\x1b[K"+s+" ]")
	h.progressShown = true
}

func (h *Human) clear() {
	if h.progressShown {
		fmt.Fprint(h.w, "\r\x1b[K")
		h.progressShown = false
	}
}

// Recap prints the warnings, the fleet findings and PLAY RECAP: one aligned line per
// host that ran, as Ansible prints it (ok counts changed tasks too).
func (h *Human) Recap(res runner.Result, findings []Finding) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clear()
	h.printWarnings(res)
	if len(findings) > 0 {
		fmt.Fprintln(h.w)
		fmt.Fprintln(h.w, banner("FLEET FINDINGS"))
		for _, f := range findings {
			h.warning(f.Text())
		}
	}
	fmt.Fprintln(h.w)
	fmt.Fprintln(h.w, banner("PLAY RECAP"))
	width := 26 // Ansible's
	var ran []runner.HostResult
	var notRun []string
	for _, r := range res.Hosts {
		if r.NotRun {
			notRun = append(notRun, r.Name)
			continue
		}
		ran = append(ran, r)
		width = max(width, len(r.Name))
	}
	for _, r := range ran {
		st := r.Stats()
		hostColor := colorGreen
		switch {
		case st.Failed > 0 || st.Unreachable > 0:
			hostColor = colorRed
		case r.Interrupted:
			hostColor = colorPurple
		case st.Changed > 0:
			hostColor = colorYellow
		}
		fields := []string{
			h.stat("ok", st.OK, colorGreen),
			h.stat("changed", st.Changed, colorYellow),
			h.stat("unreachable", st.Unreachable, colorRed),
			h.stat("failed", st.Failed, colorRed),
			h.stat("skipped", st.Skipped, colorCyan),
		}
		name := h.paint(hostColor, r.Name) + strings.Repeat(" ", width-len(r.Name))
		line := name + " : " + strings.Join(fields, " ")
		if r.Interrupted {
			line += " " + h.paint(colorPurple, "interrupted")
		}
		if r.Stopped {
			line += " " + h.paint(colorRed, "stopped")
		}
		fmt.Fprintln(h.w, strings.TrimRight(line, " "))
	}
	if res.Interrupted {
		fmt.Fprintln(h.w)
		msg := fmt.Sprintf("interrupted after %s: %d of %d hosts finished", res.Duration.Round(time.Millisecond), countFinished(res), len(res.Hosts))
		if len(notRun) > 0 {
			msg += fmt.Sprintf("; not started: %s", abbreviate(notRun, 20))
		}
		fmt.Fprintln(h.w, h.paint(colorPurple, msg))
	}
	if res.Abort != nil && !res.Interrupted {
		fmt.Fprintln(h.w)
		msg := fmt.Sprintf("aborted after batch %d of %d: %s", res.Abort.Batch, len(res.Batches), res.Abort.Reason)
		if len(notRun) > 0 {
			msg += fmt.Sprintf("; not started: %s", abbreviate(notRun, 20))
		}
		fmt.Fprintln(h.w, h.paint(colorRed, msg))
	}
}

// RunID prints the run's id after the recap: every change of the run
// carries it in the audit trail on its node.
func (h *Human) RunID(id string, check bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if check {
		fmt.Fprintf(h.w, "run id %s (check mode: nothing changed, nothing logged)\n", id)
		return
	}
	fmt.Fprintf(h.w, "run id %s: each change is logged on its node in /var/log/nodefix/changes.jsonl\n", id)
}

func countFinished(res runner.Result) int {
	n := 0
	for _, r := range res.Hosts {
		if !r.NotRun && !r.Interrupted {
			n++
		}
	}
	return n
}

func (h *Human) stat(name string, n int, color string) string {
	s := fmt.Sprintf("%s=%-4d", name, n)
	if n == 0 {
		return s
	}
	// Colour the text, keep the padding outside so columns stay aligned.
	text := strings.TrimRight(s, " ")
	return h.paint(color, text) + s[len(text):]
}

// banner is Ansible's "TITLE ****" line, 80 columns wide.
func banner(title string) string {
	return title + " " + strings.Repeat("*", max(3, 79-len(title)))
}

func abbreviate(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}

// Text is a finding as one message: Msg when set, which then says it all.
func (f Finding) Text() string {
	if f.Msg != "" {
		return f.Msg
	}
	s := f.Kind
	if f.Value != "" {
		s += fmt.Sprintf(" %q", f.Value)
	}
	if len(f.Hosts) > 0 {
		s += " on " + strings.Join(f.Hosts, ", ")
	}
	return s
}

// SortFindings orders findings by kind then value, for stable output.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Kind != fs[j].Kind {
			return fs[i].Kind < fs[j].Kind
		}
		return fs[i].Value < fs[j].Value
	})
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// lineDiff is a minimal line diff (longest common subsequence): enough for
// the small files tasks show (/etc/hostname, /etc/hosts).
func lineDiff(a, b []string) []string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			out = append(out, " "+a[i])
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, "-"+a[i])
			i++
		default:
			out = append(out, "+"+b[j])
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, "-"+a[i])
	}
	for ; j < m; j++ {
		out = append(out, "+"+b[j])
	}
	return out
}
