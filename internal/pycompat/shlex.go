package pycompat

import (
	"errors"
	"strings"
)

// ErrNoClosingQuotation and ErrNoEscapedCharacter are the two ways
// shlex.split refuses a line; the texts are Python's.
var (
	ErrNoClosingQuotation = errors.New("No closing quotation")
	ErrNoEscapedCharacter = errors.New("No escaped character")
)

// Split is Python's shlex.split(s, comments=comments, posix=True): words
// separated by space, tab, CR or LF; single quotes literal; double quotes
// where a backslash escapes only '"' and '\'; a backslash outside quotes
// escapes any character; with comments, '#' outside quotes ends the line
// even in the middle of a word ("a=b#c" gives "a=b").
//
// A hand-written state machine, not a shell-words library: Ansible's INI
// parser and its ssh connection both call this exact function, and the
// general-purpose splitters differ from it on comments inside words and on
// backslashes inside double quotes.
func Split(s string, comments bool) ([]string, error) {
	const (
		stWhite = iota
		stWord
		stSingle
		stDouble
		stEscape
	)
	var (
		out          []string
		tok          strings.Builder
		state        = stWhite
		escapedState = stWord
		quoted       bool
	)
	emit := func() {
		out = append(out, tok.String())
		tok.Reset()
		quoted = false
	}
	isWhite := func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch state {
		case stWhite:
			switch {
			case isWhite(c):
			case comments && c == '#':
				i = skipLine(rs, i)
			case c == '\\':
				escapedState = stWord
				state = stEscape
			case c == '\'':
				state = stSingle
			case c == '"':
				state = stDouble
			default:
				tok.WriteRune(c)
				state = stWord
			}
		case stSingle, stDouble:
			quoted = true
			switch {
			case (state == stSingle && c == '\'') || (state == stDouble && c == '"'):
				state = stWord
			case state == stDouble && c == '\\':
				escapedState = stDouble
				state = stEscape
			default:
				tok.WriteRune(c)
			}
		case stEscape:
			if escapedState == stDouble && c != '\\' && c != '"' {
				tok.WriteRune('\\')
			}
			tok.WriteRune(c)
			state = escapedState
		case stWord:
			switch {
			case isWhite(c):
				state = stWhite
				if tok.Len() > 0 || quoted {
					emit()
				}
			case comments && c == '#':
				i = skipLine(rs, i)
				state = stWhite
				if tok.Len() > 0 || quoted {
					emit()
				}
			case c == '\'':
				state = stSingle
			case c == '"':
				state = stDouble
			case c == '\\':
				escapedState = stWord
				state = stEscape
			default:
				tok.WriteRune(c)
			}
		}
	}
	switch state {
	case stSingle, stDouble:
		return nil, ErrNoClosingQuotation
	case stEscape:
		return nil, ErrNoEscapedCharacter
	case stWord:
		if tok.Len() > 0 || quoted {
			emit()
		}
	}
	return out, nil
}

// skipLine returns the index of the next '\n' at or after i (or the last
// index): Python's readline() after a comment character.
func skipLine(rs []rune, i int) int {
	for ; i < len(rs); i++ {
		if rs[i] == '\n' {
			return i
		}
	}
	return len(rs) - 1
}
