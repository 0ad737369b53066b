package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/exitcode"
)

// appAction runs when no command is given: --version, else the help.
func appAction(c *cli.Context) error {
	if c.Bool("version") {
		_, err := fmt.Fprint(c.App.Writer, versionText(version, commit, buildDate))
		return err
	}
	if c.NArg() > 0 {
		return exitcode.With(exitcode.Usage, fmt.Errorf("unknown command %q (see nodefix --help)", c.Args().First()))
	}
	return cli.ShowAppHelp(c)
}

// versionText is `nodefix --version`. A binary built without the
// Makefile's -ldflags falls back on what the Go toolchain stamped into it
// (the VCS revision of a `go build` in a checkout), and says so.
func versionText(version, commit, buildDate string) string {
	if commit == "" {
		commit = "unknown"
		if info, ok := debug.ReadBuildInfo(); ok {
			var rev, modified string
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if rev != "" {
				commit = rev[:min(12, len(rev))]
				if modified == "true" {
					commit += "-dirty"
				}
				commit += " (from the Go toolchain)"
			}
		}
	}
	if buildDate == "" {
		buildDate = "unknown (not built by make)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "nodefix %s\n", version)
	fmt.Fprintf(&b, "  commit:     %s\n", commit)
	fmt.Fprintf(&b, "  build date: %s\n", buildDate)
	fmt.Fprintf(&b, "  go:         %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}
