package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/testfleet"
)

// demo is `make demo`: a fleet broken as in the incidents, checked, fixed,
// and fixed again with nothing changed. The fleet is always torn down,
// also on Ctrl-C.
func demo(c *cli.Context) (err error) {
	nodefix, err := exec.LookPath(c.String("nodefix"))
	if err != nil {
		return fmt.Errorf("nodefix binary: %w (run make build)", err)
	}
	dir, err := os.MkdirTemp("", "nodefix-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := options(c, false)
	opts.Dir = dir

	step("1. Start %d real OpenSSH nodes, each in its own namespaces", opts.Nodes)
	start := time.Now()
	f, err := testfleet.Start(c.Context, opts)
	if err != nil {
		return err
	}
	defer func() {
		step("Tear down")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if stopErr := f.Stop(ctx); stopErr != nil {
			err = errors.Join(err, stopErr)
			return
		}
		fmt.Printf("%d nodes stopped, nothing left behind\n", len(f.Nodes))
	}()
	fmt.Printf("%d nodes up in %s\n", len(f.Nodes), time.Since(start).Round(time.Millisecond))
	printFiles(os.Stdout, f)

	fmt.Println("Their Kubernetes node names come from everywhere a name can come from:")
	for i, c := range testfleet.NameCases() {
		fmt.Printf("  node%02d: %s\n", i+1, c.What)
	}

	step("2. Break them as in the incidents")
	if _, err := f.SeedIncidents(c.Context); err != nil {
		return err
	}
	fmt.Println("four nodes are called localhost (the NFS client identity collides);")
	fmt.Println("node02: a hung rpm query wedged the database, a transaction and 12 queries wait behind it;")
	fmt.Printf("node03: corrupted rpm database; node04 and node%02d: cloned machine-id and iSCSI initiator name\n", len(f.Nodes))
	if err := printStates(c.Context, os.Stdout, f); err != nil {
		return err
	}
	// The demo cannot wait the default --rpm-query-max-age (minutes): it
	// lets the seeded queries age a few seconds and lowers the limit.
	time.Sleep(3 * time.Second)
	args := []string{"-i", f.InventoryINI, "--rpm-query-max-age", "2s"}

	step("3. nodefix check: what would change (nothing is changed)")
	checkCode := runNodefix(c.Context, nodefix, append([]string{"check"}, args...))
	if err := printStates(c.Context, os.Stdout, f); err != nil {
		return err
	}

	step("4. nodefix run: fix the fleet")
	runCode := runNodefix(c.Context, nodefix, append([]string{"run"}, args...))
	if err := printStates(c.Context, os.Stdout, f); err != nil {
		return err
	}

	step("5. nodefix run again: nothing left to change")
	againCode := runNodefix(c.Context, nodefix, append([]string{"run"}, args...))

	step("6. An inventory wrong about three nodes: nothing renamed on them")
	fmt.Println("node01 and node02 swapped (names stay unique: no fleet check can see it), and the kubeadm")
	fmt.Println("node04 given a name its kubelet does not run as: each is judged against its own kubelet.")
	wrong := filepath.Join(dir, "hosts.wrong")
	if err := f.WriteINIInventory(wrong, f.InventoryWith(testfleet.MisnamedCases())); err != nil {
		return err
	}
	wrongCode := runNodefix(c.Context, nodefix, []string{"check", "-i", wrong, "--tasks", "hostname"})

	fmt.Printf("\nexit codes: check %d, run %d, run again %d, wrong inventory %d\n", checkCode, runCode, againCode, wrongCode)
	if againCode != 0 {
		return fmt.Errorf("the second run exited %d: the fleet is not healthy", againCode)
	}
	if wrongCode != 2 {
		return fmt.Errorf("the wrong inventory's check exited %d, want 2: a node was not judged against its kubelet", wrongCode)
	}
	return nil
}

func step(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Printf("\n== %s %s\n", line, strings.Repeat("=", max(0, 74-len(line))))
}

func runNodefix(ctx context.Context, nodefix string, args []string) int {
	fmt.Printf("$ nodefix %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, nodefix, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "running nodefix: %v\n", err)
		return -1
	}
}
