package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/testfleet"
)

// The fleet sizes make bench measures at (issue 8).
var (
	ansibleSizes    = []int{20, 50}
	floorSizes      = []int{20, 50, 100}
	controllerSizes = []int{10, 100, 1000}
)

// bench is `make bench`: every figure measured in one run on one fleet,
// each the median of --runs runs interleaved with its rivals, so that a
// noisy machine slows both sides of a ratio alike.
func bench(c *cli.Context) (err error) {
	b, err := newBench(c)
	if err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)

	nodes := slices.Max(floorSizes)
	fmt.Fprintf(os.Stderr, "starting %d nodes…\n", nodes)
	start := time.Now()
	opts := testfleet.Options{Nodes: nodes, Dir: filepath.Join(b.dir, "fleet"), BootTimeout: 5 * time.Minute}
	if b.f, err = testfleet.Start(c.Context, opts); err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, b.f.Stop(ctx))
	}()
	b.report.fleetStart = time.Since(start)
	b.report.loadBefore = loadAverage()

	if err := b.againstAnsible(c.Context); err != nil {
		return err
	}
	if err := b.againstFloor(c.Context); err != nil {
		return err
	}
	if err := b.controllerCost(c.Context); err != nil {
		return err
	}
	b.report.loadAfter = loadAverage()

	out := c.String("out")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	text := b.report.markdown(c.Context, b)
	fmt.Print(text)
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	fmt.Fprintf(os.Stderr, "written to %s\n", out)
	return nil
}

type benchRun struct {
	nodefix  string
	playbook string
	runs     int
	dir      string
	logs     string
	f        *testfleet.Fleet
	report   benchReport
}

func newBench(c *cli.Context) (*benchRun, error) {
	nodefix, err := exec.LookPath(c.String("nodefix"))
	if err != nil {
		return nil, fmt.Errorf("nodefix binary: %w (run make build)", err)
	}
	if nodefix, err = filepath.Abs(nodefix); err != nil {
		return nil, err
	}
	playbook, err := filepath.Abs(c.String("playbook"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(playbook); err != nil {
		return nil, fmt.Errorf("the hand-written playbook: %w", err)
	}
	for _, tool := range []string{"ansible-playbook", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("make bench needs %s: %w (make deps installs it)", tool, err)
		}
	}
	if c.Int("runs") < 1 {
		return nil, fmt.Errorf("--runs %d: at least 1", c.Int("runs"))
	}
	dir, err := os.MkdirTemp("", "nodefix-bench-")
	if err != nil {
		return nil, err
	}
	// Every run's output is kept beside the results, to see what ran.
	logs := filepath.Join(filepath.Dir(c.String("out")), "logs")
	if err := os.RemoveAll(logs); err != nil {
		return nil, err
	}
	b := &benchRun{nodefix: nodefix, playbook: playbook, runs: c.Int("runs"), dir: dir, logs: logs}
	return b, os.MkdirAll(b.logs, 0o755)
}

// measurement is one timed command: its wall time, the CPU time it and
// its children used, and the peak resident memory of its largest process.
type measurement struct {
	wall   time.Duration
	cpu    time.Duration
	maxRSS int64 // bytes
	exit   int
}

// measure runs argv with its output in a log file.
func (b *benchRun) measure(ctx context.Context, label string, env []string, argv ...string) (measurement, error) {
	logPath := filepath.Join(b.logs, label+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return measurement{}, err
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	err = cmd.Run()
	m := measurement{wall: time.Since(start)}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return m, fmt.Errorf("%s: %w", label, err)
	}
	m.exit = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		m.maxRSS = ru.Maxrss << 10 // kilobytes on Linux
	}
	fmt.Fprintf(os.Stderr, "  %-40s %8s  exit %d\n", label, m.wall.Round(time.Millisecond), m.exit)
	return m, nil
}

