package runner_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/internal/testfleet"
	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/internal/transport/sshtransport"
	"github.com/nodefix/nodefix/inventory"
	"github.com/nodefix/nodefix/tasks"
)

// BenchmarkFleet50 measures, in the same run and interleaved so that a
// noisy machine weighs on both alike, a whole fleet run of 50 nodes:
//
//   - ssh-true: the floor, OpenSSH's `ssh host true` to all 50 at once;
//   - nodefix-true: nodefix's runner and ssh transport running `true`
//     (connect, verify the host key, authenticate, one command);
//   - nodefix-longhorn-deps: the runner running the longhorn-deps task.
//
// It reports each one's median wall time per fleet run and their ratios
// to the floor. Run it as root:
//
//	go test -run '^$' -bench BenchmarkFleet50 -benchtime 10x ./internal/runner/
func BenchmarkFleet50(b *testing.B) {
	f := sharedFleet(b, 50)
	targets := fleetTargets(f)
	ctx := context.Background()
	trueTask := commandTask{name: "true", argv: []string{"true"}}

	var sshTimes, trueTimes, depsTimes []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sshTimes = append(sshTimes, sshFloor(b, f))
		trueTimes = append(trueTimes, runFleet(ctx, b, targets, trueTask))
		depsTimes = append(depsTimes, runFleet(ctx, b, targets, tasks.LonghornDeps{}))
	}
	b.StopTimer()
	floor := median(sshTimes)
	b.ReportMetric(ms(floor), "ssh-true-ms")
	b.ReportMetric(ms(median(trueTimes)), "nodefix-true-ms")
	b.ReportMetric(ms(median(depsTimes)), "nodefix-longhorn-deps-ms")
	b.ReportMetric(float64(median(trueTimes))/float64(floor), "true/floor")
	b.ReportMetric(float64(median(depsTimes))/float64(floor), "longhorn-deps/floor")
}

// The benchmark function runs more than once (b.N grows); the fleet is
// started once per test binary and stopped by TestMain.
var benchFleet struct {
	once sync.Once
	f    *testfleet.Fleet
	err  error
}

func sharedFleet(b *testing.B, nodes int) *testfleet.Fleet {
	testfleet.Require(b)
	benchFleet.once.Do(func() {
		dir, err := os.MkdirTemp("", "nodefix-bench-fleet-")
		if err != nil {
			benchFleet.err = err
			return
		}
		start := time.Now()
		benchFleet.f, benchFleet.err = testfleet.Start(context.Background(), testfleet.Options{Nodes: nodes, Dir: dir})
		b.Logf("fleet of %d nodes started in %v", nodes, time.Since(start).Round(time.Millisecond))
	})
	if benchFleet.err != nil {
		b.Fatal(benchFleet.err)
	}
	return benchFleet.f
}

func TestMain(m *testing.M) {
	code := m.Run()
	if f := benchFleet.f; f != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := f.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the benchmark fleet:", err)
			code = 1
		}
		cancel()
		os.RemoveAll(f.Dir)
	}
	os.Exit(code)
}

func fleetTargets(f *testfleet.Fleet) []runner.Target {
	var ts []runner.Target
	for _, n := range f.Nodes {
		ts = append(ts, runner.Target{
			Host: tasks.Host{Name: n.Name},
			Conn: inventory.Connection{Address: n.Addr, Port: n.Port, User: "root",
				PrivateKeyFile: f.ClientKeyFile, UserKnownHostsFiles: []string{f.KnownHostsFile}},
		})
	}
	return ts
}

// runFleet is one nodefix run over the fleet, as `nodefix run` makes it:
// a new dialer, every host connected afresh, forks = fleet size.
func runFleet(ctx context.Context, b *testing.B, targets []runner.Target, task tasks.Task) time.Duration {
	start := time.Now()
	d, err := sshtransport.NewDialer(sshtransport.Options{HomeDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	res := runner.Run(ctx, targets, runner.Options{
		Tasks:  []tasks.Task{task},
		Config: tasks.DefaultConfig(),
		Forks:  len(targets),
		Dialer: runner.DialFunc(func(ctx context.Context, t runner.Target) (transport.Conn, error) {
			c, err := d.Dial(ctx, t.Host.Name, t.Conn)
			if err != nil {
				return nil, err
			}
			return c, nil
		}),
	})
	d.Close()
	took := time.Since(start)
	for _, h := range res.Hosts {
		if st := h.Status(); st == runner.HostFailed || st == runner.HostUnreachable {
			b.Fatalf("%s: %s: %s %+v", h.Name, st, h.Msg, h.Outcomes)
		}
	}
	return took
}

// sshFloor runs `ssh host true` to every node at once.
func sshFloor(b *testing.B, f *testfleet.Fleet) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(f.Nodes))
	for _, n := range f.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command("ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
				"-o", "UserKnownHostsFile="+f.KnownHostsFile, "-i", f.ClientKeyFile, "-p", strconv.Itoa(n.Port),
				"root@"+n.Addr, "true").CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("ssh %s: %v: %s", n.Addr, err, out)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return took
}

// commandTask runs one command and reports ok.
type commandTask struct {
	name string
	argv []string
}

func (c commandTask) Name() string { return c.name }
func (c commandTask) Apply(ctx context.Context, node tasks.Node, _ tasks.Host, _ tasks.Config) tasks.Outcome {
	res, err := node.Run(ctx, tasks.Command{Argv: c.argv})
	if err != nil || res.ExitStatus != 0 {
		return tasks.Failed(c.name, "%v exit %d: %s", err, res.ExitStatus, res.Stderr)
	}
	return tasks.Outcome{Task: c.name, Status: tasks.StatusOK}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
