package tasks

import (
	"fmt"
	"strings"
)

// scriptTag returns the tag of a command built by shellScript, and its
// positional parameters ($1...); ok is false for any other command. Test
// fakes use it to answer scripts by name.
func scriptTag(cmd Command) (tag string, args []string, ok bool) {
	if len(cmd.Argv) < 4 || cmd.Argv[0] != "sh" || cmd.Argv[1] != "-c" {
		return "", nil, false
	}
	first, _, _ := strings.Cut(cmd.Argv[2], "\n")
	tag, ok = strings.CutPrefix(first, scriptTagPrefix)
	if !ok {
		return "", nil, false
	}
	return tag, cmd.Argv[4:], true
}

// renderSection formats one section as a report script prints it; test
// fakes use it to answer report scripts.
func renderSection(boundary, name, content string, status int) string {
	return fmt.Sprintf("%s %s\n%s\n%s/ %d\n", boundary, name, content, boundary, status)
}
