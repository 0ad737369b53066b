package sshtransport

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyPolicy is what to do with a host whose key known_hosts does not
// record. A key that differs from the recorded one is refused under every
// policy.
type HostKeyPolicy int

const (
	// Strict refuses unknown hosts (StrictHostKeyChecking=yes, the default).
	Strict HostKeyPolicy = iota
	// AcceptNew records an unknown host's key and connects (OpenSSH's
	// accept-new, --accept-new).
	AcceptNew
	// Off accepts unknown keys as Ansible does with host key checking off
	// (ANSIBLE_HOST_KEY_CHECKING=False, StrictHostKeyChecking=no): like
	// OpenSSH it records them, and nodefix warns.
	Off
)

// HostKeyError is a host key nodefix refused.
type HostKeyError struct {
	Host string // as known_hosts names it: host or [host]:port
	Key  ssh.PublicKey
	// Known are the keys known_hosts records for the host: empty for an
	// unknown host, else the key changed.
	Known []knownhosts.KnownKey
	// Revoked: known_hosts marks the key @revoked.
	Revoked bool
	// File is where the key should be recorded.
	File string
}

func (e *HostKeyError) Error() string {
	fp := e.Key.Type() + " " + ssh.FingerprintSHA256(e.Key)
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key of %s (%s) is marked @revoked in known_hosts: refusing to connect", e.Host, fp)
	case len(e.Known) > 0:
		k := e.Known[0]
		return fmt.Sprintf("HOST KEY CHANGED for %s: it offered %s, but %s:%d records %s %s. "+
			"Someone could be intercepting the connection (man-in-the-middle), or the host was reinstalled. "+
			"nodefix refuses to connect, whatever --accept-new or host key checking say. "+
			"If the change is expected: ssh-keygen -f %s -R %s, then run again with --accept-new",
			e.Host, fp, k.Filename, k.Line, k.Key.Type(), ssh.FingerprintSHA256(k.Key),
			k.Filename, shellWord(e.Host))
	}
	return fmt.Sprintf("host key of %s is not known (%s). If that is the host's key "+
		"(on the host: ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), add this line to %s:\n%s\n"+
		"or run again with --accept-new to record it",
		e.Host, fp, keyFileKind(e.Key), e.File, knownhosts.Line([]string{e.Host}, e.Key))
}

// shellWord quotes [host]:port for a copy-pasted command.
func shellWord(s string) string {
	if strings.ContainsAny(s, "[]") {
		return "'" + s + "'"
	}
	return s
}

func keyFileKind(k ssh.PublicKey) string {
	switch {
	case strings.HasPrefix(k.Type(), "ssh-ed25519"):
		return "ed25519"
	case strings.HasPrefix(k.Type(), "ecdsa-"):
		return "ecdsa"
	case strings.HasPrefix(k.Type(), "ssh-rsa"):
		return "rsa"
	}
	return "*"
}

// hostKeys verifies host keys against known_hosts files. One is shared by
// all connections of a run: keys it accepts are remembered, so two
// connections to the same host in one run (a jump host and a target, say)
// agree even before the file is read again.
type hostKeys struct {
	probe ssh.PublicKey // a key no host has, to learn what is recorded

	mu       sync.Mutex
	dbs      map[string]*knownHostsDB // by file list
	accepted map[string][]ssh.PublicKey
}

type knownHostsDB struct {
	check ssh.HostKeyCallback
	err   error
}

func newHostKeys() (*hostKeys, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &hostKeys{probe: probe, dbs: map[string]*knownHostsDB{}, accepted: map[string][]ssh.PublicKey{}}, nil
}

// knownHostsFiles are where a host's key is looked up and, for the first,
// recorded.
type knownHostsFiles struct {
	User   []string // the first one is written to
	Global []string // read only
}

