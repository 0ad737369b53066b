package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/exitcode"
)

// The command line is parsed by Go's flag package (under urfave/cli),
// whose errors say "parse error" and name flags with one dash. These are
// its messages, stable since Go 1.0; a test holds each of them.
var (
	flagInvalidValue = regexp.MustCompile(`^invalid value "(.*)" for flag -(\S+): (.*)$`)
	flagInvalidBool  = regexp.MustCompile(`^invalid boolean value "(.*)" for -(\S+): (.*)$`)
	flagUndefined    = regexp.MustCompile(`^flag provided but not defined: -(\S+)$`)
	flagNoArgument   = regexp.MustCompile(`^flag needs an argument: -(\S+)$`)
)

// usageError is every command's OnUsageError: a bad command line gets one
// line saying what was wrong and what was expected (a value that is not a
// duration says "a duration such as 10m or 90s", not "parse error"), a
// pointer to --help instead of the whole help on stdout, and exit code 1.
func usageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	switch {
	case flagInvalidValue.MatchString(msg):
		m := flagInvalidValue.FindStringSubmatch(msg)
		msg = fmt.Sprintf("%s %q: want %s", dashed(m[2]), m[1], expectation(c, m[2], m[3]))
	case flagInvalidBool.MatchString(msg):
		m := flagInvalidBool.FindStringSubmatch(msg)
		msg = fmt.Sprintf("%s=%q: %s is a switch: give it alone, or =true or =false", dashed(m[2]), m[1], dashed(m[2]))
	case flagUndefined.MatchString(msg):
		msg = fmt.Sprintf("unknown option %s", dashed(flagUndefined.FindStringSubmatch(msg)[1]))
	case flagNoArgument.MatchString(msg):
		name := flagNoArgument.FindStringSubmatch(msg)[1]
		msg = fmt.Sprintf("%s needs %s", dashed(name), expectation(c, name, "a value"))
	}
	return exitcode.With(exitcode.Usage, fmt.Errorf("%s (see %s --help)", msg, helpName(c)))
}

// dashed writes a flag as it is typed: -i, --inventory.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// expectation says what a flag takes, from its definition.
func expectation(c *cli.Context, name, fallback string) string {
	var flag cli.Flag
	if c != nil && c.Command != nil {
		for _, f := range c.Command.Flags {
			for _, n := range f.Names() {
				if n == name {
					flag = f
				}
			}
		}
	}
	switch f := flag.(type) {
	case *cli.DurationFlag:
		return "a duration such as 10m or 90s"
	case *cli.IntFlag:
		return fmt.Sprintf("a whole number such as %d", f.Value)
	case *cli.Int64Flag:
		return fmt.Sprintf("a whole number such as %d", f.Value)
	case *cli.UintFlag:
		return fmt.Sprintf("a whole number such as %d", f.Value)
	case *cli.Float64Flag:
		return "a number"
	case cli.DocGenerationFlag:
		// A string flag's usage names what it takes: `SOURCE`, `PATTERN`.
		if p := placeholder(f.GetUsage()); p != "" {
			return "a value (" + p + ")"
		}
	}
	if fallback == "parse error" {
		return "a valid value"
	}
	return fallback
}

func helpName(c *cli.Context) string {
	if c != nil && c.Command != nil && c.Command.HelpName != "" {
		return c.Command.HelpName
	}
	return "nodefix"
}

// withUsageErrors sets usageError on cmd and its subcommands.
func withUsageErrors(cmds []*cli.Command) []*cli.Command {
	for _, cmd := range cmds {
		cmd.OnUsageError = usageError
		withUsageErrors(cmd.Subcommands)
	}
	return cmds
}

// placeholder is what a flag's usage names in backquotes, as urfave/cli
// shows it in help (`FILE`, `PATTERN`): "" when it names nothing.
func placeholder(usage string) string {
	i := strings.IndexByte(usage, '`')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(usage[i+1:], '`')
	if j < 0 {
		return ""
	}
	return usage[i+1 : i+1+j]
}
