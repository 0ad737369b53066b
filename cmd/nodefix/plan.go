package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/nodefix/nodefix/internal/module"
	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/inventory"
	"github.com/nodefix/nodefix/tasks"
)

// runPlan is what the inventory says to do, checked before any host is
// touched.
type runPlan struct {
	targets  []runner.Target
	precheck func(ctx context.Context, targets []runner.Target) error
	// survey and surveyWants look at the hosts the inventory names
	// nothing before the precheck: their kubelets name them.
	survey      func(ctx context.Context, node tasks.Node, t *runner.Target) error
	surveyWants func(t runner.Target) bool
	warnings    []string
}

// plan loads the inventory and resolves every matched host's connection
// and node name. Every problem found is reported at once (exit code 1).
func plan(ctx context.Context, o runOptions) (runPlan, error) {
	var p runPlan
	sources := o.sources
	if len(sources) == 0 && o.connection == "local" {
		// Ansible's implicit localhost: `nodefix run --connection local`
		// on the node itself needs no inventory (-e nodefix_hostname=...).
		sources = []string{"localhost,"}
	}
	if len(sources) == 0 {
		return p, errors.New("no inventory: give -i INVENTORY (a file, a directory or host1,host2,), or --connection local to run on this machine")
	}
	inv, err := inventory.Load(ctx, sources, inventory.Options{ExtraVars: o.extraVars})
	if err != nil {
		return p, err
	}
	p.warnings = inv.Warnings()
	pattern := o.limit
	if pattern == "" {
		pattern = "all"
	}
	hosts, err := inv.Match(pattern)
	if err != nil {
		return p, fmt.Errorf("--limit %q: %w", pattern, err)
	}
	if len(hosts) == 0 {
		return p, fmt.Errorf("no host matches --limit %q in %s", pattern, strings.Join(sources, ", "))
	}
	if o.connection == "local" && len(hosts) > 1 {
		return p, fmt.Errorf("--connection local runs on this machine, but %d hosts match: limit the run to this host (-l NAME)", len(hosts))
	}
	if o.expectedHostname != "" && len(hosts) != 1 {
		return p, fmt.Errorf("--expected-hostname names the one host of a run, but %d hosts match: limit the run to that host (-l NAME)", len(hosts))
	}
	renames := hostnameTaskRenames(o)
	var problems []string
	for _, h := range hosts {
		conn, err := inv.Connection(h)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if o.connection != "" {
			conn.Type = o.connection
			if conn.Type != "local" {
				conn.Type = "ssh"
			}
		}
		if _, err := transport.BecomeFor(conn, o.become); err != nil {
			problems = append(problems, fmt.Sprintf("host %s: %v", h.Name(), err))
		}
		target := runner.Target{Host: tasks.Host{Name: h.Name()}, Conn: conn}
		// An invalid name is the precheck's to report, with every other.
		if name, err := inv.NodeName(h); err == nil {
			target.Host.TargetHostname, target.Host.TargetSource = name.Name, name.Source
		}
		target.Host.SurveyedHostname = o.expectedHostname
		if cfg, err := hostConfig(inv, h, o.cfg); err != nil {
			problems = append(problems, err.Error())
		} else if cfg != nil {
			target.Config = cfg
		}
		p.targets = append(p.targets, target)
	}
	if len(problems) > 0 {
		return p, errors.New(strings.Join(problems, "\n"))
	}
	if renames {
		p.precheck = fleetHostnamePrecheck(inv)
		cfg := o.cfg
		p.surveyWants = func(t runner.Target) bool { return t.Host.TargetHostname == "" && t.Host.SurveyedHostname == "" }
		p.survey = func(ctx context.Context, node tasks.Node, t *runner.Target) error {
			cfg := cfg
			if t.Config != nil {
				cfg = *t.Config
			}
			name, err := tasks.Hostname{}.Survey(ctx, node, t.Host, cfg)
			t.Host.SurveyedHostname = name
			return err
		}
	}
	return p, nil
}

// hostConfig is h's task configuration when its inventory sets task
// options (nodefix_rpm_query_max_age: 5m, …), read as the module reads its
// parameters; nil when it sets none. As in Ansible, a host's variables win
// over the command line's flags, and -e over both (it is a variable too).
func hostConfig(inv *inventory.Inventory, h *inventory.Host, base tasks.Config) (*tasks.Config, error) {
	vars, err := inv.TaskOptions(h)
	if err != nil {
		return nil, err
	}
	cfg, err := module.InventoryOptions(base, vars)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name(), err)
	}
	if reflect.DeepEqual(cfg, base) {
		return nil, nil
	}
	return &cfg, nil
}

// hostnameTaskRenames: the hostname task will rename hosts in this run, so
// the fleet's names must be checked first.
func hostnameTaskRenames(o runOptions) bool {
	if o.cfg.KeepHostname {
		return false
	}
	for _, n := range o.taskNames {
		if n == tasks.NameHostname {
			return true
		}
	}
	return false
}

// fleetHostnamePrecheck checks the names of every host of the inventory,
// not only the --limit'ed ones (a host outside the limit still owns its
// name): the inventory's names, and for the run's hosts the inventory
// names nothing, the names their kubelets gave in the survey. A host
// outside the run that the inventory names nothing owns no name nodefix
// can know.
func fleetHostnamePrecheck(inv *inventory.Inventory) func(context.Context, []runner.Target) error {
	return func(_ context.Context, targets []runner.Target) error {
		surveyed := map[string]string{}
		for _, t := range targets {
			if t.Host.SurveyedHostname != "" {
				surveyed[t.Host.Name] = t.Host.SurveyedHostname
			}
		}
		var hosts []tasks.Host
		var invalid []string
		for _, h := range inv.Hosts() {
			name, err := inv.NodeName(h)
			if err != nil {
				invalid = append(invalid, err.Error())
				continue
			}
			host := tasks.Host{Name: h.Name(), TargetHostname: name.Name, TargetSource: name.Source, SurveyedHostname: surveyed[h.Name()]}
			if host.TargetHostname == "" && host.SurveyedHostname == "" {
				continue
			}
			hosts = append(hosts, host)
		}
		err := tasks.CheckFleetHostnames(hosts)
		if len(invalid) == 0 {
			return err
		}
		msg := "hostname: refusing to rename any host:\n  " + strings.Join(invalid, "\n  ")
		if err != nil {
			msg += "\n" + err.Error()
		}
		return errors.New(msg)
	}
}
