package jinja

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"

	"github.com/nodefix/nodefix/internal/pycompat"
)

// run is one evaluation: its budget, and the variables being templated
// (to catch a variable that refers to itself).
type run struct {
	env   *Env
	lim   Limits
	steps int
	stack []frame
}

type frame struct {
	vars Vars
	name string
}

func (e *Env) newRun() *run { return &run{env: e, lim: e.limits} }

// recover turns a panic anywhere in the evaluation into an error: a
// template must never take nodefix down.
func (r *run) recover(err *error) {
	if p := recover(); p != nil {
		*err = &Error{Kind: Runtime, Msg: fmt.Sprintf("nodefix's template engine failed: %v", p)}
	}
}

func (r *run) step() error {
	r.steps++
	if r.steps > r.lim.Steps {
		return limitErr("evaluating the template takes more than %d steps", r.lim.Steps)
	}
	return nil
}

// reSingleVar is Templar.SINGLE_VAR: "{{ name }}" alone (Python's $ also
// matches before a final newline).
var reSingleVar = regexp.MustCompile(`^\{\{\s*([\p{L}\p{N}_]*)\s*\}\}\n?$`)

// template is Templar.template(v): see Env.Template.
func (r *run) template(v any, vars Vars, fail bool) (any, error) {
	switch x := v.(type) {
	case pycompat.Unsafe:
		return x.Text, nil
	case pycompat.Vault:
		return nil, vaultErr()
	case string:
		if !IsTemplate(x) {
			return x, nil
		}
		// A lone "{{ var }}" gives var's own value when it is a number, a
		// boolean or None, without rendering it as text.
		if strings.HasPrefix(x, "{{") && strings.HasSuffix(strings.TrimSuffix(x, "\n"), "}}") {
			if m := reSingleVar.FindStringSubmatch(x); m != nil {
				if raw, ok := vars.Lookup(m[1]); ok {
					switch raw.(type) {
					case bool, int, *big.Int, float64:
						return raw, nil
					case nil:
						return nil, nil
					}
				}
			}
		}
		return r.render(x, vars, fail)
	case Untemplated:
		return x.Value, nil
	case []any:
		if !HoldsTemplate(x) {
			return x, nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			t, err := r.template(e, vars, fail)
			if err != nil {
				return nil, err
			}
			out[i] = t
		}
		return out, nil
	case map[string]any:
		if !HoldsTemplate(x) {
			return x, nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			t, err := r.template(e, vars, fail)
			if err != nil {
				return nil, err
			}
			out[k] = t
		}
		return out, nil
	}
	return v, nil
}

// HoldsTemplate reports whether templating v could change it: v is, or
// a list or dict in it holds, a string that may be a template (IsTemplate),
// or a value only the engine reads (!unsafe, a vault, Untemplated).
// Plain data is returned as it is without calling the engine.
func HoldsTemplate(v any) bool {
	switch x := v.(type) {
	case string:
		return IsTemplate(x)
	case []any:
		for _, e := range x {
			if HoldsTemplate(e) {
				return true
			}
		}
		return false
	case map[string]any:
		for _, e := range x {
			if HoldsTemplate(e) {
				return true
			}
		}
		return false
	case nil, bool, int, *big.Int, float64:
		return false
	}
	return true // Unsafe, Vault, Untemplated: template() handles them
}

func vaultErr() *Error {
	return unsupported("ansible-vault", "a value encrypted with ansible-vault is not supported by nodefix (it does not decrypt vaults)")
}

// templateVar is a variable read by a template (AnsibleJ2Vars): hostvars
// and !unsafe values as they are, anything else templated, an undefined
// variable inside it turned into an undefined value that fails only when
// used.
func (r *run) templateVar(vars Vars, name string, raw any) (any, error) {
	switch x := raw.(type) {
	case HostVars:
		return x, nil
	case pycompat.Unsafe:
		return x.Text, nil
	case Untemplated:
		return x.Value, nil
	}
	if s, ok := raw.(string); ok && !IsTemplate(s) {
		return s, nil
	}
	for i, f := range r.stack {
		if f.vars == vars && f.name == name {
			chain := make([]string, 0, len(r.stack)-i+1)
			for _, g := range r.stack[i:] {
				chain = append(chain, g.name)
			}
			return nil, limitErr("recursive loop detected in template: %s", strings.Join(append(chain, name), " -> "))
		}
	}
	if len(r.stack) >= r.lim.Depth {
		return nil, limitErr("variables nest more than %d deep", r.lim.Depth)
	}
	r.stack = append(r.stack, frame{vars, name})
	defer func() { r.stack = r.stack[:len(r.stack)-1] }()
	v, err := r.template(raw, vars, true)
	if err != nil {
		var je *Error
		if errors.As(err, &je) && je.Kind == Undefined {
			return &undefinedValue{name: name, cause: je}, nil
		}
		return nil, err
	}
	return v, nil
}

