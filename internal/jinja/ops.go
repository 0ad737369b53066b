package jinja

import (
	"math"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/tokens"
)

// iterate is Python's iter(v) materialised: a string's characters, a
// list's items, a dict's keys, hostvars' host names.
func (r *run) iterate(v any) ([]any, error) {
	switch x := v.(type) {
	case string, nativeText:
		s, _ := asString(x)
		out := make([]any, 0, utf8.RuneCountInString(s))
		for _, c := range s {
			out = append(out, string(c))
		}
		return out, nil
	case []any:
		return x, nil
	case tuple:
		return x, nil
	case map[string]any:
		keys := sortedKeys(x)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = k
		}
		return out, nil
	case HostVars:
		hosts := x.Hosts()
		out := make([]any, len(hosts))
		for i, h := range hosts {
			out[i] = h
		}
		return out, nil
	case *undefinedValue:
		return nil, x.err()
	}
	return nil, runtimeErr("'%s' object is not iterable", typeName(v))
}

// getAttr is Jinja2's environment.getattr: the attribute (a method of a
// str or dict), else the item of that name, else undefined.
func (r *run) getAttr(obj any, name string) (any, error) {
	switch x := obj.(type) {
	case *undefinedValue:
		return x, nil
	case map[string]any:
		if dictMethods[name] {
			return boundMethod{x, name}, nil
		}
		if v, ok := x[name]; ok {
			return v, nil
		}
	case string, nativeText:
		if strMethods[name] {
			return boundMethod{x, name}, nil
		}
	case HostVars:
		return r.getItem(x, name)
	case *hostView:
		return r.getItem(x, name)
	case *loopInfo:
		return x.attr(name), nil
	}
	return &undefinedValue{name: name, obj: obj, hasObj: true}, nil
}

// method is obj.name for a call: the method, or an error saying that
// nodefix does not evaluate it.
func (r *run) method(obj any, name string) (any, error) {
	switch x := obj.(type) {
	case map[string]any:
		if dictMethods[name] {
			return boundMethod{x, name}, nil
		}
	case string, nativeText:
		if strMethods[name] {
			return boundMethod{x, name}, nil
		}
	}
	v, err := r.getAttr(obj, name)
	if err != nil {
		return nil, err
	}
	if _, ok := v.(*undefinedValue); ok {
		return nil, unsupported("method "+name+"()", "the method %s() of a %s is not supported by nodefix (it evaluates %s)", name, typeName(obj), supportedMethods())
	}
	return v, nil
}

// getItem is Jinja2's environment.getitem: obj[key], else (for a string
// key) the attribute, else undefined.
func (r *run) getItem(obj, key any) (any, error) {
	switch x := obj.(type) {
	case *undefinedValue:
		return x, nil
	case map[string]any:
		if k, ok := asString(key); ok {
			if v, ok := x[k]; ok {
				return v, nil
			}
			return r.getAttr(obj, k)
		}
	case []any, tuple, string, nativeText:
		if n, ok := toNumber(key); ok && !n.isFloat {
			return index(x, n.i), nil
		}
		if k, ok := asString(key); ok {
			return r.getAttr(obj, k)
		}
	case HostVars:
		k, ok := asString(key)
		if !ok {
			return &undefinedValue{name: "hostvars[" + pyRepr(key) + "]"}, nil
		}
		vars, ok := x.HostVars(k)
		if !ok {
			return &undefinedValue{name: "hostvars['" + k + "']"}, nil
		}
		return &hostView{host: k, vars: vars}, nil
	case *hostView:
		if k, ok := asString(key); ok {
			return r.hostVar(x, k)
		}
	case *loopInfo:
		if k, ok := asString(key); ok {
			return x.attr(k), nil
		}
	}
	if k, ok := asString(key); ok {
		return &undefinedValue{name: k, obj: obj, hasObj: true}, nil
	}
	return &undefinedValue{key: key, obj: obj, hasObj: true}, nil
}

