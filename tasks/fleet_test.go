package tasks_test

// Tests on the simulated fleet (internal/testfleet): real nodes in
// namespaces, reached as tasks.Node through nsenter (no ssh; the CLI's
// end-to-end runs over ssh are the lead's). They skip without root, sshd
// and rpm, and fail instead under NODEFIX_FLEET=required.

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/nodefix/nodefix/internal/testfleet"
	"github.com/nodefix/nodefix/tasks"
)

// kubeaszName is kubeasz's K8S_NODENAME rule, for building the plan the
// planner would build. TODO: use internal/nodename.Derive once it is on
// main.
func kubeaszName(inventoryHostname, k8sNodename string) string {
	if k8sNodename != "" {
		return strings.ToLower(strings.ReplaceAll(k8sNodename, "_", "-"))
	}
	return "k8s-" + strings.ReplaceAll(inventoryHostname, ".", "-")
}

func fleetHosts(f *testfleet.Fleet) []tasks.Host {
	var hosts []tasks.Host
	for _, n := range f.Nodes {
		hosts = append(hosts, tasks.Host{Name: n.Name, TargetHostname: kubeaszName(n.Name, n.K8sNodename)})
	}
	return hosts
}

// applyAll runs task on every node at once, as the runner would.
func applyAll(t *testing.T, f *testfleet.Fleet, task tasks.Task, cfg tasks.Config) map[string]tasks.Outcome {
	t.Helper()
	hosts := fleetHosts(f)
	out := map[string]tasks.Outcome{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, n := range f.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := task.Apply(context.Background(), n, hosts[i], cfg)
			mu.Lock()
			out[n.Name] = o
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// runHostnameLikeTheCLI is the CLI's contract for the hostname task: the
// fleet precheck over the whole inventory first; refused means no host is
// touched.
func runHostnameLikeTheCLI(t *testing.T, f *testfleet.Fleet, cfg tasks.Config) (map[string]tasks.Outcome, error) {
	if err := tasks.CheckFleetHostnames(fleetHosts(f)); err != nil {
		return nil, err
	}
	return applyAll(t, f, tasks.Hostname{}, cfg), nil
}

// nameState is everything that names a node, read on the node itself.
func nameState(t *testing.T, n *testfleet.Node) string {
	t.Helper()
	out, err := n.Sh(context.Background(), `cat /proc/sys/kernel/hostname /etc/hostname /etc/hosts; ls -la /etc | grep -E 'hosts|hostname|nodefix' || true; ls /etc/modprobe.d`)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func nameStates(t *testing.T, f *testfleet.Fleet) map[string]string {
	states := map[string]string{}
	for _, n := range f.Nodes {
		states[n.Name] = nameState(t, n)
	}
	return states
}

func count(outs map[string]tasks.Outcome, status tasks.Status) int {
	c := 0
	for _, o := range outs {
		if o.Status == status {
			c++
		}
	}
	return c
}

func facts(outs map[string]tasks.Outcome) map[string]map[string]string {
	f := map[string]map[string]string{}
	for host, o := range outs {
		f[host] = o.Facts
	}
	return f
}

// Issue 5, done when: 6 nodes all named localhost → each node's kernel
// hostname, /etc/hostname and /etc/hosts carry its K8S_NODENAME; a second
// run reports 0 changed; check mode before the run changed nothing.
func TestFleetHostnameSixLocalhostNodes(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 6, Hostname: func(int) string { return "localhost" }})
	cfg := tasks.DefaultConfig()

	before := nameStates(t, f)
	check := cfg
	check.Check = true
	outs, err := runHostnameLikeTheCLI(t, f, check)
	if err != nil {
		t.Fatalf("precheck refused a valid fleet: %v", err)
	}
	for host, o := range outs {
		if o.Status != tasks.StatusChanged || !strings.Contains(o.Msg, "would rename localhost → ") {
			t.Errorf("%s check mode: %+v", host, o)
		}
	}
	if after := nameStates(t, f); !reflect.DeepEqual(after, before) {
		t.Fatalf("check mode changed nodes:\nbefore %v\nafter %v", before, after)
	}
	// The incident's symptom, reported in check mode: one hostname (and
	// so one NFS client identity) on every node.
	findings := tasks.AuditIdentities(facts(outs))
	if len(findings) != 2 || findings[0].Kind != tasks.FactHostname || findings[0].Value != "localhost" || len(findings[0].Hosts) != 6 ||
		findings[1].Kind != tasks.FactNFSIdentifier || len(findings[1].Hosts) != 6 {
		t.Errorf("check-mode audit: %v", findings)
	}

	outs, err = runHostnameLikeTheCLI(t, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c := count(outs, tasks.StatusChanged); c != 6 {
		t.Fatalf("%d changed, want 6: %v", c, outs)
	}
	for _, n := range f.Nodes {
		want := n.K8sNodename
		got, err := n.Sh(context.Background(), `cat /proc/sys/kernel/hostname /etc/hostname; getent hosts "$1" || grep -w "$1" /etc/hosts`, want)
		if err != nil {
			t.Errorf("%s: %v", n.Name, err)
			continue
		}
		lines := strings.Split(strings.TrimSpace(got), "\n")
		if len(lines) < 3 || lines[0] != want || lines[1] != want || !strings.Contains(lines[2], want) {
			t.Errorf("%s: kernel, /etc/hostname, /etc/hosts entry:\n%s\nwant %s everywhere", n.Name, got, want)
		}
	}
	if findings := tasks.AuditIdentities(facts(outs)); len(findings) != 0 {
		t.Errorf("audit after the run: %v", findings)
	}

	renamed := nameStates(t, f)
	outs, _ = runHostnameLikeTheCLI(t, f, cfg)
	if c := count(outs, tasks.StatusOK); c != 6 {
		t.Errorf("second run: %d ok, want 6: %v", c, outs)
	}
	for _, o := range outs {
		if o.Changed {
			t.Errorf("second run changed: %+v", o)
		}
	}
	if after := nameStates(t, f); !reflect.DeepEqual(after, renamed) {
		t.Errorf("second run touched nodes")
	}
}

// Issue 5, done when: an inventory with two hosts sharing a name
// (including via '_'/case normalisation) is refused and no node's name
// changed.
func TestFleetHostnameCollisionRefused(t *testing.T) {
	names := map[int]string{1: "Worker_01", 2: "worker-01", 3: "worker-03", 4: "worker-03"}
	f := testfleet.New(t, testfleet.Options{Nodes: 5,
		K8sNodename: func(i int) string {
			if n, ok := names[i]; ok {
				return n
			}
			return fmt.Sprintf("worker-%02d", i)
		},
		Hostname: func(int) string { return "localhost" },
	})
	before := nameStates(t, f)
	outs, err := runHostnameLikeTheCLI(t, f, tasks.DefaultConfig())
	if err == nil {
		t.Fatalf("colliding inventory accepted: %v", outs)
	}
	for _, want := range []string{
		fmt.Sprintf("hosts %s, %s would all be named \"worker-01\"", f.Nodes[0].Name, f.Nodes[1].Name),
		fmt.Sprintf("hosts %s, %s would all be named \"worker-03\"", f.Nodes[2].Name, f.Nodes[3].Name),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), f.Nodes[4].Name) {
		t.Errorf("refusal names a host that does not collide:\n%v", err)
	}
	if after := nameStates(t, f); !reflect.DeepEqual(after, before) {
		t.Errorf("a node changed although the run was refused")
	}
}

// Issue 5, done when: the identity audit finds seeded duplicate
// machine-ids and initiator names (check mode gathers them).
func TestFleetIdentityAudit(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 4})
	ctx := context.Background()
	const clonedID = "5f3c0a6d0c2e4b3f9d1e2a3b4c5d6e7f"
	const clonedIQN = "iqn.1994-05.com.redhat:cloned0"
	for _, seed := range []error{
		f.Nodes[0].SetMachineID(ctx, clonedID), f.Nodes[2].SetMachineID(ctx, clonedID),
		f.Nodes[1].SetInitiatorName(ctx, clonedIQN), f.Nodes[3].SetInitiatorName(ctx, clonedIQN),
	} {
		if seed != nil {
			t.Fatal(seed)
		}
	}
	check := tasks.DefaultConfig()
	check.Check = true
	outs := applyAll(t, f, tasks.Hostname{}, check)
	got := tasks.AuditIdentities(facts(outs))
	want := []tasks.Finding{
		{Kind: tasks.FactMachineID, Value: clonedID, Hosts: []string{f.Nodes[0].Name, f.Nodes[2].Name}},
		{Kind: tasks.FactISCSIInitiator, Value: clonedIQN, Hosts: []string{f.Nodes[1].Name, f.Nodes[3].Name}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("audit:\n%v\nwant\n%v", got, want)
	}
	for _, o := range outs {
		if o.Status != tasks.StatusOK {
			t.Errorf("healthy names reported: %+v", o)
		}
	}
}

