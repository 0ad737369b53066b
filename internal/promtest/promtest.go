// Package promtest helps tests check nodefix's monitoring with the real
// Prometheus tools (Debian's prometheus and prometheus-node-exporter
// packages, installed by .ci/install-deps).
package promtest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Promtool and NodeExporter are the Debian packages' program names.
const (
	Promtool     = "promtool"
	NodeExporter = "prometheus-node-exporter"
)

// RequireTools skips the test when a tool is missing, or fails it when
// NODEFIX_FLEET=required (as in CI), so that CI never passes by skipping.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "needs " + strings.Join(missing, ", ") + " (make deps installs Debian's prometheus and prometheus-node-exporter)"
	if os.Getenv("NODEFIX_FLEET") == "required" {
		t.Fatal(msg + "; NODEFIX_FLEET=required")
	}
	t.Skip(msg)
}

// CheckMetrics runs `promtool check metrics` on a text exposition and
// fails the test with promtool's complaints (format errors and lint
// problems alike).
func CheckMetrics(t testing.TB, text []byte) {
	t.Helper()
	RequireTools(t, Promtool)
	cmd := exec.Command(Promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s\non:\n%s", err, out, text)
	}
}
