package jinja

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/nodefix/nodefix/internal/pycompat"
)

// Values are Go values with Python's meaning: nil (None), bool, int and
// *big.Int, float64, string, []any (list), tuple, map[string]any (dict),
// and these types of the template engine's own.

// tuple is a Python tuple (a Jinja2 `(a, b)`): it prints as one.
type tuple []any

// nativeText is the result of the string filter, Ansible's
// NativeJinjaText: a string that a lone template expression keeps as text
// even when it looks like a list or a boolean.
type nativeText string

// undefinedValue is Ansible's AnsibleUndefined (a Jinja2 StrictUndefined):
// reading an attribute or item of it gives itself, `default` and `is
// defined` see it, anything else that uses it fails with its message.
type undefinedValue struct {
	// lenient marks Jinja2's plain Undefined, which `a if false` (no
	// else) gives even under Ansible: it prints as "" and is false.
	lenient bool
	hint    string // the message, when it is given rather than derived
	name    string // the variable or attribute
	key     any    // the item, for "has no element"
	obj     any    // the object without the attribute or item
	hasObj  bool
	cause   *Error // the undefined error of a variable's own template
}

func (u *undefinedValue) message() string {
	switch {
	case u.cause != nil:
		return u.cause.Msg
	case u.hint != "":
		return u.hint
	case !u.hasObj:
		return pycompat.Repr(u.name) + " is undefined"
	case u.key != nil:
		return objectTypeRepr(u.obj) + " has no element " + pyRepr(u.key)
	}
	return pycompat.Repr(objectTypeRepr(u.obj)) + " has no attribute " + pycompat.Repr(u.name)
}

func (u *undefinedValue) err() *Error {
	if u.cause != nil {
		return u.cause
	}
	name := u.name
	if u.key != nil {
		name = pyStrOrRepr(u.key)
	}
	return &Error{Kind: Undefined, Name: name, Msg: u.message()}
}

// hostView is Ansible's HostVarsVars: one host's variables read through
// hostvars, each templated in that host's context when read, an undefined
// variable in it leaving the raw text (fail_on_undefined=False).
type hostView struct {
	host string
	vars Vars
}

// boundMethod is a method of a str or dict value, as `x.split` reads it.
type boundMethod struct {
	recv any
	name string
}

// builtinFunc is a global function: lookup, query, q, range, dict.
type builtinFunc string

// loopInfo is Jinja2's `loop` inside {% for %}.
type loopInfo struct {
	index0, length int
	items          []any
}

// objectTypeRepr is jinja2.utils.object_type_repr, used in undefined
// messages: "dict object", "None", …
func objectTypeRepr(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case *hostView:
		return "ansible.vars.hostvars.HostVarsVars object"
	case HostVars:
		return "ansible.vars.hostvars.HostVars object"
	case nativeText:
		return "ansible.utils.native_jinja.NativeJinjaText object"
	}
	return typeName(v) + " object"
}

// typeName is Python's type(v).__name__.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int, *big.Int:
		return "int"
	case float64:
		return "float"
	case string, nativeText:
		return "str"
	case []any:
		return "list"
	case tuple:
		return "tuple"
	case map[string]any:
		return "dict"
	case *undefinedValue:
		return "AnsibleUndefined"
	case *hostView:
		return "HostVarsVars"
	case HostVars:
		return "HostVars"
	case boundMethod:
		return "builtin_function_or_method"
	case builtinFunc:
		return "function"
	case *loopInfo:
		return "LoopContext"
	}
	return fmt.Sprintf("%T", v)
}

// asString is v as text when it is a Python str.
func asString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case nativeText:
		return string(s), true
	}
	return "", false
}

