// Package deploy holds what runs nodefix as a monitor: Prometheus alert
// rules (prometheus/) and systemd units (systemd/). Its tests check them
// with the real tools: promtool and systemd-analyze.
package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nodefix/nodefix/internal/promtest"
)

const rulesFile = "prometheus/nodefix-rules.yml"

func promtool(t *testing.T, args ...string) {
	t.Helper()
	promtest.RequireTools(t, promtest.Promtool)
	out, err := exec.Command(promtest.Promtool, args...).CombinedOutput()
	if err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestAlertRulesCheck(t *testing.T) {
	promtool(t, "check", "rules", rulesFile)
}

func TestAlertRulesUnitTests(t *testing.T) {
	files, err := filepath.Glob("prometheus/tests/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule tests in prometheus/tests: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { promtool(t, "test", "rules", f) })
	}
}

// Every alert has a unit test in which it fires, and one in which it
// does not: a rule nobody saw fire may never fire.
func TestEveryAlertIsTested(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, rulesFile, &rules)
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatalf("no alerts in %s", rulesFile)
	}

	fires, silent := map[string]bool{}, map[string]bool{}
	files, _ := filepath.Glob("prometheus/tests/*.yml")
	for _, f := range files {
		var suite struct {
			RuleFiles []string `yaml:"rule_files"`
			Tests     []struct {
				AlertRuleTest []struct {
					Alertname string           `yaml:"alertname"`
					ExpAlerts []map[string]any `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		readYAML(t, f, &suite)
		if len(suite.RuleFiles) != 1 || filepath.Clean(filepath.Join(filepath.Dir(f), suite.RuleFiles[0])) != filepath.Clean(rulesFile) {
			t.Errorf("%s tests %v, want ../nodefix-rules.yml", f, suite.RuleFiles)
		}
		for _, tc := range suite.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	sort.Strings(alerts)
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("alert %s has no unit test in which it fires", a)
		}
		if !silent[a] {
			t.Errorf("alert %s has no unit test in which it stays silent", a)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

var execStart = regexp.MustCompile(`(?m)^ExecStart=(\S+) (.*)$`)

// The units pass systemd-analyze verify, and the service's command line
// is one nodefix accepts: run here (check mode changes nothing), it
// writes metrics promtool accepts.
func TestSystemdUnits(t *testing.T) {
	unit, err := os.ReadFile("systemd/nodefix-check.service")
	if err != nil {
		t.Fatal(err)
	}
	m := execStart.FindSubmatch(unit)
	if m == nil || string(m[1]) != "/usr/local/bin/nodefix" {
		t.Fatalf("nodefix-check.service has no ExecStart=/usr/local/bin/nodefix …")
	}
	args := strings.Fields(string(m[2]))
	const textfile = "/var/lib/prometheus/node-exporter/nodefix.prom"
	if len(args) < 2 || args[0] != "check" || args[len(args)-2] != "--textfile" || args[len(args)-1] != textfile {
		t.Fatalf("ExecStart arguments %q: want check … --textfile %s", args, textfile)
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "nodefix")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/nodefix").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	prom := filepath.Join(dir, "nodefix.prom")
	cmd := exec.Command(bin, append(args[:len(args)-1], prom)...)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 0 && code != 2 {
		t.Errorf("nodefix %s: %v (the unit's SuccessExitStatus allows 0 and 2)\n%s", strings.Join(args, " "), err, out)
	}
	data, err := os.ReadFile(prom)
	if err != nil {
		t.Fatalf("the service's command wrote no metrics: %v\n%s", err, out)
	}
	promtest.CheckMetrics(t, data)

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("no systemd-analyze on this machine: the units are not verified")
	}
	units := filepath.Join(dir, "units")
	if err := os.Mkdir(units, 0o755); err != nil {
		t.Fatal(err)
	}
	// verify insists that ExecStart's program exists: the one just built.
	unit = bytes.ReplaceAll(unit, []byte("/usr/local/bin/nodefix"), []byte(bin))
	timer, err := os.ReadFile("systemd/nodefix-check.timer")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"nodefix-check.service": unit, "nodefix-check.timer": timer} {
		if err := os.WriteFile(filepath.Join(units, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	verify := exec.Command("systemd-analyze", "verify", "nodefix-check.service", "nodefix-check.timer")
	verify.Dir = units
	// verify only warns about most mistakes (a setting it cannot parse
	// is "ignoring"): any output is a failure.
	if out, err := verify.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
