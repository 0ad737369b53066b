// Package exitcode maps outcomes to the exit codes ansible-playbook 2.14
// really returns (measured, see DESIGN.md), so scripts written for Ansible
// read nodefix the same way.
package exitcode

import (
	"errors"
	"fmt"
)

const (
	// OK: every host ok.
	OK = 0
	// Usage: an error before any host was touched (bad options, an
	// inventory that does not parse, no host matched, a refused fleet
	// precheck).
	Usage = 1
	// HostFailed: at least one host failed.
	HostFailed = 2
	// Unreachable: at least one host was unreachable (also when others failed).
	Unreachable = 4
	// Interrupted: the run was interrupted (Ctrl-C).
	Interrupted = 99
)

// Error carries an exit code alongside the error that caused it.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// With wraps err so that the process exits with code.
func With(code int, err error) error {
	return &Error{Code: code, Err: err}
}

// Of returns the exit code err asks for: Usage for a plain error.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Usage
}
