package sshtransport

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// These tests run a real OpenSSH sshd, started by the test as root in its
// own mount and PID namespace on a loopback port, with keys generated for
// the test. Without root or sshd they skip, unless NODEFIX_FLEET=required.

func requireSSHD(t *testing.T) {
	t.Helper()
	var missing string
	switch {
	case os.Geteuid() != 0:
		missing = "needs root to run sshd"
	default:
		for _, p := range []string{"/usr/sbin/sshd", "unshare", "ssh-keygen"} {
			if _, err := exec.LookPath(p); err != nil {
				missing = p + " not installed (openssh-server, util-linux)"
			}
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("NODEFIX_FLEET") == "required" {
		t.Fatalf("NODEFIX_FLEET=required: %s", missing)
	}
	t.Skip(missing)
}

// testSSHD is one sshd for a test.
type testSSHD struct {
	dir      string
	addr     string // host:port
	hostKeys map[string]ssh.PublicKey
	cmd      *exec.Cmd
}

type sshdOptions struct {
	// KeyTypes are the host key types (default ed25519).
	KeyTypes []string
	// Extra is appended to sshd_config.
	Extra string
}

// clientKey is a key pair for the tests' client, as an OpenSSH private key
// file and its authorized_keys line.
type clientKey struct {
	path string
	pub  ssh.PublicKey
}

func newClientKey(t *testing.T, passphrase string) clientKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "nodefix test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "nodefix test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	return clientKey{path: path, pub: sshPub}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startSSHD(t *testing.T, authorized []ssh.PublicKey, o sshdOptions) *testSSHD {
	t.Helper()
	requireSSHD(t)
	if len(o.KeyTypes) == 0 {
		o.KeyTypes = []string{"ed25519"}
	}
	s := &testSSHD{dir: t.TempDir(), hostKeys: map[string]ssh.PublicKey{}}
	var cfg strings.Builder
	for _, kt := range o.KeyTypes {
		path := filepath.Join(s.dir, "host_"+kt)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", kt, "-N", "", "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
		pubData, _ := os.ReadFile(path + ".pub")
		pub, _, _, _, err := ssh.ParseAuthorizedKey(pubData)
		if err != nil {
			t.Fatal(err)
		}
		s.hostKeys[kt] = pub
		fmt.Fprintf(&cfg, "HostKey %s\n", path)
	}
	var auth strings.Builder
	for _, k := range authorized {
		auth.Write(ssh.MarshalAuthorizedKey(k))
	}
	if err := os.WriteFile(filepath.Join(s.dir, "authorized_keys"), []byte(auth.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s.addr = freePort(t)
	fmt.Fprintf(&cfg, `ListenAddress %s
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel ERROR
%s
`, s.addr, s.dir, s.dir, o.Extra)
	cfgPath := filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd needs /run/sshd; a private /run in its own mount namespace
	// leaves the machine's alone, and its own PID namespace means every
	// process it starts dies with it. An empty home for root keeps the
	// machine's dotfiles (a slow .bashrc) out of the sessions.
	home := filepath.Join(s.dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc", "--kill-child",
		"sh", "-c", `mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd && mount --bind "$2" /root && exec /usr/sbin/sshd -D -e -f "$1"`, "sh", cfgPath, home)
	s.cmd.Stderr = &testLog{t: t}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s", s.addr)
		}
	}
	return s
}

func (s *testSSHD) stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// knownHosts writes a known_hosts file recording the given key types.
func (s *testSSHD) knownHosts(t *testing.T, keyTypes ...string) string {
	t.Helper()
	var lines []string
	for _, kt := range keyTypes {
		lines = append(lines, knownhosts.Line([]string{s.addr}, s.hostKeys[kt]))
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testLog sends sshd's log to the test log.
type testLog struct{ t *testing.T }

func (l *testLog) Write(p []byte) (int, error) {
	l.t.Logf("sshd: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}
