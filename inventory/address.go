package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nodefix/nodefix/internal/pycompat"
)

// The regular expressions of ansible.parsing.utils.addresses, in RE2 form.
const (
	numericRange  = `\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]`
	hexRange      = `\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]`
	alnumRange    = `\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]`
	ipv6Component = `(?:[0-9a-f]{1,4}|` + hexRange + `)`
	ipv4Component = `(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|` + numericRange + `)`
)

var (
	reBracketedHostPort = regexp.MustCompile(`^\[(.+)\]:([0-9]+)$`)
	reHostPort          = regexp.MustCompile(`^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$`)
	reIPv4              = regexp.MustCompile(`(?i)^(?:` + ipv4Component + `\.){3}` + ipv4Component + `$`)
	// Python's pattern is "^A|B|...|Z$" used with re.match: every
	// alternative is anchored at the start, only the last at the end.
	reIPv6 = regexp.MustCompile(strings.ReplaceAll(`(?i)^(?:`+strings.Join([]string{
		`(?:C:){7}C`, `(?:C:){1,6}:`, `(?:C:)(?::C){1,6}`, `(?:C:){2}(?::C){1,5}`,
		`(?:C:){3}(?::C){1,4}`, `(?:C:){4}(?::C){1,3}`, `(?:C:){5}(?::C){1,2}`,
		`(?:C:){6}(?::C)`, `:(?::C){1,6}`, `C?::`, `(?:0:){6}(?:C\.){3}C`,
		`::(?:ffff:)?(?:C\.){3}C`, `(?:0:){5}ffff:(?:C\.){3}C$`,
	}, "|")+`)`, "C", ipv6Component))
	// One hostname label; Python also requires that it not end in _ or -
	// (a look-behind RE2 lacks, checked in code).
	reLabel = regexp.MustCompile(`(?i)^(?:[\p{L}\p{N}_]|` + alnumRange + `)(?:[\p{L}\p{N}_-]|` + alnumRange + `)*$`)
)

func isHostname(s string) bool {
	for _, label := range strings.Split(s, ".") {
		if !reLabel.MatchString(label) || strings.HasSuffix(label, "_") || strings.HasSuffix(label, "-") {
			return false
		}
	}
	return true
}

// parseAddress is ansible.parsing.utils.addresses.parse_address: a host
// (name, IPv4 or IPv6, possibly with [x:y] ranges) and an optional port.
func parseAddress(address string, allowRanges bool) (string, *int, error) {
	var port *int
	for _, re := range []*regexp.Regexp{reBracketedHostPort, reHostPort} {
		if m := re.FindStringSubmatch(address); m != nil {
			p, err := strconv.Atoi(m[2])
			if err != nil {
				return "", nil, fmt.Errorf("port %s is out of range", m[2])
			}
			address, port = m[1], &p
		}
	}
	if address == "" || !(reIPv4.MatchString(address) || reIPv6.MatchString(address) || isHostname(address)) {
		return "", nil, fmt.Errorf("not a valid network hostname: %s", address)
	}
	if !allowRanges && strings.Contains(address, "[") {
		return "", nil, errors.New("detected range in host but was asked to ignore ranges")
	}
	return address, port, nil
}

// maxExpandedHosts bounds one host pattern: Ansible would try to build
// www[0:99999999] and run out of memory; nodefix says so instead.
const maxExpandedHosts = 1_000_000

// expandHostPattern is BaseInventoryPlugin._expand_hostpattern: split off a
// port, then expand ranges. A pattern that is not a valid address is
// taken as it is (Ansible does the same), ranges and all.
func expandHostPattern(pattern string) ([]string, *int, error) {
	name, port, err := parseAddress(pattern, true)
	if err != nil {
		name, port = pattern, nil
	}
	if !strings.Contains(name, "[") {
		return []string{name}, port, nil
	}
	count := 0
	names, err := expandHostnameRange(name, &count)
	if err != nil {
		return nil, nil, err
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("host range %q expands to no host (is the end before the beginning?)", pattern)
	}
	return names, port, nil
}

const asciiLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// expandHostnameRange is ansible.plugins.inventory.expand_hostname_range,
// quirks and all: the first '[' and first ']' delimit the range, bounds may
// be numbers (zero-padded when the beginning is) or letters, an optional
// step, and the rest of the name is expanded recursively.
func expandHostnameRange(line string, count *int) ([]string, error) {
	replaced := strings.Replace(strings.Replace(line, "[", "|", 1), "]", "|", 1)
	parts := strings.Split(replaced, "|")
	if len(parts) != 3 {
		return nil, fmt.Errorf("bad host range in %q: expected one [begin:end] or [begin:end:step]", line)
	}
	head, nrange, tail := parts[0], parts[1], parts[2]
	bounds := strings.Split(nrange, ":")
	if len(bounds) != 2 && len(bounds) != 3 {
		return nil, fmt.Errorf("bad host range [%s] in %q: a range must be begin:end or begin:end:step", nrange, line)
	}
	beg, end, step := bounds[0], bounds[1], "1"
	if len(bounds) == 3 {
		step = bounds[2]
	}
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return nil, fmt.Errorf("bad host range [%s] in %q: the range must have an end", nrange, line)
	}
	width := 0
	if beg[0] == '0' && len(beg) > 1 {
		width = len(beg)
		if width != len(end) {
			return nil, fmt.Errorf("bad host range [%s] in %q: zero-padded begin and end must have the same length", nrange, line)
		}
	}
	fill := func(s string) string { return zfill(s, width) }

	var seq []string
	iBeg, iEnd := strings.Index(asciiLetters, beg), strings.Index(asciiLetters, end)
	alpha := iBeg >= 0 && iEnd >= 0
	if alpha {
		if iBeg > iEnd {
			return nil, fmt.Errorf("bad host range [%s] in %q: the beginning is after the end", nrange, line)
		}
		st, err := pyIntString(step)
		if err != nil || st == 0 {
			alpha = false // Python falls back to a numeric range, which then fails
		} else if st > 0 {
			for i := iBeg; i <= iEnd; i += st {
				seq = append(seq, asciiLetters[i:i+1])
			}
		}
	}
	if !alpha {
		b, err := pyIntString(beg)
		if err != nil {
			return nil, fmt.Errorf("bad host range [%s] in %q: %q is neither a number nor a letter", nrange, line, beg)
		}
		e, err := pyIntString(end)
		if err != nil {
			return nil, fmt.Errorf("bad host range [%s] in %q: %q is neither a number nor a letter", nrange, line, end)
		}
		st, err := pyIntString(step)
		if err != nil {
			return nil, fmt.Errorf("bad host range [%s] in %q: the step %q is not a number", nrange, line, step)
		}
		if st == 0 {
			return nil, fmt.Errorf("bad host range [%s] in %q: the step must not be zero", nrange, line)
		}
		stop := e + 1
		n := 0
		if st > 0 && stop > b {
			n = (stop - b + st - 1) / st
		} else if st < 0 && stop < b {
			n = (b - stop - st - 1) / -st
		}
		if *count+n > maxExpandedHosts {
			return nil, fmt.Errorf("host range [%s] in %q expands to more than %d hosts", nrange, line, maxExpandedHosts)
		}
		for i := 0; i < n; i++ {
			seq = append(seq, strconv.Itoa(b+i*st))
		}
	}
	var out []string
	for _, s := range seq {
		name := head + fill(s) + tail
		if strings.Contains(name, "[") {
			more, err := expandHostnameRange(name, count)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
			continue
		}
		*count++
		if *count > maxExpandedHosts {
			return nil, fmt.Errorf("host range in %q expands to more than %d hosts", line, maxExpandedHosts)
		}
		out = append(out, name)
	}
	return out, nil
}

// pyIntString is int(s) for range bounds, limited to what fits an int.
func pyIntString(s string) (int, error) {
	v, err := pycompat.Int(s)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int)
	if !ok || n > 1<<40 || n < -(1<<40) {
		return 0, fmt.Errorf("%s is too large", s)
	}
	return n, nil
}

// zfill is Python's str.zfill.
func zfill(s string, width int) string {
	if len(s) >= width {
		return s
	}
	sign := ""
	if s != "" && (s[0] == '-' || s[0] == '+') {
		sign, s = s[:1], s[1:]
	}
	return sign + strings.Repeat("0", width-len(s)-len(sign)) + s
}
