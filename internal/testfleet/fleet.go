// Package testfleet starts a simulated fleet of real nodes on one machine:
// each node is Debian's OpenSSH sshd in its own UTS, mount and PID
// namespaces, on its own loopback address, with its own hostname, /etc,
// executables and rpm database (Debian's rpm, sqlite backend), so that
// nodefix, ssh and ansible-playbook meet real hosts in tests, in the demo
// and in benchmarks. Faults are seeded from real processes and files.
//
// It needs root, unshare (util-linux), openssh-server, rpm (with rpmbuild)
// and openssl; see Require.
package testfleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/nodefix/nodefix/internal/nodename"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"
)

// Options shape a fleet.
type Options struct {
	// Nodes is how many nodes to start (default 3, at most 254).
	Nodes int
	// Dir holds everything the fleet writes; created when empty. It must
	// not lie under a directory the nodes overlay (/etc, /usr, /var,
	// /root, /home) or under /run.
	Dir string
	// K8sNodename gives node i (from 1) its inventory k8s_nodename. Nil
	// means "worker-%02d"; an empty result leaves the name to kubeasz's
	// derivation from the inventory hostname.
	K8sNodename func(i int) string
	// Hostname gives node i its initial OS hostname. Nil means the name
	// kubeasz would give it (a healthy node).
	Hostname func(i int) string
	// Kubelet gives node i (listening on addr) its Kubernetes node agent
	// (see Kubelet). Nil, or a zero Kubelet, means none: a plain host.
	Kubelet func(i int, addr string) Kubelet
	// BehindJump lists nodes (by index, from 2) reachable only through
	// node 1, the jump host: node 1 and each of them get their own network
	// namespace, joined by veth links; only node 1 is linked to this
	// machine. Their inventory entries carry -o ProxyJump=root@node1.
	BehindJump []int
	// Detach lets the fleet outlive this process (cmd/testfleet up).
	Detach bool
	// BootTimeout bounds the start of the whole fleet (default 60s).
	BootTimeout time.Duration
}

// Fleet is a running set of nodes and the files a client needs for them.
type Fleet struct {
	Dir   string  `json:"dir"`
	Nodes []*Node `json:"nodes"`
	// KnownHostsFile lists every node's host keys (ed25519 and ecdsa).
	KnownHostsFile string `json:"known_hosts"`
	// ClientKeyFile is an ed25519 key authorized for root and SudoUser.
	ClientKeyFile string `json:"client_key"`
	// InventoryYAML names hosts node01…; InventoryINI is kubeasz-style,
	// hosts named by address.
	InventoryYAML string `json:"inventory_yaml"`
	InventoryINI  string `json:"inventory_ini"`
	// SudoUser exists on every node and may sudo with SudoPassword.
	SudoUser     string `json:"sudo_user"`
	SudoPassword string `json:"sudo_password"`
	// SlowInstallRPM is a package whose install hangs in %pre: a real
	// rpm transaction holding the transaction lock (see StartRPMTransaction).
	SlowInstallRPM string `json:"slow_install_rpm"`
	// PendingUpdateRPM is a package no node records; WedgeRPMDB's
	// waiting transaction installs it.
	PendingUpdateRPM string `json:"pending_update_rpm"`

	block    addrBlock
	netBlock addrBlock // 198.18.0.0/15 links of a jump topology
	stopped  bool
	mu       sync.Mutex
}

