package tasks

import (
	"fmt"
	"regexp"
)

// validateNodeName is a stand-in for internal/nodename.Validate (written by
// the inventory work, not on main yet): once that lands, this becomes
// nodename.Validate plus the kernel's 64-byte limit, which a Kubernetes
// node name (up to 253) may exceed but a hostname may not. Tasks validate
// only defensively: the planner reports invalid names with file and line.
//
// The rule is kubeasz's (its example config.yml): a lower-case RFC 1123
// subdomain, '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*',
// labels of at most 63 characters, and at most 64 bytes in all.
func validateNodeName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty hostname")
	case len(name) > maxHostnameLen:
		return fmt.Errorf("hostname %q is %d bytes long; the kernel allows at most %d", name, len(name), maxHostnameLen)
	case !nodeNameRE.MatchString(name):
		return fmt.Errorf("hostname %q is not a valid node name: use lower-case letters, digits, '-' and '.', starting and ending each dot-separated part with a letter or digit", name)
	}
	for start, i := 0, 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			if i-start > 63 {
				return fmt.Errorf("hostname %q has a part longer than 63 characters", name)
			}
			start = i + 1
		}
	}
	return nil
}

// maxHostnameLen is the kernel's __NEW_UTS_LEN.
const maxHostnameLen = 64

var nodeNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
