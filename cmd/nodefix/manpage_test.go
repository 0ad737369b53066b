package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func manPageText(t *testing.T) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"nodefix", "__man"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	return stdout.String()
}

// The page comes from the CLI's definitions: every command and flag help
// shows is in it, nothing hidden is.
func TestManPageFromDefinitions(t *testing.T) {
	page := manPageText(t)
	app := newApp(nil, nil, nil)
	for _, c := range visibleCommands(app.Commands, "") {
		if !strings.Contains(page, `.SS "nodefix `+roffText(c.path)+`"`) {
			t.Errorf("no section for nodefix %s", c.path)
		}
	}
	for _, f := range runFlags() {
		if !isHidden(f) && !strings.Contains(page, `\fB`+roffText(dashed(f.Names()[0]))+`\fR`) {
			t.Errorf("flag %s missing", f.Names()[0])
		}
	}
	for _, hidden := range []string{"__complete", "__man"} {
		if strings.Contains(page, roffText(hidden)) {
			t.Errorf("hidden command %s in the page", hidden)
		}
	}
	for _, s := range []string{".TH NODEFIX 1 ", ".SH SYNOPSIS", ".SH EXIT STATUS", ".SH ENVIRONMENT", ".SH FILES", ".SH SEE ALSO",
		`\fB\-\-rpm\-query\-max\-age\fR \fIDURATION\fR` + "\nrpm\\-queries: an rpm query running longer than this is hung (default: 10m0s)"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
}

// groff reads it without a warning, and man renders it.
func TestManPageRenders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodefix.1")
	if err := os.WriteFile(path, []byte(manPageText(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"groff", "man"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("NODEFIX_FLEET") == "required" {
				t.Fatalf("%s not installed (make deps)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	if out, err := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
	cmd := exec.Command("man", "-l", path)
	cmd.Env = append(os.Environ(), "MANWIDTH=100", "MANPAGER=cat", "PAGER=cat")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	// man may embolden by overstriking (X, backspace, X).
	text := regexp.MustCompile(`.\x08`).ReplaceAllString(string(out), "")
	for _, want := range []string{"NODEFIX(1)", "--rpm-query-max-age DURATION", "nodefix completion bash|zsh|fish", "99     interrupted"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
}
