package sshtransport

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// parseProxyJump reads OpenSSH's ProxyJump value: [user@]host[:port] hops,
// comma-separated, or ssh://[user@]host[:port] URIs. A hop without a user
// connects as the local user, as ssh does.
func parseProxyJump(spec, localUser string) ([]endpoint, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.EqualFold(spec, "none") {
		return nil, nil
	}
	var hops []endpoint
	for _, hop := range strings.Split(spec, ",") {
		hop = strings.TrimSpace(hop)
		e, err := parseHop(hop, localUser)
		if err != nil {
			return nil, fmt.Errorf("ProxyJump %q: %w", spec, err)
		}
		hops = append(hops, e)
	}
	return hops, nil
}

func parseHop(hop, localUser string) (endpoint, error) {
	if hop == "" {
		return endpoint{}, fmt.Errorf("empty jump host")
	}
	user, hostport := localUser, hop
	if strings.HasPrefix(hop, "ssh://") {
		u, err := url.Parse(hop)
		if err != nil {
			return endpoint{}, err
		}
		if u.User != nil && u.User.Username() != "" {
			user = u.User.Username()
		}
		hostport = u.Host
	} else if i := strings.LastIndex(hop, "@"); i >= 0 {
		user, hostport = hop[:i], hop[i+1:]
	}
	host, port := hostport, "22"
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	if host == "" || strings.ContainsAny(host, " /") {
		return endpoint{}, fmt.Errorf("jump host %q has no valid host name", hop)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return endpoint{}, fmt.Errorf("jump host %q: bad port %q", hop, port)
	}
	return endpoint{user: user, addr: net.JoinHostPort(host, port)}, nil
}

// jumpPool shares jump host connections: a fleet behind one bastion
// connects to the bastion once and opens a channel through it per target.
type jumpPool struct {
	d      *Dialer
	ctx    context.Context // ended by close: jump connections outlive single hosts
	cancel context.CancelFunc

	mu    sync.Mutex
	conns map[string]*jumpConn // by the chain up to and including the hop
}

type jumpConn struct {
	ready  chan struct{}
	client *ssh.Client
	err    error
}

func newJumpPool(d *Dialer) *jumpPool {
	ctx, cancel := context.WithCancel(context.Background())
	return &jumpPool{d: d, ctx: ctx, cancel: cancel, conns: map[string]*jumpConn{}}
}

// get returns a client connected to the last hop, through the earlier ones.
func (p *jumpPool) get(ctx context.Context, hops []endpoint, keyPath string, files knownHostsFiles, policy HostKeyPolicy, source string, log connLog) (*ssh.Client, error) {
	var via *ssh.Client
	chain := []string{keyPath} // hosts with different keys do not share
	for _, hop := range hops {
		chain = append(chain, hop.user+"@"+hop.addr)
		key := strings.Join(chain, ",")
		p.mu.Lock()
		jc, ok := p.conns[key]
		if !ok {
			jc = &jumpConn{ready: make(chan struct{})}
			p.conns[key] = jc
			log.stepf("jump host %s@%s: connecting", hop.user, hop.addr)
			go p.dial(ctx, jc, via, hop, keyPath, files, policy, source, log)
		} else {
			log.stepf("jump host %s@%s: sharing the connection this run has to it", hop.user, hop.addr)
		}
		p.mu.Unlock()
		select {
		case <-jc.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("jump host %s: %w", hop.addr, ctx.Err())
		}
		if jc.err != nil {
			return nil, fmt.Errorf("jump host %s: %w", hop.addr, jc.err)
		}
		via = jc.client
	}
	return via, nil
}

// dial connects a jump host. It is bounded by the deadline of the host that
// first needed it, but not cancelled with that host: others share it.
func (p *jumpPool) dial(ctx context.Context, jc *jumpConn, via *ssh.Client, hop endpoint, keyPath string, files knownHostsFiles, policy HostKeyPolicy, source string, log connLog) {
	defer close(jc.ready)
	dctx := p.ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(p.ctx, deadline)
		defer cancel()
	}
	creds, err := p.d.jumpCredentials(keyPath)
	if err != nil {
		jc.err = err
		return
	}
	jc.client, jc.err = p.d.connect(dctx, via, hop, creds, files, policy, source, log)
}

func (p *jumpPool) close() {
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, jc := range p.conns {
		select {
		case <-jc.ready:
			if jc.client != nil {
				_ = jc.client.Close()
			}
		default:
		}
	}
}
