// Package nodename is kubeasz's rule for the Kubernetes node name of a host
// and the validation Kubernetes applies to it. The hostname task uses the
// same Validate, so what the plan accepts is what the node will be named.
package nodename

import (
	"fmt"
	"strings"
)

// Derive is K8S_NODENAME from kubeasz's example/config.yml:
//
//	{%- if k8s_nodename != '' -%}
//	    {{ k8s_nodename|replace('_', '-')|lower }}
//	{%- else -%}
//	    k8s-{{ inventory_hostname|replace('.', '-') }}
//	{%- endif -%}
func Derive(inventoryHostname, k8sNodename string) string {
	if k8sNodename != "" {
		return strings.ToLower(strings.ReplaceAll(k8sNodename, "_", "-"))
	}
	return "k8s-" + strings.ReplaceAll(inventoryHostname, ".", "-")
}

// MaxLength is the longest DNS subdomain (RFC 1123), which Kubernetes
// enforces for node names; MaxLabelLength is the longest label.
const (
	MaxLength      = 253
	MaxLabelLength = 63
)

// MaxHostnameLength is the kernel's limit on a hostname (__NEW_UTS_LEN):
// a node name nodefix also sets as the OS hostname must fit it.
const MaxHostnameLength = 64

// ValidateHostname is Validate plus the kernel's 64-byte hostname limit:
// the check for a node name that becomes the OS hostname, as kubeasz's
// ENABLE_SETTING_HOSTNAME and nodefix's hostname task make it.
func ValidateHostname(name string) error {
	if err := Validate(name); err != nil {
		return err
	}
	if len(name) > MaxHostnameLength {
		return fmt.Errorf("node name %q is %d characters long; as a hostname the kernel allows at most %d", name, len(name), MaxHostnameLength)
	}
	return nil
}

// Validate checks name as Kubernetes checks a node name (RFC 1123
// subdomain: lower-case letters, digits, '-' and '.', labels that start and
// end with a letter or digit, at most 63 characters per label and 253 in
// all; kubeasz's regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'),
// and says what is wrong.
func Validate(name string) error {
	if name == "" {
		return fmt.Errorf("node name is empty")
	}
	if len(name) > MaxLength {
		return fmt.Errorf("node name %q is %d characters long; at most %d are allowed", name, len(name), MaxLength)
	}
	for i, label := range strings.Split(name, ".") {
		if label == "" {
			return fmt.Errorf("node name %q has an empty label (leading, trailing or doubled '.')", name)
		}
		if len(label) > MaxLabelLength {
			return fmt.Errorf("node name %q: label %d (%q) is %d characters long; at most %d are allowed", name, i+1, label, len(label), MaxLabelLength)
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			case r >= 'A' && r <= 'Z':
				return fmt.Errorf("node name %q has the upper-case letter %q; use lower case", name, r)
			default:
				return fmt.Errorf("node name %q has the character %q; only a-z, 0-9, '-' and '.' are allowed", name, r)
			}
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("node name %q: label %q must start and end with a letter or digit", name, label)
		}
	}
	return nil
}