// mustSucceed turns a non-zero exit into an error that shows the log.
func (b *benchRun) mustSucceed(label string, m measurement) error {
	if m.exit == 0 {
		return nil
	}
	out, _ := os.ReadFile(filepath.Join(b.logs, label+".log"))
	return fmt.Errorf("%s exited %d; the figure would mean nothing:\n%s", label, m.exit, tail(string(out), 40))
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// inventory writes (once) a YAML inventory of the fleet's first n nodes.
func (b *benchRun) inventory(n int) (string, error) {
	path := filepath.Join(b.dir, fmt.Sprintf("nodes-%d.yml", n))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return path, b.f.WriteYAMLInventory(path, b.f.InventoryHosts(b.f.Nodes[:n]))
}

// sharedInventory writes an inventory of hosts inventory hosts spread
// round-robin over every node, each with its own k8s_nodename: a large
// fleet's controller work on a machine that runs 100 nodes. Round-robin
// keeps the hosts running at once on different nodes.
func (b *benchRun) sharedInventory(hosts int) (string, error) {
	path := filepath.Join(b.dir, fmt.Sprintf("hosts-%d.yml", hosts))
	inv := make([]testfleet.InventoryHost, hosts)
	for i := range inv {
		name := fmt.Sprintf("host%04d", i+1)
		inv[i] = testfleet.InventoryHost{Name: name, Node: b.f.Nodes[i%len(b.f.Nodes)], K8sNodename: "k8s-" + name}
	}
	return path, b.f.WriteYAMLInventory(path, inv)
}

// seeded breaks the first n nodes as the incidents did and lets the hung
// queries age past the --rpm-query-max-age both sides are given.
func (b *benchRun) seeded(ctx context.Context, n int) error {
	if err := b.f.SeedIncidentsAtScale(ctx, b.f.Nodes[:n]); err != nil {
		return fmt.Errorf("seeding the incidents on %d nodes: %w", n, err)
	}
	time.Sleep(rpmQueryMaxAge + time.Second)
	return nil
}

// rpmQueryMaxAge is what both nodefix and the playbook are told: the
// seeded queries must count as hung without the bench waiting minutes.
const rpmQueryMaxAge = time.Second

// againstAnsible times nodefix and the hand-written playbook fixing the
// same freshly broken nodes, forks = N for both.
func (b *benchRun) againstAnsible(ctx context.Context) error {
	fmt.Fprintln(os.Stderr, "nodefix run vs ansible-playbook on a broken fleet")
	ansibleEnv := []string{
		"ANSIBLE_PIPELINING=True", // what a tuned hand-written setup uses
		"ANSIBLE_HOME=" + filepath.Join(b.dir, "ansible"),
		"ANSIBLE_NOCOLOR=1",
	}
	for run := 1; run <= b.runs; run++ {
		for _, n := range ansibleSizes {
			inv, err := b.inventory(n)
			if err != nil {
				return err
			}
			forks := strconv.Itoa(n)
			if err := b.seeded(ctx, n); err != nil {
				return err
			}
			m, err := b.fix(ctx, fmt.Sprintf("nodefix-run-%d-run%d", n, run), inv, forks)
			if err != nil {
				return err
			}
			b.report.add("nodefix run", n, m)

			if err := b.seeded(ctx, n); err != nil {
				return err
			}
			m, err = b.measure(ctx, fmt.Sprintf("ansible-playbook-%d-run%d", n, run), ansibleEnv, "ansible-playbook", "-i", inv, "-f", forks,
				"-e", fmt.Sprintf("rpm_query_max_age=%d", int(rpmQueryMaxAge.Seconds())), b.playbook)
			if err != nil {
				return err
			}
			b.report.add("ansible-playbook", n, m)
		}
	}
	// The next parts measure a healthy fleet.
	inv, err := b.inventory(len(b.f.Nodes))
	if err != nil {
		return err
	}
	_, err = b.fix(ctx, "heal", inv, strconv.Itoa(len(b.f.Nodes)))
	return err
}

// fix is one timed `nodefix run` of every task on inv; a run that did not
// fix everything ends the benchmark.
func (b *benchRun) fix(ctx context.Context, label, inv, forks string) (measurement, error) {
	m, err := b.measure(ctx, label, nil, b.nodefix, "run", "-i", inv, "-f", forks,
		"--rpm-query-max-age", rpmQueryMaxAge.String())
	if err != nil {
		return m, err
	}
	return m, b.mustSucceed(label, m)
}

// againstFloor times nodefix on a healthy fleet against the least any
// tool can do over SSH: OpenSSH's `ssh host true` to every node at once.
func (b *benchRun) againstFloor(ctx context.Context) error {
	fmt.Fprintln(os.Stderr, "nodefix vs the SSH floor on a healthy fleet")
	for run := 1; run <= b.runs; run++ {
		for _, n := range floorSizes {
			inv, err := b.inventory(n)
			if err != nil {
				return err
			}
			forks := strconv.Itoa(n)
			m, err := b.sshFloor(ctx, b.f.Nodes[:n])
			if err != nil {
				return err
			}
			b.report.add("ssh true", n, m)
			for _, variant := range []struct {
				name string
				args []string
			}{
				{"nodefix check", []string{"check"}},
				{"nodefix run --tasks longhorn-deps", []string{"run", "--tasks", "longhorn-deps"}},
			} {
				label := fmt.Sprintf("%s-%d-run%d", strings.ReplaceAll(strings.ReplaceAll(variant.name, " ", "-"), "--", ""), n, run)
				argv := append([]string{b.nodefix}, variant.args...)
				m, err := b.measure(ctx, label, nil, append(argv, "-i", inv, "-f", forks)...)
				if err != nil {
					return err
				}
				if err := b.mustSucceed(label, m); err != nil {
					return err
				}
				b.report.add(variant.name, n, m)
			}
		}
	}
	return nil
}

// sshFloor runs one OpenSSH client per node, all at once, each checking
// the host key and logging in with the fleet's key to run `true`.
func (b *benchRun) sshFloor(ctx context.Context, nodes []*testfleet.Node) (measurement, error) {
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(nodes))
	)
	start := time.Now()
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.CommandContext(ctx, "ssh", "-F", "none", "-o", "BatchMode=yes",
				"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+b.f.KnownHostsFile,
				"-i", b.f.ClientKeyFile, "-p", strconv.Itoa(n.Port), "root@"+n.Addr, "true").CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("ssh %s true: %w: %s", n.Addr, err, out)
			}
		}()
	}
	wg.Wait()
	m := measurement{wall: time.Since(start)}
	fmt.Fprintf(os.Stderr, "  %-40s %8s\n", fmt.Sprintf("ssh-true-%d", len(nodes)), m.wall.Round(time.Millisecond))
	return m, errors.Join(errs...)
}

