// Package termio is nodefix's use of the terminal: whether a stream is
// one (for colour and progress), and asking the operator for a secret.
package termio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w any) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// ColorWanted reports whether output to w may be coloured: only on a
// terminal, and never when NO_COLOR is set to anything but the empty string
// (https://no-color.org) or Ansible's ANSIBLE_NOCOLOR is true.
func ColorWanted(w any, getenv func(string) string) bool {
	return ColorAuto.Wanted(w, getenv)
}

// ColorMode is --color: when output is coloured.
type ColorMode string

const (
	// ColorAuto colours a terminal unless NO_COLOR or ANSIBLE_NOCOLOR says
	// not to.
	ColorAuto ColorMode = "auto"
	// ColorAlways colours whatever the output is and the environment says:
	// as no-color.org asks, an explicit command-line choice wins over
	// NO_COLOR (for `| less -R`, or CI logs that render colour).
	ColorAlways ColorMode = "always"
	// ColorNever never colours.
	ColorNever ColorMode = "never"
)

// ParseColorMode reads --color.
func ParseColorMode(s string) (ColorMode, error) {
	switch m := ColorMode(strings.ToLower(strings.TrimSpace(s))); m {
	case ColorAuto, ColorAlways, ColorNever:
		return m, nil
	case "":
		return ColorAuto, nil
	}
	return "", fmt.Errorf("--color %q: want auto, always or never", s)
}

// Wanted reports whether output to w is coloured in mode m.
func (m ColorMode) Wanted(w any, getenv func(string) string) bool {
	switch m {
	case ColorAlways:
		return true
	case ColorNever:
		return false
	}
	if getenv("NO_COLOR") != "" {
		return false
	}
	switch strings.ToLower(getenv("ANSIBLE_NOCOLOR")) {
	case "1", "true", "yes", "on", "y", "t":
		return false
	}
	return IsTerminal(w)
}

// ErrNoTerminal is returned when a secret is needed and there is no
// terminal to ask it on.
var ErrNoTerminal = errors.New("no terminal to ask on")

// Prompter asks the operator for secrets on the controlling terminal
// (/dev/tty), never echoing them. It is safe for concurrent use: prompts
// from parallel connections are asked one at a time.
type Prompter struct {
	mu sync.Mutex
	// Open opens the terminal; nil opens /dev/tty.
	Open func() (io.ReadWriteCloser, int, error)
}

// ReadSecret writes prompt to the terminal and reads a line without echo.
func (p *Prompter) ReadSecret(prompt string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	open := p.Open
	if open == nil {
		open = openTTY
	}
	tty, fd, err := open()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoTerminal, err)
	}
	defer tty.Close()
	// Echo goes off before the prompt shows: whatever is typed once the
	// prompt is visible is never echoed.
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoTerminal, err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", fmt.Errorf("turning echo off: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old) //nolint:errcheck // best effort on the way out
	if _, err := io.WriteString(tty, prompt); err != nil {
		return "", err
	}
	secret, err := readLine(tty)
	_, _ = io.WriteString(tty, "\n")
	if err != nil {
		return "", fmt.Errorf("reading from the terminal: %w", err)
	}
	return secret, nil
}

// readLine reads up to a newline, one byte at a time so that nothing
// after it is consumed.
func readLine(r io.Reader) (string, error) {
	var line []byte
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n > 0 {
			if b[0] == '\n' {
				return string(line), nil
			}
			line = append(line, b[0])
		}
		if err == io.EOF && len(line) > 0 {
			return string(line), nil
		}
		if err != nil {
			return "", err
		}
	}
}

func openTTY() (io.ReadWriteCloser, int, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, 0, err
	}
	if !term.IsTerminal(int(f.Fd())) {
		f.Close()
		return nil, 0, errors.New("/dev/tty is not a terminal")
	}
	return f, int(f.Fd()), nil
}
