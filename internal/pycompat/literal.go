package pycompat

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unrepresentable is returned by LiteralEval for a value that is a valid
// Python literal but that Ansible cannot hand on (a complex number, a set,
// bytes keys, Ellipsis, an unhashable dict key, a \N{...} escape): Ansible
// either fails on it later or nodefix cannot reproduce it, so nodefix
// refuses it up front instead of guessing.
type Unrepresentable struct{ Why string }

func (e *Unrepresentable) Error() string { return e.Why }

// errNotLiteral means "Python would raise ValueError or SyntaxError": the
// INI loader then keeps the text as a string.
var errNotLiteral = errors.New("not a Python literal")

// LiteralEval is ast.literal_eval(s) as Ansible's INI plugin uses it: ok is
// false when Python would raise ValueError or SyntaxError (the caller keeps
// the raw string); err is an *Unrepresentable for literals Ansible cannot
// use. Tuples become lists and bytes become text, as Ansible's to_text and
// JSON output make them.
func LiteralEval(s string) (v any, ok bool, err error) {
	return literalEval(&litParser{src: strings.TrimLeft(s, " \t")})
}

// LiteralEvalJSON is the literal_eval Ansible's templating applies to a
// rendered template that looks like a list, a dict or a boolean
// (ansible_eval_concat): as LiteralEval, except that the JSON names true,
// false and null are the constants True, False and None, and leading
// blanks are an error (ast.parse: unexpected indent), not skipped.
func LiteralEvalJSON(s string) (v any, ok bool, err error) {
	if strings.HasPrefix(s, " ") || strings.HasPrefix(s, "\t") {
		return nil, false, nil
	}
	return literalEval(&litParser{src: s, jsonNames: true})
}

func literalEval(p *litParser) (v any, ok bool, err error) {
	if err := p.tokenize(); err != nil {
		if errors.Is(err, errNotLiteral) {
			return nil, false, nil
		}
		return nil, false, err
	}
	v, err = p.parseTop()
	if err != nil {
		if errors.Is(err, errNotLiteral) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return v, true, nil
}

type tokKind int

const (
	tkNum tokKind = iota
	tkStr
	tkBytes
	tkFString
	tkName
	tkOp
	tkEOF
)

type litTok struct {
	kind tokKind
	text string // operator or name
	val  any    // number value (int, *big.Int, float64, complex marker) or string
	imag bool
}

type litParser struct {
	src       string
	toks      []litTok
	pos       int
	jsonNames bool // true, false and null are constants (Ansible's Json2Python)
}

func isIdentStart(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || r >= 0x80 && unicode.Is(unicode.Other_ID_Start, r)
}

func isIdentChar(r rune) bool {
	return isIdentStart(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r)
}

func (p *litParser) tokenize() error {
	s := p.src
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\f':
			i++
			continue
		case c == '\n' || c == '\r':
			if depth == 0 {
				// Only trailing newlines are harmless in eval mode.
				if strings.TrimLeft(s[i:], " \t\f\r\n") != "" {
					return errNotLiteral
				}
				i = len(s)
				continue
			}
			i++
			continue
		case c == '\\':
			return errNotLiteral
		case c == '#':
			for i < len(s) && s[i] != '\n' && s[i] != '\r' {
				i++
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			t, n, err := scanNumber(s[i:])
			if err != nil {
				return err
			}
			p.toks = append(p.toks, t)
			i += n
		case c == '.' && strings.HasPrefix(s[i:], "..."):
			p.toks = append(p.toks, litTok{kind: tkOp, text: "..."})
			i += 3
		case c == '\'' || c == '"':
			t, n, err := scanString(s[i:], "")
			if err != nil {
				return err
			}
			p.toks = append(p.toks, t)
			i += n
		case isIdentStart(r):
			j := i + size
			for j < len(s) {
				r2, sz := utf8.DecodeRuneInString(s[j:])
				if !isIdentChar(r2) {
					break
				}
				j += sz
			}
			word := s[i:j]
			if j < len(s) && (s[j] == '\'' || s[j] == '"') && isStringPrefix(word) {
				t, n, err := scanString(s[j:], strings.ToLower(word))
				if err != nil {
					return err
				}
				p.toks = append(p.toks, t)
				i = j + n
				continue
			}
			p.toks = append(p.toks, litTok{kind: tkName, text: word})
			i = j
		case strings.ContainsRune("()[]{},:+-", r):
			switch c {
			case '(', '[', '{':
				depth++
			case ')', ']', '}':
				depth--
			}
			p.toks = append(p.toks, litTok{kind: tkOp, text: string(c)})
			i++
		default:
			// Any other operator or character: either a syntax error or an
			// expression that is not a literal. Both keep the string.
			return errNotLiteral
		}
	}
	p.toks = append(p.toks, litTok{kind: tkEOF})
	return nil
}

