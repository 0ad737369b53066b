package inventory

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// loadExtraVars is ansible.utils.vars.load_extra_vars: each -e is @FILE
// (YAML or JSON), a JSON/YAML object when it starts with { or [, else
// key=value pairs (strings, quotes removed). Later ones win.
func loadExtraVars(opts []string) (map[string]any, error) {
	out := map[string]any{}
	for _, opt := range opts {
		if opt == "" {
			continue
		}
		var data any
		switch {
		case strings.HasPrefix(opt, "@"):
			path := expandPath(opt[1:])
			content, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("extra vars %s: %v", opt, err)
			}
			data, err = loadData(content)
			if err != nil {
				var de *dataError
				if errors.As(err, &de) {
					return nil, fmt.Errorf("extra vars: %w", errAt(path, de.line, "%s", de.msg))
				}
				return nil, fmt.Errorf("extra vars %s: %v", opt, err)
			}
		case opt[0] == '/' || opt[0] == '.':
			return nil, fmt.Errorf("extra vars %q: to read a file, write -e @%s", opt, opt)
		case opt[0] == '[' || opt[0] == '{':
			var err error
			data, err = loadData([]byte(opt))
			if err != nil {
				return nil, fmt.Errorf("extra vars %q: %v", opt, err)
			}
		default:
			kv, err := parseKV(opt)
			if err != nil {
				return nil, fmt.Errorf("extra vars %q: %v", opt, err)
			}
			data = kv
		}
		m, ok := data.(*omap)
		if !ok {
			return nil, fmt.Errorf("extra vars %q: could not be made into a dictionary (got %s)", opt, yamlTypeName(data))
		}
		update(out, plain(m).(map[string]any))
	}
	return out, nil
}

// parseKV is ansible.parsing.splitter.parse_kv(args) without check_raw:
// words with '=' become variables, the others go to _raw_params.
func parseKV(args string) (*omap, error) {
	words, err := splitArgs(args)
	if err != nil {
		return nil, err
	}
	out := newOmap()
	var raw []string
	for _, orig := range words {
		x := decodeEscapes(orig)
		pos := -1
		for i := 1; i < len(x); i++ { // Python searches from position 1
			if x[i] == '=' && x[i-1] != '\\' {
				pos = i
				break
			}
		}
		if !strings.Contains(x, "=") {
			raw = append(raw, orig)
			continue
		}
		if pos < 0 {
			raw = append(raw, strings.ReplaceAll(x, `\=`, "="))
			continue
		}
		out.set(strings.TrimSpace(x[:pos]), unquote(strings.TrimSpace(x[pos+1:])), 0)
	}
	if len(raw) > 0 {
		out.set("_raw_params", joinArgs(raw), 0)
	}
	return out, nil
}

var reEscapeSeq = regexp.MustCompile(`\\U[a-fA-F0-9]{8}|\\u[a-fA-F0-9]{4}|\\x[a-fA-F0-9]{2}|\\N\{[^}]+\}|\\[\\'"abfnrtv]`)

// decodeEscapes is splitter._decode_escapes.
func decodeEscapes(s string) string {
	return reEscapeSeq.ReplaceAllStringFunc(s, func(m string) string {
		switch m[1] {
		case 'U', 'u', 'x':
			n, err := strconv.ParseUint(m[2:], 16, 32)
			if err != nil || n > 0x10FFFF {
				return m
			}
			return string(rune(n))
		case 'N':
			return m // named escapes are left as written
		}
		if v, err := strconv.Unquote(`"` + m + `"`); err == nil {
			return v
		}
		if m == `\'` {
			return "'"
		}
		return m
	})
}

func unquote(s string) string {
	if len(s) > 1 && s[0] == s[len(s)-1] && (s[0] == '"' || s[0] == '\'') && s[len(s)-2] != '\\' {
		return s[1 : len(s)-1]
	}
	return s
}

func joinArgs(parts []string) string {
	var b strings.Builder
	for _, p := range parts {
		if b.Len() == 0 || strings.HasSuffix(b.String(), "\n") {
			b.WriteString(p)
		} else {
			b.WriteString(" " + p)
		}
	}
	return b.String()
}

// splitArgs is splitter.split_args: split on spaces, but keep quoted
// strings and Jinja2 blocks together.
func splitArgs(args string) ([]string, error) {
	var params []string
	var quoteChar byte
	insideQuotes := false
	printDepth, blockDepth, commentDepth := 0, 0, 0
	items := strings.Split(args, "\n")
	for itemIdx, item := range items {
		tokens := strings.Split(item, " ")
		lineContinuation := false
		for idx, token := range tokens {
			if token == "" && idx != 0 {
				if len(params) > 0 {
					params[len(params)-1] += " "
				}
				continue
			}
			if token == `\` && !insideQuotes {
				lineContinuation = true
				continue
			}
			wasInsideQuotes := insideQuotes
			quoteChar = quoteState(token, quoteChar)
			insideQuotes = quoteChar != 0
			appended := false
			if insideQuotes && !wasInsideQuotes && printDepth == 0 && blockDepth == 0 && commentDepth == 0 {
				params = append(params, token)
				appended = true
			} else if printDepth > 0 || blockDepth > 0 || commentDepth > 0 || insideQuotes || wasInsideQuotes {
				if len(params) == 0 {
					params = append(params, "")
				}
				last := len(params) - 1
				switch {
				case idx == 0 && wasInsideQuotes:
					params[last] += token
				case len(tokens) > 1:
					spacer := ""
					if idx > 0 {
						spacer = " "
					}
					params[last] += spacer + token
				default:
					params[last] += "\n" + token
				}
				appended = true
			}
			for _, d := range []struct {
				depth       *int
				open, close string
			}{{&printDepth, "{{", "}}"}, {&blockDepth, "{%", "%}"}, {&commentDepth, "{#", "#}"}} {
				prev := *d.depth
				*d.depth = countJinja(token, *d.depth, d.open, d.close)
				if *d.depth != prev && !appended {
					params = append(params, token)
					appended = true
				}
			}
			if printDepth == 0 && blockDepth == 0 && commentDepth == 0 && !insideQuotes && !appended && token != "" {
				params = append(params, token)
			}
		}
		if len(items) > 1 && itemIdx != len(items)-1 && !lineContinuation && len(params) > 0 {
			params[len(params)-1] += "\n"
		}
	}
	if printDepth > 0 || blockDepth > 0 || commentDepth > 0 || insideQuotes {
		return nil, fmt.Errorf("failed at splitting arguments, either an unbalanced jinja2 block or quotes: %s", args)
	}
	return params, nil
}

func quoteState(token string, quoteChar byte) byte {
	var prev byte
	for i := 0; i < len(token); i++ {
		c := token[i]
		if i > 0 {
			prev = token[i-1]
		}
		if (c == '"' || c == '\'') && prev != '\\' {
			if quoteChar != 0 {
				if c == quoteChar {
					quoteChar = 0
				}
			} else {
				quoteChar = c
			}
		}
	}
	return quoteChar
}

func countJinja(token string, depth int, open, close string) int {
	nOpen, nClose := strings.Count(token, open), strings.Count(token, close)
	if nOpen != nClose {
		depth += nOpen - nClose
		if depth < 0 {
			depth = 0
		}
	}
	return depth
}
