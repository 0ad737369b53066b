package jinja

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"

	"github.com/nikolalohinski/gonja/v2/tokens"
)

// filterFunc is a filter: Jinja2's (3.1) or Ansible's (2.14), with their
// meaning; args are bound to the filter's parameters by bindArgs.
type filterFunc func(r *run, v any, args []any) (any, error)

type filterDef struct {
	params []param
	fn     filterFunc
}

type param struct {
	name string
	def  any
	req  bool
}

var filters map[string]filterDef

func init() {
	defaultFilter := filterDef{[]param{{name: "default_value", def: ""}, {name: "boolean", def: false}}, filterDefault}
	length := filterDef{nil, filterLength}
	filters = map[string]filterDef{
		"default":       defaultFilter,
		"d":             defaultFilter,
		"lower":         {nil, strFilter(strings.ToLower)},
		"upper":         {nil, strFilter(strings.ToUpper)},
		"replace":       {[]param{{name: "old", req: true}, {name: "new", req: true}, {name: "count"}}, filterReplace},
		"regex_replace": {[]param{{name: "pattern", def: ""}, {name: "replacement", def: ""}, {name: "ignorecase", def: false}, {name: "multiline", def: false}}, filterRegexReplace},
		"trim":          {[]param{{name: "chars"}}, filterTrim},
		"int":           {[]param{{name: "default", def: 0}, {name: "base", def: 10}}, filterInt},
		"bool":          {nil, filterBool},
		"string":        {nil, filterString},
		"join":          {[]param{{name: "d", def: ""}, {name: "attribute"}}, filterJoin},
		"first":         {nil, filterFirst},
		"last":          {nil, filterLast},
		"length":        length,
		"count":         length,
		"list":          {nil, filterList},
		"ternary":       {[]param{{name: "true_val", req: true}, {name: "false_val", req: true}, {name: "none_val"}}, filterTernary},
	}
}

func supportedFilters() string { return namesOf(filters) }

func namesOf[T any](m map[string]T) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// bindArgs binds positional and keyword arguments to params as Python
// binds a call's.
func bindArgs(fn string, params []param, args []any, kwargs map[string]any) ([]any, error) {
	if len(args) > len(params) {
		return nil, runtimeErr("%s() takes %d arguments but %d were given", fn, len(params), len(args))
	}
	out := make([]any, len(params))
	set := make([]bool, len(params))
	for i, a := range args {
		out[i], set[i] = a, true
	}
	for k, v := range kwargs {
		found := false
		for i, p := range params {
			if p.name == k {
				if set[i] {
					return nil, runtimeErr("%s() got multiple values for argument '%s'", fn, k)
				}
				out[i], set[i], found = v, true, true
			}
		}
		if !found {
			return nil, runtimeErr("%s() got an unexpected keyword argument '%s'", fn, k)
		}
	}
	for i, p := range params {
		if !set[i] {
			if p.req {
				return nil, runtimeErr("%s() missing required argument: '%s'", fn, p.name)
			}
			out[i] = p.def
		}
	}
	return out, nil
}

func (r *run) filter(name string, v any, args []any, kwargs map[string]any) (any, error) {
	f, ok := filters[name]
	if !ok {
		return nil, unsupported("filter "+name, "the filter %q is not supported by nodefix", name)
	}
	bound, err := bindArgs(name, f.params, args, kwargs)
	if err != nil {
		return nil, err
	}
	return f.fn(r, v, bound)
}

func filterDefault(_ *run, v any, a []any) (any, error) {
	if _, ok := v.(*undefinedValue); ok {
		return a[0], nil
	}
	boolean, err := truth(a[1])
	if err != nil {
		return nil, err
	}
	if boolean {
		t, err := truth(v)
		if err != nil {
			return nil, err
		}
		if !t {
			return a[0], nil
		}
	}
	return v, nil
}

func strFilter(f func(string) string) filterFunc {
	return func(_ *run, v any, _ []any) (any, error) {
		s, err := pyStr(v)
		if err != nil {
			return nil, err
		}
		return f(s), nil
	}
}

