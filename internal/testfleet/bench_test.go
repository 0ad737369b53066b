package testfleet

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFleetOf100 proves the fleet scales to what `make bench` needs.
func TestFleetOf100(t *testing.T) {
	// Starting is timed by BenchmarkFleetStart, not here: a loaded machine
	// may take minutes.
	f := New(t, Options{Nodes: 100, BootTimeout: 5 * time.Minute})
	ctx := context.Background()
	for _, n := range []*Node{f.Nodes[0], f.Nodes[49], f.Nodes[99]} {
		if h, err := n.Hostname(ctx); err != nil || h != fmt.Sprintf("worker-%02d", n.Index) {
			t.Errorf("%s: hostname %q, %v", n.Name, h, err)
		}
	}
	t.Logf("100 nodes use %.1f MiB RSS", float64(fleetRSS(f))/(1<<20))
}

// BenchmarkFleetStart measures starting and stopping a fleet; the metric
// node-RSS-MiB is the resident memory of all its nodes' processes.
//
//	go test -run '^$' -bench FleetStart -benchtime 3x ./internal/testfleet
func BenchmarkFleetStart(b *testing.B) {
	for _, nodes := range []int{20, 100} {
		b.Run(strconv.Itoa(nodes), func(b *testing.B) {
			Require(b)
			var rss int64
			for i := 0; i < b.N; i++ {
				f, err := Start(context.Background(), Options{Nodes: nodes, Dir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rss += fleetRSS(f)
				b.StartTimer()
				if err := f.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rss)/float64(b.N)/(1<<20), "node-RSS-MiB")
		})
	}
}

// fleetRSS sums the resident memory of every process in the fleet's PID
// namespaces.
func fleetRSS(f *Fleet) int64 {
	namespaces := map[string]bool{}
	for _, n := range f.Nodes {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", n.InitPID)); err == nil {
			namespaces[ns] = true
		}
	}
	var total int64
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		ns, err := os.Readlink("/proc/" + p.Name() + "/ns/pid")
		if err != nil || !namespaces[ns] {
			continue
		}
		status, _ := os.ReadFile("/proc/" + p.Name() + "/status")
		for _, line := range strings.Split(string(status), "\n") {
			if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
				total += v << 10
			}
		}
	}
	return total
}
