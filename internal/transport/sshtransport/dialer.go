// Package sshtransport connects to hosts over SSH (golang.org/x/crypto/ssh,
// wrapped in github.com/melbahja/goph's client): one connection per host,
// reused for every command of every task; each command its own session.
//
// goph's own dial takes no context, so the connection is dialled here with
// one (and through ProxyJump hosts), the handshake bounded by the context's
// deadline, and the result wrapped in a goph.Client. Host keys are always
// checked against known_hosts (see HostKeyPolicy); passwords never leave
// memory except towards the host that asks for them.
package sshtransport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/melbahja/goph"
	"golang.org/x/crypto/ssh"

	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/inventory"
)

// Options are the run-wide SSH settings, from the command line and the
// environment. A host's inventory variables override them where Ansible's
// do.
type Options struct {
	// User is -u/--user: the remote user of hosts without ansible_user
	// (empty: the local user, as ssh).
	User string
	// PrivateKeyFile is --private-key, for hosts without
	// ansible_ssh_private_key_file.
	PrivateKeyFile string
	// Password is -k/--ask-pass, for hosts without ansible_password.
	Password transport.Secret
	// KnownHostsFiles is --known-hosts. Where a host's ssh args name
	// UserKnownHostsFile(s), those come first; with neither,
	// ~/.ssh/known_hosts. /etc/ssh/ssh_known_hosts is always read too.
	KnownHostsFiles []string
	// AcceptNew is --accept-new.
	AcceptNew bool
	// HostKeyCheckingOff is ANSIBLE_HOST_KEY_CHECKING=False.
	HostKeyCheckingOff bool
	// Become are -b, --become-user and -K.
	Become transport.BecomeDefaults
	// Prompter asks for key passphrases; nil: never ask.
	Prompter Prompter
	// HomeDir is where ~/.ssh is (empty: the user's home).
	HomeDir string
	// AgentSocket is SSH_AUTH_SOCK (empty: no agent).
	AgentSocket string
	// KeepAlive is how often an idle connection is checked; it is dropped
	// after three unanswered checks (OpenSSH's ServerAliveInterval and
	// ServerAliveCountMax). Zero: 15s; negative: never.
	KeepAlive time.Duration
	// Grace is how long a cancelled command gets between SIGTERM and the
	// closing of its session (zero: 5s). rpm must be able to close its
	// database: SIGKILL is what corrupts a Berkeley DB rpmdb.
	Grace time.Duration
	// Steps, when set, receives the steps of every connection (-vvv).
	Steps StepLogger
}

// Dialer connects to hosts. It is safe for concurrent use; Close it after
// the run to close shared jump host connections and the agent.
type Dialer struct {
	opts     Options
	home     string
	localUsr string
	keys     *keyring
	hostKeys *hostKeys
	jumps    *jumpPool
}

// NewDialer prepares connections for a run.
func NewDialer(opts Options) (*Dialer, error) {
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 15 * time.Second
	}
	if opts.Grace == 0 {
		opts.Grace = 5 * time.Second
	}
	home := opts.HomeDir
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	localUser := ""
	if u, err := user.Current(); err == nil {
		localUser = u.Username
	}
	hk, err := newHostKeys()
	if err != nil {
		return nil, err
	}
	d := &Dialer{
		opts:     opts,
		home:     home,
		localUsr: localUser,
		keys:     newKeyring(opts.AgentSocket, opts.Prompter),
		hostKeys: hk,
	}
	d.jumps = newJumpPool(d)
	return d, nil
}

// Close closes what connections share: jump host connections and the
// agent. Connections returned by Dial are closed by their own Close.
func (d *Dialer) Close() error {
	d.jumps.close()
	d.keys.close()
	return nil
}

