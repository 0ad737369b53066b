package module

import (
	"strings"
	"testing"
	"time"

	"github.com/nodefix/nodefix/tasks"
)

func TestInventoryOptions(t *testing.T) {
	def := tasks.DefaultConfig()
	tests := []struct {
		name    string
		vars    map[string]any
		check   func(t *testing.T, c tasks.Config)
		wantErr string
	}{
		{name: "none: the command line's config", vars: map[string]any{"nodefix_hostname": "w1", "nodefix_target": "all", "ansible_user": "root"},
			check: func(t *testing.T, c tasks.Config) {
				if c.RPMQueryMaxAge != def.RPMQueryMaxAge || c.KeepHostname || c.TrustInventory {
					t.Errorf("%+v", c)
				}
			}},
		{name: "typed as YAML and INI give them", vars: map[string]any{
			"nodefix_rpm_query_max_age": "5m", "nodefix_rpm_backup_keep": 5, "nodefix_command_timeout": 90,
			"nodefix_keep_hostname": "yes", "nodefix_trust_inventory": true,
			"nodefix_longhorn_executables": []any{"iscsiadm", "mount.nfs"}},
			check: func(t *testing.T, c tasks.Config) {
				if c.RPMQueryMaxAge != 5*time.Minute || c.RPMBackupKeep != 5 || c.CommandTimeout != 90*time.Second ||
					!c.KeepHostname || !c.TrustInventory || strings.Join(c.LonghornExecutables, ",") != "iscsiadm,mount.nfs" {
					t.Errorf("%+v", c)
				}
			}},
		{name: "a bad value names the variable", vars: map[string]any{"nodefix_rpm_query_max_age": "banana"},
			wantErr: "variable nodefix_rpm_query_max_age"},
		{name: "a relative backup dir", vars: map[string]any{"nodefix_rpm_backup_dir": "backups"},
			wantErr: `variable nodefix_rpm_backup_dir "backups" is not an absolute path`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := InventoryOptions(def, tc.vars)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, got)
		})
	}
}
