package jinja

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"

	"github.com/nodefix/nodefix/internal/pycompat"
)

// template is a parsed template and what nodefix derived from it.
type template struct {
	src  string
	root *nodes.Template
	// strs holds each string literal's value as Ansible's Jinja2 sees it:
	// inside {{ }} the text as written (Ansible doubles the backslashes
	// there before Jinja2 decodes them), inside {% %} with Python's
	// escapes decoded. gonja decodes neither way.
	strs map[*nodes.String]string
	// escaped is src as Ansible holds it after doubling the backslashes
	// of string literals inside {{ }} (_escape_backslashes): what a
	// template left unevaluated (fail_on_undefined=False) gives back.
	escaped string
}

// newConfig is Ansible's Jinja2 environment: default delimiters,
// trim_blocks on, lstrip_blocks off, one trailing newline dropped.
func newConfig() *config.Config {
	cfg := config.New()
	cfg.TrimBlocks = true
	return cfg
}

// jinjaTags are the statements of Jinja2 that nodefix refuses by name;
// any other unknown tag is a syntax error, as in Jinja2.
var jinjaTags = map[string]bool{
	"set": true, "macro": true, "call": true, "filter": true, "include": true, "import": true,
	"from": true, "extends": true, "block": true, "with": true, "autoescape": true, "do": true,
	"break": true, "continue": true, "trans": true,
}

// statements are the control structures the parser knows: gonja's if,
// for and raw, and a refusal for every other Jinja2 statement.
type statements struct{}

func (statements) Get(name string) (parser.ControlStructureParser, bool) {
	switch name {
	case "if", "for", "raw":
		return controlStructures.All.Get(name)
	}
	if !jinjaTags[name] {
		return nil, false
	}
	return func(*parser.Parser, *parser.Parser) (nodes.ControlStructure, error) {
		return nil, unsupported("{% "+name+" %}", "{%% %s %%} is not supported by nodefix", name)
	}, true
}

