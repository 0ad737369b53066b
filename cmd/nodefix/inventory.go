package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/exitcode"
)

// inventoryCommand is `nodefix inventory` (issue 2).
func inventoryCommand() *cli.Command {
	return &cli.Command{
		Name:  "inventory",
		Usage: "show an inventory as ansible-inventory does",
		Action: func(*cli.Context) error {
			return exitcode.With(exitcode.Usage, errors.New("inventory: not implemented yet"))
		},
	}
}
