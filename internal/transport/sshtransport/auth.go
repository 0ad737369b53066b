package sshtransport

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Prompter asks the operator for a secret (a key's passphrase). It returns
// an error when there is no terminal to ask on.
type Prompter interface {
	ReadSecret(prompt string) (string, error)
}

// keyring holds the private keys of a run: the ssh-agent's, and key files
// loaded once each however many hosts use them.
type keyring struct {
	prompter Prompter
	agent    agent.ExtendedAgent // nil without SSH_AUTH_SOCK
	agentC   io.Closer

	mu    sync.Mutex
	files map[string]*keyFile
}

func newKeyring(agentSocket string, prompter Prompter) *keyring {
	k := &keyring{prompter: prompter, files: map[string]*keyFile{}}
	if agentSocket != "" {
		// As OpenSSH: an agent that cannot be reached is not an error,
		// the other methods are tried.
		if c, err := net.Dial("unix", agentSocket); err == nil {
			k.agent, k.agentC = agent.NewClient(c), c
		}
	}
	return k
}

func (k *keyring) close() {
	if k.agentC != nil {
		_ = k.agentC.Close()
	}
}

// keyFile is a private key file. An encrypted key is loaded lazily: its
// public key is offered first and the passphrase asked only when the
// server accepts that key, as OpenSSH does.
type keyFile struct {
	path     string
	explicit bool // named by the operator: a problem with it is an error
	pub      ssh.PublicKey
	err      error // the file cannot be used

	prompter Prompter
	mu       sync.Mutex
	signer   ssh.Signer
	signErr  error
}

func (k *keyring) keyFile(path string, explicit bool) *keyFile {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f, ok := k.files[path]; ok {
		if explicit {
			f.explicit = true
		}
		return f
	}
	f := loadKeyFile(path, explicit, k.prompter)
	k.files[path] = f
	return f
}

func loadKeyFile(path string, explicit bool, prompter Prompter) *keyFile {
	f := &keyFile{path: path, explicit: explicit, prompter: prompter}
	data, err := os.ReadFile(path)
	if err != nil {
		f.err = fmt.Errorf("reading private key: %w", err)
		return f
	}
	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		f.signer, f.pub = signer, signer.PublicKey()
	case errors.As(err, &missing):
		f.pub = missing.PublicKey
		if f.pub == nil { // PEM-encrypted keys do not carry it: OpenSSH reads KEY.pub
			if pubData, err := os.ReadFile(path + ".pub"); err == nil {
				f.pub, _, _, _, _ = ssh.ParseAuthorizedKey(pubData)
			}
		}
		if f.pub == nil {
			f.err = fmt.Errorf("private key %s is encrypted and %s.pub is missing: add the key to ssh-agent (ssh-add %s)", path, path, path)
		}
	default:
		f.err = fmt.Errorf("private key %s: %w", path, err)
	}
	return f
}

// Signer returns the key's signer; for an encrypted key it is a lazy one.
func (f *keyFile) Signer() ssh.Signer {
	if f.signer != nil {
		return f.signer
	}
	return lazySigner{f}
}

// unlock asks the passphrase (once per run, three tries).
func (f *keyFile) unlock() (ssh.Signer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.signer != nil || f.signErr != nil {
		return f.signer, f.signErr
	}
	if f.prompter == nil {
		f.signErr = fmt.Errorf("private key %s is encrypted and there is no terminal to ask its passphrase: add it to ssh-agent (ssh-add %s)", f.path, f.path)
		return nil, f.signErr
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.signErr = fmt.Errorf("reading private key: %w", err)
		return nil, f.signErr
	}
	for try := 0; try < 3; try++ {
		pass, err := f.prompter.ReadSecret(fmt.Sprintf("Enter passphrase for key '%s': ", f.path))
		if err != nil {
			f.signErr = fmt.Errorf("private key %s is encrypted: %w: add it to ssh-agent (ssh-add %s)", f.path, err, f.path)
			return nil, f.signErr
		}
		signer, err := ssh.ParsePrivateKeyWithPassphrase(data, []byte(pass))
		if err == nil {
			f.signer = signer
			return signer, nil
		}
		if !errors.Is(err, x509.IncorrectPasswordError) {
			f.signErr = fmt.Errorf("private key %s: %w", f.path, err)
			return nil, f.signErr
		}
	}
	f.signErr = fmt.Errorf("private key %s: wrong passphrase three times", f.path)
	return nil, f.signErr
}

// lazySigner offers an encrypted key's public half and decrypts the key
// only when a server asks for a signature with it.
type lazySigner struct{ f *keyFile }

func (s lazySigner) PublicKey() ssh.PublicKey { return s.f.pub }

func (s lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	signer, err := s.f.unlock()
	if err != nil {
		return nil, err
	}
	return signer.Sign(rand, data)
}

// SignWithAlgorithm lets RSA keys use rsa-sha2-256/512, which servers
// that refuse SHA-1 signatures (OpenSSH ≥ 8.8) require.
func (s lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	signer, err := s.f.unlock()
	if err != nil {
		return nil, err
	}
	if as, ok := signer.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	return signer.Sign(rand, data)
}

// defaultKeyFiles are OpenSSH's default identities, tried when no key file
// is named.
func defaultKeyFiles(home string) []string {
	if home == "" {
		return nil
	}
	var files []string
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		files = append(files, filepath.Join(home, ".ssh", name))
	}
	return files
}

// signers returns the keys to offer to one host, in OpenSSH's order: the
// named key file (through the agent when the agent holds it), the agent's
// other keys, then the default key files when no key was named. Each key
// is offered once.
func (k *keyring) signers(keyPath string, home string) ([]offeredKey, error) {
	var agentSigners []ssh.Signer
	if k.agent != nil {
		agentSigners, _ = k.agent.Signers() // an agent that fails: as none
	}
	inAgent := func(pub ssh.PublicKey) ssh.Signer {
		for _, s := range agentSigners {
			if bytes.Equal(s.PublicKey().Marshal(), pub.Marshal()) {
				return s
			}
		}
		return nil
	}
	var out []offeredKey
	seen := map[string]bool{}
	add := func(s ssh.Signer, source string) {
		blob := string(s.PublicKey().Marshal())
		if !seen[blob] {
			seen[blob] = true
			out = append(out, offeredKey{signer: s, source: source})
		}
	}
	addFile := func(f *keyFile) {
		if s := inAgent(f.pub); s != nil {
			add(s, f.path+", from ssh-agent")
			return
		}
		s := f.Signer()
		if _, lazy := s.(lazySigner); lazy {
			add(s, f.path+", encrypted")
			return
		}
		add(s, f.path)
	}
	if keyPath != "" {
		f := k.keyFile(keyPath, true)
		if f.err != nil {
			return nil, f.err
		}
		addFile(f)
	}
	for _, s := range agentSigners {
		add(s, "ssh-agent")
	}
	if keyPath == "" {
		for _, path := range defaultKeyFiles(home) {
			f := k.keyFile(path, false)
			if f.err != nil {
				continue // as OpenSSH: a missing or unusable default key is skipped
			}
			addFile(f)
		}
	}
	return out, nil
}