// parseTemplate parses src with gonja and checks that every construct in
// it is one nodefix evaluates.
func parseTemplate(src string, lim Limits) (t *template, err error) {
	if len(src) > lim.Source {
		return nil, limitErr("the template is %d bytes long; nodefix evaluates templates of at most %d", len(src), lim.Source)
	}
	if d := bracketDepth(src); d > lim.SourceNesting {
		return nil, limitErr("brackets nest %d deep in the template; nodefix evaluates at most %d", d, lim.SourceNesting)
	}
	if n := strings.Count(src, "{%"); n > 16*lim.SourceNesting {
		return nil, limitErr("the template has %d statements; nodefix evaluates at most %d", n, 16*lim.SourceNesting)
	}
	if strings.HasPrefix(src, "#jinja2:") {
		return nil, unsupported("#jinja2: overrides", "#jinja2: environment overrides are not supported by nodefix")
	}
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, &Error{Kind: Syntax, Msg: fmt.Sprintf("template error: the parser failed: %v", p), Template: src}
		}
	}()
	cfg := newConfig()
	// gonja's parser decodes string literals with Go's rules and fails on
	// escapes Go lacks (\. in a regular expression); nodefix reads each
	// literal's value from the source instead (checker.stringValue), so
	// the parser gets them without backslashes.
	stream := tokens.LexAll(src, cfg)
	var toks []*tokens.Token
	for {
		tok := stream.Current()
		if tok.Type == tokens.String {
			tok.Val = strings.ReplaceAll(tok.Val, `\`, "")
		}
		toks = append(toks, tok)
		if stream.End() {
			break
		}
		stream.Next()
	}
	root, err := parser.NewParser("inventory", tokens.NewStream(toks), cfg, nil, statements{}).Parse()
	if err != nil {
		var je *Error
		if errors.As(err, &je) {
			je.Template = src
			return nil, je
		}
		return nil, &Error{Kind: Syntax, Msg: "template error: " + err.Error(), Template: src}
	}
	t = &template{src: src, root: root, strs: map[*nodes.String]string{}, escaped: src}
	c := checker{t: t, input: normalizeInput(src)}
	for _, n := range root.Nodes {
		if err := c.node(n); err != nil {
			err.Template = src
			return nil, err
		}
	}
	if len(c.backslashed) > 0 && !strings.Contains(src, "\r") {
		// Without \r, positions in gonja's input are positions in src.
		var b strings.Builder
		last := 0
		sort.Slice(c.backslashed, func(i, j int) bool { return c.backslashed[i][0] < c.backslashed[j][0] })
		for _, span := range c.backslashed {
			if span[0] < last {
				continue
			}
			b.WriteString(src[last:span[0]])
			b.WriteString(strings.ReplaceAll(src[span[0]:span[1]], `\`, `\\`))
			last = span[1]
		}
		b.WriteString(src[last:])
		t.escaped = b.String()
	}
	return t, nil
}

// normalizeInput is the text gonja's lexer reads (its token positions
// index it): newlines as \n, one trailing newline dropped.
func normalizeInput(src string) string {
	s := strings.ReplaceAll(src, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.TrimSuffix(s, "\n")
}

// bracketDepth is the deepest nesting of (, [ and { in s: a cheap bound
// on how deep the parser will recurse.
func bracketDepth(s string) int {
	depth, max := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[', '{':
			depth++
			if depth > max {
				max = depth
			}
		case ')', ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return max
}

// checker walks a parsed template: it refuses what nodefix does not
// evaluate, and works out string literals' values.
type checker struct {
	t     *template
	input string
	inVar bool // inside {{ }}
	// backslashed are the spans of string literals inside {{ }} that hold
	// a backslash.
	backslashed [][2]int
}

func (c *checker) node(n nodes.Node) *Error {
	switch x := n.(type) {
	case nil, *nodes.Data, *nodes.Comment:
		return nil
	case *nodes.Output:
		c.inVar = true
		defer func() { c.inVar = false }()
		for _, e := range []nodes.Expression{x.Expression, x.Condition, x.Alternative} {
			if e != nil {
				if err := c.expr(e); err != nil {
					return err
				}
			}
		}
		return nil
	case *nodes.ControlStructureBlock:
		switch cs := x.ControlStructure.(type) {
		case *controlStructures.IfControlStructure:
			for _, e := range cs.Conditions {
				if err := c.expr(e); err != nil {
					return err
				}
			}
			for _, w := range cs.Wrappers {
				if err := c.wrapper(w); err != nil {
					return err
				}
			}
			return nil
		case *controlStructures.ForControlStructure:
			if cs.Recursive {
				return unsupported("recursive for loop", "recursive for loops are not supported by nodefix")
			}
			for _, e := range []nodes.Expression{cs.ObjectEvaluator, cs.IfCondition} {
				if e != nil {
					if err := c.expr(e); err != nil {
						return err
					}
				}
			}
			if err := c.wrapper(cs.BodyWrapper); err != nil {
				return err
			}
			return c.wrapper(cs.EmptyWrapper)
		case *controlStructures.RawControlStructure:
			return nil
		}
		return unsupported("{% "+x.Name+" %}", "{%% %s %%} is not supported by nodefix", x.Name)
	}
	return unsupported(fmt.Sprintf("%T", n), "this part of the template (%s) is not supported by nodefix", n)
}

func (c *checker) wrapper(w *nodes.Wrapper) *Error {
	if w == nil {
		return nil
	}
	for _, n := range w.Nodes {
		if err := c.node(n); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) exprs(es ...nodes.Node) *Error {
	for _, e := range es {
		if e != nil {
			if err := c.expr(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *checker) kwargs(m map[string]nodes.Expression) *Error {
	for _, e := range m {
		if err := c.expr(e); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) expr(n nodes.Node) *Error {
	switch x := n.(type) {
	case *nodes.None, *nodes.Integer, *nodes.Float, *nodes.Bool, *nodes.Name:
		return nil
	case *nodes.String:
		v, err := c.stringValue(x)
		if err != nil {
			return err
		}
		c.t.strs[x] = v
		return nil
	case *nodes.List:
		for _, e := range x.Val {
			if err := c.exprs(e); err != nil {
				return err
			}
		}
		return nil
	case *nodes.Tuple:
		for _, e := range x.Val {
			if err := c.exprs(e); err != nil {
				return err
			}
		}
		return nil
	case *nodes.Dict:
		for _, p := range x.Pairs {
			if err := c.exprs(p.Key, p.Value); err != nil {
				return err
			}
		}
		return nil
	case *nodes.Pair:
		return c.exprs(x.Key, x.Value)
	case *nodes.GetItem:
		if x.Arg == nil {
			return &Error{Kind: Syntax, Msg: "template error: expected an expression between [ and ]"}
		}
		return c.exprs(x.Node, x.Arg)
	case *nodes.GetSlice:
		return c.exprs(x.Node, x.Start, x.End, x.Step)
	case *nodes.GetAttribute:
		return c.exprs(x.Node)
	case *nodes.Negation:
		return c.exprs(x.Term)
	case *nodes.UnaryExpression:
		return c.exprs(x.Term)
	case *nodes.BinaryExpression:
		if _, ok := binaryOps[x.Operator.Token.Type]; !ok {
			return unsupported("operator "+x.Operator.Token.Val, "the operator %s is not supported by nodefix", x.Operator.Token.Val)
		}
		return c.exprs(x.Left, x.Right)
	case *nodes.FilteredExpression:
		if err := c.exprs(x.Expression); err != nil {
			return err
		}
		for _, f := range x.Filters {
			if _, ok := filters[f.Name]; !ok {
				return unsupported("filter "+f.Name, "the filter %q is not supported by nodefix (it evaluates %s)", f.Name, supportedFilters())
			}
			for _, a := range f.Args {
				if err := c.exprs(a); err != nil {
					return err
				}
			}
			if err := c.kwargs(f.Kwargs); err != nil {
				return err
			}
		}
		return nil
	case *nodes.TestExpression:
		if _, ok := tests[x.Test.Name]; !ok {
			return unsupported("test "+x.Test.Name, "the test %q is not supported by nodefix (it evaluates %s)", x.Test.Name, supportedTests())
		}
		if err := c.exprs(x.Expression); err != nil {
			return err
		}
		for _, a := range x.Test.Args {
			if err := c.exprs(a); err != nil {
				return err
			}
		}
		return c.kwargs(x.Test.Kwargs)
	case *nodes.Call:
		switch f := x.Func.(type) {
		case *nodes.Name:
			if err := c.call(f.Name.Val, x); err != nil {
				return err
			}
		case *nodes.GetAttribute:
			if f.Attribute != "" && !strMethods[f.Attribute] && !dictMethods[f.Attribute] {
				return unsupported("method "+f.Attribute+"()", "the method %s() is not supported by nodefix (it evaluates %s)", f.Attribute, supportedMethods())
			}
		}
		if err := c.exprs(x.Func); err != nil {
			return err
		}
		for _, a := range x.Args {
			if err := c.exprs(a); err != nil {
				return err
			}
		}
		return c.kwargs(x.Kwargs)
	case *nodes.Error:
		return &Error{Kind: Syntax, Msg: "template error: " + x.Error.Error()}
	}
	return unsupported(fmt.Sprintf("%T", n), "this expression (%s) is not supported by nodefix", n)
}

// otherGlobals are Jinja2's and Ansible's global functions nodefix does
// not evaluate.
var otherGlobals = map[string]bool{"lipsum": true, "cycler": true, "joiner": true, "namespace": true, "now": true, "undef": true}

func (c *checker) call(name string, x *nodes.Call) *Error {
	switch {
	case name == "lookup" || name == "query" || name == "q":
		if len(x.Args) > 0 {
			if s, ok := x.Args[0].(*nodes.String); ok {
				v, err := c.stringValue(s)
				if err != nil {
					return err
				}
				if v != "env" && v != "ansible.builtin.env" {
					return unsupportedLookup(name, v)
				}
			}
		}
	case otherGlobals[name]:
		return unsupported(name+"()", "%s() is not supported by nodefix", name)
	}
	return nil
}

func unsupportedLookup(fn, plugin string) *Error {
	return unsupported(fmt.Sprintf("%s('%s')", fn, plugin), "%s('%s', …) is not supported by nodefix: it evaluates only %s('env', …)", fn, plugin, fn)
}

// stringValue is a string literal's value as Ansible's Jinja2 sees it.
func (c *checker) stringValue(s *nodes.String) (string, *Error) {
	body, ok := c.literalBody(s.Location)
	if !ok {
		return s.Val, nil
	}
	if c.inVar {
		if strings.Contains(body, `\`) {
			start := s.Location.Pos + 1
			c.backslashed = append(c.backslashed, [2]int{start, start + len(body)})
		}
		return body, nil
	}
	v, err := pycompat.DecodeEscapes(body)
	if err != nil {
		return "", &Error{Kind: Syntax, Msg: "template error: string literal: " + err.Error()}
	}
	return v, nil
}

// literalBody is the text between a string literal's quotes, found from
// its token's position the way gonja's lexer ended it.
func (c *checker) literalBody(tok *tokens.Token) (string, bool) {
	if tok == nil || tok.Pos < 0 || tok.Pos >= len(c.input) {
		return "", false
	}
	q := c.input[tok.Pos]
	if q != '\'' && q != '"' {
		return "", false
	}
	prev := byte(0)
	for i := tok.Pos + 1; i < len(c.input); i++ {
		if c.input[i] == q && prev != '\\' {
			return c.input[tok.Pos+1 : i], true
		}
		prev = c.input[i]
	}
	return "", false
}
