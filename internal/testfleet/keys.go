package testfleet

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"os"

	"golang.org/x/crypto/ssh"
)

// keyPair is an OpenSSH key written to disk: the private key at Path, the
// public key at Path+".pub".
type keyPair struct {
	Path   string
	Public ssh.PublicKey
}

// writeKey generates a key of the given type ("ed25519", "ecdsa", "rsa")
// and writes it in OpenSSH format. Keys are generated in process: it is
// faster than ssh-keygen for a hundred nodes and nothing is committed.
func writeKey(path, keyType, comment string) (keyPair, error) {
	var private any
	var err error
	switch keyType {
	case "ed25519":
		_, private, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		private, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		private, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return keyPair{}, fmt.Errorf("unknown key type %q", keyType)
	}
	if err != nil {
		return keyPair{}, fmt.Errorf("generating %s key: %w", keyType, err)
	}
	block, err := ssh.MarshalPrivateKey(private, comment)
	if err != nil {
		return keyPair{}, fmt.Errorf("encoding %s key: %w", keyType, err)
	}
	signer, err := ssh.NewSignerFromKey(private)
	if err != nil {
		return keyPair{}, fmt.Errorf("deriving %s public key: %w", keyType, err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return keyPair{}, fmt.Errorf("writing %s: %w", path, err)
	}
	pub := ssh.MarshalAuthorizedKey(signer.PublicKey())
	if err := os.WriteFile(path+".pub", pub, 0o644); err != nil {
		return keyPair{}, fmt.Errorf("writing %s.pub: %w", path, err)
	}
	return keyPair{Path: path, Public: signer.PublicKey()}, nil
}