func isStringPrefix(w string) bool {
	switch strings.ToLower(w) {
	case "r", "u", "b", "br", "rb", "f", "fr", "rf":
		return true
	}
	return false
}

// scanNumber reads one Python number token, following the tokenizer's
// grammar (underscores only between digits, no leading zeros on non-zero
// decimal integers, imaginary suffix j).
func scanNumber(s string) (litTok, int, error) {
	i := 0
	digits := func(ok func(byte) bool) bool {
		if i >= len(s) || !ok(s[i]) {
			return false
		}
		i++
		for i < len(s) {
			if s[i] == '_' && i+1 < len(s) && ok(s[i+1]) {
				i += 2
				continue
			}
			if !ok(s[i]) {
				break
			}
			i++
		}
		return true
	}
	dec := func(b byte) bool { return b >= '0' && b <= '9' }
	finish := func(t litTok) (litTok, int, error) {
		if i < len(s) {
			r, _ := utf8.DecodeRuneInString(s[i:])
			if isIdentChar(r) || r == '_' || (r == '.' && t.kind == tkNum) {
				return litTok{}, 0, errNotLiteral
			}
		}
		return t, i, nil
	}
	if len(s) >= 2 && s[0] == '0' && strings.ContainsRune("xXoObB", rune(s[1])) {
		var base int
		var ok func(byte) bool
		switch s[1] {
		case 'x', 'X':
			base, ok = 16, func(b byte) bool { return dec(b) || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' }
		case 'o', 'O':
			base, ok = 8, func(b byte) bool { return b >= '0' && b <= '7' }
		default:
			base, ok = 2, func(b byte) bool { return b == '0' || b == '1' }
		}
		i = 2
		if i < len(s) && s[i] == '_' {
			i++
		}
		if !digits(ok) {
			return litTok{}, 0, errNotLiteral
		}
		n, okp := new(big.Int).SetString(strings.ReplaceAll(s[2:i], "_", ""), base)
		if !okp {
			return litTok{}, 0, errNotLiteral
		}
		if i < len(s) && (s[i] == '.' || s[i] == 'j' || s[i] == 'J') {
			return litTok{}, 0, errNotLiteral
		}
		return finish(litTok{kind: tkNum, val: normInt(n)})
	}
	intStart := i
	hasInt := digits(dec)
	intPart := s[intStart:i]
	isFloat := false
	if i < len(s) && s[i] == '.' {
		isFloat = true
		i++
		digits(dec)
	}
	if !hasInt && !isFloat {
		return litTok{}, 0, errNotLiteral
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits(dec) {
			i = j // "1e" is a number followed by a name: not a literal
			return litTok{}, 0, errNotLiteral
		}
		isFloat = true
	}
	text := strings.ReplaceAll(s[:i], "_", "")
	if i < len(s) && (s[i] == 'j' || s[i] == 'J') {
		i++
		return finish(litTok{kind: tkNum, imag: true, val: 0})
	}
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return litTok{}, 0, errNotLiteral
		}
		return finish(litTok{kind: tkNum, val: f})
	}
	clean := strings.ReplaceAll(intPart, "_", "")
	if len(clean) > 1 && clean[0] == '0' && strings.Trim(clean, "0") != "" {
		return litTok{}, 0, errNotLiteral // leading zeros in a decimal integer
	}
	n, _ := new(big.Int).SetString(clean, 10)
	return finish(litTok{kind: tkNum, val: normInt(n)})
}

// normInt returns an int when n fits, else n itself.
func normInt(n *big.Int) any {
	if n.IsInt64() && n.Int64() >= math.MinInt && n.Int64() <= math.MaxInt {
		return int(n.Int64())
	}
	return n
}

