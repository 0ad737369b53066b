package tasks

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nodefix/nodefix/internal/pycompat"
)

// This file reads a node's Kubernetes identity: the name its kubelet runs
// (or will run) as, from the node itself. The inventory only guesses a
// node's name; a rename to a name the kubelet does not run as is the worst
// thing nodefix can do (the next kubelet restart registers a new node the
// node authorizer refuses), so every rename is judged against this.

// NameEvidence is one place on a node that names its Kubernetes node.
type NameEvidence struct {
	Name string `json:"name"`
	// Source says where, e.g. "/proc/812/cmdline --hostname-override" or
	// "/etc/kubernetes/ssl/kubelet.pem CN=system:node:worker-01".
	Source string `json:"source"`
	// Kind is process, unit, flags, config or certificate.
	Kind string `json:"kind"`
}

// Evidence kinds, in the order they are believed: what the running
// kubelet was started with, then what it will be started with, then the
// name its client certificate authenticates as.
const (
	EvidenceProcess     = "process"
	EvidenceConfig      = "config"
	EvidenceCertificate = "certificate"
)

// NodeIdentity is what a node says its Kubernetes node name is.
type NodeIdentity struct {
	// Kubelet: something of a kubelet is on the node (a process, a unit,
	// flags, a k3s/RKE2 configuration or a client certificate).
	Kubelet bool `json:"kubelet"`
	// Name is the node name the kubelet runs as ("" when the node does not
	// say), Source where it was found.
	Name   string `json:"name,omitempty"`
	Source string `json:"source,omitempty"`
	// ByHostname: the kubelet has no override (--hostname-override,
	// --node-name, node-name:): it names its node by the hostname it
	// started with, so renaming the host renames the node at its next
	// restart.
	ByHostname bool `json:"by_hostname"`
	// Evidence is every name found, for the operator and for Conflict.
	Evidence []NameEvidence `json:"evidence,omitempty"`
	// Problems are sources that could not be read (a certificate that
	// does not parse); they make the identity untrustworthy.
	Problems []string `json:"problems,omitempty"`
}

// Conflict lists the evidence that disagrees with Name, empty when the
// node's sources agree.
func (id NodeIdentity) Conflict() []NameEvidence {
	var out []NameEvidence
	for _, e := range id.Evidence {
		if e.Name != id.Name {
			out = append(out, e)
		}
	}
	return out
}

// describeEvidence lists evidence as "name (source)", for messages.
func describeEvidence(ev []NameEvidence) string {
	parts := make([]string, len(ev))
	for i, e := range ev {
		parts[i] = fmt.Sprintf("%q (%s)", e.Name, e.Source)
	}
	return strings.Join(parts, ", ")
}

// kubeletComms are the process names (/proc/PID/comm) that run a kubelet:
// kubelet itself (kubeasz, kubeadm, RKE2 start it as a separate process),
// k3s (the kubelet runs inside the k3s process), MicroK8s' kubelite and
// the old all-in-one hyperkube.
const kubeletComms = "kubelet|k3s|k3s-server|k3s-agent|rke2|kubelite|hyperkube"

// kubeletFiles may name a node: kubelet units and drop-ins (kubeasz writes
// --hostname-override into /etc/systemd/system/kubelet.service; kubeadm's
// 10-kubeadm.conf reads kubeadm-flags.env and /etc/default|sysconfig/kubelet),
// and k3s/RKE2 configuration, units and their environment files.
var kubeletFiles = []string{
	"/etc/systemd/system/kubelet.service",
	"/lib/systemd/system/kubelet.service",
	"/usr/lib/systemd/system/kubelet.service",
	"/etc/systemd/system/kubelet.service.d/*.conf",
	"/lib/systemd/system/kubelet.service.d/*.conf",
	"/usr/lib/systemd/system/kubelet.service.d/*.conf",
	"/var/lib/kubelet/kubeadm-flags.env",
	"/etc/default/kubelet",
	"/etc/sysconfig/kubelet",
	"/etc/rancher/k3s/config.yaml",
	"/etc/rancher/k3s/config.yaml.d/*.yaml",
	"/etc/systemd/system/k3s.service",
	"/etc/systemd/system/k3s-agent.service",
	"/etc/systemd/system/k3s.service.env",
	"/etc/systemd/system/k3s-agent.service.env",
	"/etc/rancher/rke2/config.yaml",
	"/etc/rancher/rke2/config.yaml.d/*.yaml",
	"/etc/systemd/system/rke2-server.service",
	"/etc/systemd/system/rke2-agent.service",
	"/usr/local/lib/systemd/system/rke2-server.service",
	"/usr/local/lib/systemd/system/rke2-agent.service",
	"/usr/lib/systemd/system/rke2-server.service",
	"/usr/lib/systemd/system/rke2-agent.service",
}

