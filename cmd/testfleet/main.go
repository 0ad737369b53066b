// Command testfleet starts and stops the simulated fleet of real sshd nodes
// that `make demo` and `make bench` run on (issue 3).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "testfleet: not implemented yet")
	os.Exit(1)
}