// scanString reads a string literal starting at the quote; prefix is the
// lower-cased prefix already consumed.
func scanString(s, prefix string) (litTok, int, error) {
	raw := strings.Contains(prefix, "r")
	isBytes := strings.Contains(prefix, "b")
	isF := strings.Contains(prefix, "f")
	q := s[0]
	triple := len(s) >= 3 && s[1] == q && s[2] == q
	var i int
	if triple {
		i = 3
	} else {
		i = 1
	}
	var body strings.Builder
	for {
		if i >= len(s) {
			return litTok{}, 0, errNotLiteral
		}
		c := s[i]
		if triple && c == q && strings.HasPrefix(s[i:], strings.Repeat(string(q), 3)) {
			i += 3
			break
		}
		if !triple && c == q {
			i++
			break
		}
		if !triple && (c == '\n' || c == '\r') {
			return litTok{}, 0, errNotLiteral
		}
		if c == '\\' {
			if i+1 >= len(s) {
				return litTok{}, 0, errNotLiteral
			}
			if raw {
				body.WriteByte('\\')
				r, sz := utf8.DecodeRuneInString(s[i+1:])
				body.WriteRune(r)
				i += 1 + sz
				continue
			}
			n, err := decodeEscape(s[i:], isBytes, &body)
			if err != nil {
				return litTok{}, 0, err
			}
			i += n
			continue
		}
		r, sz := utf8.DecodeRuneInString(s[i:])
		if isBytes && r >= 0x80 {
			return litTok{}, 0, errNotLiteral
		}
		body.WriteRune(r)
		i += sz
	}
	switch {
	case isF:
		return litTok{kind: tkFString}, i, nil
	case isBytes:
		return litTok{kind: tkBytes, val: body.String()}, i, nil
	}
	return litTok{kind: tkStr, val: body.String()}, i, nil
}

// DecodeEscapes decodes the backslash escapes of Python's unicode-escape
// codec in s, as Jinja2 decodes a string literal's body: \n, \xNN, \u,
// \U, octal, and unknown escapes kept with their backslash.
func DecodeEscapes(s string) (string, error) {
	if !strings.Contains(s, "\\") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New("\\ at end of string")
		}
		n, err := decodeEscape(s[i:], false, &b)
		if err != nil {
			if errors.Is(err, errNotLiteral) {
				return "", fmt.Errorf("truncated escape in %s", reprString(s))
			}
			return "", err
		}
		i += n
	}
	return b.String(), nil
}

