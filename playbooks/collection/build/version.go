package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// describeRE is what `git describe --tags --always --dirty` prints: a tag
// (v1.2.3, 1.2.3, v1.2.3-rc.1), optionally the commits since it and the
// commit, optionally -dirty.
var describeRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.]+?)??(?:-(\d+)-g([0-9a-f]+))?(-dirty)?$`)

// A repository without a tag: the abbreviated commit, optionally -dirty.
var commitRE = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)

// semver turns git describe's answer into a semantic version (2.0.0), the
// only versions ansible-galaxy accepts:
//
//	v1.2.3                  → 1.2.3
//	v1.2.3-dirty            → 1.2.3+dirty
//	v1.2.3-4-gabc1234       → 1.2.4-dev.4+gabc1234 (after 1.2.3, before 1.2.4)
//	v1.2.3-rc.1-4-gabc1234  → 1.2.3-rc.1.dev.4+gabc1234
//	abc1234[-dirty]         → 0.0.0-dev+gabc1234[.dirty] (no tag yet)
//	dev                     → 0.0.0-dev (no git: the Makefile's fallback)
func semver(describe string) (string, error) {
	d := strings.TrimSpace(describe)
	if d == "dev" || d == "" {
		return "0.0.0-dev", nil
	}
	if m := commitRE.FindStringSubmatch(d); m != nil && !describeRE.MatchString(d) {
		v := "0.0.0-dev+g" + m[1]
		if m[2] != "" {
			v += ".dirty"
		}
		return v, nil
	}
	m := describeRE.FindStringSubmatch(d)
	if m == nil {
		return "", fmt.Errorf("version %q is neither a tag like v1.2.3 nor what git describe prints for one: set VERSION=1.2.3", describe)
	}
	major, minor, patch, pre, commits, commit, dirty := m[1], m[2], m[3], strings.TrimPrefix(m[4], "-"), m[5], m[6], m[7] != ""
	for _, n := range []string{major, minor, patch} {
		if len(n) > 1 && n[0] == '0' {
			return "", fmt.Errorf("version %q: %s has a leading zero, which semantic versions forbid", describe, n)
		}
	}
	var build []string
	if commits != "" {
		if pre == "" {
			// Commits after 1.2.3 lead to the next release: 1.2.4-dev.N
			// sorts after 1.2.3 and before 1.2.4.
			p, _ := strconv.Atoi(patch)
			patch = strconv.Itoa(p + 1)
			pre = "dev." + commits
		} else {
			pre += ".dev." + commits
		}
		build = append(build, "g"+commit)
	}
	if dirty {
		build = append(build, "dirty")
	}
	v := major + "." + minor + "." + patch
	if pre != "" {
		v += "-" + pre
	}
	if len(build) > 0 {
		v += "+" + strings.Join(build, ".")
	}
	return v, nil
}
