// Command nodefix brings Kubernetes nodes running Longhorn back to health:
// unique hostnames, no hung rpm queries, a working rpm database and the
// executables Longhorn needs. See README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/exitcode"
)

// Set by `make build` and `make dist` (-ldflags "-X main.version=...");
// see versionText for what a plain `go build` shows instead.
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Ansible runs a binary module as `nodefix ARGS_FILE` (WANT_JSON).
	if path, ok := moduleArgsFile(args); ok {
		return runModule(ctx, path, stdout)
	}
	app := newApp(stdin, stdout, stderr)
	if err := app.RunContext(ctx, args); err != nil {
		fmt.Fprintf(stderr, "nodefix: %v\n", err)
		return exitcode.Of(err)
	}
	return exitcode.OK
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:    "nodefix",
		Usage:   "bring Longhorn nodes back to health, a whole fleet at once",
		Version: version,
		// --version is ours (versionText): urfave/cli's prints the version
		// alone and takes -v, which is --verbose in run and check.
		HideVersion: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "version", Usage: "print the version, commit, build date and Go version"},
		},
		Action:    appAction,
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed once, by run, with the exit code they carry.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
		// -i host1,host2, and -e '{"k": "a,b"}' carry commas: a repeated
		// flag is a list, a comma is part of the value (as in Ansible).
		DisableSliceFlagSeparator: true,
		Commands: withUsageErrors([]*cli.Command{
			runCommand(),
			checkCommand(),
			inventoryCommand(),
			namesCommand(),
			completionCommand(),
			completeCommand(),
			manCommand(),
		}),
	}
}