// kubeletCerts hold the kubelet's client certificate, whose subject is
// CN=system:node:<name>, O=system:nodes on every distribution: kubeasz,
// kubeadm (certificate and private key in one file), k3s, RKE2.
var kubeletCerts = []string{
	"/etc/kubernetes/ssl/kubelet.pem",
	"/var/lib/kubelet/pki/kubelet-client-current.pem",
	"/var/lib/rancher/k3s/agent/client-kubelet.crt",
	"/var/lib/rancher/rke2/agent/client-kubelet.crt",
}

// nodeIdentityGather defines the shell functions of the identity sections
// and the sections themselves; it is part of the hostname gather, so the
// identity costs no extra round trip. Only what names a node leaves it:
// of a process, its program and the naming flags (a k3s agent's command
// line carries its join token); of files, the lines that mention a node
// name (k3s.service.env carries K3S_TOKEN); of certificate files, the
// certificate blocks (kubeadm's file holds the private key too).
var nodeIdentityGather = `kprocs() { __f=1; for __p in /proc/[0-9]*; do
	read -r __c <"$__p/comm" 2>/dev/null || continue
	case $__c in ` + kubeletComms + `) ;; *) continue;; esac
	__f=0; printf 'p %s %s\n' "${__p#/proc/}" "$__c"
	__i=0 __n=0
	tr '\000' '\n' <"$__p/cmdline" 2>/dev/null | while IFS= read -r __a; do
		if [ $__i -lt 2 ] || [ $__n = 1 ]; then printf 'a %s\n' "$__a"; __n=0; __i=$((__i+1)); continue; fi
		case $__a in
		--hostname-override=*|-hostname-override=*|--node-name=*|-node-name=*|--with-node-id*|-with-node-id*|--config=*|-config=*|-c=*) printf 'a %s\n' "$__a";;
		--hostname-override|-hostname-override|--node-name|-node-name|--config|-config|-c) printf 'a %s\n' "$__a"; __n=1;;
		esac
	done
	tr '\000' '\n' <"$__p/environ" 2>/dev/null | while IFS= read -r __e; do
		case $__e in K3S_NODE_NAME=*|RKE2_NODE_NAME=*|K3S_WITH_NODE_ID=*|RKE2_WITH_NODE_ID=*|K3S_CONFIG_FILE=*|RKE2_CONFIG_FILE=*) printf 'e %s\n' "$__e";; esac
	done
done; return $__f; }
kfiles() { __s=1; for __f in "$@"; do [ -f "$__f" ] && [ -r "$__f" ] || continue; __s=0; printf 'f %s\n' "$__f"
	while IFS= read -r __l || [ -n "$__l" ]; do case $__l in *hostname-override*|*node-name*|*NODE_NAME*|*with-node-id*|*WITH_NODE_ID*) printf 'l %s\n' "$__l";; esac; done <"$__f"
done; return $__s; }
kcerts() { __s=1; for __f in "$@"; do [ -f "$__f" ] && [ -r "$__f" ] || continue; __s=0; printf 'f %s\n' "$__f"; __in=0
	while IFS= read -r __l || [ -n "$__l" ]; do
		case $__l in -----BEGIN\ CERTIFICATE-----*) __in=1;; esac
		[ $__in = 0 ] || printf 'c %s\n' "$__l"
		case $__l in -----END\ CERTIFICATE-----*) __in=0;; esac
	done <"$__f"
done; return $__s; }
s kube_procs kprocs
s kube_files kfiles ` + strings.Join(kubeletFiles, " ") + `
s kube_certs kcerts ` + strings.Join(kubeletCerts, " ") + `
`