func (h *hostKeys) db(files knownHostsFiles) (ssh.HostKeyCallback, error) {
	all := append(append([]string{}, files.User...), files.Global...)
	key := strings.Join(all, "\x00")
	h.mu.Lock()
	defer h.mu.Unlock()
	if db, ok := h.dbs[key]; ok {
		return db.check, db.err
	}
	var existing []string
	for _, f := range all {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	check, err := knownhosts.New(existing...)
	if err != nil {
		err = fmt.Errorf("reading known_hosts: %w (fix or remove that line)", err)
	}
	h.dbs[key] = &knownHostsDB{check: check, err: err}
	return check, err
}

// algorithms returns the host key algorithms to offer for a host: those of
// the keys known_hosts records for it. x/crypto's knownhosts only matches
// the key the server sends, and the server sends the first type the client
// offers: without this, a host recorded with only its RSA key would be
// reported "unknown" because it sent its ed25519 key. With no key recorded,
// OpenSSH's order.
func (h *hostKeys) algorithms(files knownHostsFiles, host string) ([]string, error) {
	check, err := h.db(files)
	if err != nil {
		return nil, err
	}
	var known []ssh.PublicKey
	var ke *knownhosts.KeyError
	if err := check(host, placeholderAddr, h.probe); errors.As(err, &ke) {
		for _, k := range ke.Want {
			known = append(known, k.Key)
		}
	}
	h.mu.Lock()
	known = append(known, h.accepted[knownhosts.Normalize(host)]...)
	h.mu.Unlock()
	if len(known) == 0 {
		// OpenSSH's preference: an unknown host shows (and --accept-new
		// records) the key `ssh` would.
		return openSSHHostKeyOrder, nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range known {
		for _, a := range algorithmsFor(k.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos, nil
}

// openSSHHostKeyOrder is OpenSSH's default HostKeyAlgorithms order,
// without certificates.
var openSSHHostKeyOrder = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// placeholderAddr stands in for the remote address when asking known_hosts
// what it records: the lookup is by the host name we dial.
var placeholderAddr = &net.TCPAddr{IP: net.IPv4(0, 0, 0, 0), Port: 22}

func algorithmsFor(keyType string) []string {
	switch keyType {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	}
	return []string{keyType}
}

// callback is the ssh.HostKeyCallback for one connection. accepted
// collects what the operator should be told (a key recorded or accepted
// unverified).
func (h *hostKeys) callback(files knownHostsFiles, policy HostKeyPolicy, policySource string, log connLog) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		check, err := h.db(files)
		if err != nil {
			return err
		}
		host := knownhosts.Normalize(hostname)
		err = check(hostname, remote, key)
		if err == nil {
			if log.tracing() {
				log.stepf("%s: host key %s matches %s", hostname, keyName(key), h.recordedAt(check, hostname, key))
			}
			return nil
		}
		var revoked *knownhosts.RevokedError
		if errors.As(err, &revoked) {
			return &HostKeyError{Host: host, Key: key, Revoked: true}
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		if len(ke.Want) > 0 {
			return &HostKeyError{Host: host, Key: key, Known: ke.Want}
		}
		return h.unknown(files, policy, policySource, host, key, log)
	}
}

// recordedAt says where known_hosts records key for host: x/crypto's
// check says only that it does, so the host's recorded keys are asked
// for with the probe, a key no host has, which fails listing them with
// their files and lines.
func (h *hostKeys) recordedAt(check ssh.HostKeyCallback, hostname string, key ssh.PublicKey) string {
	var ke *knownhosts.KeyError
	if errors.As(check(hostname, placeholderAddr, h.probe), &ke) {
		for _, k := range ke.Want {
			if bytes.Equal(k.Key.Marshal(), key.Marshal()) {
				return fmt.Sprintf("%s:%d", k.Filename, k.Line)
			}
		}
	}
	return "known_hosts"
}

func (h *hostKeys) unknown(files knownHostsFiles, policy HostKeyPolicy, policySource, host string, key ssh.PublicKey, log connLog) error {
	file := "~/.ssh/known_hosts"
	if len(files.User) > 0 {
		file = files.User[0]
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Accepted earlier in this run (by another connection to the host)?
	for _, k := range h.accepted[host] {
		if bytes.Equal(k.Marshal(), key.Marshal()) {
			log.stepf("%s: host key %s was accepted earlier in this run (%s)", host, keyName(key), policySource)
			return nil
		}
	}
	if prev := h.accepted[host]; len(prev) > 0 {
		return &HostKeyError{Host: host, Key: key, Known: []knownhosts.KnownKey{{Key: prev[0], Filename: file}}}
	}
	if policy == Strict {
		return &HostKeyError{Host: host, Key: key, File: file}
	}
	h.accepted[host] = append(h.accepted[host], key)
	fp := key.Type() + " " + ssh.FingerprintSHA256(key)
	if len(files.User) > 0 {
		if err := appendKnownHost(files.User[0], knownhosts.Line([]string{host}, key)); err != nil {
			return err
		}
	}
	log.stepf("%s: host key %s is not known: accepted and recorded in %s (%s)", host, keyName(key), file, policySource)
	if policy == Off {
		log.warn(fmt.Sprintf("host key checking is off (%s): accepted the unverified host key of %s (%s) and recorded it in %s", policySource, host, fp, file))
	} else {
		log.warn(fmt.Sprintf("permanently added the host key of %s (%s) to %s (%s)", host, fp, file, policySource))
	}
	return nil
}

// appendKnownHost adds line to a known_hosts file, as OpenSSH's accept-new
// does. Hosts connect in parallel, and other nodefix or ssh processes may
// write the file too: the append happens under an exclusive flock, and a
// line already there is not added twice.
func appendKnownHost(path, line string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("recording host key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("recording host key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("recording host key in %s: %w", path, err)
	}
	if !st.Mode().IsRegular() { // /dev/null: nothing to record
		return nil
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing unlocks too
	content, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == line {
			return nil
		}
	}
	prefix := ""
	if len(content) > 0 && content[len(content)-1] != '\n' {
		prefix = "\n"
	}
	if _, err := f.WriteString(prefix + line + "\n"); err != nil {
		return fmt.Errorf("recording host key in %s: %w", path, err)
	}
	return nil
}