// longhorn-deps on real nodes: one healthy, one without iscsiadm, one
// whose dmsetup is there but cannot run.
func TestFleetLonghornDeps(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 3})
	ctx := context.Background()
	if err := f.Nodes[1].RemoveExecutable(ctx, "iscsiadm"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Nodes[2].Sh(ctx, `p=$(command -v dmsetup) && printf '#!/nonexistent/interpreter\n' >"$p"`); err != nil {
		t.Fatal(err)
	}
	for _, check := range []bool{true, false} {
		cfg := tasks.DefaultConfig()
		cfg.Check = check
		outs := applyAll(t, f, tasks.LonghornDeps{}, cfg)
		healthy, noISCSI, brokenDM := outs[f.Nodes[0].Name], outs[f.Nodes[1].Name], outs[f.Nodes[2].Name]
		if healthy.Status != tasks.StatusOK || healthy.Msg != "iscsiadm, mount.nfs, cryptsetup, dmsetup found and runnable" {
			t.Errorf("check=%v healthy node: %+v", check, healthy)
		}
		if noISCSI.Status != tasks.StatusFailed || !strings.Contains(noISCSI.Msg, "iscsiadm (not found in PATH") ||
			!strings.Contains(noISCSI.Msg, "apt-get install -y open-iscsi") {
			t.Errorf("check=%v node without iscsiadm: %+v", check, noISCSI)
		}
		if brokenDM.Status != tasks.StatusFailed || !strings.Contains(brokenDM.Msg, "/usr/sbin/dmsetup does not run (exit status 127)") ||
			!strings.Contains(brokenDM.Msg, "apt-get install -y dmsetup") {
			t.Errorf("check=%v node with a broken dmsetup: %+v", check, brokenDM)
		}
	}
}