// hostVar is one variable of another host read through hostvars
// (HostVarsVars): templated in that host's context, and left as its raw
// text when something in it is undefined.
func (r *run) hostVar(view *hostView, name string) (any, error) {
	raw, ok := view.vars.Lookup(name)
	if !ok {
		return &undefinedValue{name: name, obj: view, hasObj: true}, nil
	}
	if len(r.stack) >= r.lim.Depth {
		return nil, limitErr("variables nest more than %d deep", r.lim.Depth)
	}
	r.stack = append(r.stack, frame{view.vars, name})
	defer func() { r.stack = r.stack[:len(r.stack)-1] }()
	return r.template(raw, view.vars, false)
}

// render is Templar.do_template: render src, then Ansible's conversions
// of the result.
func (r *run) render(src string, vars Vars, fail bool) (any, error) {
	t, err := r.env.parse(src)
	if err != nil {
		return nil, err
	}
	s := &scope{r: r, vars: vars, t: t}
	var out output
	if err := s.nodes(t.root.Nodes, &out); err != nil {
		var je *Error
		if !fail && errors.As(err, &je) && je.Kind == Undefined {
			return t.escaped, nil
		}
		return nil, err
	}
	res, err := out.concat(r.lim.Size)
	if err != nil {
		return nil, s.wrap(err)
	}
	// Jinja2 drops the trailing newlines of the source; Ansible puts
	// them back.
	if str, ok := asString(res); ok {
		want := len(src) - len(strings.TrimRight(src, "\n"))
		have := len(str) - len(strings.TrimRight(str, "\n"))
		if want > have {
			res = str + strings.Repeat("\n", want-have)
		}
	}
	return res, nil
}

// output collects what a template renders, as Jinja2's native
// environment yields it: text between tags, and each {{ }}'s value.
type output struct {
	chunks []any
	size   int
}

func (o *output) add(v any, limit int) error {
	if s, ok := v.(string); ok {
		if s == "" {
			return nil
		}
		o.size += len(s)
	} else {
		o.size++
	}
	if o.size > limit {
		return limitErr("the template renders more than %d bytes", limit)
	}
	o.chunks = append(o.chunks, v)
	return nil
}

// concat is ansible_eval_concat: the rendering as text, made a list, a
// dict or a boolean when it looks like one (a lone string filter result
// stays text).
func (o *output) concat(limit int) (any, error) {
	var s string
	switch len(o.chunks) {
	case 0:
		return "", nil
	case 1:
		if t, ok := o.chunks[0].(nativeText); ok {
			return t, nil
		}
		var err error
		if s, err = pyStr(o.chunks[0]); err != nil {
			return nil, err
		}
	default:
		var b strings.Builder
		for _, c := range o.chunks {
			t, err := pyStr(c)
			if err != nil {
				return nil, err
			}
			if b.Len()+len(t) > limit {
				return nil, limitErr("the template renders more than %d bytes", limit)
			}
			b.WriteString(t)
		}
		s = b.String()
	}
	if len(s) > limit {
		return nil, limitErr("the template renders more than %d bytes", limit)
	}
	if strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") || s == "True" || s == "False" {
		if v, ok, err := pycompat.LiteralEvalJSON(s); ok && err == nil {
			return v, nil
		}
	}
	return s, nil
}

// scope evaluates one template: its variables, and the loop variables of
// the {% for %} being rendered.
type scope struct {
	r      *run
	vars   Vars
	t      *template
	locals map[string]any
	parent *scope
}

// wrap gives an error the template it happened in, unless a template
// nested in this one already did.
func (s *scope) wrap(err error) error {
	var je *Error
	if errors.As(err, &je) {
		if je.Template == "" {
			je.Template = s.t.src
		}
		return je
	}
	return &Error{Kind: Runtime, Msg: err.Error(), Template: s.t.src}
}

func (s *scope) nodes(ns []nodes.Node, out *output) error {
	for _, n := range ns {
		if err := s.r.step(); err != nil {
			return s.wrap(err)
		}
		if err := s.node(n, out); err != nil {
			return err
		}
	}
	return nil
}

