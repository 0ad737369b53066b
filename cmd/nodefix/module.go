package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
)

// moduleArgsFile reports whether nodefix was started by Ansible as a binary
// module: exactly one argument that names an existing file (not a
// subcommand or flag).
func moduleArgsFile(args []string) (string, bool) {
	if len(args) != 2 || strings.HasPrefix(args[1], "-") {
		return "", false
	}
	st, err := os.Stat(args[1])
	if err != nil || st.IsDir() {
		return "", false
	}
	return args[1], true
}

// runModule is Ansible's binary module protocol. Not implemented yet
// (issue 7): it answers as a failed module so Ansible shows why.
func runModule(_ context.Context, _ string, stdout io.Writer) int {
	_ = json.NewEncoder(stdout).Encode(map[string]any{
		"failed": true,
		"msg":    "nodefix: Ansible module mode is not implemented yet",
	})
	return 1
}
