package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/pycompat"
	"github.com/nodefix/nodefix/inventory"
	"github.com/nodefix/nodefix/tasks"
)

// Shell completion works as cobra's does: the script a shell loads
// (`nodefix completion bash|zsh|fish`) is a thin shim that hands the
// command line to `nodefix __complete PROGRAM LINE` and shows what comes
// back, so that commands, flags and their values come from the same
// definitions as the CLI, and host and group names for -l from the
// inventory the line names with -i.

// filesDirective, alone on the first line, asks the shell for its own
// file name completion (which knows ~, quoting and directories).
const filesDirective = ":files"

// completeTimeout bounds loading an inventory for a completion: a shell
// must never hang on TAB.
const completeTimeout = 2 * time.Second

// candidate is one completion: the word and what it means.
type candidate struct {
	word, desc string
}

func completeCommand() *cli.Command {
	return &cli.Command{
		Name:      "__complete",
		Hidden:    true,
		Usage:     "print the completions of a command line (for the completion scripts)",
		ArgsUsage: "PROGRAM LINE",
		// Everything after the name is data, flags included.
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return exitcode.With(exitcode.Usage, fmt.Errorf("__complete PROGRAM LINE: got %d arguments", c.NArg()))
			}
			cands, files := complete(c.Context, c.App, c.Args().Get(0), c.Args().Get(1))
			return writeCandidates(c.App.Writer, cands, files)
		},
	}
}

