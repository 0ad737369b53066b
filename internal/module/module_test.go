package module

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nodefix/nodefix/tasks"
)

func TestParseArgs(t *testing.T) {
	def := tasks.DefaultConfig()
	tests := []struct {
		name    string
		args    string
		check   func(t *testing.T, a Args)
		wantErr string
	}{
		{name: "defaults: every task; no hostname leaves the name to the node's kubelet", args: `{}`, check: func(t *testing.T, a Args) {
			if a.Hostname != "" || a.Tasks != "" || a.Identify || a.Config.TrustInventory {
				t.Errorf("got %+v", a)
			}
		}},
		{name: "identify, with the playbook's name and where it came from", args: `{"identify": true, "hostname": "w1", "hostname_source": "K8S_NODENAME", "expected_hostname": "", "trust_inventory": false}`,
			check: func(t *testing.T, a Args) {
				if !a.Identify || a.Hostname != "w1" || a.HostnameSource != "K8S_NODENAME" {
					t.Errorf("got %+v", a)
				}
				if h := a.host("n1"); h.TargetHostname != "w1" || h.TargetSource != "K8S_NODENAME" {
					t.Errorf("host %+v", h)
				}
			}},
		{name: "expected_hostname becomes the surveyed name", args: `{"expected_hostname": "w2", "trust_inventory": "yes"}`,
			check: func(t *testing.T, a Args) {
				if h := a.host("n1"); h.SurveyedHostname != "w2" || h.TargetHostname != "" || !a.Config.TrustInventory {
					t.Errorf("host %+v, args %+v", h, a)
				}
			}},
		{name: "hostname given", args: `{"hostname": "worker-01"}`, check: func(t *testing.T, a Args) {
			if a.Hostname != "worker-01" || a.Tasks != "" || a.Config.Check || a.Config.Diff || a.TaskTimeout != DefaultTaskTimeout {
				t.Errorf("got %+v", a)
			}
			if !reflect.DeepEqual(a.Config, def) {
				t.Errorf("config %+v, want the defaults %+v", a.Config, def)
			}
		}},
		{name: "check and diff mode, other _ansible_ keys ignored",
			args: `{"tasks": "longhorn-deps", "_ansible_check_mode": true, "_ansible_diff": true, "_ansible_verbosity": 3,
				"_ansible_tmpdir": "/root/.ansible/tmp/x", "_ansible_version": "2.14.18", "_ansible_no_log": false}`,
			check: func(t *testing.T, a Args) {
				if !a.Config.Check || !a.Config.Diff {
					t.Errorf("check %t diff %t, want both", a.Config.Check, a.Config.Diff)
				}
			}},
		{name: "tasks as a list", args: `{"tasks": ["longhorn-deps", " rpmdb "]}`, check: func(t *testing.T, a Args) {
			if a.Tasks != "longhorn-deps,rpmdb" {
				t.Errorf("tasks %q", a.Tasks)
			}
		}},
		{name: "tasks as a comma string", args: `{"tasks": "rpm-queries, rpmdb,"}`, check: func(t *testing.T, a Args) {
			if a.Tasks != "rpm-queries,rpmdb" {
				t.Errorf("tasks %q", a.Tasks)
			}
		}},
		{name: "unknown task", args: `{"tasks": ["rpmdb", "reboot"]}`, wantErr: `argument 'tasks': unknown task "reboot"`},
		{name: "unknown parameters, named as Ansible names them", args: `{"tasks": "rpmdb", "hostnme": "x", "become": true}`,
			wantErr: "Unsupported parameters for (nodefix) module: become, hostnme. Supported parameters include: command_timeout,"},
		{name: "keep_hostname needs no name", args: `{"keep_hostname": "yes"}`, check: func(t *testing.T, a Args) {
			if !a.Config.KeepHostname {
				t.Error("keep_hostname not set")
			}
		}},
		{name: "keep_hostname with set_nfs_unique_id", args: `{"keep_hostname": true, "set_nfs_unique_id": true}`, check: func(t *testing.T, a Args) {
			if !a.Config.KeepHostname || !a.Config.SetNFSUniqueID {
				t.Errorf("got %+v", a.Config)
			}
		}},
		{name: "templated booleans", args: `{"tasks": "longhorn-deps", "install_missing": "True", "set_nfs_unique_id": "off", "keep_hostname": 1}`,
			check: func(t *testing.T, a Args) {
				if !a.Config.InstallMissing || a.Config.SetNFSUniqueID || !a.Config.KeepHostname {
					t.Errorf("got %+v", a.Config)
				}
			}},
		{name: "not a boolean", args: `{"tasks": "longhorn-deps", "install_missing": "maybe"}`,
			wantErr: `argument 'install_missing' is the string "maybe", which is not a boolean`},
		{name: "durations: units, seconds, numeric strings",
			args: `{"tasks": "rpm-queries", "rpm_query_max_age": "15m", "rpm_query_grace": 2.5, "command_timeout": "90", "task_timeout": "1h"}`,
			check: func(t *testing.T, a Args) {
				if a.Config.RPMQueryMaxAge != 15*time.Minute || a.Config.RPMQueryGrace != 2500*time.Millisecond ||
					a.Config.CommandTimeout != 90*time.Second || a.TaskTimeout != time.Hour {
					t.Errorf("got %+v, task timeout %s", a.Config, a.TaskTimeout)
				}
			}},
		{name: "zero duration", args: `{"tasks": "rpm-queries", "rpm_query_max_age": 0}`, wantErr: "argument 'rpm_query_max_age' is \"0\": it must be longer than zero"},
		{name: "bad duration", args: `{"tasks": "rpm-queries", "rpm_query_max_age": "ten minutes"}`, wantErr: "not a duration"},
		{name: "backups", args: `{"tasks": "rpmdb", "rpm_backup_dir": "/srv/rpm-backups", "rpm_backup_keep": "5"}`, check: func(t *testing.T, a Args) {
			if a.Config.RPMBackupDir != "/srv/rpm-backups" || a.Config.RPMBackupKeep != 5 {
				t.Errorf("got %+v", a.Config)
			}
		}},
		{name: "relative backup dir", args: `{"tasks": "rpmdb", "rpm_backup_dir": "backups"}`, wantErr: "is not an absolute path"},
		{name: "no backups", args: `{"tasks": "rpmdb", "rpm_backup_keep": 0}`, wantErr: "keep at least 1 backup"},
		{name: "executables", args: `{"tasks": "longhorn-deps", "longhorn_executables": "iscsiadm,mount.nfs"}`, check: func(t *testing.T, a Args) {
			if !reflect.DeepEqual(a.Config.LonghornExecutables, []string{"iscsiadm", "mount.nfs"}) {
				t.Errorf("got %q", a.Config.LonghornExecutables)
			}
		}},
		{name: "no executables", args: `{"tasks": "longhorn-deps", "longhorn_executables": []}`, wantErr: "name at least one executable"},
		{name: "null is not given", args: `{"tasks": "longhorn-deps", "rpm_query_max_age": null}`, check: func(t *testing.T, a Args) {
			if a.Config.RPMQueryMaxAge != def.RPMQueryMaxAge {
				t.Errorf("got %s", a.Config.RPMQueryMaxAge)
			}
		}},
		{name: "hostname must be a string", args: `{"hostname": ["a"]}`, wantErr: "argument 'hostname' is a list, not a string"},
		{name: "fleet names as a dict", args: `{"fleet_names": {"10.0.0.1": "master-01", "10.0.0.2": ""}, "_ansible_check_mode": true}`,
			check: func(t *testing.T, a Args) {
				if !reflect.DeepEqual(a.FleetNames, map[string]string{"10.0.0.1": "master-01", "10.0.0.2": ""}) {
					t.Errorf("got %v", a.FleetNames)
				}
			}},
		{name: "fleet names as JSON text", args: `{"fleet_names": "{\"a\": \"x\"}"}`, check: func(t *testing.T, a Args) {
			if !reflect.DeepEqual(a.FleetNames, map[string]string{"a": "x"}) {
				t.Errorf("got %v", a.FleetNames)
			}
		}},
		{name: "fleet names with tasks", args: `{"fleet_names": {"a": "x"}, "tasks": "hostname", "hostname": "x"}`,
			wantErr: "fleet_names (run once on the controller, for the whole fleet) runs no task: leave out hostname, tasks"},
		{name: "fleet identities", args: `{"fleet_identities": {"a": {"machine_id": "m1"}, "b": null}}`, check: func(t *testing.T, a Args) {
			if !reflect.DeepEqual(a.FleetIdentities, map[string]map[string]string{"a": {"machine_id": "m1"}}) {
				t.Errorf("got %v", a.FleetIdentities)
			}
		}},
		{name: "fleet identities with tasks", args: `{"fleet_identities": {}, "tasks": "rpmdb"}`, wantErr: "fleet_identities (run once on the controller, for the whole fleet) runs no task: leave out tasks"},
		{name: "fleet identities not dicts", args: `{"fleet_identities": {"a": "m1"}}`, wantErr: "for host a is a string that is not a JSON object"},
		{name: "fleet names not a dict", args: `{"fleet_names": ["a"]}`, wantErr: "is a list, not a dict"},
		{name: "not an object", args: `["tasks"]`, wantErr: "the arguments are not a JSON object"},
		{name: "null", args: `null`, wantErr: "the arguments are not a JSON object: null"},
		{name: "not JSON", args: `tasks=hostname`, wantErr: "the arguments are not a JSON object"},
		{name: "bad check mode", args: `{"_ansible_check_mode": "sometimes"}`, wantErr: "_ansible_check_mode: is the string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseArgs([]byte(tt.args))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			tt.check(t, a)
		})
	}
}