func (s *scope) node(n nodes.Node, out *output) error {
	switch x := n.(type) {
	case nil, *nodes.Comment:
		return nil
	case *nodes.Data:
		return s.wrapErr(out.add(dataText(x), s.r.lim.Size))
	case *nodes.Output:
		v, err := s.output(x)
		if err != nil {
			return s.wrap(err)
		}
		return s.wrapErr(out.add(v, s.r.lim.Size))
	case *nodes.ControlStructureBlock:
		switch cs := x.ControlStructure.(type) {
		case *controlStructures.IfControlStructure:
			return s.ifBlock(cs, out)
		case *controlStructures.ForControlStructure:
			return s.forBlock(cs, out)
		case *controlStructures.RawControlStructure:
			var b strings.Builder
			if err := cs.Execute(&exec.Renderer{Output: &b}, x); err != nil {
				return s.wrap(err)
			}
			return s.wrapErr(out.add(b.String(), s.r.lim.Size))
		}
	}
	return s.wrap(unsupported(fmt.Sprintf("%T", n), "this part of the template is not supported by nodefix"))
}

func (s *scope) wrapErr(err error) error {
	if err == nil {
		return nil
	}
	return s.wrap(err)
}

// dataText is the text between tags after whitespace control, as gonja's
// renderer computes it.
func dataText(n *nodes.Data) string {
	out := n.Data.Val
	if n.RemoveFirstLineReturn {
		out = strings.TrimPrefix(out, "\r\n")
		out = strings.TrimPrefix(out, "\n")
	}
	if n.Trim.Left {
		out = strings.TrimLeft(out, " \r\n\t")
	}
	if n.Trim.Right {
		out = strings.TrimRight(out, " \r\n\t")
	}
	if n.RemoveTrailingWhiteSpaceFromLastLine {
		lines := strings.Split(out, "\n")
		lines[len(lines)-1] = strings.TrimRight(lines[len(lines)-1], " \n\t\r")
		out = strings.Join(lines, "\n")
	}
	return out
}

// output is one {{ }}: its value after Ansible's finalize (None renders
// as nothing; an undefined value anywhere in it fails).
func (s *scope) output(n *nodes.Output) (any, error) {
	var v any
	var err error
	if n.Condition != nil {
		v, err = s.condExpr(n.Expression, n.Condition, n.Alternative, n.Start)
	} else {
		v, err = s.eval(n.Expression)
	}
	if err != nil {
		return nil, err
	}
	if u := undefinedIn(v); u != nil {
		return nil, u.err()
	}
	if v == nil {
		return "", nil
	}
	return v, nil
}

// condExpr is `a if cond else b`; without else, a false condition gives
// an undefined value, as in Jinja2.
func (s *scope) condExpr(expr, cond, alt nodes.Expression, at *tokens.Token) (any, error) {
	c, err := s.eval(cond)
	if err != nil {
		return nil, err
	}
	b, err := truth(c)
	if err != nil {
		return nil, err
	}
	if b {
		return s.eval(expr)
	}
	if alt != nil {
		return s.eval(alt)
	}
	line := 1
	if at != nil {
		line = at.Line
	}
	return &undefinedValue{lenient: true, hint: fmt.Sprintf("the inline if-expression on line %d evaluated to false and no else section was defined.", line)}, nil
}

func (s *scope) ifBlock(cs *controlStructures.IfControlStructure, out *output) error {
	for i, cond := range cs.Conditions {
		v, err := s.eval(cond)
		if err != nil {
			return s.wrap(err)
		}
		b, err := truth(v)
		if err != nil {
			return s.wrap(err)
		}
		if b {
			return s.wrapper(cs.Wrappers[i], out)
		}
	}
	if len(cs.Wrappers) > len(cs.Conditions) {
		return s.wrapper(cs.Wrappers[len(cs.Conditions)], out)
	}
	return nil
}

func (s *scope) wrapper(w *nodes.Wrapper, out *output) error {
	if w == nil {
		return nil
	}
	return s.nodes(w.Nodes, out)
}

