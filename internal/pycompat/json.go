package pycompat

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// Vault is an inline `!vault` value, kept encrypted: nodefix never decrypts.
// ansible-inventory prints it as {"__ansible_vault": "<ciphertext>"}.
type Vault struct{ Ciphertext string }

// Unsafe is a `!unsafe` value: text Ansible never templates. It prints as
// {"__ansible_unsafe": "<text>"}.
type Unsafe struct{ Text string }

// MarshalIndent writes v as Python's json.dumps(v, sort_keys=True,
// indent=4, ensure_ascii=False) does, the way ansible-inventory prints:
// floats in repr form (1000.0, 1e+16), NaN and Infinity as Python writes
// them, non-ASCII text unescaped.
func MarshalIndent(v any) ([]byte, error) {
	var b strings.Builder
	if err := writeJSON(&b, v, 0); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func writeJSON(b *strings.Builder, v any, depth int) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case *big.Int:
		b.WriteString(x.String())
	case float64:
		b.WriteString(jsonFloat(x))
	case string:
		writeJSONString(b, x)
	case Vault:
		return writeJSON(b, map[string]any{"__ansible_vault": x.Ciphertext}, depth)
	case Unsafe:
		return writeJSON(b, map[string]any{"__ansible_unsafe": x.Text}, depth)
	case []string:
		l := make([]any, len(x))
		for i, s := range x {
			l[i] = s
		}
		return writeJSON(b, l, depth)
	case []any:
		if len(x) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteString("[")
		for i, e := range x {
			if i > 0 {
				b.WriteString(",")
			}
			newline(b, depth+1)
			if err := writeJSON(b, e, depth+1); err != nil {
				return err
			}
		}
		newline(b, depth)
		b.WriteString("]")
	case map[string]any:
		if len(x) == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(",")
			}
			newline(b, depth+1)
			writeJSONString(b, k)
			b.WriteString(": ")
			if err := writeJSON(b, x[k], depth+1); err != nil {
				return err
			}
		}
		newline(b, depth)
		b.WriteString("}")
	default:
		return fmt.Errorf("cannot print a %T as JSON", v)
	}
	return nil
}

func newline(b *strings.Builder, depth int) {
	b.WriteByte('\n')
	for i := 0; i < depth; i++ {
		b.WriteString("    ")
	}
}

func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// jsonFloat is float.__repr__ as json.dumps writes it.
func jsonFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return FloatRepr(f)
}

// FloatRepr is Python's repr(float): the shortest digits that round-trip,
// positional between 1e-4 and 1e16 (always with a fractional part),
// scientific outside with at least two exponent digits.
func FloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // -d.dddde±XX
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expS, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expS)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
	}
	if exp < 0 {
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	if len(digits) <= exp+1 {
		return sign + digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	}
	return sign + digits[:exp+1] + "." + digits[exp+1:]
}

// Str is Python's str(v) for the values an inventory holds, as
// `ansible-inventory --graph --vars` prints them.
func Str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case Unsafe:
		return x.Text
	}
	return Repr(v)
}

// Repr is Python's repr(v) for inventory values.
func Repr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case *big.Int:
		return x.String()
	case float64:
		return FloatRepr(x)
	case string:
		return reprString(x)
	case Vault:
		return reprString(x.Ciphertext)
	case Unsafe:
		return reprString(x.Text)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = Repr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		// Python keeps insertion order, which Go maps do not remember.
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = reprString(k) + ": " + Repr(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func reprString(s string) string {
	q := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = `"`
	}
	var b strings.Builder
	b.WriteString(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case string(r) == q:
			b.WriteString(`\` + q)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(q)
	return b.String()
}

// Int is Python's int(s) for text: surrounding whitespace, one sign and
// underscores between digits are allowed.
func Int(s string) (any, error) {
	t := strings.TrimSpace(s)
	body := strings.TrimLeft(t, "+-")
	if len(t)-len(body) > 1 || body == "" || strings.HasPrefix(body, "_") || strings.HasSuffix(body, "_") || strings.Contains(body, "__") {
		return nil, fmt.Errorf("invalid literal for int() with base 10: %s", reprString(s))
	}
	clean := strings.ReplaceAll(body, "_", "")
	for _, r := range clean {
		if r < '0' || r > '9' {
			return nil, fmt.Errorf("invalid literal for int() with base 10: %s", reprString(s))
		}
	}
	n, _ := new(big.Int).SetString(clean, 10)
	if strings.HasPrefix(t, "-") {
		n.Neg(n)
	}
	return normInt(n), nil
}
