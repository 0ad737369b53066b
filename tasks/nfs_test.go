package tasks

import (
	"reflect"
	"strings"
	"testing"
)

const sampleMountinfo = `22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
101 22 0:52 / /var/lib/kubelet/pods/abc/volumes/kubernetes.io~csi/pvc-1/mount rw,relatime shared:60 - nfs4 10.43.7.9:/pvc-1 rw,vers=4.1,rsize=1048576,hard,proto=tcp,clientaddr=10.0.0.1,addr=10.43.7.9
102 22 0:53 / /mnt/with\040space rw shared:61 - nfs nas:/export/a rw,vers=3,addr=192.168.1.5
103 22 0:54 / /mnt/v6 rw - nfs4 [fd00::5]:/x rw,vers=4.2
104 22 0:55 / /proc/fs/nfsd rw - nfsd nfsd rw
`

func TestParseNFSMounts(t *testing.T) {
	got := parseNFSMounts(sampleMountinfo)
	want := []nfsMount{
		{ID: "101", Dev: "0:52", MountPoint: "/var/lib/kubelet/pods/abc/volumes/kubernetes.io~csi/pvc-1/mount", Source: "10.43.7.9:/pvc-1", FSType: "nfs4", Server: "10.43.7.9"},
		{ID: "102", Dev: "0:53", MountPoint: "/mnt/with space", Source: "nas:/export/a", FSType: "nfs", Server: "192.168.1.5"},
		{ID: "103", Dev: "0:54", MountPoint: "/mnt/v6", Source: "[fd00::5]:/x", FSType: "nfs4", Server: "fd00::5"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestStaleNFS(t *testing.T) {
	mounts := parseNFSMounts(sampleMountinfo)
	// A rename with these mounts records them all under the old name.
	recs := recordsFor(nil, "localhost", mounts[:2])
	live, affected, names := staleNFS(recs, mounts)
	if len(live) != 2 || !reflect.DeepEqual(names, []string{"localhost"}) {
		t.Errorf("live %v names %v", live, names)
	}
	if len(affected) != 2 {
		t.Errorf("affected %v", affected)
	}
	// A later mount to the same server shares the old client: listed too.
	later := append(mounts, nfsMount{ID: "200", Dev: "0:60", MountPoint: "/new", Source: "10.43.7.9:/pvc-2", FSType: "nfs4", Server: "10.43.7.9"})
	if _, affected, _ := staleNFS(recs, later); len(affected) != 3 {
		t.Errorf("a new mount to a stale server is not listed: %v", affected)
	}
	// Once the recorded mount to a server is gone, that server is fresh.
	_, affected, _ = staleNFS(recs, later[1:])
	if len(affected) != 1 || affected[0].ID != "102" {
		t.Errorf("after unmounting pvc-1: %v", affected)
	}
	// The record survives a round trip through the state file.
	if got := parseNFSState(formatNFSState(recs)); !reflect.DeepEqual(got, recs) {
		t.Errorf("state round trip: %v != %v", got, recs)
	}
}

func TestNFSUniquifier(t *testing.T) {
	a := nfsUniquifier("mid", "node-1")
	if a != nfsUniquifier("mid", "node-1") {
		t.Error("not stable")
	}
	if a == nfsUniquifier("mid", "node-2") || a == nfsUniquifier("other", "node-1") {
		t.Error("not unique")
	}
	if len(a) > nfsUniquifierMax || !strings.HasPrefix(a, "nodefix-") {
		t.Errorf("bad uniquifier %q", a)
	}
	if got := modprobeUniqueID(nfsModprobeContent(a)); got != a {
		t.Errorf("modprobe round trip %q", got)
	}
}