// undefinedIn is the first undefined value in v, looking into lists,
// tuples and dicts as Ansible's _fail_on_undefined does.
func undefinedIn(v any) *undefinedValue {
	switch x := v.(type) {
	case *undefinedValue:
		if x.lenient {
			return nil
		}
		return x
	case []any:
		for _, e := range x {
			if u := undefinedIn(e); u != nil {
				return u
			}
		}
	case tuple:
		for _, e := range x {
			if u := undefinedIn(e); u != nil {
				return u
			}
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if u := undefinedIn(x[k]); u != nil {
				return u
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Python keeps a dict's insertion order, which a Go map does not
	// remember: sorted is the one stable order.
	sort.Strings(keys)
	return keys
}

// pyStr is Python's str(v): an undefined value is its error, and what
// has no meaningful text in nodefix is Unsupported.
func pyStr(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case nativeText:
		return string(x), nil
	case *undefinedValue:
		if x.lenient {
			return "", nil
		}
		return "", x.err()
	case HostVars, *hostView:
		return "", &Error{Kind: Unsupported, Construct: "printing hostvars", Msg: "printing hostvars as text is not supported by nodefix: read one host's variable (hostvars[host].name)"}
	case boundMethod, builtinFunc, *loopInfo:
		return "", &Error{Kind: Unsupported, Construct: "printing " + typeName(v), Msg: fmt.Sprintf("printing a %s as text is not supported by nodefix", typeName(v))}
	}
	return reprOf(v)
}

// pyStrOrRepr is str(v) for messages, never failing.
func pyStrOrRepr(v any) string {
	s, err := pyStr(v)
	if err != nil {
		return typeName(v)
	}
	return s
}

func pyRepr(v any) string {
	if s, ok := asString(v); ok {
		return pycompat.Repr(s)
	}
	return pyStrOrRepr(v)
}

// reprOf is Python's repr(v) (str(v) for scalars but strings).
func reprOf(v any) (string, error) {
	switch x := v.(type) {
	case nil, bool, int, *big.Int, float64:
		return pycompat.Repr(x), nil
	case string:
		return pycompat.Repr(x), nil
	case nativeText:
		return pycompat.Repr(string(x)), nil
	case []any:
		return reprSeq("[", x, "]")
	case tuple:
		if len(x) == 1 {
			s, err := reprElem(x[0])
			return "(" + s + ",)", err
		}
		return reprSeq("(", x, ")")
	case map[string]any:
		var b strings.Builder
		b.WriteString("{")
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b.WriteString(", ")
			}
			s, err := reprElem(x[k])
			if err != nil {
				return "", err
			}
			b.WriteString(pycompat.Repr(k) + ": " + s)
		}
		b.WriteString("}")
		return b.String(), nil
	}
	return pyStr(v)
}

func reprElem(v any) (string, error) {
	if s, ok := asString(v); ok {
		return pycompat.Repr(s), nil
	}
	return reprOf(v)
}

func reprSeq(open string, items []any, close string) (string, error) {
	var b strings.Builder
	b.WriteString(open)
	for i, e := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		s, err := reprElem(e)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
	b.WriteString(close)
	return b.String(), nil
}

// truth is Python's bool(v); an undefined value fails.
func truth(v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	case int:
		return x != 0, nil
	case *big.Int:
		return x.Sign() != 0, nil
	case float64:
		return x != 0, nil
	case string:
		return x != "", nil
	case nativeText:
		return x != "", nil
	case []any:
		return len(x) > 0, nil
	case tuple:
		return len(x) > 0, nil
	case map[string]any:
		return len(x) > 0, nil
	case *undefinedValue:
		if x.lenient {
			return false, nil
		}
		return false, x.err()
	case HostVars:
		return len(x.Hosts()) > 0, nil
	}
	return true, nil
}

// plain turns engine values into the values the package returns: text
// for nativeText, lists for tuples.
func plain(v any) any {
	switch x := v.(type) {
	case nativeText:
		return string(x)
	case tuple:
		return plain([]any(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	}
	return v
}

// Numbers: bool is an int, as in Python.

type number struct {
	isFloat bool
	f       float64
	i       *big.Int
}

func toNumber(v any) (number, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return number{i: big.NewInt(1)}, true
		}
		return number{i: big.NewInt(0)}, true
	case int:
		return number{i: big.NewInt(int64(x))}, true
	case *big.Int:
		return number{i: x}, true
	case float64:
		return number{isFloat: true, f: x}, true
	}
	return number{}, false
}

func (n number) float() float64 {
	if n.isFloat {
		return n.f
	}
	f, _ := new(big.Float).SetInt(n.i).Float64()
	return f
}

func intValue(i *big.Int) any {
	if i.IsInt64() && i.Int64() >= math.MinInt && i.Int64() <= math.MaxInt {
		return int(i.Int64())
	}
	return i
}

func isNumber(v any) bool {
	_, ok := toNumber(v)
	return ok
}

// pyEqual is Python's ==. Comparing an undefined value fails, as
// StrictUndefined does.
func pyEqual(a, b any) (bool, error) {
	if u, ok := a.(*undefinedValue); ok {
		return false, u.err()
	}
	if u, ok := b.(*undefinedValue); ok {
		return false, u.err()
	}
	if na, ok := toNumber(a); ok {
		nb, ok := toNumber(b)
		if !ok {
			return false, nil
		}
		if na.isFloat || nb.isFloat {
			return na.float() == nb.float(), nil
		}
		return na.i.Cmp(nb.i) == 0, nil
	}
	if sa, ok := asString(a); ok {
		sb, ok := asString(b)
		return ok && sa == sb, nil
	}
	switch x := a.(type) {
	case nil:
		return b == nil, nil
	case []any:
		y, ok := b.([]any)
		if !ok {
			return false, nil
		}
		return seqEqual(x, y)
	case tuple:
		y, ok := b.(tuple)
		if !ok {
			return false, nil
		}
		return seqEqual(x, y)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false, nil
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok {
				return false, nil
			}
			if eq, err := pyEqual(v, w); err != nil || !eq {
				return false, err
			}
		}
		return true, nil
	case *hostView:
		y, ok := b.(*hostView)
		return ok && x.host == y.host, nil
	case builtinFunc:
		y, ok := b.(builtinFunc)
		return ok && x == y, nil
	}
	return false, nil
}