// scripted is a task with a fixed outcome that records what it was given.
type scripted struct {
	name string
	out  tasks.Outcome
	got  *[]tasks.Host
	cfgs *[]tasks.Config
}

func (s scripted) Name() string { return s.name }

func (s scripted) Apply(_ context.Context, _ tasks.Node, h tasks.Host, cfg tasks.Config) tasks.Outcome {
	*s.got = append(*s.got, h)
	*s.cfgs = append(*s.cfgs, cfg)
	return s.out
}

func TestRunTasks(t *testing.T) {
	renamed := tasks.Outcome{Task: "hostname", Status: tasks.StatusChanged, Changed: true, Msg: "renamed localhost → worker-01 (hostname)",
		Warnings: []string{"cloud-init may undo it"}, Diff: &tasks.Diff{Before: "hostname: localhost\n", After: "hostname: worker-01\n"},
		Details: map[string]any{"hostname_after": "worker-01"}}
	ok := tasks.Outcome{Task: "rpmdb", Status: tasks.StatusOK, Msg: "the rpm database verifies"}
	skipped := tasks.Outcome{Task: "rpm-queries", Status: tasks.StatusSkipped, Msg: "not implemented yet"}
	failedDeps := tasks.Outcome{Task: "longhorn-deps", Status: tasks.StatusFailed, Msg: "missing: iscsiadm (open-iscsi)"}
	failedName := tasks.Outcome{Task: "hostname", Status: tasks.StatusFailed, Msg: "hostname: exit 1",
		Details: map[string]any{"hostname_after": "localhost"}}

	tests := []struct {
		name     string
		outcomes []tasks.Outcome
		diff     bool
		want     Result
		wantRun  int
	}{
		{name: "changed with warnings and a diff", outcomes: []tasks.Outcome{renamed, ok}, diff: true, wantRun: 2, want: Result{
			Changed: true, Hostname: "worker-01",
			Msg:      "hostname: renamed localhost → worker-01 (hostname); rpmdb: the rpm database verifies",
			Tasks:    []tasks.Outcome{renamed, ok},
			Diff:     []DiffEntry{{Before: "hostname: localhost\n", After: "hostname: worker-01\n", BeforeHeader: "hostname", AfterHeader: "hostname"}},
			Warnings: []string{"hostname: cloud-init may undo it"},
		}},
		{name: "no diff unless Ansible asks", outcomes: []tasks.Outcome{renamed}, wantRun: 1, want: Result{
			Changed: true, Hostname: "worker-01", Msg: "hostname: renamed localhost → worker-01 (hostname)",
			Tasks: []tasks.Outcome{renamed}, Warnings: []string{"hostname: cloud-init may undo it"},
		}},
		{name: "a failed task stops the node", outcomes: []tasks.Outcome{renamed, failedDeps, ok}, wantRun: 2, want: Result{
			Changed: true, Failed: true, Hostname: "worker-01",
			Msg:      "longhorn-deps: missing: iscsiadm (open-iscsi); not run after the failure: rpmdb",
			Tasks:    []tasks.Outcome{renamed, failedDeps},
			NotRun:   []string{"rpmdb"},
			Warnings: []string{"hostname: cloud-init may undo it"},
		}},
		{name: "first task fails", outcomes: []tasks.Outcome{failedName, ok}, wantRun: 1, want: Result{
			Failed: true, Hostname: "localhost", Msg: "hostname: hostname: exit 1; not run after the failure: rpmdb",
			Tasks: []tasks.Outcome{failedName}, NotRun: []string{"rpmdb"},
		}},
		{name: "every task skipped", outcomes: []tasks.Outcome{skipped}, wantRun: 1, want: Result{
			Skipped: true, Msg: "rpm-queries: not implemented yet", Tasks: []tasks.Outcome{skipped},
		}},
		{name: "skipped and ok is ok", outcomes: []tasks.Outcome{skipped, ok}, wantRun: 2, want: Result{
			Msg: "rpm-queries: not implemented yet; rpmdb: the rpm database verifies", Tasks: []tasks.Outcome{skipped, ok},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hosts []tasks.Host
			var cfgs []tasks.Config
			var selected []tasks.Task
			for _, o := range tt.outcomes {
				selected = append(selected, scripted{name: o.Task, out: o, got: &hosts, cfgs: &cfgs})
			}
			a := Args{Hostname: "worker-01", Config: tasks.DefaultConfig(), TaskTimeout: time.Minute}
			a.Config.Diff = tt.diff
			got := runTasks(context.Background(), nil, tasks.Host{Name: "node1", TargetHostname: "worker-01"}, selected, a)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result\n got %+v\nwant %+v", got, tt.want)
			}
			if len(hosts) != tt.wantRun {
				t.Errorf("%d tasks ran, want %d", len(hosts), tt.wantRun)
			}
			for _, h := range hosts {
				if h.TargetHostname != "worker-01" || h.Name != "node1" {
					t.Errorf("a task got host %+v", h)
				}
			}
		})
	}
}