// Start boots a fleet. On error nothing is left running.
func Start(ctx context.Context, opts Options) (f *Fleet, err error) {
	closeInheritedFiles()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Nodes < 1 || opts.Nodes > 254 {
		return nil, fmt.Errorf("testfleet: %d nodes: want 1 to 254", opts.Nodes)
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 60 * time.Second
	}
	if opts.K8sNodename == nil {
		opts.K8sNodename = func(i int) string { return fmt.Sprintf("worker-%02d", i) }
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "nodefix-fleet-"); err != nil {
			return nil, fmt.Errorf("testfleet: %w", err)
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("testfleet: %w", err)
	}
	if err := checkDirOutsideOverlays(dir); err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("testfleet: fleet directory %s is not empty: remove it, or stop the fleet in it with testfleet down", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("testfleet: creating %s: %w", dir, err)
	}
	// Path components must be traversable by the sudo user's sshd session.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("testfleet: %w", err)
	}

	f = &Fleet{
		Dir:            dir,
		KnownHostsFile: filepath.Join(dir, "known_hosts"),
		ClientKeyFile:  filepath.Join(dir, "client_ed25519"),
		InventoryYAML:  filepath.Join(dir, "inventory.yml"),
		InventoryINI:   filepath.Join(dir, "hosts"),
		SudoUser:       sudoUser,
		SudoPassword:   "nf-" + randomHex(12),
	}
	if f.block, err = allocateAddrBlock(os.Getpid(), loopbackPrefix); err != nil {
		return nil, fmt.Errorf("testfleet: %w", err)
	}
	defer func() {
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			f.Stop(stopCtx)
		}
	}()

	bootCtx, cancel := context.WithTimeout(ctx, opts.BootTimeout)
	defer cancel()
	rpmDir, err := buildPackages(bootCtx, dir)
	if err != nil {
		return f, fmt.Errorf("testfleet: %w", err)
	}
	f.SlowInstallRPM = filepath.Join(rpmDir, slowInstallPackage+"-1.0-1.noarch.rpm")
	f.PendingUpdateRPM = filepath.Join(rpmDir, pendingUpdatePackage+"-1.0-1.noarch.rpm")
	base := filepath.Join(dir, "base")
	client, err := writeKey(f.ClientKeyFile, "ed25519", "nodefix-testfleet-client")
	if err != nil {
		return f, fmt.Errorf("testfleet: %w", err)
	}
	if err := buildBase(bootCtx, base, rpmDir, f.SudoPassword, ssh.MarshalAuthorizedKey(client.Public)); err != nil {
		return f, fmt.Errorf("testfleet: %w", err)
	}

	port := choosePort(f.block)
	topology, err := f.planJumpTopology(opts)
	if err != nil {
		return f, err
	}
	var knownHosts strings.Builder
	var ca *kubeletCA
	kubelets := map[*Node]kubeletInstall{}
	self, err := os.Executable()
	if err != nil {
		return f, fmt.Errorf("testfleet: %w", err)
	}
	for i := 1; i <= opts.Nodes; i++ {
		n := &Node{
			Index:       i,
			Name:        fmt.Sprintf("node%02d", i),
			Addr:        f.block.addr(i),
			Port:        port,
			K8sNodename: opts.K8sNodename(i),
			Dir:         filepath.Join(dir, "nodes", fmt.Sprintf("node%02d", i)),
			fleetDir:    dir,
		}
		if link, ok := topology[i]; ok {
			n.Net = link
			n.Addr, n.Port = link.Addr, 22
		}
		hostname := nodename.Derive(n.Name, n.K8sNodename)
		if opts.Hostname != nil {
			hostname = opts.Hostname(i)
		}
		lines, err := prepareNode(n, hostname)
		if err != nil {
			return f, fmt.Errorf("testfleet: %w", err)
		}
		if opts.Kubelet != nil {
			n.Kubelet = opts.Kubelet(i, n.Addr)
		}
		if n.Kubelet.Flavor != "" {
			if ca == nil {
				if ca, err = newKubeletCA(); err != nil {
					return f, fmt.Errorf("testfleet: %w", err)
				}
			}
			if kubelets[n], err = n.writeKubelet(ca, n.Kubelet, self); err != nil {
				return f, fmt.Errorf("testfleet: %w", err)
			}
		}
		knownHosts.WriteString(lines)
		f.Nodes = append(f.Nodes, n)
	}
	if err := os.WriteFile(f.KnownHostsFile, []byte(knownHosts.String()), 0o644); err != nil {
		return f, fmt.Errorf("testfleet: %w", err)
	}
	if err := f.writeInventories(); err != nil {
		return f, fmt.Errorf("testfleet: %w", err)
	}

	var mu sync.Mutex
	var errs *multierror.Error
	var wg sync.WaitGroup
	for _, n := range f.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hostname, _ := os.ReadFile(n.path("upper/etc/hostname"))
			if err := n.start(bootCtx, base, strings.TrimSpace(string(hostname)), opts.Detach); err != nil {
				mu.Lock()
				errs = multierror.Append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errs.ErrorOrNil(); err != nil {
		return f, fmt.Errorf("testfleet: %w", err)
	}
	if err := f.linkJumpTopology(bootCtx); err != nil {
		return f, fmt.Errorf("testfleet: %w", err)
	}
	for _, n := range f.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.waitSSH(bootCtx); err != nil {
				mu.Lock()
				errs = multierror.Append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errs.ErrorOrNil(); err != nil {
		return f, fmt.Errorf("testfleet: %w", err)
	}
	for n, inst := range kubelets {
		if err := n.startKubelet(bootCtx, inst); err != nil {
			return f, fmt.Errorf("testfleet: %w", err)
		}
	}
	if opts.Detach {
		// The address block lives as long as the first node does.
		if err := f.block.setOwner(f.Nodes[0].UnsharePID); err != nil {
			return f, fmt.Errorf("testfleet: %w", err)
		}
	}
	if err := f.save(); err != nil {
		return f, fmt.Errorf("testfleet: %w", err)
	}
	return f, nil
}

// prepareNode writes a node's keys, sshd config and the files its overlay
// starts with, and returns its known_hosts lines.
func prepareNode(n *Node, hostname string) (string, error) {
	for _, d := range overlaid {
		for _, layer := range []string{"upper", "work"} {
			if err := os.MkdirAll(n.path(layer+"/"+d), 0o755); err != nil {
				return "", fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
	}
	var known strings.Builder
	var hostKeys []string
	for _, kt := range []string{"ed25519", "ecdsa"} {
		kp, err := writeKey(n.path("ssh_host_"+kt+"_key"), kt, "root@"+n.Name)
		if err != nil {
			return "", fmt.Errorf("node %s: %w", n.Name, err)
		}
		hostKeys = append(hostKeys, "HostKey "+kp.Path)
		known.WriteString(knownhosts.Line([]string{knownhosts.Normalize(n.SSHAddr())}, kp.Public) + "\n")
	}
	cfg := strings.Join(append(hostKeys,
		"ListenAddress "+n.SSHAddr(),
		"PidFile "+n.path("sshd.pid"),
		"StrictModes no",
		"PermitRootLogin yes",
		"PasswordAuthentication yes",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"UseDNS no",
		"PrintMotd no",
		"PrintLastLog no",
		// nodefix and ansible may open many connections at once to one
		// node (benchmarks map many inventory hosts onto few nodes).
		"MaxStartups 2000:30:4000",
		"MaxSessions 200",
		"Subsystem sftp /usr/lib/openssh/sftp-server",
		"AcceptEnv LANG LC_*",
		"LogLevel INFO",
	), "\n") + "\n"
	if err := os.WriteFile(n.path("sshd_config"), []byte(cfg), 0o644); err != nil {
		return "", fmt.Errorf("node %s: %w", n.Name, err)
	}
	etc := n.path("upper/etc")
	files := map[string]string{
		"hostname":   hostname + "\n",
		"hosts":      debianHosts(hostname),
		"machine-id": randomHex(16) + "\n",
		"iscsi/initiatorname.iscsi": "## DO NOT EDIT OR REMOVE THIS FILE!\nInitiatorName=iqn.1994-05.com.redhat:" +
			randomHex(6) + "\n",
	}
	for name, body := range files {
		path := filepath.Join(etc, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", fmt.Errorf("node %s: %w", n.Name, err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return "", fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return known.String(), nil
}

// debianHosts is /etc/hosts as a Debian installer writes it.
func debianHosts(hostname string) string {
	return "127.0.0.1\tlocalhost\n127.0.1.1\t" + hostname + "\n\n" +
		"# The following lines are desirable for IPv6 capable hosts\n" +
		"::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n"
}

func checkDirOutsideOverlays(dir string) error {
	for _, d := range append(overlaid, "run") {
		root := "/" + d
		if dir == root || strings.HasPrefix(dir, root+"/") {
			return fmt.Errorf("testfleet: fleet directory %s lies under %s, which every node overlays; use a directory under /tmp", dir, root)
		}
	}
	return nil
}

// Stop ends every node (each by its own pid: nothing else is signalled)
// and releases the fleet's addresses. Safe to call twice.
func (f *Fleet) Stop(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return nil
	}
	var errs *multierror.Error
	for _, n := range f.Nodes {
		if err := n.stop(ctx); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if err := f.removeHostLinks(ctx); err != nil {
		errs = multierror.Append(errs, err)
	}
	if errs.ErrorOrNil() == nil {
		f.block.release()
		f.netBlock.release()
		f.stopped = true
		os.Remove(f.statePath())
	}
	return errs.ErrorOrNil()
}

func (f *Fleet) statePath() string { return filepath.Join(f.Dir, "state.json") }

type savedFleet struct {
	*Fleet
	AddrLock  string `json:"addr_lock"`
	Prefix    string `json:"addr_prefix"`
	NetLock   string `json:"net_lock,omitempty"`
	NetPrefix string `json:"net_prefix,omitempty"`
}

func (f *Fleet) save() error {
	data, err := json.MarshalIndent(savedFleet{Fleet: f, AddrLock: f.block.lockFile, Prefix: f.block.prefix,
		NetLock: f.netBlock.lockFile, NetPrefix: f.netBlock.prefix}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(f.statePath(), data, 0o600)
}

// Load attaches to a fleet started with Detach from dir.
func Load(dir string) (*Fleet, error) {
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no fleet is running in %s (no state.json)", dir)
	}
	if err != nil {
		return nil, err
	}
	s := savedFleet{Fleet: &Fleet{}}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, "state.json"), err)
	}
	f := s.Fleet
	f.block = addrBlock{prefix: s.Prefix, lockFile: s.AddrLock}
	f.netBlock = addrBlock{prefix: s.NetPrefix, lockFile: s.NetLock}
	for _, n := range f.Nodes {
		n.fleetDir = f.Dir
	}
	return f, nil
}

// Node returns the node with the given inventory name.
func (f *Fleet) Node(name string) (*Node, bool) {
	for _, n := range f.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return nil, false
}

// closeInheritedFiles marks every descriptor this process inherited
// (beyond stdin, stdout, stderr) close-on-exec, so that the nodes do not
// hold them: a fleet started under `flock LOCK testfleet up` would keep
// the lock as long as it runs, and every other fleet waiting on it with it.
// Go's own descriptors are close-on-exec already.
func closeInheritedFiles() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