// controllerCost measures what nodefix itself costs the machine it runs
// on as the fleet grows: `nodefix check --tasks hostname` with default
// forks. The hostname task is the one that plans across the whole
// inventory (names, uniqueness, the identity audit) and the cheapest on
// the nodes, so the figures are the controller's: connections, planning,
// reports.
func (b *benchRun) controllerCost(ctx context.Context) error {
	fmt.Fprintln(os.Stderr, "controller cost of nodefix check")
	invs := map[int]string{}
	for _, hosts := range controllerSizes {
		var err error
		if hosts <= len(b.f.Nodes) {
			invs[hosts], err = b.inventory(hosts)
		} else {
			invs[hosts], err = b.sharedInventory(hosts)
		}
		if err != nil {
			return err
		}
	}
	for run := 1; run <= b.runs; run++ {
		for _, hosts := range controllerSizes {
			label := fmt.Sprintf("controller-%d-run%d", hosts, run)
			m, err := b.measure(ctx, label, nil, b.nodefix, "check", "--tasks", "hostname", "-i", invs[hosts])
			if err != nil {
				return err
			}
			if err := b.mustSucceed(label, m); err != nil {
				return err
			}
			b.report.add("controller", hosts, m)
		}
	}
	return nil
}

// benchReport collects every measurement by what ran and on how many hosts.
type benchReport struct {
	samples    map[string]map[int][]measurement
	fleetStart time.Duration
	loadBefore string
	loadAfter  string
}

func (r *benchReport) add(what string, hosts int, m measurement) {
	if r.samples == nil {
		r.samples = map[string]map[int][]measurement{}
	}
	if r.samples[what] == nil {
		r.samples[what] = map[int][]measurement{}
	}
	r.samples[what][hosts] = append(r.samples[what][hosts], m)
}