func TestCheckNames(t *testing.T) {
	tests := []struct {
		name      string
		names     map[string]string
		wantMsg   []string
		conflicts int
		invalid   int
	}{
		{name: "unique", names: map[string]string{"a": "master-01", "b": "worker-01"}, wantMsg: []string{"the 2 planned hostnames are valid and unique"}},
		{name: "kubeasz's collision", names: map[string]string{"10.0.0.4": "worker-01", "10.0.0.5": "worker-01", "10.0.0.1": "master-01"},
			wantMsg: []string{`hosts 10.0.0.4, 10.0.0.5 would all be named "worker-01"`}, conflicts: 1},
		{name: "invalid and empty names", names: map[string]string{"a": "Worker_01", "b": "", "c": "ok-1"},
			wantMsg: []string{`host a: node name "Worker_01" has the upper-case letter 'W'`, "host b: node name is empty"}, invalid: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := CheckNames(tt.names)
			if res.Failed != (tt.conflicts+tt.invalid > 0) || res.Changed {
				t.Errorf("failed %t changed %t", res.Failed, res.Changed)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(res.Msg, m) {
					t.Errorf("msg %q does not say %q", res.Msg, m)
				}
			}
			if len(res.Conflicts) != tt.conflicts || len(res.Invalid) != tt.invalid {
				t.Errorf("conflicts %v invalid %v", res.Conflicts, res.Invalid)
			}
		})
	}
}