func filterReplace(r *run, v any, a []any) (any, error) {
	s, err := pyStr(v)
	if err != nil {
		return nil, err
	}
	old, err := pyStr(a[0])
	if err != nil {
		return nil, err
	}
	repl, err := pyStr(a[1])
	if err != nil {
		return nil, err
	}
	count := -1
	if a[2] != nil {
		n, ok := toNumber(a[2])
		if !ok || n.isFloat {
			return nil, runtimeErr("'%s' object cannot be interpreted as an integer", typeName(a[2]))
		}
		if n.i.IsInt64() && n.i.Int64() >= 0 && n.i.Int64() < math.MaxInt32 {
			count = int(n.i.Int64())
		}
	}
	occurrences := strings.Count(s, old)
	if count >= 0 && count < occurrences {
		occurrences = count
	}
	if len(s)+occurrences*(len(repl)-len(old)) > r.lim.Size {
		return nil, limitErr("a string of more than %d bytes", r.lim.Size)
	}
	return strings.Replace(s, old, repl, count), nil
}

func filterTrim(_ *run, v any, a []any) (any, error) {
	s, err := pyStr(v)
	if err != nil {
		return nil, err
	}
	if a[0] == nil {
		return strings.TrimFunc(s, pySpace), nil
	}
	chars, ok := asString(a[0])
	if !ok {
		return nil, runtimeErr("strip arg must be None or str")
	}
	return strings.Trim(s, chars), nil
}

// filterInt is Jinja2's int filter: int(value) (with the base for text),
// else int(float(value)), else the default.
func filterInt(_ *run, v any, a []any) (any, error) {
	if u, ok := v.(*undefinedValue); ok {
		return nil, u.err()
	}
	bn, ok := toNumber(a[1])
	if !ok || bn.isFloat || !bn.i.IsInt64() {
		return nil, runtimeErr("'%s' object cannot be interpreted as an integer", typeName(a[1]))
	}
	base := int(bn.i.Int64())
	if s, ok := asString(v); ok {
		if base != 0 && (base < 2 || base > 36) {
			return nil, runtimeErr("int() base must be >= 2 and <= 36, or 0")
		}
		if n, ok := pyInt(s, base); ok {
			return intValue(n), nil
		}
		f, ok := pyFloat(s)
		if !ok {
			return a[0], nil
		}
		return floatToInt(f, a[0])
	}
	n, ok := toNumber(v)
	if !ok {
		return a[0], nil
	}
	if !n.isFloat {
		return intValue(n.i), nil
	}
	return floatToInt(n.f, a[0])
}

func floatToInt(f float64, def any) (any, error) {
	switch {
	case math.IsNaN(f):
		return def, nil
	case math.IsInf(f, 0):
		return nil, runtimeErr("cannot convert float infinity to integer")
	}
	i, _ := big.NewFloat(math.Trunc(f)).Int(nil)
	return intValue(i), nil
}

// filterBool is Ansible's bool filter (to_bool): None and booleans as
// they are, "yes", "on", "1", "true" (any case) and 1 true, all else false.
func filterBool(_ *run, v any, _ []any) (any, error) {
	switch x := v.(type) {
	case nil, bool:
		return x, nil
	case *undefinedValue:
		return nil, x.err()
	}
	if s, ok := asString(v); ok {
		switch strings.ToLower(s) {
		case "yes", "on", "1", "true":
			return true, nil
		}
		return false, nil
	}
	eq, err := pyEqual(v, 1)
	return eq, err
}

func filterString(_ *run, v any, _ []any) (any, error) {
	s, err := pyStr(v)
	if err != nil {
		return nil, err
	}
	return nativeText(s), nil
}

func filterJoin(r *run, v any, a []any) (any, error) {
	if a[1] != nil {
		return nil, unsupported("join(attribute=…)", "join(attribute=…) is not supported by nodefix")
	}
	sep, err := pyStr(a[0])
	if err != nil {
		return nil, err
	}
	items, err := r.iterate(v)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for i, e := range items {
		s, err := pyStr(e)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString(sep)
		}
		if b.Len()+len(s) > r.lim.Size {
			return nil, limitErr("a string of more than %d bytes", r.lim.Size)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func filterFirst(r *run, v any, _ []any) (any, error) {
	items, err := r.iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return &undefinedValue{hint: "No first item, sequence was empty."}, nil
	}
	return items[0], nil
}

func filterLast(r *run, v any, _ []any) (any, error) {
	items, err := r.iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return &undefinedValue{hint: "No last item, sequence was empty."}, nil
	}
	return items[len(items)-1], nil
}

