package testfleet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

// NetLink places a node of a jump topology: its address on a veth link,
// and (for nodes behind the jump host) the jump host to go through.
type NetLink struct {
	// Addr is the node's address on its link.
	Addr string `json:"addr"`
	// PeerAddr is the other end: this machine for the jump host, the jump
	// host for a node behind it.
	PeerAddr string `json:"peer_addr"`
	// Veth is the name of the link's end outside the node.
	Veth string `json:"veth"`
	// ProxyJump is "root@JUMPADDR:22" for a node behind the jump host.
	ProxyJump string `json:"proxy_jump,omitempty"`
	// JumpPID is the jump host's PID 1 (for probing from its namespace).
	JumpPID int `json:"jump_pid,omitempty"`
}

// planJumpTopology assigns link addresses: the jump host (node 1) gets
// .2 on a /30 whose .1 is this machine; node k behind it gets .4k+2 on a
// /30 whose .4k+1 is the jump host. This machine has no route to those
// /30s, and the jump host's namespace does not forward, so they are
// reachable only through the jump host's sshd.
func (f *Fleet) planJumpTopology(opts Options) (map[int]*NetLink, error) {
	if len(opts.BehindJump) == 0 {
		return nil, nil
	}
	if len(opts.BehindJump) > 60 {
		return nil, fmt.Errorf("testfleet: at most 60 nodes behind the jump host, got %d", len(opts.BehindJump))
	}
	var err error
	if f.netBlock, err = allocateAddrBlock(os.Getpid(), benchmarkNetPrefix); err != nil {
		return nil, fmt.Errorf("testfleet: %w", err)
	}
	tag := fmt.Sprintf("nf%x", os.Getpid()%0xfffff)
	jump := &NetLink{Addr: f.netBlock.addr(2), PeerAddr: f.netBlock.addr(1), Veth: tag + "j"}
	links := map[int]*NetLink{1: jump}
	for k, i := range opts.BehindJump {
		if i < 2 || i > opts.Nodes || slices.Contains(opts.BehindJump[:k], i) {
			return nil, fmt.Errorf("testfleet: BehindJump: node %d: want distinct nodes 2..%d", i, opts.Nodes)
		}
		base := 4 * (k + 1)
		links[i] = &NetLink{
			Addr:      f.netBlock.addr(base + 2),
			PeerAddr:  f.netBlock.addr(base + 1),
			Veth:      fmt.Sprintf("%sh%d", tag, k+1),
			ProxyJump: "root@" + jump.Addr + ":22",
		}
	}
	return links, nil
}

// linkJumpTopology creates the veth links once every node's namespaces
// exist; each node's init waits for its address before starting sshd.
func (f *Fleet) linkJumpTopology(ctx context.Context) error {
	var jump *Node
	for _, n := range f.Nodes {
		if n.Net != nil && n.Net.ProxyJump == "" {
			jump = n
		}
	}
	if jump == nil {
		return nil
	}
	pid := func(n *Node) string { return strconv.Itoa(n.InitPID) }
	steps := [][]string{
		{"ip", "link", "add", jump.Net.Veth, "type", "veth", "peer", "name", "eth0", "netns", pid(jump)},
		{"ip", "addr", "add", jump.Net.PeerAddr + "/30", "dev", jump.Net.Veth},
		{"ip", "link", "set", jump.Net.Veth, "up"},
		{"nsenter", "-t", pid(jump), "-n", "ip", "link", "set", "eth0", "up"},
		{"nsenter", "-t", pid(jump), "-n", "ip", "addr", "add", jump.Net.Addr + "/30", "dev", "eth0"},
	}
	for _, n := range f.Nodes {
		if n.Net == nil || n == jump {
			continue
		}
		n.Net.JumpPID = jump.InitPID
		steps = append(steps,
			[]string{"ip", "link", "add", n.Net.Veth, "netns", pid(jump), "type", "veth", "peer", "name", "eth0", "netns", pid(n)},
			[]string{"nsenter", "-t", pid(jump), "-n", "ip", "addr", "add", n.Net.PeerAddr + "/30", "dev", n.Net.Veth},
			[]string{"nsenter", "-t", pid(jump), "-n", "ip", "link", "set", n.Net.Veth, "up"},
			[]string{"nsenter", "-t", pid(n), "-n", "ip", "link", "set", "eth0", "up"},
			[]string{"nsenter", "-t", pid(n), "-n", "ip", "addr", "add", n.Net.Addr + "/30", "dev", "eth0"},
		)
	}
	for _, step := range steps {
		if out, err := exec.CommandContext(ctx, step[0], step[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("linking the jump topology: %q: %w: %s", step, err, out)
		}
	}
	return nil
}

// removeHostLinks deletes the jump host's link in this machine's network
// namespace. The kernel would delete it with the node's namespace, but in
// a work queue, some time after the node's last process is gone: a
// teardown that returned before that would leave it to race the next
// fleet's links.
func (f *Fleet) removeHostLinks(ctx context.Context) error {
	for _, n := range f.Nodes {
		if n.Net == nil || n.Net.ProxyJump != "" {
			continue // only the jump host's link lives in this namespace
		}
		for {
			if err := exec.CommandContext(ctx, "ip", "link", "show", "dev", n.Net.Veth).Run(); err != nil {
				break // gone (or never made)
			}
			// Deleting one end of a veth pair deletes both; the kernel may
			// be deleting it already, so a failure is only news if the link
			// is still there on the next look.
			_ = exec.CommandContext(ctx, "ip", "link", "del", "dev", n.Net.Veth).Run()
			select {
			case <-ctx.Done():
				return fmt.Errorf("node %s: link %s still there: %w", n.Name, n.Net.Veth, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}