// index is seq[i] with Python's negative indices, undefined when out of
// range.
func index(seq any, i *big.Int) any {
	var n int
	var at func(int) any
	switch x := seq.(type) {
	case []any:
		n, at = len(x), func(k int) any { return x[k] }
	case tuple:
		n, at = len(x), func(k int) any { return x[k] }
	case string, nativeText:
		s, _ := asString(x)
		runes := []rune(s)
		n, at = len(runes), func(k int) any { return string(runes[k]) }
	}
	if i.IsInt64() {
		k := i.Int64()
		if k < 0 {
			k += int64(n)
		}
		if k >= 0 && k < int64(n) {
			return at(int(k))
		}
	}
	return &undefinedValue{key: intValue(i), obj: seq, hasObj: true}
}

// pySlice is seq[start:stop:step].
func pySlice(obj any, start, stop, step *int) (any, error) {
	st := 1
	if step != nil {
		st = *step
	}
	if st == 0 {
		return nil, runtimeErr("slice step cannot be zero")
	}
	var n int
	var runes []rune
	var items []any
	isStr := false
	switch x := obj.(type) {
	case string, nativeText:
		s, _ := asString(x)
		runes, isStr = []rune(s), true
		n = len(runes)
	case []any:
		items, n = x, len(x)
	case tuple:
		items, n = x, len(x)
	case *undefinedValue:
		return nil, x.err()
	default:
		return nil, runtimeErr("'%s' object is not subscriptable", typeName(obj))
	}
	lo, hi := sliceBounds(n, start, stop, st)
	var idx []int
	for i := lo; (st > 0 && i < hi) || (st < 0 && i > hi); i += st {
		idx = append(idx, i)
	}
	if isStr {
		var b strings.Builder
		for _, i := range idx {
			b.WriteRune(runes[i])
		}
		return b.String(), nil
	}
	out := make([]any, len(idx))
	for k, i := range idx {
		out[k] = items[i]
	}
	if _, ok := obj.(tuple); ok {
		return tuple(out), nil
	}
	return out, nil
}

// sliceBounds is slice.indices(n) for a non-zero step.
func sliceBounds(n int, start, stop *int, step int) (int, int) {
	clamp := func(p *int, def, lo, hi int) int {
		if p == nil {
			return def
		}
		v := *p
		if v < 0 {
			v += n
			if v < lo {
				v = lo
			}
		} else if v > hi {
			v = hi
		}
		return v
	}
	if step > 0 {
		return clamp(start, 0, 0, n), clamp(stop, n, 0, n)
	}
	return clamp(start, n-1, -1, n-1), clamp(stop, -1, -1, n-1)
}

// contains is Python's `item in seq`.
func (r *run) contains(seq, item any) (bool, error) {
	if u, ok := seq.(*undefinedValue); ok {
		return false, u.err()
	}
	switch x := seq.(type) {
	case string, nativeText:
		s, _ := asString(x)
		sub, ok := asString(item)
		if !ok {
			if u, isU := item.(*undefinedValue); isU {
				return false, u.err()
			}
			return false, runtimeErr("'in <string>' requires string as left operand, not %s", typeName(item))
		}
		return strings.Contains(s, sub), nil
	case []any, tuple:
		items, _ := r.iterate(x)
		for _, e := range items {
			eq, err := pyEqual(e, item)
			if err != nil {
				return false, err
			}
			if eq {
				return true, nil
			}
		}
		return false, nil
	case map[string]any:
		k, ok := asString(item)
		if !ok {
			if u, isU := item.(*undefinedValue); isU {
				return false, u.err()
			}
			return false, nil
		}
		_, has := x[k]
		return has, nil
	case HostVars:
		k, ok := asString(item)
		if !ok {
			return false, nil
		}
		_, has := x.HostVars(k)
		return has, nil
	case *hostView:
		k, ok := asString(item)
		if !ok {
			return false, nil
		}
		_, has := x.vars.Lookup(k)
		return has, nil
	}
	return false, runtimeErr("argument of type '%s' is not iterable", typeName(seq))
}

func unary(negative bool, v any) (any, error) {
	if u, ok := v.(*undefinedValue); ok {
		return nil, u.err()
	}
	n, ok := toNumber(v)
	if !ok {
		op := "+"
		if negative {
			op = "-"
		}
		return nil, runtimeErr("bad operand type for unary %s: '%s'", op, typeName(v))
	}
	if !negative {
		if n.isFloat {
			return n.f, nil
		}
		return intValue(n.i), nil
	}
	if n.isFloat {
		return -n.f, nil
	}
	return intValue(new(big.Int).Neg(n.i)), nil
}