func filterLength(r *run, v any, _ []any) (any, error) {
	switch x := v.(type) {
	case string, nativeText:
		s, _ := asString(x)
		return len([]rune(s)), nil
	case []any, tuple, map[string]any, HostVars:
		items, err := r.iterate(x)
		return len(items), err
	case *hostView:
		return nil, unsupported("length of hostvars", "the length of a host's variables is not supported by nodefix")
	case *undefinedValue:
		return nil, x.err()
	}
	return nil, runtimeErr("object of type '%s' has no len()", typeName(v))
}

func filterList(r *run, v any, _ []any) (any, error) {
	items, err := r.iterate(v)
	if err != nil {
		return nil, err
	}
	return append([]any(nil), items...), nil
}

func filterTernary(_ *run, v any, a []any) (any, error) {
	if v == nil && a[2] != nil {
		return a[2], nil
	}
	b, err := truth(v)
	if err != nil {
		return nil, err
	}
	if b {
		return a[0], nil
	}
	return a[1], nil
}

// Tests.

type testFunc func(r *run, v any, args []any) (bool, error)

var tests map[string]testFunc

func init() {
	eq := cmpTest(func(c int) bool { return c == 0 }, "==")
	ne := cmpTest(func(c int) bool { return c != 0 }, "!=")
	lt := cmpTest(func(c int) bool { return c < 0 }, "<")
	le := cmpTest(func(c int) bool { return c <= 0 }, "<=")
	gt := cmpTest(func(c int) bool { return c > 0 }, ">")
	ge := cmpTest(func(c int) bool { return c >= 0 }, ">=")
	tests = map[string]testFunc{
		"defined":   func(_ *run, v any, _ []any) (bool, error) { _, u := v.(*undefinedValue); return !u, nil },
		"undefined": func(_ *run, v any, _ []any) (bool, error) { _, u := v.(*undefinedValue); return u, nil },
		"none":      func(_ *run, v any, _ []any) (bool, error) { return v == nil, nil },
		"string":    func(_ *run, v any, _ []any) (bool, error) { _, ok := asString(v); return ok, nil },
		"number":    func(_ *run, v any, _ []any) (bool, error) { return isNumber(v), nil },
		"integer": func(_ *run, v any, _ []any) (bool, error) {
			switch v.(type) {
			case int, *big.Int:
				return true, nil
			}
			return false, nil
		},
		"float":   func(_ *run, v any, _ []any) (bool, error) { _, ok := v.(float64); return ok, nil },
		"boolean": func(_ *run, v any, _ []any) (bool, error) { _, ok := v.(bool); return ok, nil },
		"true":    func(_ *run, v any, _ []any) (bool, error) { return v == true, nil },
		"false":   func(_ *run, v any, _ []any) (bool, error) { return v == false, nil },
		"mapping": func(_ *run, v any, _ []any) (bool, error) {
			switch v.(type) {
			case map[string]any, HostVars, *hostView:
				return true, nil
			}
			return false, nil
		},
		"sequence": func(_ *run, v any, _ []any) (bool, error) {
			switch v.(type) {
			case string, nativeText, []any, tuple, map[string]any, HostVars, *hostView:
				return true, nil
			}
			return false, nil
		},
		"iterable": func(_ *run, v any, _ []any) (bool, error) {
			switch x := v.(type) {
			case string, nativeText, []any, tuple, map[string]any, HostVars, *hostView:
				return true, nil
			case *undefinedValue:
				return false, x.err()
			}
			return false, nil
		},
		"eq": eq, "equalto": eq, "==": eq,
		"ne": ne, "!=": ne,
		"lt": lt, "lessthan": lt, "<": lt,
		"le": le, "<=": le,
		"gt": gt, "greaterthan": gt, ">": gt,
		"ge": ge, ">=": ge,
		"in": func(r *run, v any, a []any) (bool, error) {
			if len(a) != 1 {
				return false, runtimeErr("the in test takes one argument")
			}
			return r.contains(a[0], v)
		},
		"even":        modTest(2, 0),
		"odd":         modTest(2, 1),
		"divisibleby": func(r *run, v any, a []any) (bool, error) { return divisible(r, v, a) },
	}
}

