package main

import (
	"context"
	"strings"

	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/internal/termio"
	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/internal/transport/local"
	"github.com/nodefix/nodefix/internal/transport/sshtransport"
)

// dialer picks each host's transport: local for ansible_connection=local
// or --connection local, ssh otherwise.
type dialer struct {
	ssh                *sshtransport.Dialer
	forceLocal         bool
	become             transport.BecomeDefaults
	hostKeyCheckingOff bool
	steps              sshtransport.StepLogger // -vvv; nil otherwise
}

func newDialer(o runOptions, getenv func(string) string, prompter *termio.Prompter, steps sshtransport.StepLogger) (*dialer, error) {
	off := ansibleFalse(getenv("ANSIBLE_HOST_KEY_CHECKING"))
	var p sshtransport.Prompter
	if prompter != nil {
		p = prompter
	}
	ssh, err := sshtransport.NewDialer(sshtransport.Options{
		User:               o.user,
		PrivateKeyFile:     o.privateKey,
		Password:           o.sshPassword,
		KnownHostsFiles:    o.knownHosts,
		AcceptNew:          o.acceptNew,
		HostKeyCheckingOff: off,
		Become:             o.become,
		Prompter:           p,
		AgentSocket:        getenv("SSH_AUTH_SOCK"),
		Steps:              steps,
	})
	if err != nil {
		return nil, err
	}
	return &dialer{ssh: ssh, forceLocal: o.connection == "local", become: o.become, hostKeyCheckingOff: off, steps: steps}, nil
}

// Dial implements runner.Dialer.
func (d *dialer) Dial(ctx context.Context, t runner.Target) (transport.Conn, error) {
	if d.forceLocal || t.Conn.Type == "local" {
		b, err := transport.BecomeFor(t.Conn, d.become)
		if err != nil {
			return nil, err
		}
		if d.steps != nil {
			d.steps(t.Host.Name, "local: commands run on this machine, under "+b.String())
		}
		return local.New(b)
	}
	c, err := d.ssh.Dial(ctx, t.Host.Name, t.Conn)
	if err != nil {
		return nil, err // a nil *Conn must not become a non-nil interface
	}
	return c, nil
}

func (d *dialer) Close() error { return d.ssh.Close() }

// ansibleFalse reads a boolean environment variable as Ansible does.
func ansibleFalse(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "false", "no", "n", "f", "0", "off":
		return true
	}
	return false
}
