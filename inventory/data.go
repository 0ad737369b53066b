package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nodefix/nodefix/internal/pycompat"
)

// omap is a mapping that remembers key order, as Python dicts do: the order
// of groups and hosts in a YAML or JSON inventory is the order Ansible
// lists them in. Keys keep their YAML type (a host named 10 is an int key
// and an error, as in Ansible).
type omap struct {
	keys  []any
	vals  []any
	lines []int // source line of each key (0 when unknown)
	index map[any]int
}

func newOmap() *omap { return &omap{index: map[any]int{}} }

// set stores k, keeping the position of a key seen before (a Python dict
// assignment).
func (m *omap) set(k, v any, line int) {
	if i, ok := m.index[k]; ok {
		m.vals[i] = v
		return
	}
	m.index[k] = len(m.keys)
	m.keys = append(m.keys, k)
	m.vals = append(m.vals, v)
	m.lines = append(m.lines, line)
}

func (m *omap) get(k string) (any, bool) {
	i, ok := m.index[k]
	if !ok {
		return nil, false
	}
	return m.vals[i], true
}

// plain turns loaded data into variable values: ordered maps become
// map[string]any with JSON-style keys.
func plain(v any) any {
	switch x := v.(type) {
	case *omap:
		out := make(map[string]any, len(x.keys))
		for i, k := range x.keys {
			out[pycompat.KeyString(k)] = plain(x.vals[i])
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// dataError is a load error with a line (0 = none known).
type dataError struct {
	line int
	msg  string
}

func (e *dataError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d: %s", e.line, e.msg)
	}
	return e.msg
}

// loadData parses a YAML or JSON document as Ansible's DataLoader does:
// JSON first (Python's json module), YAML 1.1 (PyYAML's rules) when that
// fails. An empty document is nil.
func loadData(content []byte) (any, error) {
	if v, err := loadJSON(content); err == nil {
		return v, nil
	}
	if bytes.HasPrefix(bytes.TrimLeft(content, " \t\r\n"), []byte("$ANSIBLE_VAULT")) {
		return nil, errors.New("the file is encrypted with ansible-vault; nodefix does not decrypt vaults: decrypt it or pass the values with -e")
	}
	return loadYAML(content)
}

// loadJSON decodes JSON keeping key order and Python's number types
// (integers of any size, floats where there is a '.' or an exponent).
func loadJSON(content []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.UseNumber()
	v, err := jsonValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("extra data after the JSON value")
	}
	return v, nil
}

const maxNesting = 10000

func jsonValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxNesting {
		return nil, errors.New("nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := newOmap()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				m.set(k, v, 0)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return m, nil
		case '[':
			l := []any{}
			for dec.More() {
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return l, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		s := string(t)
		if strings.ContainsAny(s, ".eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return nil, err
			}
			return f, nil
		}
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, fmt.Errorf("bad number %s", s)
		}
		return normInt(n), nil
	}
	return tok, nil // string, bool, nil
}

func normInt(n *big.Int) any {
	if n.IsInt64() && n.Int64() >= math.MinInt && n.Int64() <= math.MaxInt {
		return int(n.Int64())
	}
	return n
}

// loadYAML decodes one YAML document with PyYAML's YAML 1.1 typing, which
// is what Ansible uses: yes/no/on/off are booleans, 0755 is octal, 1:30 is
// 90, 1e3 is a string, dates become ISO strings.
func loadYAML(content []byte) (any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, yamlErr(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &dataError{line: extra.Line, msg: "expected a single document in the stream, but found another document"}
	} else if err != io.EOF {
		return nil, yamlErr(err)
	}
	c := &yamlConv{}
	return c.node(&doc, 0)
}

// yamlErr rewrites yaml.v3's "yaml: line N: msg" as a dataError.
func yamlErr(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		_, rest, _ := strings.Cut(msg, ": ")
		// yaml.v3 counts lines from 0 for parser errors (from 1 for
		// scanner errors); the parser's messages are these.
		for _, p := range yamlParserProblems {
			if rest == p {
				line++
				break
			}
		}
		return &dataError{line: line, msg: rest}
	}
	return &dataError{msg: msg}
}

var yamlParserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"did not find expected '-' indicator", "did not find expected <document start>",
	"did not find expected key", "did not find expected node content",
	"found duplicate %TAG directive", "found duplicate %YAML directive",
	"found incompatible YAML document", "found undefined tag handle",
}

type yamlConv struct {
	visited int // nodes converted, aliases counted each time: bounds alias bombs
}

const maxYAMLNodes = 1_000_000