func supportedTests() string {
	names := make(map[string]bool, len(tests))
	for n := range tests {
		if n[0] >= 'a' && n[0] <= 'z' {
			names[n] = true
		}
	}
	return namesOf(names)
}

func (r *run) test(name string, v any, args []any, kwargs map[string]any) (bool, error) {
	t, ok := tests[name]
	if !ok {
		return false, unsupported("test "+name, "the test %q is not supported by nodefix", name)
	}
	if len(kwargs) > 0 {
		return false, runtimeErr("the %s test takes no keyword arguments", name)
	}
	return t(r, v, args)
}

func cmpTest(ok func(int) bool, op string) testFunc {
	return func(_ *run, v any, a []any) (bool, error) {
		if len(a) != 1 {
			return false, runtimeErr("the %s test takes one argument", op)
		}
		if op == "==" || op == "!=" {
			eq, err := pyEqual(v, a[0])
			return eq == (op == "=="), err
		}
		c, err := pyCompare(v, a[0], op)
		if err != nil || c == 2 {
			return false, err
		}
		return ok(c), nil
	}
}

func modTest(m, want int64) testFunc {
	return func(r *run, v any, _ []any) (bool, error) {
		return remainder(r, v, big.NewInt(m), big.NewInt(want))
	}
}

func divisible(r *run, v any, a []any) (bool, error) {
	if len(a) != 1 {
		return false, runtimeErr("the divisibleby test takes one argument")
	}
	n, ok := toNumber(a[0])
	if !ok || n.isFloat {
		return false, runtimeErr("divisibleby needs an integer, got %s", typeName(a[0]))
	}
	return remainder(r, v, n.i, big.NewInt(0))
}

func remainder(r *run, v any, m, want *big.Int) (bool, error) {
	if u, ok := v.(*undefinedValue); ok {
		return false, u.err()
	}
	n, ok := toNumber(v)
	if !ok {
		return false, runtimeErr("unsupported operand type(s) for %%: '%s' and 'int'", typeName(v))
	}
	got, err := r.arith(tokens.Modulo, "%", n, number{i: m})
	if err != nil {
		return false, err
	}
	return pyEqual(got, intValue(want))
}

// Global functions and methods.

var strMethods = map[string]bool{
	"split": true, "lower": true, "upper": true, "strip": true, "lstrip": true, "rstrip": true,
	"startswith": true, "endswith": true, "replace": true,
}

var dictMethods = map[string]bool{"get": true, "keys": true, "values": true, "items": true}

func supportedMethods() string {
	return "str." + strings.ReplaceAll(namesOf(strMethods), ", ", "(), str.") + "(), dict." +
		strings.ReplaceAll(namesOf(dictMethods), ", ", "(), dict.") + "()"
}

func (r *run) callGlobal(name string, args []any, kwargs map[string]any) (any, error) {
	switch name {
	case "range":
		if len(kwargs) > 0 {
			return nil, runtimeErr("range() takes no keyword arguments")
		}
		return r.pyRange(args)
	case "dict":
		if len(args) > 0 {
			return nil, unsupported("dict(…) with positional arguments", "dict() with positional arguments is not supported by nodefix")
		}
		out := make(map[string]any, len(kwargs))
		for k, v := range kwargs {
			out[k] = v
		}
		return out, nil
	}
	return r.lookupPlugin(name, args, kwargs)
}

