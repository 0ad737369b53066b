package tasks

import (
	"net/netip"
	"strings"
)

// selfEntryAddr is where a host's own name resolves when /etc/hosts has no
// entry for it: Debian's and cloud-init's convention, which every Linux
// resolves (all of 127/8 is loopback) and which keeps the name from
// shadowing the node's real address (kubeasz's managed block maps node
// names to node IPs; that line is left alone).
const selfEntryAddr = "127.0.1.1"

// hostsLine is one line of /etc/hosts, split so that names can be replaced
// or added without touching its spacing or its comment.
type hostsLine struct {
	code    string // the line up to its comment
	comment string // from '#' to the end, or ""
	// spans are the [start, end) offsets of the fields in code; the
	// first field is the address.
	spans [][2]int
}

func parseHostsLine(line string) hostsLine {
	l := hostsLine{code: line}
	if i := strings.IndexByte(line, '#'); i >= 0 {
		l.code, l.comment = line[:i], line[i:]
	}
	start := -1
	for i := 0; i <= len(l.code); i++ {
		blank := i == len(l.code) || l.code[i] == ' ' || l.code[i] == '\t' || l.code[i] == '\r'
		switch {
		case !blank && start < 0:
			start = i
		case blank && start >= 0:
			l.spans = append(l.spans, [2]int{start, i})
			start = -1
		}
	}
	return l
}

func (l hostsLine) field(i int) string { return l.code[l.spans[i][0]:l.spans[i][1]] }

// names are the host names the line maps (every field after the address).
func (l hostsLine) names() []string {
	var names []string
	for i := 1; i < len(l.spans); i++ {
		names = append(names, l.field(i))
	}
	return names
}

func (l hostsLine) isEntry() bool { return len(l.spans) >= 2 }

func (l hostsLine) addr() (netip.Addr, bool) {
	if len(l.spans) == 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(l.field(0))
	return a, err == nil
}

func (l hostsLine) isLoopback() bool {
	a, ok := l.addr()
	return ok && a.IsLoopback()
}

func (l hostsLine) has(name string) bool {
	for _, n := range l.names() {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// withNames rebuilds the line with names in place of its current names,
// keeping the address, the spacing before the first name and the comment.
func (l hostsLine) withNames(names []string) string {
	sep := " "
	if len(l.spans) >= 2 {
		sep = l.code[l.spans[0][1]:l.spans[1][0]]
	}
	var b strings.Builder
	b.WriteString(l.code[:l.spans[0][1]])
	for _, n := range names {
		b.WriteString(sep)
		b.WriteString(n)
		sep = " "
	}
	tail := l.code[l.spans[len(l.spans)-1][1]:]
	if l.comment != "" && tail == "" {
		tail = " "
	}
	b.WriteString(tail)
	b.WriteString(l.comment)
	return b.String()
}

// isLocalhostName reports names that mean "this machine's loopback" on
// every host. They are never renamed: when every node is called localhost
// (the incident), localhost must keep resolving.
func isLocalhostName(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "localhost") || strings.HasPrefix(n, "ip6-")
}

// hostsResolve returns the first /etc/hosts entry mapping name, as glibc
// would find it, and whether there is one.
func hostsResolve(content, name string) (string, bool) {
	for _, line := range strings.Split(content, "\n") {
		if l := parseHostsLine(line); l.isEntry() && l.has(name) {
			return strings.TrimSpace(line), true
		}
	}
	return "", false
}

// planHosts returns /etc/hosts as it must be for newName to resolve after
// a rename from oldName, and whether that differs from content. Every line
// the rename does not concern is kept byte for byte, comments included.
//
//  1. On loopback lines (the host's own entries), oldName and its
//     qualified forms (old.example.com) become newName (new.example.com),
//     unless oldName is a localhost name.
//  2. If newName still resolves nowhere, it becomes the first name of the
//     127.0.1.1 line, or a new "127.0.1.1 newName" line follows the last
//     IPv4 loopback line (or ends the file).
//
// Lines on other addresses are never edited: on a cloned VM the old name
// may be another node's, whose entry must keep working.
func planHosts(content, oldName, newName string, exists bool) (string, bool) {
	if !exists {
		// No /etc/hosts at all: give the host the usual minimum rather
		// than a file where localhost no longer resolves.
		return "127.0.0.1\tlocalhost\n" + selfEntryAddr + "\t" + newName + "\n::1\tlocalhost ip6-localhost ip6-loopback\n", true
	}
	lines := strings.Split(content, "\n")
	if oldName != "" && !strings.EqualFold(oldName, newName) && !isLocalhostName(oldName) {
		for i, line := range lines {
			l := parseHostsLine(line)
			if !l.isEntry() || !l.isLoopback() {
				continue
			}
			names, renamed := renameIn(l.names(), oldName, newName)
			if renamed {
				lines[i] = l.withNames(names)
			}
		}
	}
	joined := strings.Join(lines, "\n")
	if _, ok := hostsResolve(joined, newName); ok {
		return joined, joined != content
	}

	lastLoopback4, selfLine := -1, -1
	for i, line := range lines {
		l := parseHostsLine(line)
		if !l.isEntry() {
			continue
		}
		if a, ok := l.addr(); ok && a.Is4() && a.IsLoopback() {
			lastLoopback4 = i
			if l.field(0) == selfEntryAddr && selfLine < 0 {
				selfLine = i
			}
		}
	}
	switch {
	case selfLine >= 0:
		l := parseHostsLine(lines[selfLine])
		lines[selfLine] = l.withNames(append([]string{newName}, l.names()...))
	case lastLoopback4 >= 0:
		lines = append(lines[:lastLoopback4+1], append([]string{selfEntryAddr + "\t" + newName}, lines[lastLoopback4+1:]...)...)
	default:
		// Append, keeping the file's final newline where it was.
		if n := len(lines); n > 0 && lines[n-1] == "" {
			lines = append(lines[:n-1], selfEntryAddr+"\t"+newName, "")
		} else {
			lines = append(lines, selfEntryAddr+"\t"+newName)
		}
	}
	joined = strings.Join(lines, "\n")
	return joined, joined != content
}

// renameIn replaces oldName and old.<domain> by newName and new.<domain>
// in names, dropping any duplicate that creates.
func renameIn(names []string, oldName, newName string) ([]string, bool) {
	var out []string
	renamed := false
	seen := map[string]bool{}
	for _, n := range names {
		switch {
		case strings.EqualFold(n, oldName):
			n, renamed = newName, true
		case len(n) > len(oldName)+1 && strings.EqualFold(n[:len(oldName)+1], oldName+"."):
			n, renamed = newName+n[len(oldName):], true
		}
		if seen[strings.ToLower(n)] {
			continue
		}
		seen[strings.ToLower(n)] = true
		out = append(out, n)
	}
	return out, renamed
}
