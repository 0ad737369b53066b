package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/tasks"
)

// nodefix.1 is written from the CLI's own definitions (commands, flags,
// usage and defaults) by `nodefix __man`, which `make man` runs.
// urfave/cli's ToMan was not enough: section 8 as a "System Manager's
// Manual", every value flag shown as --name="" without what it takes,
// each command a top-level section, no exit status, environment or files.

func manCommand() *cli.Command {
	return &cli.Command{
		Name:   "__man",
		Hidden: true,
		Usage:  "print the manual page nodefix.1 (make man)",
		Action: func(c *cli.Context) error {
			_, err := io.WriteString(c.App.Writer, manPage(c.App, version, buildDate))
			return err
		},
	}
}

// The sections that are prose, not definitions.
const (
	manDescription = `One static binary that brings Kubernetes nodes running Longhorn back to health,
a whole fleet at once, without making any node worse. It reads the Ansible
inventory the operator already has (kubeasz's clusters/NAME/hosts too) and runs
its tasks over SSH, hosts in parallel, tasks in order on each host. Every task
gathers facts, decides, changes only what must change (nothing in check mode),
then reads back and verifies: a second run reports nothing changed.
Output follows ansible-playbook: ok, changed, failed, skipped and unreachable
lines, warnings said once with their hosts, and PLAY RECAP.`

	manExitStatus = `.TP
.B 0
every host is ok
.TP
.B 1
nothing was run: bad options, an inventory that does not parse, no host matched,
or the fleet precheck refused (two hosts would get the same hostname)
.TP
.B 2
a host failed
.TP
.B 4
a host was unreachable (also when others failed)
.TP
.B 99
interrupted (Ctrl-C)
.PP
These are the codes ansible-playbook 2.14 returns.`

	manEnvironment = `.TP
.B NO_COLOR
set to anything but the empty string: no colour (unless \fB\-\-color always\fR)
.TP
.B ANSIBLE_NOCOLOR
true: no colour, as in Ansible (unless \fB\-\-color always\fR)
.TP
.B ANSIBLE_HOST_KEY_CHECKING
false: the keys of hosts known_hosts does not know are accepted unverified (and
recorded); a changed key is still refused
.TP
.B SSH_AUTH_SOCK
the ssh-agent whose keys are offered
.TP
.B HOME
where \fI~/.ssh\fR is`

	manFiles = `.TP
.I ~/.ssh/known_hosts
host keys, unless \fB\-\-known\-hosts\fR or UserKnownHostsFile in ansible_ssh_common_args name others
.TP
.I /etc/ssh/ssh_known_hosts
host keys, always read
.TP
.I ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa, ~/.ssh/id_rsa
keys offered when no key file is given
.TP
.I /var/lib/nodefix/rpmdb\-backups
on the nodes: the rpmdb task's backups (\fB\-\-rpm\-backup\-dir\fR)`

	manExamples = `.nf
nodefix check \-i clusters/k8s\-01/hosts
nodefix run \-i clusters/k8s\-01/hosts \-l kube_node
nodefix run \-i inventory.yml \-\-tasks longhorn\-deps \-\-json > result.json
nodefix run \-i inventory.yml \-l node05 \-vvv
nodefix run \-\-connection local \-e nodefix_hostname=worker\-07
nodefix run \-i inventory.yml \-\-list\-hosts \-l 'kube_node:!node01'
.fi`

	manSeeAlso = `.BR ansible\-playbook (1),
.BR ansible\-inventory (1),
.BR ssh (1),
.BR ssh_config (5)`
)

// manPage renders the manual page of app.
func manPage(app *cli.App, version, date string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w(`.TH NODEFIX 1 "%s" "nodefix %s" "User Commands"`, roffQuoted(manDate(date)), roffQuoted(version))
	w(".SH NAME")
	w(`nodefix \- %s`, roffText(app.Usage))

	commands := visibleCommands(app.Commands, "")
	w(".SH SYNOPSIS")
	for i, c := range commands {
		if i > 0 {
			w(".br")
		}
		line := `\fBnodefix ` + roffText(c.path) + `\fR`
		if len(visibleFlags(c.cmd.Flags)) > 0 {
			line += ` [\fIOPTIONS\fR]`
		}
		if c.cmd.ArgsUsage != "" {
			line += " " + roffText(c.cmd.ArgsUsage)
		}
		w("%s", line)
	}
	w(".br")
	w(`\fBnodefix \-\-version\fR`)

	w(".SH DESCRIPTION")
	w("%s", roffText(manDescription))
	w(".PP")
	w("The tasks, in the order they run on a host:")
	for _, n := range tasks.Names() {
		w(".TP")
		w(`.B %s`, roffText(n))
		w("%s", roffText(taskDescriptions[n]))
	}

	w(".SH COMMANDS")
	shown := map[string]string{} // flag set → the command that showed it
	for _, c := range commands {
		w(`.SS "nodefix %s"`, roffQuoted(c.path))
		w("%s", roffText(sentence(c.cmd.Usage)))
		if c.cmd.Description != "" {
			w(".PP")
			b.WriteString(roffParagraphs(c.cmd.Description))
		}
		flags := visibleFlags(c.cmd.Flags)
		if len(flags) == 0 {
			continue
		}
		key := flagSetKey(flags)
		if first, ok := shown[key]; ok {
			w(".PP")
			w(`Options: those of \fBnodefix %s\fR.`, roffText(first))
			continue
		}
		shown[key] = c.path
		w(".PP")
		w("Options:")
		for _, f := range flags {
			w(".TP")
			w("%s", flagSynopsis(f))
			w("%s", roffText(flagHelp(f)))
		}
	}
	w(".SH EXIT STATUS")
	w("%s", manExitStatus)
	w(".SH ENVIRONMENT")
	w("%s", manEnvironment)
	w(".SH FILES")
	w("%s", manFiles)
	w(".SH EXAMPLES")
	w("%s", manExamples)
	w(".SH SEE ALSO")
	w("%s", manSeeAlso)
	return b.String()
}

