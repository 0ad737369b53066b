package inventory

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

var rePatternSubscript = regexp.MustCompile(`^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$`)

// Match selects hosts as --limit does in Ansible: patterns separated by
// ',' (or ':'), each a host or group name, a glob (web*), a regex (~web\d+),
// optionally subscripted (web[0], web[1:3], web[2:]); '&' intersects, '!'
// excludes; @FILE reads more patterns from a file, one per line. The
// result is in inventory order. Matching no host is an error naming the
// pattern, and so is a pattern part that matches nothing.
func (inv *Inventory) Match(pattern string) ([]*Host, error) {
	var parts []string
	for _, p := range splitHostPattern(pattern) {
		if strings.HasPrefix(p, "@") {
			content, err := os.ReadFile(expandPath(p[1:]))
			if err != nil {
				return nil, fmt.Errorf("limit file %s: %v", p[1:], err)
			}
			for _, l := range strings.Split(string(content), "\n") {
				parts = append(parts, strings.TrimSpace(l))
			}
			continue
		}
		parts = append(parts, p)
	}
	hosts, err := inv.evaluatePatterns(parts)
	if err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("the pattern %q matches no host in the inventory", pattern)
	}
	return hosts, nil
}

// splitHostPattern is inventory.manager.split_host_pattern.
func splitHostPattern(pattern string) []string {
	var parts []string
	if strings.Contains(pattern, ",") {
		parts = strings.Split(pattern, ",")
	} else if _, _, err := parseAddress(pattern, true); err == nil {
		parts = []string{pattern}
	} else {
		parts = rePatternWords.FindAllString(pattern, -1)
	}
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var rePatternWords = regexp.MustCompile(`(?:[^\s:\[\]]|\[[^\]]*\])+`)

// evaluatePatterns is InventoryManager._evaluate_patterns: plain patterns
// first, then intersections, then exclusions.
func (inv *Inventory) evaluatePatterns(patterns []string) ([]*Host, error) {
	var regular, inter, excl []string
	for _, p := range patterns {
		switch {
		case p == "":
		case p[0] == '!':
			excl = append(excl, p)
		case p[0] == '&':
			inter = append(inter, p)
		default:
			regular = append(regular, p)
		}
	}
	if len(regular) == 0 {
		regular = []string{"all"}
	}
	var hosts []*Host
	for _, p := range append(append(regular, inter...), excl...) {
		if h, ok := inv.hosts[p]; ok {
			hosts = append(hosts, h)
			continue
		}
		that, err := inv.matchOne(p)
		if err != nil {
			return nil, err
		}
		set := map[*Host]bool{}
		for _, h := range that {
			set[h] = true
		}
		switch p[0] {
		case '!':
			hosts = filterHosts(hosts, func(h *Host) bool { return !set[h] })
		case '&':
			hosts = filterHosts(hosts, func(h *Host) bool { return set[h] })
		default:
			have := map[*Host]bool{}
			for _, h := range hosts {
				have[h] = true
			}
			for _, h := range that {
				if !have[h] {
					hosts = append(hosts, h)
				}
			}
		}
	}
	// deduplicate_list
	seen := map[*Host]bool{}
	return filterHosts(hosts, func(h *Host) bool {
		if seen[h] {
			return false
		}
		seen[h] = true
		return true
	}), nil
}

func filterHosts(hs []*Host, keep func(*Host) bool) []*Host {
	var out []*Host
	for _, h := range hs {
		if keep(h) {
			out = append(out, h)
		}
	}
	return out
}

// matchOne is _match_one_pattern: one pattern without its & or !.
func (inv *Inventory) matchOne(pattern string) ([]*Host, error) {
	if pattern[0] == '&' || pattern[0] == '!' {
		pattern = pattern[1:]
	}
	if pattern == "" {
		return nil, fmt.Errorf("empty host pattern")
	}
	expr, start, end, hasSub, err := splitSubscript(pattern)
	if err != nil {
		return nil, err
	}
	hosts, err := inv.enumerateMatches(expr)
	if err != nil {
		return nil, err
	}
	if !hasSub || len(hosts) == 0 {
		return hosts, nil
	}
	// Python list indexing and slicing, with end inclusive.
	n := len(hosts)
	if end == nil {
		i := start
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return nil, fmt.Errorf("no hosts matched the subscripted pattern %q: %s has %d hosts", pattern, expr, n)
		}
		return []*Host{hosts[i]}, nil
	}
	e := *end
	if e == -1 {
		e = n - 1
	}
	lo, hi := clamp(start, n), clamp(e+1, n)
	if lo >= hi {
		return nil, nil
	}
	return hosts[lo:hi], nil
}

