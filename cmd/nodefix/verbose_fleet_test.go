package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/termio/ptytest"
	"github.com/nodefix/nodefix/internal/testfleet"
)

// -vvv on a fleet: what connecting did, every command each task ran with
// its output, the failing node's failure in its own words; and no secret,
// whichever way the run authenticates.
func TestFleetVerbose(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 2})
	ctx := context.Background()
	// node02's iscsiadm cannot start, as with a library missing.
	const complaint = "iscsiadm: error while loading shared libraries: libisns.so.0: cannot open shared object file"
	if _, err := f.Nodes[1].Sh(ctx, `p=$(command -v iscsiadm) && printf '#!/bin/sh\necho "%s" >&2\nexit 127\n' "$1" > "$p"`, complaint); err != nil {
		t.Fatal(err)
	}

	t.Run("levels", func(t *testing.T) {
		for _, tc := range []struct {
			flag  string
			shown []string
			not   []string
		}{
			{"-v",
				[]string{"failed: [node02] => longhorn-deps", "    details: {"},
				[]string{"EXEC", "ssh: connecting"}},
			{"-vv",
				[]string{"<node02> longhorn-deps: EXEC sh -c '# nodefix:longhorn-deps", "(rc=0, "},
				[]string{"stdout (", "ssh: connecting"}},
			{"-vvv",
				[]string{
					"<node01> ssh: connecting to " + f.Nodes[0].Addr + ":22 as root",
					"matches " + f.KnownHostsFile + ":",
					"ssh: " + f.Nodes[1].Addr + ":22: authenticated as root with public key ssh-ed25519 SHA256:",
					"(" + f.ClientKeyFile + ")",
					"<node02> longhorn-deps: EXEC sh -c '# nodefix:longhorn-deps",
					"    stdout (",
					complaint,
					"failed: [node02] => longhorn-deps",
				},
				nil},
		} {
			t.Run(tc.flag, func(t *testing.T) {
				r := nodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "longhorn-deps", tc.flag)
				if r.code != exitcode.HostFailed {
					t.Errorf("exit %d, want %d", r.code, exitcode.HostFailed)
				}
				for _, s := range tc.shown {
					if !strings.Contains(r.stdout, s) {
						t.Errorf("%s: no %q", tc.flag, s)
					}
				}
				for _, s := range tc.not {
					if strings.Contains(r.stdout, s) {
						t.Errorf("%s shows %q", tc.flag, s)
					}
				}
			})
		}
	})

	t.Run("no secret at -vvv", func(t *testing.T) {
		passphrase := "kp-" + randomHex(t)
		key := encryptedKey(t, passphrase)
		for _, n := range f.Nodes {
			if _, err := n.Sh(ctx, `printf '%s\n' "$1" >> /home/`+f.SudoUser+`/.ssh/authorized_keys`, strings.TrimSpace(string(key.pub))); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name    string
			vars    map[string]any
			args    []string
			answers map[string]string // prompt → what the operator types
			auth    string
		}{
			{
				name: "an encrypted key, become password from the inventory",
				vars: map[string]any{"ansible_user": f.SudoUser, "ansible_ssh_private_key_file": key.path,
					"ansible_become": true, "ansible_become_password": f.SudoPassword},
				answers: map[string]string{"Enter passphrase for key": passphrase},
				auth:    "authenticated as " + f.SudoUser + " with public key ssh-ed25519 SHA256:",
			},
			{
				name: "SSH and become passwords asked (-k -K)",
				vars: map[string]any{"ansible_user": f.SudoUser, "ansible_ssh_private_key_file": ""},
				args: []string{"-k", "-b", "-K"},
				// deploy's login password is its sudo password.
				answers: map[string]string{"SSH password: ": f.SudoPassword, "BECOME password": f.SudoPassword},
				auth:    "authenticated as " + f.SudoUser + " with password authentication",
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				vars := filepath.Join(t.TempDir(), "vars.json")
				data, _ := json.Marshal(tc.vars)
				if err := os.WriteFile(vars, data, 0o600); err != nil {
					t.Fatal(err)
				}
				args := append([]string{"run", "-i", f.InventoryYAML, "-e", "@" + vars, "--tasks", "hostname,longhorn-deps", "-l", "node01", "-vvv"}, tc.args...)
				stdout, stderr, terminal, code := nodefixOnTerminal(t, args, tc.answers)
				out := stdout + stderr
				if code != 0 {
					t.Errorf("exit %d", code)
				}
				for _, want := range []string{tc.auth, "<node01> ssh: every command runs under become root via sudo (password set: true)",
					"<node01> hostname: EXEC sh -c", "ok: [node01] => longhorn-deps"} {
					if !strings.Contains(out, want) {
						t.Errorf("no %q in the -vvv output: the test proves nothing", want)
					}
				}
				for name, secret := range map[string]string{"key passphrase": passphrase, "password": f.SudoPassword} {
					if strings.Contains(out, secret) {
						t.Errorf("the %s is in the -vvv output", name)
					}
					if strings.Contains(terminal, secret) {
						t.Errorf("the %s was echoed on the terminal", name)
					}
				}
			})
		}
	})
}

// nodefixOnTerminal runs nodefix with a pseudo-terminal as its controlling
// terminal, typing answers to the prompts it shows there, each once.
func nodefixOnTerminal(t *testing.T, args []string, answers map[string]string) (stdout, stderr, terminal string, code int) {
	t.Helper()
	master, slave := ptytest.Open(t)
	cmd := exec.Command(nodefixBinary(t), args...)
	cmd.Env = cleanEnv(t)
	cmd.Stdin = slave
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var screen bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		answered := map[string]bool{}
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			shown := screen.String()
			mu.Unlock()
			for prompt, answer := range answers {
				if !answered[prompt] && strings.Contains(shown, prompt) {
					answered[prompt] = true
					master.WriteString(answer + "\n")
				}
			}
			if err != nil {
				return
			}
		}
	}()
	err := cmd.Wait()
	slave.Close()
	master.SetReadDeadline(time.Now().Add(time.Second))
	<-done
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	terminal = screen.String()
	mu.Unlock()
	t.Logf("nodefix %s: exit %d\nterminal: %q\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, terminal, out.String(), errOut.String())
	return out.String(), errOut.String(), terminal, code
}

type testKey struct {
	path string
	pub  []byte // authorized_keys line
}

// encryptedKey writes an ed25519 key encrypted with passphrase.
func encryptedKey(t *testing.T, passphrase string) testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "nodefix -vvv test", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519_encrypted")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{path: path, pub: ssh.MarshalAuthorizedKey(sshPub)}
}

func randomHex(t *testing.T) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
