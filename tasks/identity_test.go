package tasks

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCheckFleetHostnames(t *testing.T) {
	tests := []struct {
		name          string
		hosts         []Host
		wantConflicts []HostnameConflict
		wantInvalid   []string // hosts
		wantInMsg     []string
	}{
		{
			name:  "unique names pass",
			hosts: []Host{{Name: "10.0.0.1", TargetHostname: "node-1"}, {Name: "10.0.0.2", TargetHostname: "node-2"}},
		},
		{
			name: "every conflicting host is named, per name",
			hosts: []Host{
				{Name: "10.0.0.1", TargetHostname: "worker"}, {Name: "10.0.0.3", TargetHostname: "worker"},
				{Name: "10.0.0.2", TargetHostname: "worker"}, {Name: "10.0.0.4", TargetHostname: "db"},
				{Name: "10.0.0.5", TargetHostname: "db"}, {Name: "10.0.0.6", TargetHostname: "ok"},
			},
			wantConflicts: []HostnameConflict{
				{Name: "db", Hosts: []string{"10.0.0.4", "10.0.0.5"}},
				{Name: "worker", Hosts: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}},
			},
			wantInMsg: []string{`hosts 10.0.0.1, 10.0.0.2, 10.0.0.3 would all be named "worker"`, `hosts 10.0.0.4, 10.0.0.5 would all be named "db"`, "k8s_nodename"},
		},
		{
			name: "invalid names are refused with host and value, with the conflicts",
			hosts: []Host{
				{Name: "a", TargetHostname: "-bad"}, {Name: "b", TargetHostname: ""},
				{Name: "c", TargetHostname: strings.Repeat("x", 40) + "." + strings.Repeat("x", 24)}, {Name: "d", TargetHostname: "a..b"},
				{Name: "e", TargetHostname: "Upper"}, {Name: "f", TargetHostname: "n"}, {Name: "g", TargetHostname: "n"},
			},
			wantConflicts: []HostnameConflict{{Name: "n", Hosts: []string{"f", "g"}}},
			wantInvalid:   []string{"a", "b", "c", "d", "e"},
			wantInMsg: []string{`host a: node name "-bad": label "-bad" must start and end with a letter or digit`, "host b: node name is empty",
				"host c:", "is 65 characters long; as a hostname the kernel allows at most 64", `host d: node name "a..b" has an empty label`,
				`host e: node name "Upper" has the upper-case letter 'U'`},
		},
		{
			name:  "a part longer than 63 characters",
			hosts: []Host{{Name: "a", TargetHostname: strings.Repeat("y", 64)}},
			// 64 bytes fits the kernel but not a DNS label.
			wantInvalid: []string{"a"},
			wantInMsg:   []string{`label 1 ("` + strings.Repeat("y", 64) + `") is 64 characters long; at most 63 are allowed`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckFleetHostnames(tc.hosts)
			if tc.wantConflicts == nil && tc.wantInvalid == nil {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			var ferr *FleetHostnameError
			if !errors.As(err, &ferr) {
				t.Fatalf("want *FleetHostnameError, got %v", err)
			}
			if !reflect.DeepEqual(ferr.Conflicts, tc.wantConflicts) {
				t.Errorf("conflicts %+v, want %+v", ferr.Conflicts, tc.wantConflicts)
			}
			var invalid []string
			for _, in := range ferr.Invalid {
				invalid = append(invalid, in.Host)
			}
			if !reflect.DeepEqual(invalid, tc.wantInvalid) {
				t.Errorf("invalid %v, want %v", invalid, tc.wantInvalid)
			}
			for _, want := range tc.wantInMsg {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message lacks %q:\n%s", want, err)
				}
			}
		})
	}
}

func TestAuditIdentities(t *testing.T) {
	facts := map[string]map[string]string{
		"n1": {FactHostname: "localhost", FactMachineID: "aaa", FactNFSIdentifier: "localhost", FactISCSIInitiator: "iqn.x:1"},
		"n2": {FactHostname: "localhost", FactMachineID: "aaa", FactNFSIdentifier: "localhost", FactISCSIInitiator: "iqn.x:2"},
		"n3": {FactHostname: "node-3", FactMachineID: "ccc", FactNFSIdentifier: "u3/node-3", FactISCSIInitiator: "iqn.x:1"},
		"n4": {FactHostname: "node-4", FactMachineID: "ddd", FactNFSIdentifier: "node-4"},
		"n5": {FactHostname: "localhost"},
		"n6": {}, // a host whose facts were not gathered
	}
	got := AuditIdentities(facts)
	want := []Finding{
		{Kind: FactHostname, Value: "localhost", Hosts: []string{"n1", "n2", "n5"}},
		{Kind: FactMachineID, Value: "aaa", Hosts: []string{"n1", "n2"}},
		{Kind: FactNFSIdentifier, Value: "localhost", Hosts: []string{"n1", "n2"}},
		{Kind: FactISCSIInitiator, Value: "iqn.x:1", Hosts: []string{"n1", "n3"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("AuditIdentities:\n%+v\nwant\n%+v", got, want)
	}
	if s := got[1].String(); !strings.Contains(s, `duplicate machine-id "aaa" on hosts n1, n2`) || !strings.Contains(s, "systemd-machine-id-setup") {
		t.Errorf("finding text: %s", s)
	}
	if len(AuditIdentities(map[string]map[string]string{"a": facts["n3"], "b": facts["n4"]})) != 0 {
		t.Error("unique identities reported")
	}
}
