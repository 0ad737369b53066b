package testfleet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Each fleet owns one /24 of loopback addresses, 127.X.Y.0/24 with X in
// [100,199], so that fleets started by test binaries running in parallel
// (go test runs packages concurrently) never share an address. Ownership
// is a lock file created with O_EXCL; a file whose owner process is gone is
// reclaimed, so a crashed run does not leak its block forever.
const addrLockDir = "/run/nodefix-testfleet"

type addrBlock struct {
	prefix   string // "127.X.Y."
	lockFile string
}

func (b addrBlock) addr(i int) string { return b.prefix + strconv.Itoa(i) }

// loopbackPrefix draws a /24 of loopback addresses for a fleet's nodes.
func loopbackPrefix() string {
	return fmt.Sprintf("127.%d.%d.", 100+rand.IntN(100), rand.IntN(256))
}

// benchmarkNetPrefix draws a /24 from 198.18.0.0/15, the range RFC 2544
// reserves for benchmarking networks (never routed anywhere real), for the
// veth links between namespaces of a jump-host topology.
func benchmarkNetPrefix() string {
	return fmt.Sprintf("198.%d.%d.", 18+rand.IntN(2), rand.IntN(256))
}

func allocateAddrBlock(ownerPID int, draw func() string) (addrBlock, error) {
	if err := os.MkdirAll(addrLockDir, 0o755); err != nil {
		return addrBlock{}, fmt.Errorf("creating %s: %w", addrLockDir, err)
	}
	for attempt := 0; attempt < 200; attempt++ {
		prefix := draw()
		lock := filepath.Join(addrLockDir, strings.TrimSuffix(prefix, "."))
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, os.ErrExist) {
			if reclaimStale(lock) {
				attempt--
			}
			continue
		}
		if err != nil {
			return addrBlock{}, fmt.Errorf("creating address lock %s: %w", lock, err)
		}
		_, werr := fmt.Fprintf(f, "%d\n", ownerPID)
		cerr := f.Close()
		if werr != nil || cerr != nil {
			os.Remove(lock)
			return addrBlock{}, fmt.Errorf("writing address lock %s: %v %v", lock, werr, cerr)
		}
		return addrBlock{prefix: prefix, lockFile: lock}, nil
	}
	return addrBlock{}, errors.New("no free address block (see " + addrLockDir + ")")
}

// setOwner records the process that keeps the block alive (for `testfleet
// up`, the fleet's first node outlives the command that started it).
func (b addrBlock) setOwner(pid int) error {
	return os.WriteFile(b.lockFile, []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

func (b addrBlock) release() {
	if b.lockFile != "" {
		os.Remove(b.lockFile)
	}
}

// reclaimStale removes a lock whose owner process no longer exists.
func reclaimStale(lock string) bool {
	data, err := os.ReadFile(lock)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return false // being written right now, or not ours to judge
	}
	if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
		return false
	}
	return os.Remove(lock) == nil
}

// choosePort returns 22 unless something on this machine (an sshd bound to
// the wildcard address, say) already holds it for our block.
func choosePort(b addrBlock) int {
	for _, port := range []int{22, 2222, 10022} {
		l, err := net.Listen("tcp", net.JoinHostPort(b.addr(1), strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port
		}
	}
	return 22 // let sshd report the real error
}