func (c *yamlConv) node(n *yaml.Node, depth int) (any, error) {
	c.visited++
	if c.visited > maxYAMLNodes {
		return nil, &dataError{line: n.Line, msg: "document expands to too many values (alias loop or bomb?)"}
	}
	if depth > maxNesting {
		return nil, &dataError{line: n.Line, msg: "nesting too deep"}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.node(n.Content[0], depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, &dataError{line: n.Line, msg: "unknown alias"}
		}
		return c.node(n.Alias, depth+1)
	case yaml.SequenceNode:
		if tagged(n) && n.Tag != "!!seq" {
			return nil, c.badTag(n)
		}
		l := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := c.node(e, depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.MappingNode:
		if tagged(n) && n.Tag != "!!map" {
			return nil, c.badTag(n)
		}
		pairs, err := c.flatten(n, depth)
		if err != nil {
			return nil, err
		}
		m := newOmap()
		for i := 0; i+1 < len(pairs); i += 2 {
			k, err := c.node(pairs[i], depth+1)
			if err != nil {
				return nil, err
			}
			switch kk := k.(type) {
			case []any, *omap:
				return nil, &dataError{line: pairs[i].Line, msg: "found unhashable key"}
			case *big.Int:
				k = kk.String()
			}
			v, err := c.node(pairs[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m.set(k, v, pairs[i].Line)
		}
		return m, nil
	case yaml.ScalarNode:
		return c.scalar(n)
	}
	return nil, &dataError{line: n.Line, msg: "unexpected YAML node"}
}

func tagged(n *yaml.Node) bool { return n.Style&yaml.TaggedStyle != 0 }

func (c *yamlConv) badTag(n *yaml.Node) error {
	return &dataError{line: n.Line, msg: fmt.Sprintf("could not determine a constructor for the tag %q", n.Tag)}
}

// flatten applies merge keys (<<) as PyYAML does: the mapping's own keys
// win, and in a list of merged mappings the earlier ones win.
func (c *yamlConv) flatten(n *yaml.Node, depth int) ([]*yaml.Node, error) {
	c.visited++
	if depth > maxNesting || c.visited > maxYAMLNodes {
		return nil, &dataError{line: n.Line, msg: "merge keys (<<) nested too deep or recursive"}
	}
	var merged, own []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && (!tagged(k) || k.Tag == "!!merge") {
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			switch v.Kind {
			case yaml.MappingNode:
				sub, err := c.flatten(v, depth+1)
				if err != nil {
					return nil, err
				}
				merged = append(merged, sub...)
			case yaml.SequenceNode:
				var subs [][]*yaml.Node
				for _, s := range v.Content {
					for s.Kind == yaml.AliasNode && s.Alias != nil {
						s = s.Alias
					}
					if s.Kind != yaml.MappingNode {
						return nil, &dataError{line: s.Line, msg: "while constructing a mapping: expected a mapping for merging"}
					}
					sub, err := c.flatten(s, depth+1)
					if err != nil {
						return nil, err
					}
					subs = append(subs, sub)
				}
				for j := len(subs) - 1; j >= 0; j-- {
					merged = append(merged, subs[j]...)
				}
			default:
				return nil, &dataError{line: v.Line, msg: "while constructing a mapping: expected a mapping or list of mappings for merging"}
			}
			continue
		}
		own = append(own, k, v)
	}
	return append(merged, own...), nil
}

// PyYAML's implicit resolvers (YAML 1.1), applied to plain scalars.
var (
	reYAMLBool  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	reYAMLInt   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	reYAMLFloat = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	reYAMLNull  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	reYAMLTime  = regexp.MustCompile(`^([0-9][0-9][0-9][0-9])-([0-9][0-9]?)-([0-9][0-9]?)(?:(?:[Tt]|[ \t]+)([0-9][0-9]?):([0-9][0-9]):([0-9][0-9])(?:\.([0-9]*))?(?:[ \t]*(Z|([-+])([0-9][0-9]?)(?::([0-9][0-9]))?))?)?$`)
	reYAMLDate  = regexp.MustCompile(`^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$`)
)

func (c *yamlConv) scalar(n *yaml.Node) (any, error) {
	v := n.Value
	tag := ""
	switch {
	case tagged(n):
		tag = n.Tag
	case n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return v, nil
	default:
		tag = resolvePlain(v)
	}
	bad := func(what string) error {
		return &dataError{line: n.Line, msg: fmt.Sprintf("invalid %s value %q", what, v)}
	}
	switch tag {
	case "!!str":
		return v, nil
	case "!unsafe":
		return pycompat.Unsafe{Text: v}, nil
	case "!vault":
		return pycompat.Vault{Ciphertext: v}, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		switch strings.ToLower(v) {
		case "yes", "true", "on":
			return true, nil
		case "no", "false", "off":
			return false, nil
		}
		return nil, bad("boolean")
	case "!!int":
		x, ok := yamlInt(v)
		if !ok {
			return nil, bad("integer")
		}
		return x, nil
	case "!!float":
		f, ok := yamlFloat(v)
		if !ok {
			return nil, bad("float")
		}
		return f, nil
	case "!!timestamp":
		s, ok := yamlTimestamp(v)
		if !ok {
			return nil, bad("timestamp")
		}
		return s, nil
	case "!!merge", "!!value":
		return nil, &dataError{line: n.Line, msg: fmt.Sprintf("could not determine a constructor for the tag 'tag:yaml.org,2002:%s'", tag[2:])}
	}
	return nil, c.badTag(n)
}

func resolvePlain(v string) string {
	switch {
	case reYAMLBool.MatchString(v):
		return "!!bool"
	case reYAMLFloat.MatchString(v):
		return "!!float"
	case reYAMLInt.MatchString(v):
		return "!!int"
	case v == "<<":
		return "!!merge"
	case reYAMLNull.MatchString(v):
		return "!!null"
	case reYAMLTime.MatchString(v) && (reYAMLDate.MatchString(v) || strings.ContainsAny(v, ":")):
		return "!!timestamp"
	case v == "=":
		return "!!value"
	}
	return "!!str"
}

// yamlInt is PyYAML's construct_yaml_int.
func yamlInt(v string) (any, bool) {
	s := strings.ReplaceAll(v, "_", "")
	sign := 1
	if s != "" && (s[0] == '-' || s[0] == '+') {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	n := new(big.Int)
	var ok bool
	switch {
	case s == "0":
		ok = true
	case strings.HasPrefix(s, "0b"):
		_, ok = n.SetString(s[2:], 2)
	case strings.HasPrefix(s, "0x"):
		_, ok = n.SetString(s[2:], 16)
	case strings.HasPrefix(s, "0"):
		_, ok = n.SetString(s[1:], 8)
	case strings.Contains(s, ":"):
		base := big.NewInt(1)
		parts := strings.Split(s, ":")
		ok = true
		for i := len(parts) - 1; i >= 0; i-- {
			d, err := strconv.ParseInt(parts[i], 10, 64)
			if err != nil {
				return nil, false
			}
			n.Add(n, new(big.Int).Mul(big.NewInt(d), base))
			base.Mul(base, big.NewInt(60))
		}
	default:
		_, ok = n.SetString(s, 10)
	}
	if !ok {
		return nil, false
	}
	if sign < 0 {
		n.Neg(n)
	}
	return normInt(n), true
}

// yamlFloat is PyYAML's construct_yaml_float.
func yamlFloat(v string) (float64, bool) {
	s := strings.ToLower(strings.ReplaceAll(v, "_", ""))
	sign := 1.0
	if s != "" && (s[0] == '-' || s[0] == '+') {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	switch {
	case s == ".inf":
		return sign * math.Inf(1), true
	case s == ".nan":
		return math.NaN(), true
	case strings.Contains(s, ":"):
		parts := strings.Split(s, ":")
		base, f := 1.0, 0.0
		for i := len(parts) - 1; i >= 0; i-- {
			d, err := strconv.ParseFloat(parts[i], 64)
			if err != nil {
				return 0, false
			}
			f += d * base
			base *= 60
		}
		return sign * f, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return sign * f, true
}

// yamlTimestamp is PyYAML's construct_yaml_timestamp followed by Ansible's
// JSON encoder (date/datetime isoformat()).
func yamlTimestamp(v string) (string, bool) {
	m := reYAMLTime.FindStringSubmatch(v)
	if m == nil {
		return "", false
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	y, mo, d := atoi(m[1]), atoi(m[2]), atoi(m[3])
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || y < 1 {
		return "", false
	}
	date := fmt.Sprintf("%04d-%02d-%02d", y, mo, d)
	if m[4] == "" {
		return date, true
	}
	h, mi, s := atoi(m[4]), atoi(m[5]), atoi(m[6])
	if h > 23 || mi > 59 || s > 59 {
		return "", false
	}
	out := fmt.Sprintf("%sT%02d:%02d:%02d", date, h, mi, s)
	if frac := m[7]; frac != "" {
		if len(frac) > 6 {
			frac = frac[:6]
		}
		frac += strings.Repeat("0", 6-len(frac))
		if atoi(frac) != 0 {
			out += "." + frac
		}
	}
	switch {
	case m[9] != "":
		th, tm := atoi(m[10]), atoi(m[11])
		if th > 23 || tm > 59 {
			return "", false
		}
		sign := m[9]
		if th == 0 && tm == 0 {
			sign = "+"
		}
		out += fmt.Sprintf("%s%02d:%02d", sign, th, tm)
	case m[8] == "Z":
		out += "+00:00"
	}
	return out, true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func plainKey(k any) string { return pycompat.KeyString(k) }