func TestAuditIdentities(t *testing.T) {
	clean := AuditIdentities(map[string]map[string]string{"a": {"machine_id": "m1"}, "b": {"machine_id": "m2"}})
	if clean.Failed || clean.Changed || len(clean.Warnings) != 0 || clean.Msg != "the identities of the 2 hosts are unique" {
		t.Errorf("unique identities: %+v", clean)
	}
	clones := AuditIdentities(map[string]map[string]string{
		"a": {"machine_id": "m1", "iscsi_initiator_name": "iqn.x"},
		"b": {"machine_id": "m1", "iscsi_initiator_name": "iqn.x"},
		"c": {"machine_id": "m3"},
	})
	if clones.Failed || clones.Changed || len(clones.Findings) != 2 || len(clones.Warnings) != 2 {
		t.Fatalf("clones: %+v", clones)
	}
	if !strings.Contains(clones.Warnings[0], `duplicate machine-id "m1" on hosts a, b`) {
		t.Errorf("warning %q", clones.Warnings[0])
	}
}

// TestMain_ is the module protocol end to end, without a node: the args
// file in, one JSON object and the exit status out.
func TestMainProtocol(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     string // "" = no file
		wantRC   int
		wantJSON map[string]any
	}{
		{name: "missing args file", wantRC: 1, wantJSON: map[string]any{"failed": true, "changed": false}},
		{name: "bad args", args: `{"tasks": "reboot"}`, wantRC: 1, wantJSON: map[string]any{"failed": true}},
		{name: "precheck ok", args: `{"fleet_names": {"a": "x1", "b": "x2"}, "_ansible_check_mode": true}`, wantRC: 0,
			wantJSON: map[string]any{"failed": false, "changed": false, "msg": "the 2 planned hostnames are valid and unique"}},
		{name: "precheck refused", args: `{"fleet_names": {"a": "x1", "b": "x1"}}`, wantRC: 1, wantJSON: map[string]any{"failed": true}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "args"+string(rune('a'+i)))
			if tt.args != "" {
				if err := os.WriteFile(path, []byte(tt.args), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			rc := Main(context.Background(), path, "test", nil, "node1", &out)
			if rc != tt.wantRC {
				t.Errorf("exit %d, want %d", rc, tt.wantRC)
			}
			if lines := strings.Count(out.String(), "\n"); lines != 1 {
				t.Errorf("%d lines, want exactly one JSON object: %q", lines, out.String())
			}
			var got map[string]any
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("output is not JSON: %v: %q", err, out.String())
			}
			for k, v := range tt.wantJSON {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %v, want %v (%s)", k, got[k], v, out.String())
				}
			}
			if _, ok := got["msg"].(string); !ok {
				t.Errorf("no msg: %s", out.String())
			}
		})
	}
}

// TestWriteKeepsTextReadable: no HTML escaping of '<', '>' and '&' in
// messages that name <cluster> placeholders.
func TestWriteKeepsTextReadable(t *testing.T) {
	var out bytes.Buffer
	if err := Write(&out, Result{Msg: "clusters/<c>/config.yml & more"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "clusters/<c>/config.yml & more") {
		t.Errorf("escaped: %s", out.String())
	}
}
