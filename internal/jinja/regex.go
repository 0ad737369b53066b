package jinja

import (
	"regexp"
	"strconv"
	"strings"
)

// regex_replace runs Python's re.sub with Go's RE2: the patterns RE2
// cannot express (backreferences, lookarounds) are refused, Python's \Z
// is RE2's \z. Known differences that remain: \d, \w and \s match ASCII
// only; $ without multiline does not match before a final newline; an
// empty match right after another is found by matching from that point,
// without seeing the text before it (a ^ or \b there may differ).

type compiled struct {
	re       *regexp.Regexp
	anchored *regexp.Regexp // the pattern matched only at the start
	err      error
}

func (r *run) compileRegex(pattern string, ignorecase, multiline bool) (*compiled, error) {
	flags := ""
	if ignorecase {
		flags += "i"
	}
	if multiline {
		flags += "m"
	}
	key := flags + "\x00" + pattern
	if c, ok := r.env.regexps.Load(key); ok {
		return c.(*compiled), c.(*compiled).err
	}
	c := &compiled{}
	expr := pyRegexToRE2(pattern)
	prefix := ""
	if flags != "" {
		prefix = "(?" + flags + ")"
	}
	c.re, c.err = regexp.Compile(prefix + expr)
	if c.err == nil {
		c.anchored, c.err = regexp.Compile(prefix + `^(?:` + expr + `)`)
	}
	if c.err != nil {
		c.err = runtimeErr("regex_replace: the pattern %q is not one nodefix can evaluate (Go's RE2 syntax: no backreferences or lookarounds): %v", pattern, c.err)
	}
	r.env.regexps.Store(key, c)
	return c, c.err
}

// pyRegexToRE2 rewrites the few spellings Python and RE2 write
// differently.
func pyRegexToRE2(p string) string {
	if !strings.Contains(p, `\Z`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) {
			if p[i+1] == 'Z' {
				b.WriteString(`\z`)
			} else {
				b.WriteString(p[i : i+2])
			}
			i++
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func filterRegexReplace(r *run, v any, a []any) (any, error) {
	s, err := pyStr(v)
	if err != nil {
		return nil, err
	}
	pattern, err := pyStr(a[0])
	if err != nil {
		return nil, err
	}
	repl, err := pyStr(a[1])
	if err != nil {
		return nil, err
	}
	ic, err := truth(a[2])
	if err != nil {
		return nil, err
	}
	ml, err := truth(a[3])
	if err != nil {
		return nil, err
	}
	c, err := r.compileRegex(pattern, ic, ml)
	if err != nil {
		return nil, err
	}
	tmpl, err := parseReplacement(repl, c.re.NumSubexp(), c.re.SubexpNames())
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	last := 0
	emit := func(m []int) error {
		b.WriteString(s[last:m[0]])
		for _, part := range tmpl {
			if part.group < 0 {
				b.WriteString(part.text)
			} else if m[2*part.group] >= 0 {
				b.WriteString(s[m[2*part.group]:m[2*part.group+1]])
			}
		}
		last = m[1]
		if b.Len() > r.lim.Size {
			return limitErr("a string of more than %d bytes", r.lim.Size)
		}
		return r.step()
	}
	for _, m := range c.re.FindAllStringSubmatchIndex(s, -1) {
		if err := emit(m); err != nil {
			return nil, err
		}
		// Python (3.7+) also replaces an empty match right after a
		// non-empty one, which RE2 skips.
		if m[1] > m[0] {
			if e := c.anchored.FindStringSubmatchIndex(s[m[1]:]); e != nil && e[1] == 0 {
				shifted := make([]int, len(e))
				for i, x := range e {
					if x >= 0 {
						x += m[1]
					}
					shifted[i] = x
				}
				if err := emit(shifted); err != nil {
					return nil, err
				}
			}
		}
	}
	b.WriteString(s[last:])
	return b.String(), nil
}

// replPart is a piece of a re.sub replacement: text, or a group.
type replPart struct {
	text  string
	group int // -1 for text
}

// parseReplacement parses a Python re.sub replacement template: \1 to
// \99 and \g<name>/\g<1> refer to groups, \n, \t, … and octal escapes are
// characters, \\ is a backslash, a backslash before an ASCII letter
// without meaning is an error, before anything else it is kept.
func parseReplacement(repl string, ngroups int, names []string) ([]replPart, error) {
	var parts []replPart
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			parts = append(parts, replPart{text: text.String(), group: -1})
			text.Reset()
		}
	}
	group := func(g int, spelled string) error {
		if g < 0 || g > ngroups {
			return runtimeErr("regex_replace: invalid group reference %s in the replacement", spelled)
		}
		flush()
		parts = append(parts, replPart{group: g})
		return nil
	}
	escapes := map[byte]string{'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v", '\\': "\\"}
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c != '\\' {
			text.WriteByte(c)
			continue
		}
		if i+1 >= len(repl) {
			return nil, runtimeErr("regex_replace: bad escape (end of pattern) in the replacement")
		}
		n := repl[i+1]
		switch {
		case n == 'g':
			end := strings.IndexByte(repl[i:], '>')
			if i+2 >= len(repl) || repl[i+2] != '<' || end < 0 {
				return nil, runtimeErr("regex_replace: missing group name in \\g<…> in the replacement")
			}
			name := repl[i+3 : i+end]
			g, err := strconv.Atoi(name)
			if err != nil {
				g = -1
				for k, nm := range names {
					if nm == name && nm != "" {
						g = k
					}
				}
				if g < 0 {
					return nil, runtimeErr("regex_replace: unknown group name '%s' in the replacement", name)
				}
			}
			if err := group(g, `\g<`+name+`>`); err != nil {
				return nil, err
			}
			i += end
		case n == '0':
			// Octal: \0, \0N, \0NN.
			j := i + 2
			for j < len(repl) && j < i+4 && repl[j] >= '0' && repl[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint("0"+repl[i+2:j], 8, 32)
			text.WriteRune(rune(v))
			i = j - 1
		case n >= '1' && n <= '9':
			j := i + 2
			if j < len(repl) && isDigit(repl[j]) {
				j++
				if n <= '7' && repl[i+2] <= '7' && j < len(repl) && repl[j] >= '0' && repl[j] <= '7' {
					v, _ := strconv.ParseUint(repl[i+1:j+1], 8, 32)
					if v > 0o377 {
						return nil, runtimeErr("regex_replace: octal escape value \\%s outside of range 0-0o377", repl[i+1:j+1])
					}
					text.WriteRune(rune(v))
					i = j
					continue
				}
			}
			g, _ := strconv.Atoi(repl[i+1 : j])
			if err := group(g, `\`+repl[i+1:j]); err != nil {
				return nil, err
			}
			i = j - 1
		default:
			if e, ok := escapes[n]; ok {
				text.WriteString(e)
			} else if (n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') {
				return nil, runtimeErr("regex_replace: bad escape \\%c in the replacement", n)
			} else {
				text.WriteByte('\\')
				text.WriteByte(n)
			}
			i++
		}
	}
	flush()
	return parts, nil
}