func seqEqual(x, y []any) (bool, error) {
	if len(x) != len(y) {
		return false, nil
	}
	for i := range x {
		if eq, err := pyEqual(x[i], y[i]); err != nil || !eq {
			return false, err
		}
	}
	return true, nil
}

// pyCompare is Python's ordering of a and b: -1, 0 or 1, or the
// TypeError Python raises for op between them.
func pyCompare(a, b any, op string) (int, error) {
	if u, ok := a.(*undefinedValue); ok {
		return 0, u.err()
	}
	if u, ok := b.(*undefinedValue); ok {
		return 0, u.err()
	}
	if na, ok := toNumber(a); ok {
		if nb, ok := toNumber(b); ok {
			if na.isFloat || nb.isFloat {
				fa, fb := na.float(), nb.float()
				switch {
				case fa < fb:
					return -1, nil
				case fa > fb:
					return 1, nil
				case fa == fb:
					return 0, nil
				}
				return 2, nil // NaN: every comparison is false
			}
			return na.i.Cmp(nb.i), nil
		}
	}
	if sa, ok := asString(a); ok {
		if sb, ok := asString(b); ok {
			return strings.Compare(sa, sb), nil
		}
	}
	var xs, ys []any
	switch x := a.(type) {
	case []any:
		if y, ok := b.([]any); ok {
			xs, ys = x, y
		}
	case tuple:
		if y, ok := b.(tuple); ok {
			xs, ys = x, y
		}
	}
	if xs != nil || ys != nil {
		for i := 0; i < len(xs) && i < len(ys); i++ {
			eq, err := pyEqual(xs[i], ys[i])
			if err != nil {
				return 0, err
			}
			if !eq {
				return pyCompare(xs[i], ys[i], op)
			}
		}
		return compareInts(len(xs), len(ys)), nil
	}
	return 0, runtimeErr("'%s' not supported between instances of '%s' and '%s'", op, typeName(a), typeName(b))
}

func compareInts(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func runtimeErr(format string, args ...any) *Error {
	return &Error{Kind: Runtime, Msg: fmt.Sprintf(format, args...)}
}

func unsupported(construct, format string, args ...any) *Error {
	return &Error{Kind: Unsupported, Construct: construct, Msg: fmt.Sprintf(format, args...)}
}

func limitErr(format string, args ...any) *Error {
	return &Error{Kind: Limit, Msg: fmt.Sprintf(format, args...)}
}

// pyInt parses text as Python's int(s, base) does: blanks around, a sign,
// underscores between digits, and for base 16, 8 and 2 the matching
// 0x/0o/0b prefix.
func pyInt(s string, base int) (*big.Int, bool) {
	t := strings.TrimSpace(s)
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	lower := strings.ToLower(t)
	prefixed := func(p string) bool {
		if strings.HasPrefix(lower, p) {
			t = t[2:]
			if strings.HasPrefix(t, "_") {
				t = t[1:]
			}
			return true
		}
		return false
	}
	switch base {
	case 0:
		switch {
		case prefixed("0x"):
			base = 16
		case prefixed("0o"):
			base = 8
		case prefixed("0b"):
			base = 2
		default:
			base = 10
			if len(t) > 1 && t[0] == '0' && strings.Trim(t, "0_") != "" {
				return nil, false // 010 is a syntax error for int(x, 0)
			}
		}
	case 16:
		prefixed("0x")
	case 8:
		prefixed("0o")
	case 2:
		prefixed("0b")
	}
	if base < 2 || base > 36 || t == "" || strings.HasPrefix(t, "_") || strings.HasSuffix(t, "_") || strings.Contains(t, "__") {
		return nil, false
	}
	n, ok := new(big.Int).SetString(strings.ReplaceAll(t, "_", ""), base)
	if !ok {
		return nil, false
	}
	if neg {
		n.Neg(n)
	}
	return n, true
}

// pyFloat parses text as Python's float(s).
func pyFloat(s string) (float64, bool) {
	t := strings.TrimSpace(s)
	body := strings.TrimLeft(t, "+-")
	if len(t)-len(body) > 1 {
		return 0, false
	}
	switch strings.ToLower(body) {
	case "inf", "infinity", "nan":
		f, err := strconv.ParseFloat(t, 64)
		return f, err == nil
	}
	digits := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c == '_':
			if i == 0 || i == len(body)-1 || !isDigit(body[i-1]) || !isDigit(body[i+1]) {
				return 0, false
			}
		case c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-':
		default:
			return 0, false
		}
	}
	if !digits {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// pySpace is Python's str.isspace for one rune (str.strip and str.split
// without arguments use it).
func pySpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}