func (r *run) pyRange(args []any) (any, error) {
	if len(args) < 1 || len(args) > 3 {
		return nil, runtimeErr("range expected 1 to 3 arguments, got %d", len(args))
	}
	var ns []int64
	for _, a := range args {
		n, ok := toNumber(a)
		if !ok || n.isFloat || !n.i.IsInt64() {
			return nil, runtimeErr("'%s' object cannot be interpreted as an integer", typeName(a))
		}
		ns = append(ns, n.i.Int64())
	}
	start, stop, step := int64(0), ns[0], int64(1)
	if len(ns) > 1 {
		start, stop = ns[0], ns[1]
	}
	if len(ns) > 2 {
		step = ns[2]
	}
	if step == 0 {
		return nil, runtimeErr("range() arg 3 must not be zero")
	}
	var count float64
	if step > 0 && stop > start {
		count = math.Ceil((float64(stop) - float64(start)) / float64(step))
	} else if step < 0 && stop < start {
		count = math.Ceil((float64(start) - float64(stop)) / float64(-step))
	}
	if count > float64(r.lim.Size) {
		return nil, limitErr("a range of more than %d numbers", r.lim.Size)
	}
	out := make([]any, 0, int(count))
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		out = append(out, int(i))
	}
	return out, nil
}

// lookupPlugin is lookup(), query() and q() for the env plugin: each
// term's first word names an environment variable (its value, else the
// default, "" unless given); lookup joins the values with commas.
func (r *run) lookupPlugin(fn string, args []any, kwargs map[string]any) (any, error) {
	if len(args) == 0 {
		return nil, runtimeErr("%s() needs the name of a lookup plugin", fn)
	}
	plugin, ok := asString(args[0])
	if !ok {
		return nil, runtimeErr("%s(): the plugin name must be a string, not %s", fn, typeName(args[0]))
	}
	if plugin != "env" && plugin != "ansible.builtin.env" {
		return nil, unsupportedLookup(fn, plugin)
	}
	wantlist := fn != "lookup"
	def := any("")
	for k, v := range kwargs {
		switch k {
		case "default":
			def = v
		case "wantlist":
			b, err := truth(v)
			if err != nil {
				return nil, err
			}
			wantlist = wantlist || b
		case "errors", "allow_unsafe":
		default:
			return nil, runtimeErr("lookup plugin 'env': option %q is not defined", k)
		}
	}
	var ran []any
	for _, term := range args[1:] {
		if u, ok := term.(*undefinedValue); ok {
			return nil, u.err()
		}
		s, ok := asString(term)
		if !ok {
			return nil, runtimeErr("an unhandled exception occurred while running the lookup plugin 'env': '%s' object has no attribute 'split'", typeName(term))
		}
		words := strings.FieldsFunc(s, pySpace)
		if len(words) == 0 {
			return nil, runtimeErr("an unhandled exception occurred while running the lookup plugin 'env': list index out of range")
		}
		if v, ok := r.env.lookupEnv(words[0]); ok {
			ran = append(ran, v)
		} else if _, ok := def.(*undefinedValue); ok {
			return nil, &Error{Kind: Undefined, Name: words[0], Msg: fmt.Sprintf("The \"env\" lookup, found an undefined variable: %s", words[0])}
		} else {
			ran = append(ran, def)
		}
	}
	if wantlist || len(ran) == 0 {
		if ran == nil {
			ran = []any{}
		}
		return ran, nil
	}
	texts := make([]string, len(ran))
	for i, v := range ran {
		s, ok := asString(v)
		if !ok {
			if len(ran) == 1 {
				return ran[0], nil
			}
			return ran, nil
		}
		texts[i] = s
	}
	return strings.Join(texts, ","), nil
}

