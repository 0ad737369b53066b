// Command testfleet starts, stops and shows the simulated fleet of real
// sshd nodes (internal/testfleet) that `make demo` and `make bench` run
// on, and runs the demo itself.
//
//	testfleet up --dir DIR [--nodes N] [--seed incidents]
//	testfleet status --dir DIR
//	testfleet down --dir DIR
//	testfleet demo [--nodefix bin/nodefix]
//	testfleet bench [--runs 3] [--nodefix bin/nodefix] [--out bench-results/bench.md]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/testfleet"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "testfleet: %v\n", err)
		os.Exit(1)
	}
}

var dirFlag = &cli.StringFlag{Name: "dir", Usage: "the fleet's directory (not under /etc, /usr, /var, /root, /home or /run)", Value: "/tmp/nodefix-fleet"}

func newApp() *cli.App {
	return &cli.App{
		Name:  "testfleet",
		Usage: "a simulated fleet of real OpenSSH nodes in Linux namespaces (needs root)",
		Commands: []*cli.Command{
			{
				Name:  "up",
				Usage: "start a fleet that keeps running until `testfleet down`",
				Flags: []cli.Flag{
					dirFlag,
					&cli.IntFlag{Name: "nodes", Value: 6, Usage: "how many nodes (1-254)"},
					&cli.StringFlag{Name: "seed", Usage: "faults to seed: incidents (every node named localhost, a wedged and a corrupted rpm database, cloned identities), or names (7 nodes whose names come from kubeasz, kubeadm and k3s kubelets, the inventory, or nowhere)"},
				},
				Action: up,
			},
			{Name: "status", Usage: "show each node's state", Flags: []cli.Flag{dirFlag}, Action: status},
			{Name: "down", Usage: "stop the fleet and remove its directory", Flags: []cli.Flag{dirFlag}, Action: down},
			{
				Name:  "demo",
				Usage: "the main job on a simulated fleet: broken, checked, fixed, fixed again",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "nodefix", Value: "bin/nodefix", Usage: "the nodefix binary to run"},
				},
				Action: demo,
			},
			{
				Name:  "bench",
				Usage: "make bench: nodefix against a hand-written Ansible playbook, the SSH floor, and its own cost at 10-1,000 hosts",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "nodefix", Value: "bin/nodefix", Usage: "the nodefix binary to measure"},
					&cli.StringFlag{Name: "playbook", Value: "playbooks/bench/handwritten.yml", Usage: "the hand-written playbook Ansible runs"},
					&cli.IntFlag{Name: "runs", Value: 3, Usage: "runs per figure (the median is reported)"},
					&cli.StringFlag{Name: "out", Value: "bench-results/bench.md", Usage: "where the results table is written"},
				},
				Action: bench,
			},
		},
	}
}

func options(c *cli.Context, detach bool) testfleet.Options {
	if c.String("seed") == "names" || c.Command.Name == "demo" {
		opts := testfleet.NameCaseOptions(testfleet.NameCases())
		opts.Detach = detach
		return opts
	}
	opts := testfleet.Options{Nodes: c.Int("nodes"), Detach: detach}
	if c.String("seed") == "incidents" {
		opts.Hostname = func(int) string { return "localhost" }
	}
	return opts
}

func up(c *cli.Context) error {
	switch seed := c.String("seed"); {
	case seed == "incidents" && c.Int("nodes") < 4:
		return fmt.Errorf("--seed incidents needs at least 4 nodes (--nodes %d)", c.Int("nodes"))
	case seed != "" && seed != "incidents" && seed != "names":
		return fmt.Errorf("unknown --seed %q (want incidents or names)", seed)
	}
	dir := c.String("dir")
	if _, err := os.Stat(dir + "/state.json"); err == nil {
		return fmt.Errorf("a fleet already runs in %s: testfleet down --dir %s first", dir, dir)
	}
	opts := options(c, true)
	opts.Dir = dir
	start := time.Now()
	entries, _ := os.ReadDir(dir)
	ours := len(entries) == 0 // so a failed start may clean up after itself
	f, err := testfleet.Start(c.Context, opts)
	if err != nil {
		if ours {
			os.RemoveAll(dir)
		}
		return err
	}
	fmt.Printf("%d nodes up in %s (%s)\n", len(f.Nodes), time.Since(start).Round(time.Millisecond), f.Dir)
	if c.String("seed") == "incidents" {
		if _, err := f.SeedIncidents(c.Context); err != nil {
			f.Stop(context.Background())
			os.RemoveAll(dir)
			return err
		}
		fmt.Println("seeded: every node named localhost; node02 rpm database wedged with hung queries; node03 rpm database corrupted; cloned machine-id and iSCSI initiator name")
	}
	printFiles(os.Stdout, f)
	return nil
}

func printFiles(w io.Writer, f *testfleet.Fleet) {
	fmt.Fprintf(w, "inventory (kubeasz INI): %s\ninventory (YAML):        %s\nknown_hosts:             %s\nclient key:              %s\n",
		f.InventoryINI, f.InventoryYAML, f.KnownHostsFile, f.ClientKeyFile)
}

func status(c *cli.Context) error {
	f, err := testfleet.Load(c.String("dir"))
	if err != nil {
		return err
	}
	printFiles(os.Stdout, f)
	return printStates(c.Context, os.Stdout, f)
}

func printStates(ctx context.Context, w io.Writer, f *testfleet.Fleet) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tk8s_nodename\tKUBELET\tHOSTNAME\t/etc/hostname\tRPM QUERIES\tRPM DB\tPACKAGES\tMACHINE-ID\tMISSING")
	for _, n := range f.Nodes {
		s, err := n.Describe(ctx)
		if err != nil {
			return err
		}
		missing := "-"
		if len(s.MissingTools) > 0 {
			missing = fmt.Sprint(s.MissingTools)
		}
		kubelet, inv := "-", n.K8sNodename
		if n.Kubelet.Flavor != "" {
			kubelet = n.Kubelet.Flavor + ": " + n.Kubelet.NodeName
		}
		if inv == "" {
			inv = "''"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%.8s…\t%s\n", n.Name, n.SSHAddr(), inv, kubelet,
			s.Hostname, s.EtcHostname, s.RPMQueries, s.RPMDB, s.RPMPackages, s.MachineID, missing)
	}
	return tw.Flush()
}

func down(c *cli.Context) error {
	dir := c.String("dir")
	f, err := testfleet.Load(dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := f.Stop(ctx); err != nil {
		return err
	}
	fmt.Printf("%d nodes stopped\n", len(f.Nodes))
	return os.RemoveAll(dir)
}