func (s *scope) forBlock(cs *controlStructures.ForControlStructure, out *output) error {
	seq, err := s.eval(cs.ObjectEvaluator)
	if err != nil {
		return s.wrap(err)
	}
	items, err := s.r.iterate(seq)
	if err != nil {
		return s.wrap(err)
	}
	// Each item's scope holds the loop variables; the {% for … if %}
	// condition filters the items before the loop counts them.
	bind := func(item any) (*scope, error) {
		locals := map[string]any{}
		if cs.Value == "" {
			locals[cs.Key] = item
		} else {
			pair, err := s.r.iterate(item)
			if err != nil {
				return nil, err
			}
			if len(pair) != 2 {
				return nil, runtimeErr("cannot unpack %d values into %s, %s", len(pair), cs.Key, cs.Value)
			}
			locals[cs.Key], locals[cs.Value] = pair[0], pair[1]
		}
		return &scope{r: s.r, vars: s.vars, t: s.t, locals: locals, parent: s}, nil
	}
	var kept []*scope
	for _, item := range items {
		if err := s.r.step(); err != nil {
			return s.wrap(err)
		}
		sub, err := bind(item)
		if err != nil {
			return s.wrap(err)
		}
		if cs.IfCondition != nil {
			c, err := sub.eval(cs.IfCondition)
			if err != nil {
				return s.wrap(err)
			}
			ok, err := truth(c)
			if err != nil {
				return s.wrap(err)
			}
			if !ok {
				continue
			}
		}
		kept = append(kept, sub)
	}
	if len(kept) == 0 {
		return s.wrapper(cs.EmptyWrapper, out)
	}
	infos := make([]any, len(kept))
	for i, sub := range kept {
		infos[i] = sub.locals[cs.Key]
	}
	for i, sub := range kept {
		sub.locals["loop"] = &loopInfo{index0: i, length: len(kept), items: infos}
		if err := sub.wrapper(cs.BodyWrapper, out); err != nil {
			return err
		}
	}
	return nil
}

// lookup is a name as Jinja2 resolves it in Ansible: loop variables,
// then the host's variables (templated), then the global functions.
func (s *scope) lookup(name string) (any, error) {
	for sc := s; sc != nil; sc = sc.parent {
		if v, ok := sc.locals[name]; ok {
			return v, nil
		}
	}
	if raw, ok := s.vars.Lookup(name); ok {
		return s.r.templateVar(s.vars, name, raw)
	}
	switch name {
	case "lookup", "query", "q", "range", "dict":
		return builtinFunc(name), nil
	}
	return &undefinedValue{name: name}, nil
}

func (s *scope) eval(n nodes.Node) (any, error) {
	if err := s.r.step(); err != nil {
		return nil, err
	}
	switch x := n.(type) {
	case *nodes.None:
		if x.Location != nil && x.Location.Val == "nil" {
			return s.lookup("nil") // a variable to Jinja2, None to gonja
		}
		return nil, nil
	case *nodes.Bool:
		return x.Val, nil
	case *nodes.Integer:
		return x.Val, nil
	case *nodes.Float:
		return x.Val, nil
	case *nodes.String:
		if v, ok := s.t.strs[x]; ok {
			return v, nil
		}
		return x.Val, nil
	case *nodes.Name:
		if x.Name.Val == "none" {
			return nil, nil
		}
		return s.lookup(x.Name.Val)
	case *nodes.List:
		return s.list(x.Val)
	case *nodes.Tuple:
		l, err := s.list(x.Val)
		if err != nil {
			return nil, err
		}
		return tuple(l), nil
	case *nodes.Dict:
		m := make(map[string]any, len(x.Pairs))
		for _, p := range x.Pairs {
			k, err := s.eval(p.Key)
			if err != nil {
				return nil, err
			}
			ks, ok := asString(k)
			if !ok {
				return nil, unsupported("dict key", "dict keys other than strings (%s) are not supported by nodefix", typeName(k))
			}
			v, err := s.eval(p.Value)
			if err != nil {
				return nil, err
			}
			m[ks] = v
		}
		return m, nil
	case *nodes.GetAttribute:
		obj, err := s.eval(x.Node)
		if err != nil {
			return nil, err
		}
		if x.Attribute == "" {
			return s.r.getItem(obj, x.Index)
		}
		return s.r.getAttr(obj, x.Attribute)
	case *nodes.GetItem:
		obj, err := s.eval(x.Node)
		if err != nil {
			return nil, err
		}
		key, err := s.eval(x.Arg)
		if err != nil {
			return nil, err
		}
		return s.r.getItem(obj, key)
	case *nodes.GetSlice:
		return s.slice(x)
	case *nodes.Negation:
		v, err := s.eval(x.Term)
		if err != nil {
			return nil, err
		}
		b, err := truth(v)
		return !b, err
	case *nodes.UnaryExpression:
		v, err := s.eval(x.Term)
		if err != nil {
			return nil, err
		}
		return unary(x.Negative, v)
	case *nodes.BinaryExpression:
		return s.binary(x)
	case *nodes.FilteredExpression:
		v, err := s.eval(x.Expression)
		if err != nil {
			return nil, err
		}
		for _, f := range x.Filters {
			args, kwargs, err := s.args(f.Args, f.Kwargs)
			if err != nil {
				return nil, err
			}
			if v, err = s.r.filter(f.Name, v, args, kwargs); err != nil {
				return nil, err
			}
		}
		return v, nil
	case *nodes.TestExpression:
		v, err := s.eval(x.Expression)
		if err != nil {
			return nil, err
		}
		args, kwargs, err := s.args(x.Test.Args, x.Test.Kwargs)
		if err != nil {
			return nil, err
		}
		return s.r.test(x.Test.Name, v, args, kwargs)
	case *nodes.Call:
		return s.call(x)
	case *nodes.Error:
		return nil, &Error{Kind: Syntax, Msg: "template error: " + x.Error.Error()}
	}
	return nil, unsupported(fmt.Sprintf("%T", n), "this expression is not supported by nodefix")
}