type manCommandEntry struct {
	path string // "run", "names check"
	cmd  *cli.Command
}

// visibleCommands lists the commands help shows, subcommands after their
// parent; a parent that only groups subcommands is left out.
func visibleCommands(cmds []*cli.Command, parent string) []manCommandEntry {
	var out []manCommandEntry
	for _, c := range cmds {
		if c.Hidden || c.Name == "help" {
			continue
		}
		path := strings.TrimSpace(parent + " " + c.Name)
		if c.Action != nil || len(c.Subcommands) == 0 {
			out = append(out, manCommandEntry{path, c})
		}
		out = append(out, visibleCommands(c.Subcommands, path)...)
	}
	return out
}

func visibleFlags(flags []cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, f := range flags {
		if !isHidden(f) && f.Names()[0] != "help" {
			out = append(out, f)
		}
	}
	return out
}

func flagSetKey(flags []cli.Flag) string {
	var names []string
	for _, f := range flags {
		names = append(names, f.Names()[0])
	}
	return strings.Join(names, ",")
}

// flagSynopsis is "-i, --inventory SOURCE" in roff: short names first.
func flagSynopsis(f cli.Flag) string {
	names := f.Names()
	var short, long []string
	for _, n := range names {
		spelled := `\fB` + roffText(dashed(n)) + `\fR`
		if len(n) == 1 {
			short = append(short, spelled)
		} else {
			long = append(long, spelled)
		}
	}
	s := strings.Join(append(short, long...), ", ")
	if takesValue(f) {
		s += ` \fI` + roffText(valueName(f)) + `\fR`
	}
	return s
}

// valueName is what a flag takes: its usage's `PLACEHOLDER`, else a word
// for its type.
func valueName(f cli.Flag) string {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		if p := placeholder(d.GetUsage()); p != "" {
			return p
		}
	}
	switch f.(type) {
	case *cli.DurationFlag:
		return "DURATION"
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag:
		return "N"
	}
	return "VALUE"
}

// flagHelp is a flag's usage and, for a value flag, its default.
func flagHelp(f cli.Flag) string {
	help := flagUsage(f)
	d, ok := f.(cli.DocGenerationFlag)
	if !ok || !d.TakesValue() {
		return help
	}
	def := d.GetDefaultText()
	if def == "" {
		def = d.GetValue()
	}
	def = strings.Trim(def, `"`)
	if def != "" && def != "[]" {
		help += " (default: " + def + ")"
	}
	return help
}

// roffText escapes text for roff: backslashes, and a line that would
// start with a control character.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	// groff reads ASCII unless told otherwise (man runs preconv, groff
	// alone does not): anything else is named by its code point.
	var ascii strings.Builder
	for _, r := range s {
		if r < 0x80 {
			ascii.WriteRune(r)
		} else {
			fmt.Fprintf(&ascii, `\[u%04X]`, r)
		}
	}
	s = ascii.String()
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

func roffQuoted(s string) string {
	return strings.ReplaceAll(roffText(s), `"`, `\(dq`)
}

// roffParagraphs renders a command's Description: indented lines as
// they are (examples), the others as text.
func roffParagraphs(desc string) string {
	var b strings.Builder
	inExample := false
	for _, l := range strings.Split(desc, "\n") {
		example := strings.HasPrefix(l, " ")
		switch {
		case example && !inExample:
			b.WriteString(".PP\n.nf\n")
		case !example && inExample:
			b.WriteString(".fi\n.PP\n")
		}
		inExample = example
		b.WriteString(roffText(l) + "\n")
	}
	if inExample {
		b.WriteString(".fi\n")
	}
	return b.String()
}

func sentence(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// manDate is the build date's day, or nothing (a plain go build).
func manDate(buildDate string) string {
	if len(buildDate) >= 10 {
		return buildDate[:10]
	}
	return ""
}
