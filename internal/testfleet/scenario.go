package testfleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// SeedIncidentsAtScale breaks nodes as the incidents broke a large
// cluster, for benchmarks: every node is called "localhost", and in every
// ten nodes the second has a wedged rpm database with 12 queries piled up
// behind it and the third a corrupted one. It may be called again after
// the nodes were fixed (or half fixed), so that every timed run starts
// from the same broken fleet. Nodes are seeded a few at a time.
func (f *Fleet) SeedIncidentsAtScale(ctx context.Context, nodes []*Node) error {
	var (
		errs    = make([]error, len(nodes))
		wg      sync.WaitGroup
		limiter = make(chan struct{}, 8)
	)
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			limiter <- struct{}{}
			defer func() { <-limiter }()
			errs[i] = f.seedAtScale(ctx, i, n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (f *Fleet) seedAtScale(ctx context.Context, i int, n *Node) error {
	if err := n.SetHostname(ctx, "localhost"); err != nil {
		return err
	}
	switch i % 10 {
	case 1:
		if _, err := n.WedgeRPMDB(ctx, f); err != nil {
			return err
		}
		_, err := n.StartRPMQueries(ctx, 12)
		return err
	case 2:
		return n.CorruptRPMDB(ctx)
	}
	return nil
}
