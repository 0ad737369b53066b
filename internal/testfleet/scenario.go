package testfleet

import (
	"context"
	"fmt"
)

// Incidents describes what SeedIncidents broke, for the demo to show and
// tests to check.
type Incidents struct {
	// Wedged is the node whose rpm database is wedged by a hung query,
	// with HungQueries rpm queries piled up behind it.
	Wedged      *Node
	Wedge       Wedge
	HungQueries []int
	// Corrupted is the node whose rpm database fails --verifydb.
	Corrupted *Node
	// Clones share a machine-id and an iSCSI initiator name, as VMs
	// cloned from one image without re-sealing do.
	Clones []*Node
}

// SeedIncidents breaks a fleet (of at least 4 nodes) the way the two
// incidents behind nodefix did. Every node should already be called
// "localhost" (Options.Hostname): the NFS incident. On top of that:
// node02's rpm database is wedged with 12 queries piled up behind it,
// node03's database is corrupted, and node04 and the last node are clones.
func (f *Fleet) SeedIncidents(ctx context.Context) (Incidents, error) {
	if len(f.Nodes) < 4 {
		return Incidents{}, fmt.Errorf("the incidents need at least 4 nodes, the fleet has %d", len(f.Nodes))
	}
	inc := Incidents{
		Wedged:    f.Nodes[1],
		Corrupted: f.Nodes[2],
		Clones:    []*Node{f.Nodes[3], f.Nodes[len(f.Nodes)-1]},
	}
	var err error
	if inc.Wedge, err = inc.Wedged.WedgeRPMDB(ctx, f); err != nil {
		return inc, err
	}
	if inc.HungQueries, err = inc.Wedged.StartRPMQueries(ctx, 12); err != nil {
		return inc, err
	}
	if err := inc.Corrupted.CorruptRPMDB(ctx); err != nil {
		return inc, err
	}
	machineID, iqn := randomHex(16), "iqn.1994-05.com.redhat:"+randomHex(6)
	for _, n := range inc.Clones {
		if err := n.SetMachineID(ctx, machineID); err != nil {
			return inc, err
		}
		if err := n.SetInitiatorName(ctx, iqn); err != nil {
			return inc, err
		}
	}
	return inc, nil
}
