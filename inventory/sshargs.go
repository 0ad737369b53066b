package inventory

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nodefix/nodefix/internal/pycompat"
)

// sshFlagsWithArg are the ssh(1) options that take an argument (OpenSSH
// 9's getopt string); every other letter is a flag without one.
const sshFlagsWithArg = "BbcDEeFIiJLlmOoPpQRSWw"

// parseSSHArgs reads the ssh options nodefix honours out of one of
// Ansible's ssh argument strings. The string is split with Python's
// shlex.split, as Ansible's ssh connection splits it; options are read
// as OpenSSH's getopt reads them (-oX=Y, -o X=Y, -o "X Y", -J host,
// -Jhost, grouped flags such as -qJ host). OpenSSH keeps the first value
// of an option, so values already set are not overwritten.
func parseSSHArgs(args string, c *Connection) error {
	words, err := pycompat.Split(args, false)
	if err != nil {
		return fmt.Errorf("cannot split %q: %v", args, err)
	}
	set := map[string]bool{}
	if c.StrictHostKeyChecking != "" {
		set["stricthostkeychecking"] = true
	}
	if c.ConnectTimeout != 0 {
		set["connecttimeout"] = true
	}
	for _, f := range []struct {
		key string
		v   bool
	}{{"user", c.User != ""}, {"port", c.Port != 0}, {"identityfile", c.PrivateKeyFile != ""}, {"proxyjump", c.ProxyJump != ""}, {"proxycommand", c.ProxyCommand != ""}, {"userknownhostsfile", len(c.UserKnownHostsFiles) > 0}} {
		set[f.key] = f.v
	}
	option := func(key, value string) error {
		key = strings.ToLower(key)
		if set[key] {
			return nil
		}
		switch key {
		case "proxyjump":
			if strings.EqualFold(value, "none") {
				value = ""
			}
			c.ProxyJump = value
		case "proxycommand":
			if strings.EqualFold(value, "none") {
				value = ""
			}
			c.ProxyCommand = value
		case "stricthostkeychecking":
			switch strings.ToLower(value) {
			case "yes", "true":
				c.StrictHostKeyChecking = "yes"
			case "no", "false", "off":
				c.StrictHostKeyChecking = "no"
			case "ask":
				c.StrictHostKeyChecking = "ask"
			case "accept-new":
				c.StrictHostKeyChecking = "accept-new"
			default:
				return fmt.Errorf("StrictHostKeyChecking %q is not one of yes, no, ask, accept-new", value)
			}
		case "userknownhostsfile":
			for _, f := range strings.Fields(value) {
				c.UserKnownHostsFiles = append(c.UserKnownHostsFiles, expandHome(f))
			}
		case "connecttimeout":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return fmt.Errorf("ConnectTimeout %q is not a number of seconds", value)
			}
			c.ConnectTimeout = time.Duration(n) * time.Second
		case "user":
			c.User = value
		case "port":
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("Port %q is not a port number", value)
			}
			c.Port = n
		case "identityfile":
			c.PrivateKeyFile = expandHome(value)
		default:
			return nil
		}
		set[key] = true
		return nil
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		if len(w) < 2 || w[0] != '-' {
			continue // a stray word: not an option
		}
		for j := 1; j < len(w); j++ {
			f := w[j]
			if !strings.ContainsRune(sshFlagsWithArg, rune(f)) {
				continue
			}
			val := w[j+1:]
			if val == "" {
				if i+1 >= len(words) {
					return fmt.Errorf("ssh option -%c needs a value", f)
				}
				i++
				val = words[i]
			}
			var err error
			switch f {
			case 'o':
				k, v := splitSSHOption(val)
				err = option(k, v)
			case 'J':
				err = option("proxyjump", val)
			case 'l':
				err = option("user", val)
			case 'p':
				err = option("port", val)
			case 'i':
				err = option("identityfile", val)
			}
			if err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// splitSSHOption splits "Key=Value", "Key Value" or "Key = Value" as
// ssh_config does.
func splitSSHOption(s string) (string, string) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, " \t=")
	if i < 0 {
		return s, ""
	}
	key, rest := s[:i], strings.TrimLeft(s[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	return key, strings.Trim(rest, `"`)
}
