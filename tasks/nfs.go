package tasks

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// How the Linux NFS client names itself (fs/nfs/nfs4proc.c): an NFSv4
// client presents "Linux NFSv4.x <nodename>", or with a uniquifier
// "Linux NFSv4.x <uniquifier>/<nodename>". The uniquifier is the
// per-network-namespace /sys/fs/nfs/net/nfs_client/identifier when set,
// else the nfs module's nfs4_unique_id parameter. The nodename is copied
// when the client for a server is created: every mount to that server
// shares the client, so a rename reaches a server only once every mount
// to it is gone and a new one is made.

const (
	nfsIdentifierPath = "/sys/fs/nfs/net/nfs_client/identifier"
	nfsUniqueIDPath   = "/sys/module/nfs/parameters/nfs4_unique_id"
	// nfsModprobeConf persists --set-nfs-unique-id across reboots.
	nfsModprobeConf = "/etc/modprobe.d/nodefix-nfs.conf"
	// nfsStatePath remembers, across runs, the mounts made under a name
	// this task replaced, so later runs keep saying which mounts still
	// present the old identity until they are gone.
	nfsStatePath = "/var/lib/nodefix/nfs-old-identity"
	// nfsUniquifierMax is the kernel's NFS4_CLIENT_ID_UNIQ_LEN minus the
	// terminating NUL.
	nfsUniquifierMax = 63
)

// nfsMount is one NFS mount from /proc/self/mountinfo.
type nfsMount struct {
	ID         string `json:"mount_id"`
	Dev        string `json:"dev"`
	MountPoint string `json:"mount_point"`
	Source     string `json:"source"`
	FSType     string `json:"fstype"`
	// Server is the address the client talks to (addr= in the mount's
	// options, else the host part of Source): mounts to one server share
	// one client identity.
	Server string `json:"server"`
}

func (m nfsMount) key() string { return m.ID + " " + m.Dev + " " + m.MountPoint }

func (m nfsMount) String() string { return m.MountPoint + " (" + m.Source + ")" }

// parseNFSMounts picks the nfs and nfs4 mounts out of mountinfo lines:
//
//	36 35 0:52 / /mnt rw,relatime shared:1 - nfs4 10.0.0.5:/export rw,vers=4.2,addr=10.0.0.5
func parseNFSMounts(mountinfo string) []nfsMount {
	var mounts []nfsMount
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 2 || (g[0] != "nfs" && g[0] != "nfs4") {
			continue
		}
		m := nfsMount{ID: f[0], Dev: f[2], MountPoint: unescapeMountinfo(f[4]), FSType: g[0], Source: unescapeMountinfo(g[1])}
		if len(g) >= 3 {
			for _, opt := range strings.Split(g[2], ",") {
				if v, ok := strings.CutPrefix(opt, "addr="); ok {
					m.Server = v
				}
			}
		}
		if m.Server == "" {
			m.Server = serverOfSource(m.Source)
		}
		mounts = append(mounts, m)
	}
	return mounts
}

// serverOfSource is the host part of "host:/path" or "[v6addr]:/path".
func serverOfSource(source string) string {
	if strings.HasPrefix(source, "[") {
		if i := strings.Index(source, "]"); i > 0 {
			return source[1:i]
		}
	}
	host, _, _ := strings.Cut(source, ":")
	return host
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// nfsIdentity is the identity an NFSv4 client created now would present,
// without the "Linux NFSv4.x " prefix that only depends on the version.
func nfsIdentity(uniquifier, nodename string) string {
	if uniquifier == "" {
		return nodename
	}
	return uniquifier + "/" + nodename
}

// nfsUniquifier derives the nfs4_unique_id --set-nfs-unique-id sets: from
// the fleet-unique target name, so it is unique where the fleet precheck
// passed, and from the machine-id, so a host that is reinstalled under the
// same name is still told apart; stable across runs.
func nfsUniquifier(machineID, target string) string {
	sum := sha256.Sum256([]byte(machineID + "\x00" + target))
	id := "nodefix-" + hex.EncodeToString(sum[:16])
	if len(id) > nfsUniquifierMax {
		id = id[:nfsUniquifierMax]
	}
	return id
}

// nfsModprobeContent is nfsModprobeConf's content for uniquifier.
func nfsModprobeContent(uniquifier string) string {
	return "# Written by nodefix (hostname task, --set-nfs-unique-id): a fleet-unique\n" +
		"# NFSv4 client uniquifier, so NFS servers tell this node apart even when\n" +
		"# hostnames collide. It reaches a server once every mount to it is remade.\n" +
		"options nfs nfs4_unique_id=" + uniquifier + "\n"
}

// modprobeUniqueID reads nfs4_unique_id from a modprobe.d file's content.
func modprobeUniqueID(content string) string {
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "options" || f[1] != "nfs" {
			continue
		}
		for _, opt := range f[2:] {
			if v, ok := strings.CutPrefix(opt, "nfs4_unique_id="); ok {
				return v
			}
		}
	}
	return ""
}

// staleRecord is one mount nfsStatePath remembers as made under OldName.
type staleRecord struct {
	OldName string
	Server  string
	Key     string // nfsMount.key()
}

// parseNFSState reads nfsStatePath: "old-name<TAB>server<TAB>mount key"
// per line, '#' comments.
func parseNFSState(content string) []staleRecord {
	var recs []staleRecord
	for _, line := range strings.Split(content, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			continue
		}
		recs = append(recs, staleRecord{OldName: f[0], Server: f[1], Key: f[2]})
	}
	return recs
}

func formatNFSState(recs []staleRecord) string {
	var b strings.Builder
	b.WriteString("# nodefix: NFS mounts made under a hostname nodefix replaced; they keep the old\n" +
		"# NFS client identity until every mount to their server is gone. Safe to delete.\n")
	for _, r := range recs {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", r.OldName, r.Server, r.Key)
	}
	return b.String()
}

// staleNFS works out which current mounts still present an old identity.
// Records whose mount is gone are dropped; a server stays stale while any
// recorded mount to it remains, and then every current mount to it (newer
// ones share the old client) is listed.
func staleNFS(recs []staleRecord, mounts []nfsMount) (live []staleRecord, affected []nfsMount, oldNames []string) {
	present := map[string]bool{}
	for _, m := range mounts {
		present[m.key()] = true
	}
	servers := map[string]bool{}
	names := map[string]bool{}
	for _, r := range recs {
		if present[r.Key] {
			live = append(live, r)
			servers[r.Server] = true
			names[r.OldName] = true
		}
	}
	for _, m := range mounts {
		if servers[m.Server] {
			affected = append(affected, m)
		}
	}
	for n := range names {
		oldNames = append(oldNames, n)
	}
	sort.Strings(oldNames)
	return live, affected, oldNames
}

// recordsFor adds the mounts made under oldName to recs (no duplicates).
func recordsFor(recs []staleRecord, oldName string, mounts []nfsMount) []staleRecord {
	have := map[string]bool{}
	for _, r := range recs {
		have[r.Key] = true
	}
	for _, m := range mounts {
		if !have[m.key()] {
			recs = append(recs, staleRecord{OldName: oldName, Server: m.Server, Key: m.key()})
			have[m.key()] = true
		}
	}
	return recs
}

// describeMounts lists mounts for a message, the first few by name.
func describeMounts(mounts []nfsMount) string {
	const show = 5
	var parts []string
	for i, m := range mounts {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more (see details)", len(mounts)-show))
			break
		}
		parts = append(parts, m.String())
	}
	return strings.Join(parts, ", ")
}
