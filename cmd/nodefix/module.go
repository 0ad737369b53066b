package main

import (
	"context"
	"io"
	"os"
	"strings"

	"github.com/nodefix/nodefix/internal/module"
	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/internal/transport/local"
)

// moduleArgsFile reports whether nodefix was started by Ansible as a binary
// module: exactly one argument that names an existing file and is neither a
// flag nor a subcommand (a file called "run" in the working directory must
// not turn `nodefix run` into module mode).
func moduleArgsFile(args []string) (string, bool) {
	if len(args) != 2 || strings.HasPrefix(args[1], "-") {
		return "", false
	}
	for _, c := range newApp(nil, io.Discard, io.Discard).Commands {
		for _, name := range append([]string{c.Name, "help", "h"}, c.Aliases...) {
			if args[1] == name {
				return "", false
			}
		}
	}
	st, err := os.Stat(args[1])
	if err != nil || st.IsDir() {
		return "", false
	}
	return args[1], true
}

// runModule is Ansible's binary module protocol (WANT_JSON): the tasks run
// on this machine, directly (Ansible's become already applies to the
// module), and one JSON object answers. See internal/module.
func runModule(ctx context.Context, path string, stdout io.Writer) int {
	node, err := local.New(transport.Become{})
	if err != nil { // cannot happen without become; answer as a module anyway
		_ = module.Write(stdout, module.Result{Failed: true, Msg: err.Error()})
		return 1
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "localhost"
	}
	return module.Main(ctx, path, version, node, name, stdout)
}
