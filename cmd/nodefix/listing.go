package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/tasks"
)

// taskDescriptions say in a line what each task ensures (README's table),
// for --list-tasks and completion.
var taskDescriptions = map[string]string{
	tasks.NameHostname:     "the OS hostname is the node's Kubernetes node name (K8S_NODENAME), unique fleet-wide, resolvable via /etc/hosts",
	tasks.NameRPMQueries:   "no hung rpm query is left running (transactions are never touched)",
	tasks.NameRPMDB:        "the rpm database opens and verifies; rebuilt, with a backup, when it does not",
	tasks.NameLonghornDeps: "iscsiadm, mount.nfs (and what Longhorn >= 1.7.3 checks) are present and runnable",
}

// list is --list-hosts and --list-tasks, as ansible-playbook has them: the
// run is planned (inventory, --limit, --tasks, every host's connection
// settings) and printed; nothing is asked, no host is connected to.
func list(ctx context.Context, o runOptions, w io.Writer) error {
	p, err := plan(ctx, o)
	if err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	pattern := o.limit
	if pattern == "" {
		pattern = "all"
	}
	if o.json {
		return listJSON(w, o, p, pattern)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  pattern: %s\n", pattern)
	if o.listHosts {
		fmt.Fprintf(&b, "  hosts (%d):\n", len(p.targets))
		for _, t := range p.targets {
			if o.verbosity > 0 {
				fmt.Fprintf(&b, "    %s  (%s)\n", t.Host.Name, hostSummary(t, o))
			} else {
				fmt.Fprintf(&b, "    %s\n", t.Host.Name)
			}
		}
	}
	if o.listTasks {
		mode := ""
		if o.cfg.Check {
			mode = ", check mode: nothing is changed"
		}
		fmt.Fprintf(&b, "  tasks (%d, in this order on each host%s):\n", len(o.taskNames), mode)
		width := 0
		for _, n := range o.taskNames {
			width = max(width, len(n))
		}
		for _, n := range o.taskNames {
			fmt.Fprintf(&b, "    %-*s  %s\n", width, n, taskDescription(n, o.cfg))
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func taskDescription(name string, cfg tasks.Config) string {
	d := taskDescriptions[name]
	if name == tasks.NameHostname && cfg.KeepHostname {
		d = "--keep-hostname: renames nothing, gathers and audits identities"
	}
	return d
}

// hostSummary is how a host would be reached: connection, user, address,
// jump hosts, become, and the name the hostname task gives it. No
// password, whether one is set or not.
func hostSummary(t runner.Target, o runOptions) string {
	c := t.Conn
	var parts []string
	if c.Type == "local" {
		parts = append(parts, "local")
	} else {
		addr := c.Address
		if addr == "" {
			addr = t.Host.Name
		}
		port := c.Port
		if port == 0 {
			port = 22
		}
		user := c.User
		if user == "" {
			user = o.user
		}
		target := net.JoinHostPort(addr, strconv.Itoa(port))
		if user != "" {
			target = user + "@" + target
		}
		parts = append(parts, "ssh "+target)
		if c.ProxyJump != "" {
			parts = append(parts, "via "+c.ProxyJump)
		}
	}
	if b, err := transport.BecomeFor(c, o.become); err == nil && b.Enabled() {
		user := b.User
		if user == "" {
			user = "root"
		}
		parts = append(parts, "become "+user)
	}
	if hostnameTaskRenames(o) && t.Host.TargetHostname != "" {
		parts = append(parts, "hostname "+t.Host.TargetHostname)
	}
	return strings.Join(parts, ", ")
}

func listJSON(w io.Writer, o runOptions, p runPlan, pattern string) error {
	type task struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	doc := struct {
		Pattern string   `json:"pattern"`
		Hosts   []string `json:"hosts,omitempty"`
		Tasks   []task   `json:"tasks,omitempty"`
	}{Pattern: pattern}
	if o.listHosts {
		doc.Hosts = []string{}
		for _, t := range p.targets {
			doc.Hosts = append(doc.Hosts, t.Host.Name)
		}
	}
	if o.listTasks {
		for _, n := range o.taskNames {
			doc.Tasks = append(doc.Tasks, task{n, taskDescription(n, o.cfg)})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