// parseNodeIdentity reads the identity sections. kernel is the current
// kernel hostname: the name of a kubelet without an override that has no
// certificate to say which hostname it started with.
func parseNodeIdentity(procs, files, certs section, kernel string) NodeIdentity {
	var id NodeIdentity
	var processes []kubeletProcess
	if procs.OK() {
		processes = parseKubeletProcesses(procs.Content)
	}
	if len(processes) > 0 {
		id.Kubelet = true
	}
	for _, p := range processes {
		if name, flag := p.override(); name != "" {
			id.Evidence = append(id.Evidence, NameEvidence{Name: name, Kind: EvidenceProcess,
				Source: fmt.Sprintf("running %s (pid %d) %s", p.program(), p.pid, flag)})
		}
	}
	var fileEvidence []NameEvidence
	if files.OK() {
		var found bool
		fileEvidence, found = parseKubeletFiles(files.Content)
		id.Kubelet = id.Kubelet || found
	}
	id.Evidence = append(id.Evidence, fileEvidence...)
	if certs.OK() {
		ev, problems, found := parseKubeletCerts(certs.Content)
		id.Kubelet = id.Kubelet || found
		id.Evidence = append(id.Evidence, ev...)
		id.Problems = append(id.Problems, problems...)
	}
	if !id.Kubelet {
		return id
	}
	var override, cert *NameEvidence
	for i := range id.Evidence {
		e := &id.Evidence[i]
		switch {
		case e.Kind == EvidenceCertificate && cert == nil:
			cert = e
		case e.Kind != EvidenceCertificate && override == nil:
			override = e
		}
	}
	switch {
	case override != nil:
		id.Name, id.Source = override.Name, override.Source
	case cert != nil:
		id.Name, id.Source, id.ByHostname = cert.Name, cert.Source, true
	default:
		// kubelet lower-cases the hostname it registers with
		// (k8s.io/component-helpers/node/util.GetHostname).
		id.ByHostname = true
		id.Name = strings.ToLower(strings.TrimSpace(kernel))
		id.Source = fmt.Sprintf("the kubelet has no --hostname-override: it names the node by the hostname (%s)", kernel)
		id.Evidence = append(id.Evidence, NameEvidence{Name: id.Name, Kind: "hostname", Source: "the hostname the kubelet runs under"})
	}
	return id
}

// kubeletProcess is one running kubelet (or k3s/RKE2/MicroK8s process)
// with the arguments that name its node.
type kubeletProcess struct {
	pid  int
	comm string
	args []string // argv[0], argv[1], then only the naming flags
	env  []string // K3S_NODE_NAME=… and the like
}

func (p kubeletProcess) program() string {
	if len(p.args) > 0 {
		prog := p.args[0]
		if len(p.args) > 1 && (p.args[1] == "server" || p.args[1] == "agent") {
			prog += " " + p.args[1]
		}
		return prog
	}
	return p.comm
}

// override is the name the process was told to use, and the flag that
// told it. k3s/RKE2 take --node-name (urfave/cli: one dash or two), or
// K3S_NODE_NAME in their environment; kubelet --hostname-override.
func (p kubeletProcess) override() (name, flag string) {
	if v, f := flagValue(p.args, "hostname-override", "node-name"); v != "" {
		return nodeNameOf(v), f
	}
	for _, e := range p.env {
		if k, v, _ := strings.Cut(e, "="); (k == "K3S_NODE_NAME" || k == "RKE2_NODE_NAME") && strings.TrimSpace(v) != "" {
			return nodeNameOf(v), "environment " + k
		}
	}
	return "", ""
}

// nodeNameOf is what the kubelet makes of an override: trimmed and lower
// case (GetHostname lower-cases --hostname-override too).
func nodeNameOf(v string) string { return strings.ToLower(strings.TrimSpace(v)) }

// eachTagged calls fn for every "TAG REST" line of an identity section
// (the gather prints one tag letter per kind of line).
func eachTagged(content string, fn func(tag, rest string)) {
	for _, line := range strings.Split(content, "\n") {
		if tag, rest, ok := strings.Cut(line, " "); ok {
			fn(tag, rest)
		}
	}
}

func parseKubeletProcesses(content string) []kubeletProcess {
	var out []kubeletProcess
	eachTagged(content, func(kind, rest string) {
		switch kind {
		case "p":
			var p kubeletProcess
			if _, err := fmt.Sscanf(rest, "%d %s", &p.pid, &p.comm); err == nil {
				out = append(out, p)
			}
		case "a":
			if len(out) > 0 {
				out[len(out)-1].args = append(out[len(out)-1].args, rest)
			}
		case "e":
			if len(out) > 0 {
				out[len(out)-1].env = append(out[len(out)-1].env, rest)
			}
		}
	})
	return out
}