func (r *run) callMethod(m boundMethod, args []any, kwargs map[string]any) (any, error) {
	if d, ok := m.recv.(map[string]any); ok {
		return r.dictMethod(d, m.name, args, kwargs)
	}
	s, _ := asString(m.recv)
	bind := func(params ...param) ([]any, error) { return bindArgs("str."+m.name, params, args, kwargs) }
	optString := func(v any) (string, bool, error) {
		if v == nil {
			return "", false, nil
		}
		t, ok := asString(v)
		if !ok {
			return "", false, runtimeErr("str.%s: expected str or None, got %s", m.name, typeName(v))
		}
		return t, true, nil
	}
	switch m.name {
	case "lower", "upper":
		if _, err := bind(); err != nil {
			return nil, err
		}
		if m.name == "lower" {
			return strings.ToLower(s), nil
		}
		return strings.ToUpper(s), nil
	case "strip", "lstrip", "rstrip":
		a, err := bind(param{name: "chars"})
		if err != nil {
			return nil, err
		}
		chars, given, err := optString(a[0])
		if err != nil {
			return nil, err
		}
		var cut func(rune) bool = pySpace
		if given {
			cut = func(c rune) bool { return strings.ContainsRune(chars, c) }
		}
		switch m.name {
		case "strip":
			return strings.TrimFunc(s, cut), nil
		case "lstrip":
			return strings.TrimLeftFunc(s, cut), nil
		}
		return strings.TrimRightFunc(s, cut), nil
	case "split":
		a, err := bind(param{name: "sep"}, param{name: "maxsplit", def: -1})
		if err != nil {
			return nil, err
		}
		sep, given, err := optString(a[0])
		if err != nil {
			return nil, err
		}
		n, ok := toNumber(a[1])
		if !ok || n.isFloat || !n.i.IsInt64() {
			return nil, runtimeErr("'%s' object cannot be interpreted as an integer", typeName(a[1]))
		}
		return pySplit(s, sep, given, int(n.i.Int64()))
	case "startswith", "endswith":
		a, err := bind(param{name: "prefix", req: true})
		if err != nil {
			return nil, err
		}
		var cands []any
		switch p := a[0].(type) {
		case tuple:
			cands = p
		default:
			cands = []any{p}
		}
		for _, c := range cands {
			t, ok := asString(c)
			if !ok {
				return nil, runtimeErr("%s first arg must be str or a tuple of str, not %s", m.name, typeName(c))
			}
			if (m.name == "startswith" && strings.HasPrefix(s, t)) || (m.name == "endswith" && strings.HasSuffix(s, t)) {
				return true, nil
			}
		}
		return false, nil
	case "replace":
		a, err := bind(param{name: "old", req: true}, param{name: "new", req: true}, param{name: "count", def: -1})
		if err != nil {
			return nil, err
		}
		return filterReplace(r, s, a)
	}
	return nil, unsupported("method "+m.name+"()", "the method %s() is not supported by nodefix", m.name)
}

func (r *run) dictMethod(d map[string]any, name string, args []any, kwargs map[string]any) (any, error) {
	switch name {
	case "get":
		a, err := bindArgs("dict.get", []param{{name: "key", req: true}, {name: "default"}}, args, kwargs)
		if err != nil {
			return nil, err
		}
		if k, ok := asString(a[0]); ok {
			if v, ok := d[k]; ok {
				return v, nil
			}
		}
		return a[1], nil
	case "keys", "values", "items":
		if len(args) > 0 || len(kwargs) > 0 {
			return nil, runtimeErr("dict.%s() takes no arguments", name)
		}
		keys := sortedKeys(d)
		out := make([]any, len(keys))
		for i, k := range keys {
			switch name {
			case "keys":
				out[i] = k
			case "values":
				out[i] = d[k]
			default:
				out[i] = tuple{k, d[k]}
			}
		}
		return out, nil
	}
	return nil, unsupported("method "+name+"()", "the method %s() is not supported by nodefix", name)
}

// pySplit is Python's str.split(sep, maxsplit).
func pySplit(s, sep string, given bool, maxsplit int) (any, error) {
	var parts []string
	if given {
		if sep == "" {
			return nil, runtimeErr("empty separator")
		}
		parts = strings.SplitN(s, sep, splitN(maxsplit))
	} else {
		rest := strings.TrimLeftFunc(s, pySpace)
		for rest != "" {
			if maxsplit >= 0 && len(parts) == maxsplit {
				parts = append(parts, strings.TrimRightFunc(rest, pySpace))
				break
			}
			i := strings.IndexFunc(rest, pySpace)
			if i < 0 {
				parts = append(parts, rest)
				break
			}
			parts = append(parts, rest[:i])
			rest = strings.TrimLeftFunc(rest[i:], pySpace)
		}
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

func splitN(maxsplit int) int {
	if maxsplit < 0 {
		return -1
	}
	return maxsplit + 1
}
