package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestVersionText(t *testing.T) {
	goLine := "  go:         " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	for _, tc := range []struct {
		name, version, commit, date string
		want                        []string
	}{
		{"set by make", "v1.2.3", "0123456789ab", "2026-11-23T16:30:00Z", []string{
			"nodefix v1.2.3\n", "  commit:     0123456789ab\n", "  build date: 2026-11-23T16:30:00Z\n", goLine}},
		{"plain go build", "dev", "", "", []string{
			"nodefix dev\n", "  commit:     ", "  build date: unknown (not built by make)\n", goLine}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := versionText(tc.version, tc.commit, tc.date)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
		})
	}
}

// The names the Makefile's -ldflags set are the ones --version prints.
func TestVersionFromLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nodefix")
	}
	bin := filepath.Join(t.TempDir(), "nodefix")
	ldflags := "-X main.version=v9.8.7 -X main.commit=feedfacecafe -X main.buildDate=2026-01-02T03:04:05Z"
	if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"nodefix v9.8.7\n", "commit:     feedfacecafe\n", "build date: 2026-01-02T03:04:05Z\n", runtime.Version()} {
		if !bytes.Contains(out, []byte(w)) {
			t.Errorf("--version %q lacks %q", out, w)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"nodefix", "fix"}, strings.NewReader(""), &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), `unknown command "fix"`) {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
