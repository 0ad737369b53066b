package sshtransport

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/nodefix/nodefix/internal/transport"
)

// stepLog collects the steps of a dialer, by host.
type stepLog struct {
	mu    sync.Mutex
	steps []string
}

func (l *stepLog) log(host, step string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, host+": "+step)
}

func (l *stepLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.steps, "\n")
}

// Steps say where a connection went, how the host key was verified and
// how it authenticated, and never a passphrase or password.
func TestConnectionSteps(t *testing.T) {
	plain := newClientKey(t, "")
	const passphrase = "passphrase-4c1d-never-shown"
	encrypted := newClientKey(t, passphrase)
	jump := startSSHD(t, []ssh.PublicKey{plain.pub}, sshdOptions{})
	target := startSSHD(t, []ssh.PublicKey{plain.pub, encrypted.pub}, sshdOptions{})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(knownhosts.Line([]string{jump.addr}, jump.hostKeys["ed25519"])+"\n"+
		knownhosts.Line([]string{target.addr}, target.hostKeys["ed25519"])+"\n"), 0o600)
	fp := func(k ssh.PublicKey) string { return keyName(k) }

	for _, tc := range []struct {
		name      string
		opts      Options
		proxyJump string
		want      []string
		never     []string
	}{
		{
			name: "a key, a known host",
			opts: Options{PrivateKeyFile: plain.path, KnownHostsFiles: []string{kh}},
			want: []string{
				"node: ssh: connecting to " + target.addr + " as root",
				"host keys are verified with " + kh + ", /etc/ssh/ssh_known_hosts (unknown hosts refused)",
				"node: ssh: offering public keys " + fp(plain.pub) + " (" + plain.path + ")",
				"node: ssh: " + target.addr + ": SSH handshake as root, asking for host key types ssh-ed25519",
				"node: ssh: " + target.addr + ": host key " + fp(target.hostKeys["ed25519"]) + " matches " + kh + ":2",
				"node: ssh: the server accepts public key " + fp(plain.pub) + " (" + plain.path + "): signing with it",
				"node: ssh: " + target.addr + ": authenticated as root with public key " + fp(plain.pub) + " (" + plain.path + ")",
			},
		},
		{
			name: "an encrypted key and a password, become with a password",
			opts: Options{PrivateKeyFile: encrypted.path, KnownHostsFiles: []string{kh}, Prompter: &fakePrompter{answers: []string{passphrase}},
				Password: "ssh-password-never-shown", Become: transport.BecomeDefaults{Enable: true, Password: "become-password-never-shown"}},
			want: []string{
				"offering public keys " + fp(encrypted.pub) + " (" + encrypted.path + ", encrypted), then a password",
				"every command runs under become root via sudo (password set: true)",
				"authenticated as root with public key " + fp(encrypted.pub) + " (" + encrypted.path + ", encrypted)",
			},
			never: []string{passphrase, "ssh-password-never-shown", "become-password-never-shown"},
		},
		{
			name:      "through a jump host",
			opts:      Options{PrivateKeyFile: plain.path, KnownHostsFiles: []string{kh}},
			proxyJump: "root@" + jump.addr,
			want: []string{
				"connecting to " + target.addr + " as root through jump hosts root@" + jump.addr,
				"jump host root@" + jump.addr + ": connecting",
				jump.addr + ": host key " + fp(jump.hostKeys["ed25519"]) + " matches " + kh + ":1",
				jump.addr + ": authenticated as root with public key",
				target.addr + ": opening a channel to it through the jump host",
				target.addr + ": authenticated as root with public key",
			},
		},
		{
			name: "an unknown host, accepted",
			opts: Options{PrivateKeyFile: plain.path, KnownHostsFiles: []string{filepath.Join(t.TempDir(), "new_known_hosts")}, AcceptNew: true},
			want: []string{
				"(unknown hosts recorded, as OpenSSH's accept-new, by --accept-new)",
				"host key " + fp(target.hostKeys["ed25519"]) + " is not known: accepted and recorded in",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var steps stepLog
			tc.opts.Steps = steps.log
			d := dialer(t, tc.opts)
			c := connection(t, target.addr)
			c.ProxyJump = tc.proxyJump
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := d.Dial(ctx, "node", c)
			if err != nil {
				t.Fatalf("%v\nsteps:\n%s", err, steps.text())
			}
			conn.Close()
			got := steps.text()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("no step %q in:\n%s", w, got)
				}
			}
			for _, s := range tc.never {
				if strings.Contains(got, s) {
					t.Errorf("a secret in the steps:\n%s", got)
				}
			}
		})
	}

	// Without a StepLogger nothing is traced: the signers are the keys.
	d := dialer(t, Options{PrivateKeyFile: plain.path, KnownHostsFiles: []string{kh}})
	creds, err := d.credentials(connection(t, target.addr), plain.path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%T", creds.keys[0].signer) == fmt.Sprintf("%T", tracedSigner{}) {
		t.Error("keys traced without a StepLogger")
	}
	if n := len(creds.methods(connLog{}, &authSeen{})); n != 1 {
		t.Errorf("%d auth methods for one key and no password", n)
	}
}
