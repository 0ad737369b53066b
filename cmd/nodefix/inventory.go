package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/inventory"
)

// repeatable is a flag that may be given many times, each value kept
// whole: "-i a,b," is one host list and "-e 'x=1,2'" one assignment, which
// cli.StringSliceFlag would split at the commas.
type repeatable []string

func (r *repeatable) Set(v string) error { *r = append(*r, v); return nil }
func (r *repeatable) String() string     { return strings.Join(*r, " ") }

// inventoryCommand is `nodefix inventory` (issue 2): the inventory as
// ansible-inventory shows it.
func inventoryCommand() *cli.Command {
	return &cli.Command{
		Name:      "inventory",
		Usage:     "show an inventory as ansible-inventory does",
		ArgsUsage: "[GROUP]  (with --graph)",
		Description: "Prints what `ansible-inventory` prints for the same inventory: --list and --host\n" +
			"as JSON, --graph as a tree (variables as written: templates unevaluated). -i may\n" +
			"repeat; a directory loads every inventory file in it. --connection-of HOST shows\n" +
			"instead what nodefix will do for HOST, its templated variables evaluated: the\n" +
			"address it dials, port, user, jump hosts, host key checking, become, node name;\n" +
			"passwords are never shown. Exit status 1 when the inventory does not parse, the\n" +
			"host is unknown, its connection cannot be evaluated or --limit matches nothing.",
		Flags: []cli.Flag{
			&cli.GenericFlag{Name: "inventory", Aliases: []string{"i"}, Value: &repeatable{}, Usage: "inventory file, directory or host list (`SOURCE`, repeatable)"},
			&cli.BoolFlag{Name: "list", Usage: "print all groups and host variables as JSON"},
			&cli.StringFlag{Name: "host", Usage: "print the variables of `HOST` as JSON"},
			&cli.BoolFlag{Name: "graph", Usage: "print the group tree (from GROUP, default all)"},
			&cli.StringFlag{Name: "connection-of", Usage: "show how nodefix reaches `HOST`: its connection variables evaluated, secrets hidden"},
			&cli.BoolFlag{Name: "vars", Usage: "with --graph, show variables too"},
			&cli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "only hosts matching `PATTERN` (Ansible host pattern, @FILE allowed)"},
			&cli.GenericFlag{Name: "extra-vars", Aliases: []string{"e"}, Value: &repeatable{}, Usage: "extra variables: key=value, JSON/YAML, or @FILE (`VARS`, repeatable)"},
		},
		Action: runInventory,
	}
}

func runInventory(c *cli.Context) error {
	usage := func(format string, args ...any) error {
		return exitcode.With(exitcode.Usage, fmt.Errorf(format, args...))
	}
	sources := *c.Generic("inventory").(*repeatable)
	extra := *c.Generic("extra-vars").(*repeatable)
	actions := 0
	for _, set := range []bool{c.Bool("list"), c.IsSet("host"), c.Bool("graph"), c.IsSet("connection-of")} {
		if set {
			actions++
		}
	}
	if actions != 1 {
		return usage("inventory: give exactly one of --list, --host HOST, --graph or --connection-of HOST")
	}
	if len(sources) == 0 {
		return usage("inventory: give the inventory with -i FILE (or a directory, or host1,host2,)")
	}
	if c.NArg() > 0 && !c.Bool("graph") {
		return usage("inventory: unexpected argument %q (a GROUP argument goes with --graph)", c.Args().First())
	}
	inv, err := inventory.Load(c.Context, sources, inventory.Options{ExtraVars: extra})
	if err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	for _, w := range inv.Warnings() {
		fmt.Fprintf(c.App.ErrWriter, "[WARNING]: %s\n", w)
	}
	var limit []*inventory.Host
	if pat := c.String("limit"); pat != "" {
		if limit, err = inv.Match(pat); err != nil {
			return exitcode.With(exitcode.Usage, err)
		}
	}
	var out string
	switch {
	case c.Bool("list"):
		b, err := inv.ListJSON(limit)
		if err != nil {
			return exitcode.With(exitcode.Usage, err)
		}
		out = string(b)
	case c.IsSet("connection-of"):
		name := c.String("connection-of")
		if limit != nil && !containsHost(limit, name) {
			return usage("inventory: host %q is not in --limit %q", name, c.String("limit"))
		}
		h, ok := inv.Host(name)
		if !ok {
			return usage("inventory: no host named %q in the inventory", name)
		}
		text, err := describeConnection(inv, h)
		if err != nil {
			return exitcode.With(exitcode.Usage, err)
		}
		out = text
	case c.IsSet("host"):
		name := c.String("host")
		if limit != nil && !containsHost(limit, name) {
			return usage("inventory: host %q is not in --limit %q", name, c.String("limit"))
		}
		b, err := inv.HostJSON(name)
		if err != nil {
			return exitcode.With(exitcode.Usage, err)
		}
		out = string(b)
	default:
		g, err := inv.Graph(inventory.GraphOptions{Group: c.Args().First(), Vars: c.Bool("vars"), Limit: limit})
		if err != nil {
			return exitcode.With(exitcode.Usage, err)
		}
		out = g
	}
	if _, err := fmt.Fprintln(c.App.Writer, out); err != nil {
		return errors.New("inventory: writing the output: " + err.Error())
	}
	return nil
}

