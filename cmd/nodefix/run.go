package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/exitcode"
)

// runCommand is `nodefix run` (issue 4).
func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "run the remediation tasks on the hosts of an inventory",
		Action: func(*cli.Context) error {
			return exitcode.With(exitcode.Usage, errors.New("run: not implemented yet"))
		},
	}
}

// checkCommand is `nodefix check`: run --check.
func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "report what run would change, changing nothing",
		Action: func(*cli.Context) error {
			return exitcode.With(exitcode.Usage, errors.New("check: not implemented yet"))
		},
	}
}