// binaryOp is Python's a OP b, for the operators Jinja2 has.
func (r *run) binaryOp(op *tokens.Token, a, b any) (any, error) {
	sym := binaryOps[op.Type]
	switch op.Type {
	case tokens.Equals, tokens.Ne:
		eq, err := pyEqual(a, b)
		if err != nil {
			return nil, err
		}
		return eq == (op.Type == tokens.Equals), nil
	case tokens.LowerThan, tokens.LowerThanOrEqual, tokens.GreaterThan, tokens.GreaterThanOrEqual:
		c, err := pyCompare(a, b, sym)
		if err != nil {
			return nil, err
		}
		if c == 2 { // NaN
			return false, nil
		}
		switch op.Type {
		case tokens.LowerThan:
			return c < 0, nil
		case tokens.LowerThanOrEqual:
			return c <= 0, nil
		case tokens.GreaterThan:
			return c > 0, nil
		}
		return c >= 0, nil
	case tokens.In:
		return r.contains(b, a)
	case tokens.Tilde:
		sa, err := pyStr(a)
		if err != nil {
			return nil, err
		}
		sb, err := pyStr(b)
		if err != nil {
			return nil, err
		}
		if len(sa)+len(sb) > r.lim.Size {
			return nil, limitErr("a string of more than %d bytes", r.lim.Size)
		}
		return sa + sb, nil
	}
	for _, v := range []any{a, b} {
		if u, ok := v.(*undefinedValue); ok {
			return nil, u.err()
		}
	}
	na, aNum := toNumber(a)
	nb, bNum := toNumber(b)
	if aNum && bNum {
		return r.arith(op.Type, sym, na, nb)
	}
	switch op.Type {
	case tokens.Addition:
		if sa, ok := asString(a); ok {
			sb, ok := asString(b)
			if !ok {
				return nil, runtimeErr("can only concatenate str (not \"%s\") to str", typeName(b))
			}
			if len(sa)+len(sb) > r.lim.Size {
				return nil, limitErr("a string of more than %d bytes", r.lim.Size)
			}
			return sa + sb, nil
		}
		switch x := a.(type) {
		case []any:
			if y, ok := b.([]any); ok {
				return r.concatSeq(x, y)
			}
			return nil, runtimeErr("can only concatenate list (not \"%s\") to list", typeName(b))
		case tuple:
			if y, ok := b.(tuple); ok {
				l, err := r.concatSeq(x, y)
				if err != nil {
					return nil, err
				}
				return tuple(l), nil
			}
			return nil, runtimeErr("can only concatenate tuple (not \"%s\") to tuple", typeName(b))
		}
	case tokens.Multiply:
		seq, n := a, nb
		if aNum {
			seq, n = b, na
		}
		if (aNum || bNum) && !n.isFloat {
			return r.repeat(seq, n.i, typeName(a), typeName(b))
		}
	case tokens.Modulo:
		if _, ok := asString(a); ok {
			return nil, unsupported("% string formatting", "%% string formatting is not supported by nodefix: use ~ to join text")
		}
	}
	return nil, runtimeErr("unsupported operand type(s) for %s: '%s' and '%s'", sym, typeName(a), typeName(b))
}

func (r *run) concatSeq(x, y []any) ([]any, error) {
	if len(x)+len(y) > r.lim.Size {
		return nil, limitErr("a list of more than %d items", r.lim.Size)
	}
	out := make([]any, 0, len(x)+len(y))
	return append(append(out, x...), y...), nil
}