func containsHost(hs []*inventory.Host, name string) bool {
	for _, h := range hs {
		if h.Name() == name {
			return true
		}
	}
	return false
}

// describeConnection is what nodefix will do to reach h, from its
// variables evaluated: one "field: value" line each, secrets shown only
// as set or not.
func describeConnection(inv *inventory.Inventory, h *inventory.Host) (string, error) {
	conn, err := inv.Connection(h)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	line := func(field, format string, args ...any) {
		fmt.Fprintf(&b, "%-15s %s\n", field+":", fmt.Sprintf(format, args...))
	}
	secret := func(v string) string {
		if v == "" {
			return "(not set)"
		}
		return "(set, hidden)"
	}
	orDefault := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	line("host", "%s", h.Name())
	line("connection", "%s", conn.Type)
	if conn.Type == "local" {
		line("runs", "on this machine, no ssh")
	} else {
		line("address", "%s", conn.Address)
		port := "22 (default)"
		if conn.Port != 0 {
			port = fmt.Sprint(conn.Port)
		}
		line("port", "%s", port)
		line("user", "%s", orDefault(conn.User, "(the current user)"))
		line("password", "%s", secret(conn.Password))
		line("key file", "%s", orDefault(conn.PrivateKeyFile, "(ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)"))
		line("jump hosts", "%s", orDefault(conn.ProxyJump, "(none)"))
		if conn.ProxyCommand != "" {
			line("proxy command", "%s", conn.ProxyCommand)
		}
		line("host keys", "StrictHostKeyChecking=%s, known hosts: %s, /etc/ssh/ssh_known_hosts", orDefault(conn.StrictHostKeyChecking, "yes (default)"),
			orDefault(strings.Join(conn.UserKnownHostsFiles, " "), "~/.ssh/known_hosts"))
		if conn.ConnectTimeout != 0 {
			line("timeout", "%s", conn.ConnectTimeout)
		}
	}
	become := "no"
	if conn.Become {
		become = fmt.Sprintf("yes, %s to %s, password %s", orDefault(conn.BecomeMethod, "sudo"), orDefault(conn.BecomeUser, "root"), secret(conn.BecomePassword))
	}
	line("become", "%s", become)
	switch name, err := inv.NodeName(h); {
	case err != nil:
		line("node name", "refused: %v", err)
	case name.Name == "":
		line("node name", "(none in the inventory: the node's kubelet decides, or nothing is renamed)")
	default:
		line("node name", "%s (from %s)", name.Name, name.Source)
	}
	return strings.TrimRight(b.String(), "\n"), nil
}