func clamp(i, n int) int {
	if i < 0 {
		i += n
		if i < 0 {
			i = 0
		}
	}
	if i > n {
		i = n
	}
	return i
}

// splitSubscript is _split_subscript: "web[1:3]" -> ("web", 1, 3).
func splitSubscript(pattern string) (expr string, start int, end *int, ok bool, err error) {
	if pattern[0] == '~' {
		return pattern, 0, nil, false, nil
	}
	m := rePatternSubscript.FindStringSubmatch(pattern)
	if m == nil {
		return pattern, 0, nil, false, nil
	}
	if m[2] != "" {
		i, err := strconv.Atoi(m[2])
		if err != nil {
			return "", 0, nil, false, fmt.Errorf("bad subscript in %q", pattern)
		}
		return m[1], i, nil, true, nil
	}
	s, err1 := strconv.Atoi(m[3])
	e := -1
	var err2 error
	if m[5] != "" {
		e, err2 = strconv.Atoi(m[5])
	}
	if err1 != nil || err2 != nil {
		return "", 0, nil, false, fmt.Errorf("bad subscript in %q", pattern)
	}
	if e == 0 {
		// Python tests "if end:", so [x:0] selects one host like [x].
		return m[1], s, nil, true, nil
	}
	return m[1], s, &e, true, nil
}

// enumerateMatches is _enumerate_matches: groups whose name matches give
// all their hosts; hosts whose name matches are added when no group
// matched or the pattern is a regex or has . ? * [.
func (inv *Inventory) enumerateMatches(pattern string) ([]*Host, error) {
	re, err := compilePattern(pattern)
	if err != nil {
		return nil, err
	}
	var results []*Host
	matchedGroup := false
	for _, g := range inv.groupOrder {
		if re.MatchString(g.name) {
			matchedGroup = true
			results = append(results, g.allHosts()...)
		}
	}
	if !matchedGroup || pattern[0] == '~' || strings.ContainsAny(pattern, ".?*[") {
		for _, h := range inv.hostOrder {
			if re.MatchString(h.name) {
				results = append(results, h)
			}
		}
	}
	if len(results) == 0 && !matchedGroup && pattern != "all" {
		return nil, fmt.Errorf("the host pattern %q matches no host or group in the inventory", pattern)
	}
	return results, nil
}

// compilePattern turns a glob (fnmatch.translate) or ~regex into a regexp
// that, like Python's re.match, is anchored at the start only for regexes.
func compilePattern(pattern string) (*regexp.Regexp, error) {
	if pattern[0] == '~' {
		re, err := regexp.Compile(`^(?:` + pattern[1:] + `)`)
		if err != nil {
			return nil, fmt.Errorf("invalid host pattern %s: %v", pattern, err)
		}
		return re, nil
	}
	re, err := regexp.Compile(`^(?s:` + globToRegexp(pattern) + `)\z`)
	if err != nil {
		return nil, fmt.Errorf("invalid host pattern %s: %v", pattern, err)
	}
	return re, nil
}

// globToRegexp is fnmatch.translate: * ? [seq] [!seq].
func globToRegexp(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*':
			b.WriteString(".*")
			for i+1 < len(p) && p[i+1] == '*' {
				i++
			}
		case '?':
			b.WriteString(".")
		case '[':
			j := i + 1
			if j < len(p) && p[j] == '!' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				b.WriteString(`\[`)
				continue
			}
			stuff := p[i+1 : j]
			i = j
			stuff = strings.ReplaceAll(stuff, `\`, `\\`)
			if strings.HasPrefix(stuff, "!") {
				stuff = "^" + stuff[1:]
			} else if strings.HasPrefix(stuff, "^") {
				stuff = `\` + stuff
			}
			if stuff == "" {
				b.WriteString(`[^\x00-\x{10FFFF}]`)
				continue
			}
			b.WriteString("[" + stuff + "]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}