// Error is a failure to connect; the runner reports the host unreachable.
type Error struct {
	Host string
	Addr string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("ssh to %s: %v", e.Addr, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// endpoint is one SSH server to connect to: a target or a jump host.
type endpoint struct {
	user string
	addr string // host:port, as known_hosts records it
}

// Dial connects to host name with its inventory connection settings. ctx
// bounds the whole connection: TCP, jump hosts, handshake and
// authentication.
func (d *Dialer) Dial(ctx context.Context, name string, c inventory.Connection) (*Conn, error) {
	target := d.targetEndpoint(name, c)
	fail := func(err error) (*Conn, error) { return nil, &Error{Host: name, Addr: target.addr, Err: err} }
	become, err := transport.BecomeFor(c, d.opts.Become)
	if err != nil {
		return fail(err)
	}
	if c.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.ConnectTimeout)
		defer cancel()
	}
	hops, err := parseProxyJump(c.ProxyJump, d.localUsr)
	if err != nil {
		return fail(err)
	}
	files := d.knownHostsFiles(c)
	policy, source := d.policy(c)
	var warnings []string
	var warnMu sync.Mutex
	log := connLog{warn: func(s string) { warnMu.Lock(); warnings = append(warnings, s); warnMu.Unlock() }}
	if d.opts.Steps != nil {
		log.step = func(s string) { d.opts.Steps(name, s) }
	}
	log.stepf("connecting to %s as %s%s", target.addr, target.user, hopsText(hops))
	log.stepf("host keys are verified with %s (%s)", strings.Join(append(append([]string{}, files.User...), files.Global...), ", "), policyText(policy, source))

	keyPath := d.keyPath(c)
	creds, err := d.credentials(c, keyPath)
	if err != nil {
		return fail(err)
	}
	log.stepf("offering %s", creds)
	if become.Enabled() {
		log.stepf("every command runs under %s", become) // Become's String never shows the password
	}
	var via *ssh.Client
	if len(hops) > 0 {
		if via, err = d.jumps.get(ctx, hops, keyPath, files, policy, source, log); err != nil {
			return fail(err)
		}
	}
	client, err := d.connect(ctx, via, target, creds, files, policy, source, log)
	if err != nil {
		return fail(err)
	}
	host, port, _ := net.SplitHostPort(target.addr)
	portNum, _ := strconv.Atoi(port)
	gc := &goph.Client{Client: client, Config: &goph.Config{
		User: target.user, Addr: host, Port: uint(portNum),
	}}
	return newConn(name, gc, become, d.opts, warnings), nil
}

func (d *Dialer) targetEndpoint(name string, c inventory.Connection) endpoint {
	host := c.Address
	if host == "" {
		host = name
	}
	port := c.Port
	if port == 0 {
		port = 22
	}
	u := c.User
	if u == "" {
		u = d.opts.User
	}
	if u == "" {
		u = d.localUsr
	}
	return endpoint{user: u, addr: net.JoinHostPort(host, strconv.Itoa(port))}
}

func (d *Dialer) knownHostsFiles(c inventory.Connection) knownHostsFiles {
	var f knownHostsFiles
	for _, p := range c.UserKnownHostsFiles {
		f.User = append(f.User, d.expandHome(p))
	}
	for _, p := range d.opts.KnownHostsFiles {
		f.User = append(f.User, d.expandHome(p))
	}
	if len(f.User) == 0 {
		f.User = []string{filepath.Join(d.home, ".ssh", "known_hosts")}
	}
	f.Global = []string{"/etc/ssh/ssh_known_hosts"}
	return f
}

func (d *Dialer) expandHome(p string) string {
	if p == "~" {
		return d.home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(d.home, p[2:])
	}
	return p
}

// policy decides what an unknown host key gets. As with ssh, where the
// first value given for an option wins and Ansible puts its host key
// setting before the inventory's ssh args: the environment, then the
// command line, then the host's StrictHostKeyChecking.
func (d *Dialer) policy(c inventory.Connection) (HostKeyPolicy, string) {
	if d.opts.HostKeyCheckingOff {
		return Off, "ANSIBLE_HOST_KEY_CHECKING=False"
	}
	if d.opts.AcceptNew {
		return AcceptNew, "--accept-new"
	}
	switch strings.ToLower(c.StrictHostKeyChecking) {
	case "no", "off", "false":
		return Off, "StrictHostKeyChecking=" + c.StrictHostKeyChecking
	case "accept-new":
		return AcceptNew, "StrictHostKeyChecking=accept-new"
	}
	return Strict, ""
}

// keyPath is the host's key file: ansible_ssh_private_key_file, else
// --private-key, else none (agent and default keys).
func (d *Dialer) keyPath(c inventory.Connection) string {
	keyPath := c.PrivateKeyFile
	if keyPath == "" {
		keyPath = d.opts.PrivateKeyFile
	}
	if keyPath != "" {
		keyPath = d.expandHome(keyPath)
	}
	return keyPath
}