// BenchmarkLonghornDepsRoundTrips backs the one-script design: the whole
// check in one command against the same probes sent one command each (the
// obvious implementation), on one real node. Every command here costs a
// process start through nsenter; over ssh each costs a session round trip
// on top, so the ratio only grows on a real network.
//
//	go test ./tasks -run '^$' -bench LonghornDepsRoundTrips -benchtime 50x
func BenchmarkLonghornDepsRoundTrips(b *testing.B) {
	f := testfleet.New(b, testfleet.Options{Nodes: 1})
	n := f.Nodes[0]
	ctx := context.Background()
	cfg := tasks.DefaultConfig()
	b.Run("one-script", func(b *testing.B) {
		for b.Loop() {
			if out := (tasks.LonghornDeps{}).Apply(ctx, n, tasks.Host{Name: n.Name}, cfg); out.Status != tasks.StatusOK {
				b.Fatalf("%+v", out)
			}
		}
	})
	b.Run("command-per-probe", func(b *testing.B) {
		sh := func(script string, args ...string) tasks.Result {
			res, err := n.Run(ctx, tasks.Command{Argv: append([]string{"sh", "-c", script, "sh"}, args...)})
			if err != nil {
				b.Fatal(err)
			}
			return res
		}
		for b.Loop() {
			sh(`cat /etc/os-release`)
			sh(`uname -r`)
			for _, e := range cfg.LonghornExecutables {
				p := strings.TrimSpace(string(sh(`PATH="$PATH:/usr/sbin:/sbin" command -v "$1"`, e).Stdout))
				if p == "" {
					b.Fatalf("%s not found", e)
				}
				sh(`"$1" --version`, p)
			}
			for _, m := range []string{"iscsi_tcp", "nfs", "dm_crypt"} {
				sh(`test -d "/sys/module/$1"`, m)
				sh(`modinfo -F filename "$1"`, m)
			}
			sh(`cat /proc/filesystems`)
			sh(`cat /proc/[0-9]*/comm | grep -xE 'iscsid|multipathd'`)
			sh(`test -d /run/systemd/system`)
		}
	})
}