// decodeEscape decodes the escape at s[0]=='\\' into b and returns how many
// bytes it used.
func decodeEscape(s string, isBytes bool, b *strings.Builder) (int, error) {
	c := s[1]
	simple := map[byte]string{'\\': "\\", '\'': "'", '"': "\"", 'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v", '\n': ""}
	if v, ok := simple[c]; ok {
		b.WriteString(v)
		return 2, nil
	}
	hexN := func(n int) (int, bool) {
		if len(s) < 2+n {
			return 0, false
		}
		v, err := strconv.ParseUint(s[2:2+n], 16, 32)
		if err != nil || strings.ContainsAny(s[2:2+n], "+-_") {
			return 0, false
		}
		return int(v), true
	}
	writeCode := func(v int) {
		if isBytes {
			b.WriteByte(byte(v))
		} else {
			b.WriteRune(rune(v))
		}
	}
	switch {
	case c >= '0' && c <= '7':
		n := 1
		for n < 3 && 1+n < len(s) && s[1+n] >= '0' && s[1+n] <= '7' {
			n++
		}
		v, _ := strconv.ParseUint(s[1:1+n], 8, 32)
		if isBytes {
			v &= 0xff
		}
		writeCode(int(v))
		return 1 + n, nil
	case c == 'x':
		v, ok := hexN(2)
		if !ok {
			return 0, errNotLiteral
		}
		writeCode(v)
		return 4, nil
	case !isBytes && c == 'u':
		v, ok := hexN(4)
		if !ok {
			return 0, errNotLiteral
		}
		b.WriteRune(rune(v))
		return 6, nil
	case !isBytes && c == 'U':
		v, ok := hexN(8)
		if !ok || v > unicode.MaxRune {
			return 0, errNotLiteral
		}
		b.WriteRune(rune(v))
		return 10, nil
	case !isBytes && c == 'N':
		return 0, &Unrepresentable{Why: `\N{...} escapes are not supported by nodefix; write the character itself`}
	}
	// Unknown escapes keep their backslash.
	b.WriteByte('\\')
	r, sz := utf8.DecodeRuneInString(s[1:])
	b.WriteRune(r)
	return 1 + sz, nil
}

func (p *litParser) peek() litTok { return p.toks[p.pos] }

func (p *litParser) isOp(op string) bool {
	t := p.peek()
	return t.kind == tkOp && t.text == op
}

// parseTop parses an expression list: "1, 2" is a tuple in eval mode.
func (p *litParser) parseTop() (any, error) {
	if p.peek().kind == tkEOF {
		return nil, errNotLiteral
	}
	first, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	if p.peek().kind == tkEOF {
		return first.value()
	}
	if !p.isOp(",") {
		return nil, errNotLiteral
	}
	items := []litVal{first}
	for p.isOp(",") {
		p.pos++
		if p.peek().kind == tkEOF {
			break
		}
		v, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
	if p.peek().kind != tkEOF {
		return nil, errNotLiteral
	}
	return litVal{kind: lvList, items: items}.value()
}

type lvKind int

const (
	lvScalar lvKind = iota
	lvNum
	lvComplex
	lvList
	lvDict
	lvSet
	lvEllipsis
	lvBytes
)

// litVal is a parsed literal before conversion: enough of Python's AST to
// apply literal_eval's rules (unary minus only on numbers, + only to build
// complex numbers, keys must be hashable).
type litVal struct {
	kind   lvKind
	v      any
	items  []litVal
	keys   []litVal
	paren  bool // (x): grouping does not make a node, but tuples do
	signed bool // the node is a unary or binary operation, not a constant
}

func (p *litParser) parseExpr() (litVal, error) {
	left, err := p.parseUnary()
	if err != nil {
		return litVal{}, err
	}
	if !p.isOp("+") && !p.isOp("-") {
		return left, nil
	}
	// literal_eval allows a binary + or - only as real +/- imaginary, the
	// real part optionally signed, the imaginary part a bare number.
	p.pos++
	right, err := p.parseAtom()
	if err != nil {
		return litVal{}, err
	}
	if left.kind != lvNum || right.kind != lvComplex || right.signed || p.isOp("+") || p.isOp("-") {
		return litVal{}, errNotLiteral
	}
	return litVal{kind: lvComplex, signed: true}, nil
}

func (p *litParser) parseUnary() (litVal, error) {
	if p.isOp("-") || p.isOp("+") {
		neg := p.peek().text == "-"
		p.pos++
		operand, err := p.parseAtom()
		if err != nil {
			return litVal{}, err
		}
		if operand.signed {
			return litVal{}, errNotLiteral // --5, -(-5), -(1+2j)
		}
		switch operand.kind {
		case lvNum:
			if neg {
				operand.v = negate(operand.v)
			}
			operand.signed = true
			return operand, nil
		case lvComplex:
			return litVal{kind: lvComplex, signed: true}, nil
		}
		return litVal{}, errNotLiteral
	}
	return p.parseAtom()
}

func negate(v any) any {
	switch n := v.(type) {
	case int:
		if n == math.MinInt {
			return new(big.Int).Neg(big.NewInt(int64(n)))
		}
		return -n
	case *big.Int:
		return normInt(new(big.Int).Neg(n))
	case float64:
		return -n
	}
	return v
}

func (p *litParser) parseAtom() (litVal, error) {
	t := p.peek()
	switch t.kind {
	case tkNum:
		p.pos++
		if t.imag {
			return litVal{kind: lvComplex}, nil
		}
		return litVal{kind: lvNum, v: t.val}, nil
	case tkStr, tkBytes:
		// Adjacent literals concatenate; str and bytes do not mix.
		kind := t.kind
		var sb strings.Builder
		for p.peek().kind == tkStr || p.peek().kind == tkBytes || p.peek().kind == tkFString {
			if p.peek().kind != kind {
				return litVal{}, errNotLiteral
			}
			sb.WriteString(p.peek().val.(string))
			p.pos++
		}
		if kind == tkBytes {
			return litVal{kind: lvBytes, v: sb.String()}, nil
		}
		return litVal{kind: lvScalar, v: sb.String()}, nil
	case tkFString:
		return litVal{}, errNotLiteral
	case tkName:
		p.pos++
		switch t.text {
		case "True":
			return litVal{kind: lvScalar, v: true}, nil
		case "False":
			return litVal{kind: lvScalar, v: false}, nil
		case "None":
			return litVal{kind: lvScalar, v: nil}, nil
		case "true", "false", "null":
			if p.jsonNames {
				return litVal{kind: lvScalar, v: map[string]any{"true": true, "false": false, "null": nil}[t.text]}, nil
			}
		case "set":
			if p.isOp("(") && p.toks[p.pos+1].kind == tkOp && p.toks[p.pos+1].text == ")" {
				p.pos += 2
				if p.isTrailer() {
					return litVal{}, errNotLiteral
				}
				return litVal{kind: lvSet}, nil
			}
		}
		return litVal{}, errNotLiteral
	case tkOp:
		switch t.text {
		case "...":
			p.pos++
			return litVal{kind: lvEllipsis}, nil
		case "(":
			p.pos++
			if p.isOp(")") {
				p.pos++
				return p.noTrailer(litVal{kind: lvList})
			}
			first, err := p.parseExpr()
			if err != nil {
				return litVal{}, err
			}
			if p.isOp(")") {
				p.pos++
				first.paren = true
				return p.noTrailer(first)
			}
			items := []litVal{first}
			for p.isOp(",") {
				p.pos++
				if p.isOp(")") {
					break
				}
				v, err := p.parseExpr()
				if err != nil {
					return litVal{}, err
				}
				items = append(items, v)
			}
			if !p.isOp(")") {
				return litVal{}, errNotLiteral
			}
			p.pos++
			return p.noTrailer(litVal{kind: lvList, items: items})
		case "[":
			p.pos++
			var items []litVal
			for !p.isOp("]") {
				v, err := p.parseExpr()
				if err != nil {
					return litVal{}, err
				}
				items = append(items, v)
				if p.isOp(",") {
					p.pos++
					continue
				}
				if !p.isOp("]") {
					return litVal{}, errNotLiteral
				}
			}
			p.pos++
			return p.noTrailer(litVal{kind: lvList, items: items})
		case "{":
			p.pos++
			if p.isOp("}") {
				p.pos++
				return p.noTrailer(litVal{kind: lvDict})
			}
			first, err := p.parseExpr()
			if err != nil {
				return litVal{}, err
			}
			if !p.isOp(":") {
				// a set display
				items := []litVal{first}
				for p.isOp(",") {
					p.pos++
					if p.isOp("}") {
						break
					}
					v, err := p.parseExpr()
					if err != nil {
						return litVal{}, err
					}
					items = append(items, v)
				}
				if !p.isOp("}") {
					return litVal{}, errNotLiteral
				}
				p.pos++
				return p.noTrailer(litVal{kind: lvSet, items: items})
			}
			d := litVal{kind: lvDict}
			key := first
			for {
				if !p.isOp(":") {
					return litVal{}, errNotLiteral
				}
				p.pos++
				val, err := p.parseExpr()
				if err != nil {
					return litVal{}, err
				}
				d.keys = append(d.keys, key)
				d.items = append(d.items, val)
				if p.isOp("}") {
					break
				}
				if !p.isOp(",") {
					return litVal{}, errNotLiteral
				}
				p.pos++
				if p.isOp("}") {
					break
				}
				if key, err = p.parseExpr(); err != nil {
					return litVal{}, err
				}
			}
			p.pos++
			return p.noTrailer(d)
		}
	}
	return litVal{}, errNotLiteral
}

// isTrailer reports a subscript, call or attribute after an atom: "[1][0]"
// is an expression, not a literal.
func (p *litParser) isTrailer() bool {
	return p.isOp("[") || p.isOp("(")
}

func (p *litParser) noTrailer(v litVal) (litVal, error) {
	if p.isTrailer() {
		return litVal{}, errNotLiteral
	}
	return v, nil
}

// value converts to the Go value Ansible ends up with.
func (v litVal) value() (any, error) {
	switch v.kind {
	case lvScalar, lvNum:
		return v.v, nil
	case lvBytes:
		return v.v, nil
	case lvComplex:
		return nil, &Unrepresentable{Why: "a Python complex number, which Ansible cannot represent"}
	case lvSet:
		return nil, &Unrepresentable{Why: "a Python set, which Ansible cannot represent"}
	case lvEllipsis:
		return nil, &Unrepresentable{Why: "Python's Ellipsis (...), which Ansible cannot represent"}
	case lvList:
		out := make([]any, 0, len(v.items))
		for _, it := range v.items {
			x, err := it.value()
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	case lvDict:
		out := make(map[string]any, len(v.items))
		for i, k := range v.keys {
			if k.kind != lvScalar && k.kind != lvNum && k.kind != lvBytes {
				return nil, &Unrepresentable{Why: "a dict key that is not a string, number, boolean or None"}
			}
			if k.kind == lvBytes {
				return nil, &Unrepresentable{Why: "a bytes dict key, which Ansible cannot represent"}
			}
			x, err := v.items[i].value()
			if err != nil {
				return nil, err
			}
			out[KeyString(k.v)] = x
		}
		return out, nil
	}
	return nil, fmt.Errorf("internal: unknown literal kind %d", v.kind)
}

// KeyString is the JSON object key Python's json module writes for a dict
// key: strings as they are, True/False/None as true/false/null, numbers as
// their repr.
func KeyString(k any) string {
	switch x := k.(type) {
	case string:
		return x
	case nil:
		return "null"
	case bool:
		if x {
			return "true"
		}
		return "false"
	case int:
		return strconv.Itoa(x)
	case *big.Int:
		return x.String()
	case float64:
		return jsonFloat(x)
	}
	return fmt.Sprint(k)
}