// credentials are a host's keys (its key file, the agent, the default
// keys) and password (ansible_password, else -k).
func (d *Dialer) credentials(c inventory.Connection, keyPath string) (credentials, error) {
	keys, err := d.keys.signers(keyPath, d.home)
	if err != nil {
		return credentials{}, err
	}
	cr := credentials{keys: keys, password: transport.Secret(c.Password)}
	if cr.password == "" {
		cr.password = d.opts.Password
	}
	return cr, nil
}

// jumpCredentials are what jump hosts get: the target's keys, never a
// password: a host's password is sent to that host, not to a jump host on
// the way.
func (d *Dialer) jumpCredentials(keyPath string) (credentials, error) {
	keys, err := d.keys.signers(keyPath, d.home)
	if err != nil {
		return credentials{}, err
	}
	return credentials{keys: keys}, nil
}

// connect makes one SSH connection to e, over via when it is set (a jump
// host), and authenticates. The handshake is bounded by ctx: a server that
// accepts TCP and then says nothing is closed at the deadline.
func (d *Dialer) connect(ctx context.Context, via *ssh.Client, e endpoint, creds credentials, files knownHostsFiles, policy HostKeyPolicy, source string, log connLog) (*ssh.Client, error) {
	algos, err := d.hostKeys.algorithms(files, e.addr)
	if err != nil {
		return nil, err
	}
	if via != nil {
		log.stepf("%s: opening a channel to it through the jump host", e.addr)
	}
	log.stepf("%s: SSH handshake as %s, asking for host key types %s", e.addr, e.user, strings.Join(algos, ", "))
	seen := &authSeen{}
	cfg := &ssh.ClientConfig{
		User:              e.user,
		Auth:              creds.methods(log, seen),
		HostKeyCallback:   d.hostKeys.callback(files, policy, source, log),
		HostKeyAlgorithms: algos,
	}
	var conn net.Conn
	if via != nil {
		conn, err = via.DialContext(ctx, "tcp", e.addr)
	} else {
		var nd net.Dialer
		conn, err = nd.DialContext(ctx, "tcp", e.addr)
	}
	if err != nil {
		return nil, err
	}
	// x/crypto's channel connections (through a jump host) have no
	// deadlines: a watchdog closing the connection bounds both kinds.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, e.addr, cfg)
	if !stop() {
		// The watchdog fired: whatever the handshake returned, it is over.
		if c != nil {
			_ = c.Close()
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("connection timed out during the SSH handshake (the host accepts TCP connections but its sshd does not complete the handshake): %w", ctx.Err())
		}
		return nil, fmt.Errorf("SSH handshake: %w", ctx.Err())
	}
	if err != nil {
		_ = conn.Close()
		return nil, handshakeError(err, algos)
	}
	method := seen.get()
	if method == "" {
		method = "no credentials (the server asked for none)"
	}
	log.stepf("%s: authenticated as %s with %s", e.addr, e.user, method)
	return ssh.NewClient(c, chans, reqs), nil
}

func hopsText(hops []endpoint) string {
	if len(hops) == 0 {
		return ""
	}
	names := make([]string, len(hops))
	for i, h := range hops {
		names[i] = h.user + "@" + h.addr
	}
	return " through jump hosts " + strings.Join(names, ", ")
}

func policyText(p HostKeyPolicy, source string) string {
	var s string
	switch p {
	case Strict:
		return "unknown hosts refused"
	case AcceptNew:
		s = "unknown hosts recorded, as OpenSSH's accept-new"
	case Off:
		s = "host key checking off: unknown hosts accepted unverified"
	}
	return s + ", by " + source
}

// handshakeError explains the handshake failures an operator can act on.
func handshakeError(err error, algos []string) error {
	var hk *HostKeyError
	if errors.As(err, &hk) {
		return hk
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no common algorithm for host key") && len(algos) > 0:
		return fmt.Errorf("the host offers none of the host key types known_hosts records for it (%s): its host keys changed? %w", strings.Join(algos, ", "), err)
	case strings.Contains(msg, "unable to authenticate"):
		return fmt.Errorf("authentication failed (tried the ssh-agent, key files and any password given): %w", err)
	}
	return err
}
