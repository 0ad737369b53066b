package sshtransport

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/nodefix/nodefix/internal/transport"
)

// StepLogger receives the steps of connecting to a host, for -vvv: the
// address and user, jump hosts, how the host key was verified and where
// it is recorded, the keys offered and the method that authenticated. A
// step never holds a secret: passwords and passphrases are never part of
// one, only whether one is set.
type StepLogger func(host, step string)

// connLog is where one Dial reports: warnings the operator must be told
// (always), steps when the dialer has a StepLogger.
type connLog struct {
	warn func(string)
	step func(string) // nil: no steps wanted
}

func (l connLog) stepf(format string, args ...any) {
	if l.step != nil {
		l.step("ssh: " + fmt.Sprintf(format, args...))
	}
}

func (l connLog) tracing() bool { return l.step != nil }

// offeredKey is a key offered to servers, with where it comes from.
type offeredKey struct {
	signer ssh.Signer
	source string // a file, the agent
}

func (k offeredKey) String() string {
	return fmt.Sprintf("%s (%s)", keyName(k.signer.PublicKey()), k.source)
}

func keyName(k ssh.PublicKey) string { return k.Type() + " " + ssh.FingerprintSHA256(k) }

// credentials are what a host is authenticated with.
type credentials struct {
	keys     []offeredKey
	password transport.Secret // never in a step
}

func (cr credentials) String() string {
	var parts []string
	if len(cr.keys) > 0 {
		keys := make([]string, len(cr.keys))
		for i, k := range cr.keys {
			keys[i] = k.String()
		}
		parts = append(parts, "public keys "+strings.Join(keys, ", "))
	}
	if cr.password != "" {
		parts = append(parts, "a password")
	}
	if len(parts) == 0 {
		return "no key and no password"
	}
	return strings.Join(parts, ", then ")
}

// authSeen remembers the last method a connection's server took up.
type authSeen struct {
	mu     sync.Mutex
	method string
}

func (a *authSeen) set(m string) { a.mu.Lock(); a.method = m; a.mu.Unlock() }

func (a *authSeen) get() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.method
}

// methods are the SSH auth methods for one connection: public keys, then
// the password for servers that offer "password" or only
// "keyboard-interactive" (PAM). While steps are logged, each method says
// when the server takes it up: a key when the server accepts it (x/crypto
// signs only then, and only then is an encrypted key's passphrase asked),
// a password when it is sent; seen keeps the last for the step that says
// how the connection authenticated.
func (cr credentials) methods(log connLog, seen *authSeen) []ssh.AuthMethod {
	var out []ssh.AuthMethod
	if len(cr.keys) > 0 {
		signers := make([]ssh.Signer, len(cr.keys))
		for i, k := range cr.keys {
			signers[i] = k.signer
			if log.tracing() {
				k := k
				signers[i] = traceSigner(k.signer, func() {
					seen.set("public key " + k.String())
					log.stepf("the server accepts public key %s: signing with it", k)
				})
			}
		}
		out = append(out, ssh.PublicKeys(signers...))
	}
	if cr.password != "" {
		password := string(cr.password)
		out = append(out,
			ssh.PasswordCallback(func() (string, error) {
				seen.set("password authentication")
				log.stepf("sending the password (password authentication)")
				return password, nil
			}),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				seen.set("keyboard-interactive authentication")
				answers := make([]string, len(questions))
				sent := 0
				for i, q := range questions {
					// Only a question about the password gets it.
					if strings.Contains(strings.ToLower(q), "password") {
						answers[i] = password
						sent++
					}
				}
				log.stepf("keyboard-interactive: %d questions, the password sent to %d", len(questions), sent)
				return answers, nil
			}),
		)
	}
	return out
}

// traceSigner calls note before every signature s makes, keeping the
// signing interfaces s has: x/crypto picks RSA's SHA-2 algorithms only for
// signers that implement AlgorithmSigner.
func traceSigner(s ssh.Signer, note func()) ssh.Signer {
	t := tracedSigner{s, note}
	switch x := s.(type) {
	case ssh.MultiAlgorithmSigner:
		return tracedMultiAlgorithmSigner{tracedAlgorithmSigner{t, x}, x}
	case ssh.AlgorithmSigner:
		return tracedAlgorithmSigner{t, x}
	}
	return t
}

type tracedSigner struct {
	ssh.Signer
	note func()
}

func (s tracedSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s.note()
	return s.Signer.Sign(rand, data)
}

type tracedAlgorithmSigner struct {
	tracedSigner
	as ssh.AlgorithmSigner
}

func (s tracedAlgorithmSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	s.note()
	return s.as.SignWithAlgorithm(rand, data, algorithm)
}

type tracedMultiAlgorithmSigner struct {
	tracedAlgorithmSigner
	ms ssh.MultiAlgorithmSigner
}

func (s tracedMultiAlgorithmSigner) Algorithms() []string { return s.ms.Algorithms() }