// repeat is seq * n for a str, list or tuple.
func (r *run) repeat(seq any, n *big.Int, ta, tb string) (any, error) {
	count := 0
	if n.Sign() > 0 {
		if !n.IsInt64() || n.Int64() > int64(r.lim.Size) {
			return nil, limitErr("a repetition of more than %d", r.lim.Size)
		}
		count = int(n.Int64())
	}
	switch x := seq.(type) {
	case string, nativeText:
		s, _ := asString(x)
		if len(s)*count > r.lim.Size {
			return nil, limitErr("a string of more than %d bytes", r.lim.Size)
		}
		return strings.Repeat(s, count), nil
	case []any, tuple:
		items, _ := r.iterate(x)
		if len(items)*count > r.lim.Size {
			return nil, limitErr("a list of more than %d items", r.lim.Size)
		}
		out := make([]any, 0, len(items)*count)
		for i := 0; i < count; i++ {
			out = append(out, items...)
		}
		if _, ok := x.(tuple); ok {
			return tuple(out), nil
		}
		return out, nil
	}
	return nil, runtimeErr("unsupported operand type(s) for *: '%s' and '%s'", ta, tb)
}

// arith is Python's arithmetic on numbers (bool counting as int).
func (r *run) arith(op tokens.Type, sym string, a, b number) (any, error) {
	if a.isFloat || b.isFloat || op == tokens.Division {
		x, y := a.float(), b.float()
		switch op {
		case tokens.Addition:
			return x + y, nil
		case tokens.Subtraction:
			return x - y, nil
		case tokens.Multiply:
			return x * y, nil
		case tokens.Division:
			if y == 0 {
				return nil, runtimeErr("division by zero")
			}
			return x / y, nil
		case tokens.FloorDivision:
			if y == 0 {
				return nil, runtimeErr("float floor division by zero")
			}
			return math.Floor(x / y), nil
		case tokens.Modulo:
			if y == 0 {
				return nil, runtimeErr("float modulo")
			}
			m := math.Mod(x, y)
			if m != 0 && (m < 0) != (y < 0) {
				m += y
			}
			return m, nil
		case tokens.Power:
			if x == 0 && y < 0 {
				return nil, runtimeErr("0.0 cannot be raised to a negative power")
			}
			return math.Pow(x, y), nil
		}
	}
	x, y := a.i, b.i
	z := new(big.Int)
	switch op {
	case tokens.Addition:
		z.Add(x, y)
	case tokens.Subtraction:
		z.Sub(x, y)
	case tokens.Multiply:
		if x.BitLen()+y.BitLen() > 8*r.lim.Size {
			return nil, limitErr("a number of more than %d bits", 8*r.lim.Size)
		}
		z.Mul(x, y)
	case tokens.FloorDivision, tokens.Modulo:
		if y.Sign() == 0 {
			return nil, runtimeErr("integer division or modulo by zero")
		}
		q, m := new(big.Int).QuoRem(x, y, new(big.Int))
		if m.Sign() != 0 && m.Sign() != y.Sign() {
			q.Sub(q, big.NewInt(1))
			m.Add(m, y)
		}
		if op == tokens.FloorDivision {
			z = q
		} else {
			z = m
		}
	case tokens.Power:
		if y.Sign() < 0 {
			if x.Sign() == 0 {
				return nil, runtimeErr("0.0 cannot be raised to a negative power")
			}
			return math.Pow(a.float(), b.float()), nil
		}
		if x.BitLen() > 1 && (!y.IsInt64() || int64(x.BitLen())*y.Int64() > int64(8*r.lim.Size)) {
			return nil, limitErr("a number of more than %d bits", 8*r.lim.Size)
		}
		z.Exp(x, y, nil)
	default:
		return nil, runtimeErr("unsupported operand type(s) for %s", sym)
	}
	return intValue(z), nil
}

func (l *loopInfo) attr(name string) any {
	switch name {
	case "index":
		return l.index0 + 1
	case "index0":
		return l.index0
	case "revindex":
		return l.length - l.index0
	case "revindex0":
		return l.length - l.index0 - 1
	case "first":
		return l.index0 == 0
	case "last":
		return l.index0 == l.length-1
	case "length":
		return l.length
	case "depth":
		return 1
	case "depth0":
		return 0
	case "previtem":
		if l.index0 > 0 {
			return l.items[l.index0-1]
		}
		return &undefinedValue{hint: "there is no previous item"}
	case "nextitem":
		if l.index0+1 < l.length {
			return l.items[l.index0+1]
		}
		return &undefinedValue{hint: "there is no next item"}
	}
	return &undefinedValue{name: name, obj: l, hasObj: true}
}
