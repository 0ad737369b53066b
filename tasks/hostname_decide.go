package tasks

import (
	"fmt"

	"github.com/nodefix/nodefix/internal/nodename"
)

// nameDecision is the name the hostname task gives a host, judged from
// both sides: what the inventory plans (Host.TargetHostname) and what the
// node's kubelet runs as (NodeIdentity). DESIGN.md, "Where a node's name
// comes from".
type nameDecision struct {
	// Target is the name to give the host; "" when there is none.
	Target string
	// Source says where Target came from.
	Source string
	// Refusal, when set, is why the host must not be renamed: the task
	// fails with it and changes nothing.
	Refusal string
	// Warnings go with the outcome.
	Warnings []string
}

// decideName applies the one rule the CLI, the module and the playbooks
// share: the inventory's name must agree with the kubelet's where there
// is a kubelet; without an inventory name the kubelet's name is the
// target; without either, nothing is renamed. A kubelet without an
// override allows only the name it already runs as.
func decideName(host Host, id NodeIdentity, cfg Config) nameDecision {
	var d nameDecision
	d.Warnings = append(d.Warnings, id.Problems...)
	planned, plannedFrom := host.TargetHostname, orInventory(host.TargetSource)
	if conflict := id.Conflict(); len(conflict) > 0 {
		d.Refusal = fmt.Sprintf("the node's own sources disagree on its Kubernetes node name: %s; renaming nothing: "+
			"make the kubelet's configuration, its running flags and its client certificate agree (restart the kubelet after a change), then run again",
			describeEvidence(id.Evidence))
		return d
	}
	switch {
	case id.Name != "" && planned == "":
		d.Target, d.Source = id.Name, "the node's kubelet: "+id.Source
	case id.Name != "" && planned == id.Name:
		d.Target, d.Source = planned, fmt.Sprintf("%s, as the node's kubelet (%s)", plannedFrom, id.Source)
	case id.Name != "":
		msg := fmt.Sprintf("the inventory names this node %q (%s), but its kubelet runs as %q (%s)", planned, plannedFrom, id.Name, id.Source)
		if id.ByHostname {
			msg += "; that kubelet has no --hostname-override and names its node by the hostname: a rename registers a new node at the next kubelet restart"
		}
		if !cfg.TrustInventory {
			d.Refusal = msg + "; renaming nothing. If the inventory is wrong (two hosts swapped, a copied line), fix it; " +
				"if the node is to be registered again under the inventory's name, pass --trust-inventory (module: trust_inventory: true)"
			return d
		}
		d.Target, d.Source = planned, plannedFrom+" (--trust-inventory)"
		d.Warnings = append(d.Warnings, msg+"; renamed as the inventory says because of --trust-inventory: re-register the node with that name")
	case planned != "":
		d.Target, d.Source = planned, plannedFrom
	default:
		return d
	}
	if host.SurveyedHostname != "" && d.Target != host.SurveyedHostname {
		d.Refusal = fmt.Sprintf("the node now names itself %q (%s), but the fleet precheck approved %q before the run; renaming nothing: run again",
			d.Target, d.Source, host.SurveyedHostname)
		return d
	}
	if err := nodename.ValidateHostname(d.Target); err != nil {
		d.Refusal = fmt.Sprintf("the name from %s cannot be a hostname: %v; renaming nothing", d.Source, err)
	}
	return d
}

// orInventory names the source of an inventory name for messages.
func orInventory(source string) string {
	if source == "" {
		return "the inventory"
	}
	return source
}
