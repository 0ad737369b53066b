package testfleet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RecordedPackages are the packages every node's rpm database records
// (with --justdb: the records are real, no files are installed).
var RecordedPackages = []string{
	"bash", "coreutils", "glibc", "systemd", "kernel",
	"iscsi-initiator-utils", "nfs-utils", "cryptsetup", "device-mapper",
}

// pendingUpdatePackage is built but not recorded: the transaction that
// WedgeRPMDB leaves waiting installs it.
const pendingUpdatePackage = "nodefix-pending-update"

// slowInstallPackage's %pre scriptlet sleeps, so installing it is a real
// rpm transaction that holds the database's transaction lock for as long
// as the fault needs.
const slowInstallPackage = "nodefix-slow-install"

// buildPackages builds the recorded packages (one spec, one subpackage
// each) and the slow-install package with rpmbuild, into dir/rpms.
func buildPackages(ctx context.Context, dir string) (rpmDir string, err error) {
	var spec strings.Builder
	first := RecordedPackages[0]
	fmt.Fprintf(&spec, "Name: %s\nVersion: 1.0\nRelease: 1\nSummary: nodefix test fleet record\nLicense: MIT\nBuildArch: noarch\n%%description\nrecord only\n%%files\n", first)
	for _, name := range append(RecordedPackages[1:], pendingUpdatePackage) {
		fmt.Fprintf(&spec, "%%package -n %s\nSummary: nodefix test fleet record\n%%description -n %s\nrecord only\n%%files -n %s\n", name, name, name)
	}
	slow := fmt.Sprintf("Name: %s\nVersion: 1.0\nRelease: 1\nSummary: an install that hangs in %%pre\nLicense: MIT\nBuildArch: noarch\n%%description\nholds the rpm transaction lock\n%%pre\nsleep 86400\n%%files\n", slowInstallPackage)

	top := filepath.Join(dir, "rpmbuild")
	for name, body := range map[string]string{"records.spec": spec.String(), "slow.spec": slow} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return "", fmt.Errorf("writing %s: %w", path, err)
		}
		cmd := exec.CommandContext(ctx, "rpmbuild", "-bb", "--quiet", "--define", "_topdir "+top, path)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("rpmbuild %s: %w: %s", path, err, out)
		}
	}
	return filepath.Join(top, "RPMS", "noarch"), nil
}

// buildTemplateDB records every package in a fresh database at dbPath.
func buildTemplateDB(ctx context.Context, rpmDir, dbPath string) error {
	if err := os.MkdirAll(dbPath, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dbPath, err)
	}
	args := []string{"--dbpath", dbPath, "-i", "--justdb", "--nodeps", "--noscripts"}
	for _, name := range RecordedPackages {
		args = append(args, filepath.Join(rpmDir, name+"-1.0-1.noarch.rpm"))
	}
	if out, err := exec.CommandContext(ctx, "rpm", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("recording packages in %s: %w: %s", dbPath, err, out)
	}
	out, err := exec.CommandContext(ctx, "rpm", "--dbpath", dbPath, "-qa").Output()
	if err != nil {
		return fmt.Errorf("listing %s: %w", dbPath, err)
	}
	if got := len(strings.Fields(string(out))); got != len(RecordedPackages) {
		return fmt.Errorf("template rpm database %s holds %d packages, want %d", dbPath, got, len(RecordedPackages))
	}
	return nil
}