// median of one figure over the runs of what on hosts.
func (r *benchReport) median(what string, hosts int, figure func(measurement) float64) float64 {
	var v []float64
	for _, m := range r.samples[what][hosts] {
		v = append(v, figure(m))
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func wallSeconds(m measurement) float64 { return m.wall.Seconds() }
func cpuSeconds(m measurement) float64  { return m.cpu.Seconds() }
func rssMiB(m measurement) float64      { return float64(m.maxRSS) / (1 << 20) }

func (r *benchReport) exits(what string, hosts int) string {
	var codes []string
	for _, m := range r.samples[what][hosts] {
		codes = append(codes, strconv.Itoa(m.exit))
	}
	return strings.Join(codes, ",")
}

func (r *benchReport) markdown(ctx context.Context, b *benchRun) string {
	var w strings.Builder
	fmt.Fprintf(&w, "# nodefix benchmark (make bench)\n\n")
	fmt.Fprintf(&w, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&w, "- machine: %s\n", machine())
	fmt.Fprintf(&w, "- load average before / after: %s / %s\n", r.loadBefore, r.loadAfter)
	fmt.Fprintf(&w, "- %s; %s; %s\n", versionOf(ctx, b.nodefix, "--version"), versionOf(ctx, "ssh", "-V"), versionOf(ctx, "ansible-playbook", "--version"))
	fmt.Fprintf(&w, "- fleet: %d sshd nodes in namespaces on loopback, started in %s\n", len(b.f.Nodes), r.fleetStart.Round(time.Second))
	fmt.Fprintf(&w, "- each figure: the median of %d runs, interleaved with its rivals\n", b.runs)
	fmt.Fprintf(&w, "- command: `make bench` (`bin/testfleet bench --nodefix bin/nodefix --runs %d`)\n\n", b.runs)

	fmt.Fprintf(&w, "## 1. Fixing a broken fleet: nodefix vs a hand-written playbook\n\n")
	fmt.Fprintf(&w, "Before every run the N nodes are broken again: every node called localhost, in every ten nodes one wedged rpm database with 12 hung queries and one corrupted database. nodefix: `nodefix run -f N --rpm-query-max-age 1s` (all four tasks). Ansible: `ansible-playbook -f N playbooks/bench/handwritten.yml -e rpm_query_max_age=1`, facts off, pipelining on.\n\n")
	fmt.Fprintf(&w, "| N | nodefix run | ansible-playbook | nodefix is faster by | exit codes nodefix / ansible |\n|---:|---:|---:|---:|---|\n")
	for _, n := range ansibleSizes {
		nf, an := r.median("nodefix run", n, wallSeconds), r.median("ansible-playbook", n, wallSeconds)
		fmt.Fprintf(&w, "| %d | %.2f s | %.2f s | **%.1f×** | %s / %s |\n", n, nf, an, an/nf, r.exits("nodefix run", n), r.exits("ansible-playbook", n))
	}

	fmt.Fprintf(&w, "\n## 2. nodefix vs the SSH floor, healthy fleet\n\n")
	fmt.Fprintf(&w, "Floor: one OpenSSH `ssh -F none -o BatchMode=yes host true` per node, all at once (host key checked, key login). nodefix with `-f N`.\n\n")
	fmt.Fprintf(&w, "| N | ssh host true | nodefix check (all tasks) | ratio | nodefix run --tasks longhorn-deps | ratio |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range floorSizes {
		floor := r.median("ssh true", n, wallSeconds)
		all := r.median("nodefix check", n, wallSeconds)
		deps := r.median("nodefix run --tasks longhorn-deps", n, wallSeconds)
		fmt.Fprintf(&w, "| %d | %.2f s | %.2f s | **%.2f×** | %.2f s | **%.2f×** |\n", n, floor, all, all/floor, deps, deps/floor)
	}

	fmt.Fprintf(&w, "\n## 3. Controller cost of `nodefix check --tasks hostname` (default forks 50)\n\n")
	fmt.Fprintf(&w, "%d hosts: %d inventory hosts spread over the %d nodes.\n\n", slices.Max(controllerSizes), slices.Max(controllerSizes), len(b.f.Nodes))
	fmt.Fprintf(&w, "| hosts | wall | CPU (user+sys) | CPU per host | peak RSS |\n|---:|---:|---:|---:|---:|\n")
	for _, n := range controllerSizes {
		cpu := r.median("controller", n, cpuSeconds)
		fmt.Fprintf(&w, "| %d | %.2f s | %.2f s | %.1f ms | %.1f MiB |\n", n, r.median("controller", n, wallSeconds), cpu, cpu/float64(n)*1000, r.median("controller", n, rssMiB))
	}
	return w.String()
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	var si syscall.Sysinfo_t
	mem := ""
	if syscall.Sysinfo(&si) == nil {
		mem = fmt.Sprintf(", %.0f GiB", float64(si.Totalram)*float64(si.Unit)/(1<<30))
	}
	return fmt.Sprintf("%d cores (%s)%s, %s, %s", runtime.NumCPU(), model, mem, kernel, runtime.Version())
}

// versionOf is the first line a tool prints about its version.
func versionOf(ctx context.Context, tool string, arg string) string {
	out, err := exec.CommandContext(ctx, tool, arg).CombinedOutput()
	if err != nil && len(out) == 0 {
		return tool + " (version unknown)"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