// flagValue finds --NAME=V, -NAME=V, --NAME V or -NAME V among args, for
// any of names; it returns the value and how it was written.
func flagValue(args []string, names ...string) (value, flag string) {
	for i, a := range args {
		for _, n := range names {
			for _, prefix := range []string{"--", "-"} {
				if v, ok := strings.CutPrefix(a, prefix+n+"="); ok {
					return v, "--" + n
				}
				if a == prefix+n && i+1 < len(args) {
					return args[i+1], "--" + n
				}
			}
		}
	}
	return "", ""
}

// envAssignment matches NAME=value words (systemd Environment=, shell
// environment files), whose value may itself hold flags.
var envAssignment = regexp.MustCompile(`^(?:Environment=)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// lineWords splits a unit, environment-file or ExecStart line as a shell
// would, and splits again the values of NAME="--flag=v --flag2" words,
// so that flags inside KUBELET_KUBEADM_ARGS are found too.
func lineWords(line string) []string {
	line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), `\`))
	words, err := pycompat.Split(line, true)
	if err != nil {
		words = strings.Fields(line)
	}
	var out []string
	for _, w := range words {
		out = append(out, w)
		if m := envAssignment.FindStringSubmatch(w); m != nil && strings.Contains(m[2], "-") {
			out = append(out, lineWords(m[2])...)
		}
	}
	return out
}

// parseKubeletFiles reads kfiles' output: "f PATH" for each file found,
// "l LINE" for its lines that mention a node name.
func parseKubeletFiles(content string) (ev []NameEvidence, found bool) {
	path := ""
	eachTagged(content, func(kind, rest string) {
		switch kind {
		case "f":
			path, found = rest, true
		case "l":
			if name, how := namingLine(path, rest); name != "" {
				ev = append(ev, NameEvidence{Name: name, Kind: EvidenceConfig, Source: path + " " + how})
			}
		}
	})
	return ev, found
}

// namingLine is the node name one line of a kubelet/k3s/RKE2 file sets.
func namingLine(path, line string) (name, how string) {
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";") {
		return "", ""
	}
	if strings.HasSuffix(path, ".yaml") {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(trimmed), &doc); err == nil {
			if v, ok := doc["node-name"].(string); ok && strings.TrimSpace(v) != "" {
				return nodeNameOf(v), "node-name"
			}
		}
		return "", ""
	}
	words := lineWords(trimmed)
	if v, flag := flagValue(words, "hostname-override", "node-name"); v != "" && !strings.HasPrefix(v, "$") {
		return nodeNameOf(v), flag
	}
	for _, w := range words {
		if m := envAssignment.FindStringSubmatch(w); m != nil && (m[1] == "K3S_NODE_NAME" || m[1] == "RKE2_NODE_NAME") && strings.TrimSpace(m[2]) != "" {
			return nodeNameOf(m[2]), m[1]
		}
	}
	return "", ""
}

// parseKubeletCerts reads kcerts' output and the subject of each
// certificate: a kubelet client certificate says CN=system:node:<name>,
// O=system:nodes. A file whose first certificate is not one (the serving
// certificate, a CA) names nothing.
func parseKubeletCerts(content string) (ev []NameEvidence, problems []string, found bool) {
	type file struct {
		path string
		pem  strings.Builder
	}
	var files []*file
	eachTagged(content, func(kind, rest string) {
		switch kind {
		case "f":
			files = append(files, &file{path: rest})
		case "c":
			if len(files) > 0 {
				files[len(files)-1].pem.WriteString(strings.TrimRight(rest, "\r") + "\n")
			}
		}
	})
	for _, f := range files {
		block, _ := pem.Decode([]byte(f.pem.String()))
		if block == nil {
			problems = append(problems, fmt.Sprintf("%s holds no PEM certificate", f.path))
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f.path, err))
			continue
		}
		name, ok := strings.CutPrefix(cert.Subject.CommonName, "system:node:")
		if !ok || name == "" {
			continue
		}
		ev = append(ev, NameEvidence{Name: name, Kind: EvidenceCertificate,
			Source: fmt.Sprintf("%s CN=%s", f.path, cert.Subject.CommonName)})
	}
	return ev, problems, len(files) > 0
}
