package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/module"
)

// namesCommand is `nodefix names check`: the fleet hostname precheck for
// callers that plan the names themselves (a playbook on its controller,
// with the command module), with the rule `nodefix run` applies before it
// renames anything.
func namesCommand() *cli.Command {
	return &cli.Command{
		Name:  "names",
		Usage: "check planned hostnames fleet-wide",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "refuse duplicate or invalid planned hostnames (JSON {\"inventory host\": \"name\", …} from FILE or stdin)",
			ArgsUsage: "[FILE|-]",
			Description: "Reads one JSON object mapping each inventory hostname to the hostname it is to carry\n" +
				"(every host of the inventory that owns a name, not only those being renamed) and checks\n" +
				"that every name is a valid node name and that no two hosts share one. Exit 0: valid and\n" +
				"unique; exit 1: refused (every conflict and invalid name is listed) or unreadable input.",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "json", Usage: "print the verdict as one JSON object (as the Ansible module answers)"},
			},
			Action: namesCheck,
		}},
	}
}

func namesCheck(c *cli.Context) error {
	if c.NArg() > 1 {
		return exitcode.With(exitcode.Usage, fmt.Errorf("names check: one input at most, got %d", c.NArg()))
	}
	src, data, err := readNamesInput(c)
	if err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	names, err := module.ParseNames(data)
	if err != nil {
		return exitcode.With(exitcode.Usage, fmt.Errorf("names check: %s: %w", src, err))
	}
	res := module.CheckNames(names)
	if c.Bool("json") {
		if err := module.Write(c.App.Writer, res); err != nil {
			return err
		}
		if res.Failed {
			// The verdict is on stdout already: exit 1 without repeating it.
			return exitcode.With(exitcode.Usage, errors.New("names check: refused"))
		}
		return nil
	}
	if res.Failed {
		return exitcode.With(exitcode.Usage, errors.New(res.Msg))
	}
	fmt.Fprintln(c.App.Writer, res.Msg)
	return nil
}

func readNamesInput(c *cli.Context) (string, []byte, error) {
	path := c.Args().First()
	if path == "" || path == "-" {
		data, err := io.ReadAll(c.App.Reader)
		if err != nil {
			return "stdin", nil, fmt.Errorf("names check: reading stdin: %w", err)
		}
		return "stdin", data, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return path, nil, fmt.Errorf("names check: %w", err)
	}
	return path, data, nil
}
