package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	debianOSRelease = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nID=debian\n"
	rockyOSRelease  = "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n"
	slesOSRelease   = "NAME=\"SLES\"\nID=\"sles\"\nID_LIKE=\"suse\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP5\"\n"
	ubuntuOSRelease = "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nID=ubuntu\nID_LIKE=debian\n"
	alpineOSRelease = "NAME=\"Alpine Linux\"\nID=alpine\nPRETTY_NAME=\"Alpine Linux v3.19\"\n"
)

// depsHost is a healthy Longhorn node: every executable present and
// running, iscsid running, modules loaded.
func depsHost(t *testing.T, osRelease string) *fakeHost {
	f := newFakeHost(t)
	f.files["/etc/os-release"] = osRelease
	for _, e := range DefaultConfig().LonghornExecutables {
		f.paths[e] = "/usr/sbin/" + e
	}
	f.procs = []string{"systemd", "iscsid", "kubelet"}
	f.modules = map[string]string{"iscsi_tcp": "loaded", "nfs": "available", "dm_crypt": "loaded"}
	return f
}

func TestLonghornDepsDecisions(t *testing.T) {
	tests := []struct {
		name        string
		os          string
		seed        func(f *fakeHost)
		cfg         func(c *Config)
		wantStatus  Status
		wantChanged bool
		wantMsg     []string
		wantWarn    []string
		wantNoWarn  bool
		wantInstall []string // args of the install script
		check       func(t *testing.T, out Outcome)
	}{
		{
			name: "healthy node", os: debianOSRelease,
			wantStatus: StatusOK, wantNoWarn: true,
			wantMsg: []string{"iscsiadm, mount.nfs, cryptsetup, dmsetup found and runnable"},
		},
		{
			name: "missing on Debian: names the executable and the Debian package", os: debianOSRelease,
			seed:       func(f *fakeHost) { delete(f.paths, "iscsiadm"); delete(f.paths, "dmsetup") },
			wantStatus: StatusFailed,
			wantMsg: []string{"iscsiadm (not found in PATH, /usr/sbin or /sbin)", "dmsetup (not found",
				"install on Debian GNU/Linux 12 (bookworm): apt-get install -y open-iscsi dmsetup", "--install-missing"},
		},
		{
			name: "missing on Rocky: RHEL packages", os: rockyOSRelease,
			seed: func(f *fakeHost) {
				delete(f.paths, "iscsiadm")
				delete(f.paths, "mount.nfs")
				delete(f.paths, "dmsetup")
			},
			wantStatus: StatusFailed,
			wantMsg:    []string{"dnf install -y iscsi-initiator-utils nfs-utils device-mapper"},
		},
		{
			name: "missing on SLES: SUSE packages", os: slesOSRelease,
			seed:       func(f *fakeHost) { delete(f.paths, "mount.nfs"); delete(f.paths, "iscsiadm") },
			wantStatus: StatusFailed,
			wantMsg:    []string{"zypper install -y open-iscsi nfs-client"},
		},
		{
			name: "Ubuntu through ID_LIKE", os: ubuntuOSRelease,
			seed:       func(f *fakeHost) { delete(f.paths, "mount.nfs") },
			wantStatus: StatusFailed,
			wantMsg:    []string{"apt-get install -y nfs-common"},
		},
		{
			name: "unknown distribution: no package guessed", os: alpineOSRelease,
			seed:       func(f *fakeHost) { delete(f.paths, "iscsiadm") },
			wantStatus: StatusFailed,
			wantMsg:    []string{"install the package that provides iscsiadm on Alpine Linux v3.19"},
		},
		{
			name: "present but not runnable (a missing library)", os: debianOSRelease,
			seed: func(f *fakeHost) {
				f.runStatus["iscsiadm"] = 127
				f.runOutput["iscsiadm"] = "iscsiadm: error while loading shared libraries: libisns.so.0: cannot open shared object file\n"
			},
			wantStatus: StatusFailed,
			wantMsg:    []string{"/usr/sbin/iscsiadm does not run (exit status 127): iscsiadm: error while loading shared libraries", "open-iscsi"},
		},
		{
			name: "hangs on --version", os: debianOSRelease,
			seed:       func(f *fakeHost) { f.runStatus["cryptsetup"] = 124 },
			wantStatus: StatusFailed,
			wantMsg:    []string{"--version did not finish within 10s"},
		},
		{
			name: "a complaining but running binary counts (dmsetup without a dm driver)", os: debianOSRelease,
			seed: func(f *fakeHost) {
				f.runStatus["dmsetup"] = 1
				f.runOutput["dmsetup"] = "/dev/mapper/control: open failed: No such device\nLibrary version: 1.02.185\n"
			},
			wantStatus: StatusOK,
			check: func(t *testing.T, out Outcome) {
				if e := out.Details["executables"].(map[string]execCheck)["dmsetup"]; e.Version != "Library version: 1.02.185" {
					t.Errorf("version %q", e.Version)
				}
			},
		},
		{
			name: "install missing: the right package manager, then verified", os: rockyOSRelease,
			seed: func(f *fakeHost) {
				delete(f.paths, "iscsiadm")
				f.installs["iscsi-initiator-utils"] = []string{"iscsiadm"}
			},
			cfg:        func(c *Config) { c.InstallMissing = true },
			wantStatus: StatusChanged, wantChanged: true,
			wantMsg:     []string{"installed iscsi-initiator-utils; iscsiadm, mount.nfs, cryptsetup, dmsetup found and runnable"},
			wantInstall: []string{"rhel", "iscsi-initiator-utils"},
		},
		{
			name: "install missing in check mode: would install, installs nothing", os: debianOSRelease,
			seed:       func(f *fakeHost) { delete(f.paths, "iscsiadm") },
			cfg:        func(c *Config) { c.InstallMissing, c.Check = true, true },
			wantStatus: StatusChanged, wantChanged: true,
			wantMsg: []string{"would install open-iscsi"},
		},
		{
			name: "install fails: the package manager's words", os: debianOSRelease,
			seed: func(f *fakeHost) {
				delete(f.paths, "iscsiadm")
				f.fail["longhorn-deps-install"] = Result{ExitStatus: 100, Stderr: []byte("E: Unable to locate package open-iscsi\n")}
			},
			cfg:        func(c *Config) { c.InstallMissing = true },
			wantStatus: StatusFailed,
			wantMsg:    []string{"installing open-iscsi: exit status 100: E: Unable to locate package open-iscsi"},
		},
		{
			name: "installed but still missing", os: debianOSRelease,
			seed:       func(f *fakeHost) { delete(f.paths, "iscsiadm") },
			cfg:        func(c *Config) { c.InstallMissing = true },
			wantStatus: StatusFailed, wantChanged: true,
			wantMsg: []string{"installed open-iscsi, but still missing: iscsiadm"},
		},
		{
			name: "install refused where the package is unknown", os: alpineOSRelease,
			seed:       func(f *fakeHost) { delete(f.paths, "iscsiadm") },
			cfg:        func(c *Config) { c.InstallMissing = true },
			wantStatus: StatusFailed,
			wantMsg:    []string{"nodefix does not know its name there"},
		},
		{
			name: "warnings: iscsid down, modules missing, multipathd running", os: debianOSRelease,
			seed: func(f *fakeHost) {
				f.procs = []string{"multipathd"}
				f.modules = map[string]string{"dm_crypt": "loaded"}
			},
			wantStatus: StatusOK,
			wantWarn: []string{"iscsid is not running", "kernel module iscsi_tcp is neither loaded nor available for kernel 6.1.0-test",
				"kernel module nfs is neither loaded nor available", "multipathd is active"},
		},
		{
			name: "nfs built into the kernel counts as loaded", os: debianOSRelease,
			seed: func(f *fakeHost) {
				f.modules = map[string]string{"iscsi_tcp": "loaded", "dm_crypt": "loaded"}
				f.filesystems = "nodev\tproc\nnodev\tnfs\nnodev\tnfs4\n"
			},
			wantStatus: StatusOK, wantNoWarn: true,
		},
		{
			name: "systemd: socket-activated iscsid is fine; an active multipathd.socket warns", os: debianOSRelease,
			seed: func(f *fakeHost) {
				f.systemd = true
				f.procs = nil
				f.units = map[string]string{"iscsid.socket": "active", "multipathd.socket": "active"}
			},
			wantStatus: StatusOK,
			wantWarn:   []string{"multipathd is active"},
		},
		{
			name: "configured list", os: debianOSRelease,
			cfg:        func(c *Config) { c.LonghornExecutables = []string{"iscsiadm", "nvme"} },
			wantStatus: StatusFailed,
			wantMsg:    []string{"nvme (not found", "install the package that provides nvme"},
		},
		{
			name: "a path in the list is refused", os: debianOSRelease,
			cfg:        func(c *Config) { c.LonghornExecutables = []string{"/usr/sbin/iscsiadm"} },
			wantStatus: StatusFailed,
			wantMsg:    []string{`invalid executable name "/usr/sbin/iscsiadm"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := depsHost(t, tc.os)
			if tc.seed != nil {
				tc.seed(f)
			}
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			out := LonghornDeps{}.Apply(context.Background(), f, Host{Name: "n1"}, cfg)
			if out.Task != NameLonghornDeps || out.Status != tc.wantStatus || out.Changed != tc.wantChanged {
				t.Fatalf("status %s changed %v, want %s %v: %s", out.Status, out.Changed, tc.wantStatus, tc.wantChanged, out.Msg)
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
			if tc.wantNoWarn && len(out.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", out.Warnings)
			}
			if tc.check != nil {
				tc.check(t, out)
			}
			installs := f.called("longhorn-deps-install")
			if tc.wantInstall != nil {
				if installs != 1 || !reflect.DeepEqual(f.args["longhorn-deps-install"], tc.wantInstall) {
					t.Errorf("install ran %d times with %q, want %q", installs, f.args["longhorn-deps-install"], tc.wantInstall)
				}
			}
			if (!cfg.InstallMissing || cfg.Check) && installs != 0 {
				t.Errorf("installed without --install-missing, or in check mode")
			}
			// One round trip to decide (plus install and re-check).
			if gathers := f.called("longhorn-deps-gather"); gathers != 1 && installs == 0 && out.Status != StatusFailed {
				t.Errorf("%d gather round trips", gathers)
			}
			// Never a package-manager query.
			for _, c := range f.calls {
				if c == "rpm" || c == "dpkg" || c == "dpkg-query" {
					t.Errorf("asked the package manager: %v", f.calls)
				}
			}
		})
	}
}

func TestLonghornDepsGatherFails(t *testing.T) {
	f := depsHost(t, debianOSRelease)
	f.connErr = errors.New("session closed")
	out := LonghornDeps{}.Apply(context.Background(), f, Host{Name: "n1"}, DefaultConfig())
	if out.Status != StatusFailed || out.Msg != "gathering Longhorn dependencies: session closed" {
		t.Errorf("%+v", out)
	}
}

func TestOSFamily(t *testing.T) {
	for _, tc := range []struct{ osRelease, want string }{
		{debianOSRelease, familyDebian}, {ubuntuOSRelease, familyDebian}, {rockyOSRelease, familyRHEL},
		{slesOSRelease, familySUSE}, {"ID=opensuse-leap\nID_LIKE=\"suse opensuse\"\n", familySUSE},
		{"ID=\"anolis\"\nID_LIKE=\"rhel fedora centos\"\n", familyRHEL}, {"ID=amzn\nID_LIKE=\"centos rhel fedora\"\n", familyRHEL},
		{alpineOSRelease, ""}, {"", ""},
	} {
		osr := parseOSRelease(tc.osRelease)
		if got := osFamily(strings.ToLower(osr["ID"]), strings.Fields(strings.ToLower(osr["ID_LIKE"]))); got != tc.want {
			t.Errorf("%q: family %q, want %q", tc.osRelease, got, tc.want)
		}
	}
}

// longhorn-deps --install-missing leaves one audit record per install it
// attempted: the packages, the executables that were missing, which of
// them run now and which do not, and the outcome; nothing without an
// install (check mode, nothing missing, a package it does not know).
func TestLonghornDepsInstallIsAudited(t *testing.T) {
	for _, tc := range []struct {
		name    string
		os      string
		seed    func(*fakeHost)
		check   bool
		want    []string // fragments of the one record; none: no record
		outcome string
	}{
		{name: "installed and verified", os: rockyOSRelease,
			seed: func(f *fakeHost) {
				delete(f.paths, "iscsiadm")
				delete(f.paths, "mount.nfs")
				f.installs["iscsi-initiator-utils"] = []string{"iscsiadm"}
				f.installs["nfs-utils"] = []string{"mount.nfs"}
			},
			want: []string{`"task":"longhorn-deps"`, `"action":"install packages"`, `"packages":["iscsi-initiator-utils","nfs-utils"]`,
				`"missing_before":["iscsiadm","mount.nfs"]`, `"available_after":["iscsiadm","mount.nfs"]`, `"still_missing":[]`, `"verified":true`},
			outcome: "changed"},
		{name: "installed, still missing", os: debianOSRelease,
			seed: func(f *fakeHost) { delete(f.paths, "iscsiadm") },
			want: []string{`"packages":["open-iscsi"]`, `"missing_before":["iscsiadm"]`, `"available_after":[]`, `"still_missing":["iscsiadm"]`,
				`"error":"installed open-iscsi, but still missing: iscsiadm`},
			outcome: "failed"},
		{name: "the package manager failed", os: debianOSRelease,
			seed: func(f *fakeHost) {
				delete(f.paths, "iscsiadm")
				f.fail["longhorn-deps-install"] = Result{ExitStatus: 100, Stderr: []byte("E: Unable to locate package open-iscsi\n")}
			},
			want:    []string{`"packages":["open-iscsi"]`, `"verified":false`, `E: Unable to locate package open-iscsi`},
			outcome: "failed"},
		{name: "check mode", os: debianOSRelease, check: true,
			seed: func(f *fakeHost) { delete(f.paths, "iscsiadm") }},
		{name: "nothing missing", os: debianOSRelease},
		{name: "no package known", os: alpineOSRelease,
			seed: func(f *fakeHost) { delete(f.paths, "iscsiadm") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := depsHost(t, tc.os)
			if tc.seed != nil {
				tc.seed(f)
			}
			cfg := DefaultConfig()
			cfg.InstallMissing, cfg.Check = true, tc.check
			cfg.Audit = Audit{RunID: "r1", ControllerUser: "ops", ControllerHost: "bastion"}
			out := LonghornDeps{}.Apply(context.Background(), f, Host{Name: "n1"}, cfg)
			if tc.want == nil {
				if len(f.audits) != 0 {
					t.Errorf("audit records without an install: %q", f.audits)
				}
				return
			}
			if len(f.audits) != 1 {
				t.Fatalf("%d audit records, want 1: %q (%s: %s)", len(f.audits), f.audits, out.Status, out.Msg)
			}
			rec := "{" + f.audits[0]
			var parsed map[string]any
			if err := json.Unmarshal([]byte(`{"time":"t",`+f.audits[0]), &parsed); err != nil {
				t.Fatalf("the record is not JSON once the node adds its time: %v\n%s", err, rec)
			}
			if parsed["outcome"] != tc.outcome || parsed["run_id"] != "r1" || parsed["host"] != "n1" {
				t.Errorf("record %s: want outcome %q, run r1, host n1", rec, tc.outcome)
			}
			for _, w := range tc.want {
				if !strings.Contains(rec, w) {
					t.Errorf("record %s lacks %s", rec, w)
				}
			}
			// The record is written after the install and its check.
			if i, j := lastCall(f, "longhorn-deps-install"), lastCall(f, "audit"); i < 0 || j < i {
				t.Errorf("calls %v: the record must follow the install", f.calls)
			}
		})
	}
}

func lastCall(f *fakeHost, tag string) int {
	n := -1
	for i, c := range f.calls {
		if c == tag {
			n = i
		}
	}
	return n
}

// An audit record that cannot be written is a warning; the install's
// outcome stands.
func TestLonghornDepsInstallAuditFails(t *testing.T) {
	f := depsHost(t, rockyOSRelease)
	delete(f.paths, "iscsiadm")
	f.installs["iscsi-initiator-utils"] = []string{"iscsiadm"}
	f.fail["audit"] = Result{ExitStatus: 125, Stderr: []byte("nodefix: cannot create /var/lib/nodefix/jobs\n")}
	cfg := DefaultConfig()
	cfg.InstallMissing = true
	out := LonghornDeps{}.Apply(context.Background(), f, Host{Name: "n1"}, cfg)
	if out.Status != StatusChanged || !out.Changed {
		t.Fatalf("%s: %s", out.Status, out.Msg)
	}
	if w := strings.Join(out.Warnings, "\n"); !strings.Contains(w, "the install is not on record in /var/log/nodefix/changes.jsonl") || !strings.Contains(w, "cannot create /var/lib/nodefix/jobs") {
		t.Errorf("warnings %q", out.Warnings)
	}
}
