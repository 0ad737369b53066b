package transport

import (
	"errors"
	"fmt"
	"strings"
)

// ShellQuote quotes s for a POSIX shell (sh, dash, bash, ksh, zsh): the
// shell reads back exactly s as one word. Words made only of characters no
// shell treats specially are left bare, so command lines stay readable in
// process listings; everything else goes in single quotes, inside which
// only the single quote itself needs care: it becomes quote, backslash,
// quote, quote (close, escaped quote, reopen).
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if isBareWord(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isBareWord reports whether s holds only characters that no POSIX shell
// (nor zsh, whose "=word" and "~" expansions rule out = and ~) treats
// specially anywhere in a word.
func isBareWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == '/' || c == ',' || c == ':' || c == '+' || c == '@' || c == '%':
		default:
			return false
		}
	}
	return true
}

// ShellJoin turns argv into one command line for a remote POSIX login
// shell, which is what an SSH "exec" request carries: the server runs
// `$SHELL -c LINE`. This is the one place in nodefix where an argv becomes
// a string.
func ShellJoin(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	quoted := make([]string, len(argv))
	for i, arg := range argv {
		// A NUL byte cannot be passed in an argument at all (execve ends
		// the string there): refuse instead of silently truncating.
		if strings.IndexByte(arg, 0) >= 0 {
			return "", fmt.Errorf("argument %d of %q contains a NUL byte", i, argv[0])
		}
		quoted[i] = ShellQuote(arg)
	}
	return strings.Join(quoted, " "), nil
}
