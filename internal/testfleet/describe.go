package testfleet

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// State is a node's ground truth, read directly (not over ssh): what the
// demo shows before and after nodefix, and what tests compare.
type State struct {
	Hostname     string // the kernel's
	EtcHostname  string
	RPMQueries   int    // rpm processes in query mode
	RPMDB        string // "ok", "corrupt", "locked" (a transaction holds it) or "wedged" (no answer in 3s)
	RPMPackages  int    // -1: rpm -qa did not answer in 3s
	MachineID    string
	Initiator    string
	MissingTools []string
}

const describeScript = `h=$(cat /proc/sys/kernel/hostname)
e=$(cat /etc/hostname 2>/dev/null)
q=$(ps -eo comm=,args= | awk '$1 == "rpm" && / (-q|--query)/' | wc -l)
if out=$(timeout 3 rpm --verifydb 2>&1); then
	db=ok
elif [ $? = 124 ]; then
	db=wedged
elif printf '%s' "$out" | grep -q 'transaction lock'; then
	db=locked
else
	db=corrupt
fi
list=$(timeout 3 rpm -qa 2>/dev/null)
rc=$?
n=$(printf '%s' "$list" | grep -c .)
[ $rc != 124 ] || n=-1
m=$(cat /etc/machine-id 2>/dev/null)
i=$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi 2>/dev/null)
missing=
for t in iscsiadm mount.nfs cryptsetup dmsetup; do command -v "$t" >/dev/null || missing="$missing $t"; done
printf '%s\n' "$h" "$e" "$q" "$db" "$n" "$m" "$i" "$missing"`

// Describe reads the node's State.
func (n *Node) Describe(ctx context.Context) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := n.Sh(ctx, describeScript)
	if err != nil {
		return State{}, err
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 8 {
		return State{}, fmt.Errorf("on %s: unexpected state report %q", n.Name, out)
	}
	s := State{Hostname: lines[0], EtcHostname: lines[1], RPMDB: lines[3], MachineID: lines[5], Initiator: lines[6],
		MissingTools: strings.Fields(lines[7])}
	fmt.Sscan(lines[2], &s.RPMQueries)
	fmt.Sscan(lines[4], &s.RPMPackages)
	return s, nil
}