func (s *scope) list(es []nodes.Expression) ([]any, error) {
	if len(es) > s.r.lim.Size {
		return nil, limitErr("a list of more than %d items", s.r.lim.Size)
	}
	out := make([]any, len(es))
	for i, e := range es {
		v, err := s.eval(e)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (s *scope) args(as []nodes.Expression, kws map[string]nodes.Expression) ([]any, map[string]any, error) {
	args, err := s.list(as)
	if err != nil {
		return nil, nil, err
	}
	kwargs := make(map[string]any, len(kws))
	for k, e := range kws {
		v, err := s.eval(e)
		if err != nil {
			return nil, nil, err
		}
		kwargs[k] = v
	}
	return args, kwargs, nil
}

func (s *scope) call(x *nodes.Call) (any, error) {
	var fn any
	var err error
	switch f := x.Func.(type) {
	case *nodes.GetAttribute:
		recv, err := s.eval(f.Node)
		if err != nil {
			return nil, err
		}
		if u, ok := recv.(*undefinedValue); ok {
			return nil, u.err()
		}
		if f.Attribute == "" {
			fn, err = s.r.getItem(recv, f.Index)
		} else {
			fn, err = s.r.method(recv, f.Attribute)
		}
		if err != nil {
			return nil, err
		}
	default:
		if fn, err = s.eval(x.Func); err != nil {
			return nil, err
		}
	}
	args, kwargs, err := s.args(x.Args, x.Kwargs)
	if err != nil {
		return nil, err
	}
	switch f := fn.(type) {
	case builtinFunc:
		return s.r.callGlobal(string(f), args, kwargs)
	case boundMethod:
		return s.r.callMethod(f, args, kwargs)
	case *undefinedValue:
		return nil, f.err()
	}
	return nil, runtimeErr("'%s' object is not callable", typeName(fn))
}

func (s *scope) slice(x *nodes.GetSlice) (any, error) {
	obj, err := s.eval(x.Node)
	if err != nil {
		return nil, err
	}
	var bounds [3]*int
	for i, e := range []nodes.Node{x.Start, x.End, x.Step} {
		if e == nil {
			continue
		}
		v, err := s.eval(e)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		n, ok := toNumber(v)
		if !ok || n.isFloat || !n.i.IsInt64() {
			return nil, runtimeErr("slice indices must be integers or None")
		}
		k := int(n.i.Int64())
		bounds[i] = &k
	}
	return pySlice(obj, bounds[0], bounds[1], bounds[2])
}

func (s *scope) binary(x *nodes.BinaryExpression) (any, error) {
	op := x.Operator.Token
	left, err := s.eval(x.Left)
	if err != nil {
		return nil, err
	}
	switch op.Type {
	case tokens.And, tokens.Or:
		b, err := truth(left)
		if err != nil {
			return nil, err
		}
		if b == (op.Type == tokens.Or) {
			return left, nil
		}
		return s.eval(x.Right)
	}
	right, err := s.eval(x.Right)
	if err != nil {
		return nil, err
	}
	return s.r.binaryOp(op, left, right)
}

// binaryOps are the operators of Jinja2 nodefix evaluates, by token.
var binaryOps = map[tokens.Type]string{
	tokens.Addition: "+", tokens.Subtraction: "-", tokens.Multiply: "*", tokens.Division: "/",
	tokens.FloorDivision: "//", tokens.Modulo: "%", tokens.Power: "**", tokens.Tilde: "~",
	tokens.And: "and", tokens.Or: "or", tokens.Equals: "==", tokens.Ne: "!=",
	tokens.LowerThan: "<", tokens.LowerThanOrEqual: "<=", tokens.GreaterThan: ">",
	tokens.GreaterThanOrEqual: ">=", tokens.In: "in",
}
