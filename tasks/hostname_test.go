package tasks

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Unit tests of the hostname task's decisions, on a scripted host
// (fakenode_test.go). The scripts themselves run for real in
// hostname_real_test.go and hostname_fleet_test.go.

const nfsMountLine = "101 22 0:52 / /var/lib/kubelet/pods/p/volumes/kubernetes.io~csi/pvc-1/mount rw shared:60 - nfs4 10.43.7.9:/pvc-1 rw,vers=4.1,addr=10.43.7.9"

func healthyHost(t *testing.T, name string) *fakeHost {
	f := newFakeHost(t)
	f.kernel = name
	f.files["/etc/hostname"] = name + "\n"
	f.files["/etc/hosts"] = "127.0.0.1\tlocalhost\n127.0.1.1\t" + name + "\n"
	f.files["/etc/machine-id"] = "0123456789abcdef0123456789abcdef\n"
	f.files["/etc/iscsi/initiatorname.iscsi"] = "## DO NOT EDIT\nInitiatorName=iqn.1993-08.org.debian:01:abc\n"
	return f
}

func TestHostnameDecisions(t *testing.T) {
	host := Host{Name: "10.0.0.1", TargetHostname: "node-1"}
	tests := []struct {
		name        string
		seed        func(f *fakeHost)
		cfg         func(c *Config)
		host        *Host
		wantStatus  Status
		wantChanged bool
		wantMsg     []string
		wantWarn    []string
		wantApply   int // hostname-apply calls
		check       func(t *testing.T, f *fakeHost, out Outcome)
	}{
		{
			name:       "healthy host is ok and untouched",
			seed:       func(f *fakeHost) { *f = *healthyHost(t, "node-1") },
			wantStatus: StatusOK, wantMsg: []string{"hostname is node-1"},
		},
		{
			name:       "localhost renamed with hostname(1) where systemd does not run",
			seed:       func(f *fakeHost) { *f = *healthyHost(t, "localhost"); f.hostnamectl = true },
			wantStatus: StatusChanged, wantChanged: true, wantApply: 1,
			wantMsg: []string{"renamed localhost → node-1 (hostname)", "wrote /etc/hostname", `set /etc/hosts entry "127.0.1.1\tnode-1 localhost"`},
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if a := f.args["hostname-apply"]; strings.Join(a[:10], " ") != "node-1 localhost /etc/hosts /etc/hostname hostname 1 1 1 0 0" {
					t.Errorf("apply args %q", a)
				}
				if out.Details["hosts_backup"] != "/etc/hosts.nodefix-20250101T000000" {
					t.Errorf("backup %v", out.Details["hosts_backup"])
				}
				if out.Facts[FactHostname] != "node-1" {
					t.Errorf("facts after: %v", out.Facts)
				}
			},
		},
		{
			name:       "hostnamectl where systemd runs",
			seed:       func(f *fakeHost) { *f = *healthyHost(t, "localhost"); f.systemd, f.hostnamectl = true, true },
			wantStatus: StatusChanged, wantChanged: true, wantApply: 1,
			wantMsg: []string{"(hostnamectl)"},
		},
		{
			name:       "systemd without hostnamectl falls back to hostname(1)",
			seed:       func(f *fakeHost) { *f = *healthyHost(t, "localhost"); f.systemd = true },
			wantStatus: StatusChanged, wantChanged: true, wantApply: 1,
			wantMsg: []string{"(hostname)"},
		},
		{
			name: "only /etc/hosts lacks the name: only /etc/hosts written",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "node-1")
				f.files["/etc/hosts"] = "127.0.0.1 localhost\n"
			},
			wantStatus: StatusChanged, wantChanged: true, wantApply: 1,
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if a := f.args["hostname-apply"]; strings.Join(a[5:10], " ") != "0 0 1 0 0" {
					t.Errorf("apply flags %q", a)
				}
				if got := f.files["/etc/hosts"]; got != "127.0.0.1 localhost\n127.0.1.1\tnode-1\n" {
					t.Errorf("hosts %q", got)
				}
			},
		},
		{
			name: "kernel right but /etc/hostname stale (rebooting would undo it)",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "node-1")
				f.files["/etc/hostname"] = "# comment\nlocalhost\n"
			},
			wantStatus: StatusChanged, wantChanged: true, wantApply: 1,
			wantMsg: []string{`wrote /etc/hostname (was "localhost")`},
		},
		{
			name:       "check mode plans and changes nothing",
			seed:       func(f *fakeHost) { *f = *healthyHost(t, "localhost") },
			cfg:        func(c *Config) { c.Check = true },
			wantStatus: StatusChanged, wantChanged: true, wantApply: 0,
			wantMsg: []string{"would rename localhost → node-1"},
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if f.kernel != "localhost" || f.files["/etc/hostname"] != "localhost\n" {
					t.Error("check mode changed the host")
				}
				if out.Facts[FactHostname] != "localhost" {
					t.Errorf("check mode facts must be the current ones: %v", out.Facts)
				}
			},
		},
		{
			name:       "diff shows before and after",
			seed:       func(f *fakeHost) { *f = *healthyHost(t, "localhost") },
			cfg:        func(c *Config) { c.Check, c.Diff = true, true },
			wantStatus: StatusChanged, wantChanged: true,
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if out.Diff == nil || !strings.Contains(out.Diff.Before, "hostname: localhost\n") ||
					!strings.Contains(out.Diff.After, "hostname: node-1\n/etc/hostname: node-1\n") ||
					!strings.Contains(out.Diff.After, "127.0.1.1\tnode-1 localhost") {
					t.Errorf("diff %+v", out.Diff)
				}
			},
		},
		{
			name:       "invalid target refused before touching the host",
			seed:       func(f *fakeHost) { *f = *healthyHost(t, "localhost") },
			host:       &Host{Name: "10.0.0.9", TargetHostname: "Bad_Name"},
			wantStatus: StatusFailed, wantMsg: []string{"host 10.0.0.9", `"Bad_Name"`, "k8s_nodename"},
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if len(f.calls) != 0 {
					t.Errorf("ran %v", f.calls)
				}
			},
		},
		{
			name: "the apply script's failure is reported in its own words, facts still the old ones",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "localhost")
				f.fail["hostname-apply"] = Result{ExitStatus: 1, Stderr: []byte("Could not set static hostname: Access denied\nnodefix: hostnamectl set-hostname node-1 failed; hostname localhost kept\n")}
			},
			wantStatus: StatusFailed, wantApply: 1,
			wantMsg: []string{"Access denied", "hostname localhost kept"},
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if out.Facts[FactHostname] != "localhost" {
					t.Errorf("facts %v", out.Facts)
				}
			},
		},
		{
			name: "a failed apply that restored everything is not a change",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "localhost")
				f.fail["hostname-apply"] = Result{ExitStatus: 1, Stderr: []byte("cannot replace /etc/hostname; hostname localhost kept")}
			},
			wantStatus: StatusFailed, wantApply: 1,
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if strings.Contains(out.Msg, "could not be fully restored") {
					t.Errorf("restored host reported as not restored: %+v", out)
				}
			},
		},
		{
			name: "a failed apply that could not restore the old name says so",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "localhost")
				f.fail["hostname-apply"] = Result{ExitStatus: 137, Stderr: []byte("Killed")}
				f.onFail = func(f *fakeHost) { f.kernel = "node-1" }
			},
			wantStatus: StatusFailed, wantChanged: true, wantApply: 1,
			wantMsg: []string{"Killed", `the old state could not be fully restored: kernel hostname "node-1"`},
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if out.Facts[FactHostname] != "node-1" {
					t.Errorf("facts must be what the host now says: %v", out.Facts)
				}
			},
		},
		{
			name: "something resets the name after the rename: verification fails",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "localhost")
				f.afterApply = func(f *fakeHost) { f.kernel = "localhost" }
			},
			wantStatus: StatusFailed, wantChanged: true, wantApply: 1,
			wantMsg: []string{"verifying found", `the kernel hostname is "localhost"`},
		},
		{
			name:       "gathering fails: failed, nothing applied",
			seed:       func(f *fakeHost) { *f = *healthyHost(t, "localhost"); f.connErr = errors.New("connection lost") },
			wantStatus: StatusFailed, wantMsg: []string{"gathering hostname facts: connection lost"},
		},
		{
			name: "keep-hostname renames nothing",
			seed: func(f *fakeHost) { *f = *healthyHost(t, "localhost") },
			cfg:  func(c *Config) { c.KeepHostname = true },
			host: &Host{Name: "x"}, wantStatus: StatusOK, wantMsg: []string{"hostname localhost kept"},
		},
		{
			name: "NFS mounts made under the old name are named, and remembered",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "localhost")
				f.mountinfo = nfsMountLine
			},
			wantStatus: StatusChanged, wantChanged: true, wantApply: 1,
			wantWarn: []string{`1 NFS mount(s) keep presenting the old hostname "localhost"`, "pvc-1/mount (10.43.7.9:/pvc-1)", "drain the node"},
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if !strings.Contains(f.files[nfsStatePath], "localhost\t10.43.7.9\t101 0:52 ") {
					t.Errorf("state file %q", f.files[nfsStatePath])
				}
				if _, ok := out.Details["nfs_mounts_with_old_identity"]; !ok {
					t.Errorf("details %v", out.Details)
				}
			},
		},
		{
			name: "check mode with NFS mounts warns what would happen",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "localhost")
				f.mountinfo = nfsMountLine
			},
			cfg:        func(c *Config) { c.Check = true },
			wantStatus: StatusChanged, wantChanged: true,
			wantWarn: []string{"would keep presenting the old hostname"},
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if _, ok := f.files[nfsStatePath]; ok {
					t.Error("check mode wrote the state file")
				}
			},
		},
		{
			name:       "no NFS mounts: no NFS warning",
			seed:       func(f *fakeHost) { *f = *healthyHost(t, "localhost") },
			wantStatus: StatusChanged, wantChanged: true, wantApply: 1,
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if len(out.Warnings) != 0 {
					t.Errorf("warnings %v", out.Warnings)
				}
			},
		},
		{
			name: "cloud-init that would undo the rename at boot is named",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "localhost")
				f.files["/etc/cloud/cloud.cfg"] = "users:\n - default\npreserve_hostname: false\nmanage_etc_hosts: localhost # from the image\n"
			},
			wantStatus: StatusChanged, wantChanged: true, wantApply: 1,
			wantWarn: []string{"without preserve_hostname: true", "rewrites /etc/hosts at every boot"},
		},
		{
			name: "cloud-init told to preserve the hostname: no warning",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "localhost")
				f.files["/etc/cloud/cloud.cfg"] = "preserve_hostname: false\n"
				f.files["/etc/cloud/cloud.cfg.d/99.cfg"] = "preserve_hostname: true\n"
			},
			wantStatus: StatusChanged, wantChanged: true, wantApply: 1,
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if len(out.Warnings) != 0 {
					t.Errorf("warnings %q", out.Warnings)
				}
			},
		},
		{
			name: "set-nfs-unique-id: persisted and set live",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "node-1")
				f.files[nfsUniqueIDPath] = "\n"
			},
			cfg:        func(c *Config) { c.SetNFSUniqueID = true },
			wantStatus: StatusChanged, wantChanged: true,
			wantMsg: []string{"set nfs4_unique_id=nodefix-"},
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				want := nfsUniquifier("0123456789abcdef0123456789abcdef", "node-1")
				if f.files[nfsUniqueIDPath] != want+"\n" || modprobeUniqueID(f.files[nfsModprobeConf]) != want {
					t.Errorf("param %q conf %q", f.files[nfsUniqueIDPath], f.files[nfsModprobeConf])
				}
				if out.Facts[FactNFSIdentifier] != want+"/node-1" {
					t.Errorf("facts %v", out.Facts)
				}
			},
		},
		{
			name: "set-nfs-unique-id replacing a foreign value warns",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "node-1")
				f.files[nfsUniqueIDPath] = "cloned-id\n"
			},
			cfg:        func(c *Config) { c.SetNFSUniqueID = true },
			wantStatus: StatusChanged, wantChanged: true,
			wantWarn: []string{`replacing nfs4_unique_id "cloned-id"`},
		},
		{
			name:       "set-nfs-unique-id with the module not loaded: persisted only, said so",
			seed:       func(f *fakeHost) { *f = *healthyHost(t, "node-1") },
			cfg:        func(c *Config) { c.SetNFSUniqueID = true },
			wantStatus: StatusChanged, wantChanged: true,
			wantWarn: []string{"the nfs module is not loaded"},
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if f.called("nfs-unique-id") != 1 || f.args["nfs-unique-id"][2] != "0" {
					t.Errorf("nfs-unique-id called %d times with %q: want once, without the sysfs parameter that does not exist", f.called("nfs-unique-id"), f.args["nfs-unique-id"])
				}
			},
		},
		{
			name: "set-nfs-unique-id leaves a per-namespace identifier alone",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "node-1")
				f.files[nfsIdentifierPath] = "5e2c1a\n"
			},
			cfg:        func(c *Config) { c.SetNFSUniqueID = true },
			wantStatus: StatusOK,
			wantWarn:   []string{"takes precedence over nfs4_unique_id"},
			check: func(t *testing.T, f *fakeHost, out Outcome) {
				if out.Facts[FactNFSIdentifier] != "5e2c1a/node-1" {
					t.Errorf("facts %v", out.Facts)
				}
			},
		},
		{
			name: "set-nfs-unique-id: a read-only modprobe.d fails the task",
			seed: func(f *fakeHost) {
				*f = *healthyHost(t, "node-1")
				f.readonly[nfsModprobeConf] = true
			},
			cfg:        func(c *Config) { c.SetNFSUniqueID = true },
			wantStatus: StatusFailed, wantMsg: []string{"setting nfs4_unique_id failed", "Read-only file system"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHost(t)
			tc.seed(f)
			f.t = t
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			h := host
			if tc.host != nil {
				h = *tc.host
			}
			out := Hostname{}.Apply(context.Background(), f, h, cfg)
			if out.Task != NameHostname || out.Status != tc.wantStatus || out.Changed != tc.wantChanged {
				t.Fatalf("status %s changed %v, want %s %v: %s (warnings %q)", out.Status, out.Changed, tc.wantStatus, tc.wantChanged, out.Msg, out.Warnings)
			}
			for _, want := range tc.wantMsg {
				if !strings.Contains(out.Msg, want) {
					t.Errorf("msg %q lacks %q", out.Msg, want)
				}
			}
			warnings := strings.Join(out.Warnings, "\n")
			for _, want := range tc.wantWarn {
				if !strings.Contains(warnings, want) {
					t.Errorf("warnings %q lack %q", warnings, want)
				}
			}
			if got := f.called("hostname-apply"); got != tc.wantApply {
				t.Errorf("hostname-apply ran %d times, want %d", got, tc.wantApply)
			}
			if tc.check != nil {
				tc.check(t, f, out)
			}
			// Whatever the first run did, a second one on a host it
			// fixed changes nothing.
			if out.Status == StatusChanged && !cfg.Check {
				f.afterApply = nil
				again := Hostname{}.Apply(context.Background(), f, h, cfg)
				if again.Status != StatusOK || again.Changed {
					t.Errorf("second run: %+v (files %s)", again, f.fileList())
				}
			}
		})
	}
}

// After the mounts made under the old name are gone, later runs stop
// warning and forget them; while they remain, later runs keep saying so.
func TestHostnameNFSReminderAcrossRuns(t *testing.T) {
	f := healthyHost(t, "localhost")
	f.mountinfo = nfsMountLine
	host := Host{Name: "h", TargetHostname: "node-1"}
	cfg := DefaultConfig()
	if out := (Hostname{}).Apply(context.Background(), f, host, cfg); out.Status != StatusChanged {
		t.Fatalf("%+v", out)
	}
	out := Hostname{}.Apply(context.Background(), f, host, cfg)
	if out.Status != StatusOK || len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0], `old hostname "localhost"`) {
		t.Fatalf("second run while the mount remains: %+v", out)
	}
	f.mountinfo = ""
	out = Hostname{}.Apply(context.Background(), f, host, cfg)
	if out.Status != StatusOK || len(out.Warnings) != 0 {
		t.Fatalf("after unmount: %+v", out)
	}
	if _, ok := f.files[nfsStatePath]; ok {
		t.Error("state file not removed once the mounts were gone")
	}
}