func writeCandidates(w io.Writer, cands []candidate, files bool) error {
	var b strings.Builder
	if files {
		b.WriteString(filesDirective + "\n")
	}
	for _, c := range cands {
		b.WriteString(c.word)
		if c.desc != "" {
			b.WriteString("\t" + oneLine(c.desc))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// complete returns the candidates for the last word of line, the command
// line up to the cursor; files asks for the shell's file completion.
func complete(ctx context.Context, app *cli.App, program, line string) (cands []candidate, files bool) {
	words := splitLine(line)
	// The line may hold more than this command (`cd x; nodefix run -`):
	// it starts at the last word naming the program.
	for i := len(words) - 2; i >= 0; i-- {
		if words[i] == program || filepath.Base(words[i]) == filepath.Base(program) {
			words = words[i+1:]
			break
		}
	}
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]

	// Find the command, and the flags of the deepest command reached.
	var path []string // the commands reached: "names", "check"
	flags := app.Flags
	commands := app.Commands
	var args []string // positional arguments before cur
	for i := 0; i < len(before); i++ {
		w := before[i]
		if f := lookupFlag(flags, w); f != nil {
			if takesValue(f) && !strings.Contains(w, "=") {
				i++ // its value
			}
			continue
		}
		if strings.HasPrefix(w, "-") {
			continue
		}
		if sub := findCommand(commands, w); sub != nil && len(args) == 0 {
			path = append(path, sub.Name)
			flags, commands = sub.Flags, sub.Subcommands
			continue
		}
		args = append(args, w)
	}

	// A flag's value: after the flag, or after --flag=.
	if len(before) > 0 {
		if f := lookupFlag(flags, before[len(before)-1]); f != nil && takesValue(f) && !strings.Contains(before[len(before)-1], "=") {
			return flagValues(ctx, f, before, cur)
		}
	}
	if strings.HasPrefix(cur, "--") && strings.Contains(cur, "=") {
		name, value, _ := strings.Cut(cur, "=")
		if f := lookupFlag(flags, name); f != nil && takesValue(f) {
			vals, files := flagValues(ctx, f, before, value)
			for i := range vals {
				vals[i].word = name + "=" + vals[i].word
			}
			return vals, files
		}
		return nil, false
	}
	if strings.HasPrefix(cur, "-") {
		return flagNames(flags, cur), false
	}
	switch where := strings.Join(path, " "); {
	case len(commands) > 0 && len(args) == 0:
		for _, c := range commands {
			if c.Hidden || c.Name == "help" {
				continue
			}
			if strings.HasPrefix(c.Name, cur) {
				cands = append(cands, candidate{c.Name, c.Usage})
			}
		}
		return cands, false
	case where == "completion" && len(args) == 0:
		return matching(cur, shells, "the completion script for this shell"), false
	case where == "inventory" && len(args) == 0:
		// `inventory --graph [GROUP]`
		return inventoryNames(ctx, before, cur, false, true), false
	case where == "names check" && len(args) == 0:
		return nil, true
	}
	return nil, false
}

// flagValues completes the value of f.
func flagValues(ctx context.Context, f cli.Flag, before []string, cur string) ([]candidate, bool) {
	switch f.Names()[0] {
	case "inventory", "private-key", "known-hosts", "cpuprofile":
		return nil, true
	case "tasks":
		return taskList(cur), false
	case "limit":
		return inventoryNames(ctx, before, cur, true, true), false
	case "host":
		return inventoryNames(ctx, before, cur, true, false), false
	case "connection":
		return matching(cur, []string{"ssh", "local"}, ""), false
	case "color":
		return matching(cur, []string{"auto", "always", "never"}, ""), false
	}
	return nil, false
}

// taskList completes the last name of a comma-separated task list, leaving
// out the tasks already named.
func taskList(cur string) []candidate {
	i := strings.LastIndexByte(cur, ',')
	prefix, part := cur[:i+1], cur[i+1:]
	named := map[string]bool{}
	for _, n := range strings.Split(prefix, ",") {
		named[n] = true
	}
	var out []candidate
	names := tasks.Names()
	if prefix == "" {
		names = append([]string{"all"}, names...)
	}
	for _, n := range names {
		if !named[n] && strings.HasPrefix(n, part) {
			desc := taskDescriptions[n]
			if n == "all" {
				desc = "every task, in run order"
			}
			out = append(out, candidate{prefix + n, desc})
		}
	}
	return out
}

// inventoryNames completes a host pattern's last part (after ":" or ",",
// past "!" or "&") with the names of the inventory the line loads with -i:
// hosts and groups, or groups alone.
func inventoryNames(ctx context.Context, before []string, cur string, hosts, groups bool) []candidate {
	var sources []string
	for i, w := range before {
		switch {
		case (w == "-i" || w == "--inventory") && i+1 < len(before):
			sources = append(sources, expandHome(before[i+1]))
		case strings.HasPrefix(w, "--inventory="):
			sources = append(sources, expandHome(strings.TrimPrefix(w, "--inventory=")))
		case strings.HasPrefix(w, "-i") && len(w) > 2 && !strings.HasPrefix(w, "--"):
			sources = append(sources, expandHome(w[2:]))
		}
	}
	if len(sources) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	inv, err := inventory.Load(ctx, sources, inventory.Options{})
	if err != nil {
		return nil // a completion says nothing rather than an error
	}
	i := strings.LastIndexAny(cur, ":,")
	prefix, part := cur[:i+1], cur[i+1:]
	for len(part) > 0 && (part[0] == '!' || part[0] == '&') {
		prefix, part = prefix+part[:1], part[1:]
	}
	if strings.HasPrefix(part, "~") || strings.HasPrefix(part, "@") {
		return nil // a regular expression, a file of hosts
	}
	var out []candidate
	if groups {
		for _, g := range inv.Groups() {
			n := len(g.Hosts())
			if n == 0 || !strings.HasPrefix(g.Name(), part) {
				continue // an empty group (ungrouped, most often) matches nothing
			}
			desc := fmt.Sprintf("group of %d hosts", n)
			if n == 1 {
				desc = "group of 1 host"
			}
			out = append(out, candidate{prefix + g.Name(), desc})
		}
	}
	if hosts {
		for _, h := range inv.Hosts() {
			if strings.HasPrefix(h.Name(), part) {
				out = append(out, candidate{prefix + h.Name(), "host"})
			}
		}
	}
	return out
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}

// flagNames lists the flags whose spelled names start with cur.
func flagNames(flags []cli.Flag, cur string) []candidate {
	var out []candidate
	for _, f := range flags {
		if isHidden(f) {
			continue
		}
		for _, n := range f.Names() {
			spelled := dashed(n)
			if strings.HasPrefix(spelled, cur) && (len(n) > 1 || cur != "--") {
				out = append(out, candidate{spelled, flagUsage(f)})
			}
		}
	}
	return out
}

func lookupFlag(flags []cli.Flag, word string) cli.Flag {
	if !strings.HasPrefix(word, "-") {
		return nil
	}
	name := strings.TrimLeft(word, "-")
	name, _, _ = strings.Cut(name, "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	d, ok := f.(cli.DocGenerationFlag)
	return ok && d.TakesValue()
}

func isHidden(f cli.Flag) bool {
	v, ok := f.(cli.VisibleFlag)
	return ok && !v.IsVisible()
}

// flagUsage is a flag's usage as help shows it: placeholders unquoted.
func flagUsage(f cli.Flag) string {
	d, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return ""
	}
	return strings.ReplaceAll(d.GetUsage(), "`", "")
}

func matching(cur string, words []string, desc string) []candidate {
	var out []candidate
	for _, w := range words {
		if strings.HasPrefix(w, cur) {
			out = append(out, candidate{w, desc})
		}
	}
	return out
}

// splitLine splits a command line as the shell would, the last word being
// the one under completion ("" after a space). An unclosed quote, as
// while one types, is closed first.
func splitLine(line string) []string {
	words, err := pycompat.Split(line, false)
	if err != nil {
		for _, q := range []string{`"`, `'`} {
			if words, err = pycompat.Split(line+q, false); err == nil {
				break
			}
		}
		if err != nil {
			words = strings.Fields(line)
		}
		return words
	}
	if line == "" || unicode.IsSpace(rune(line[len(line)-1])) {
		words = append(words, "")
	}
	return words
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
