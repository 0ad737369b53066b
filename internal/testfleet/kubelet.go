package testfleet

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A simulated node may run a Kubernetes node agent the way a real
// distribution installs it: the unit file and flags, the client
// certificate (CN=system:node:<name>, O=system:nodes, made at fleet start
// by a fleet CA) and a running process whose command line is the real
// one. The process is the fleet's own executable under the agent's name
// (a symlink, so /proc/PID/comm says kubelet or k3s), started with
// daemonEnv set: it only waits for SIGTERM.

// Kubelet flavours.
const (
	// KubeletKubeasz: /opt/kube/bin/kubelet with kubeasz's unit
	// (--hostname-override={{ K8S_NODENAME }}) and /etc/kubernetes/ssl.
	KubeletKubeasz = "kubeasz"
	// KubeletKubeadm: Debian's kubelet package set up by kubeadm: no
	// --hostname-override, the node is named by its hostname.
	KubeletKubeadm = "kubeadm"
	// KubeletK3s: k3s server with node-name in /etc/rancher/k3s/config.yaml.
	KubeletK3s = "k3s"
)

// Kubelet is the node agent a node runs.
type Kubelet struct {
	// Flavor is one of the Kubelet* constants ("" = none).
	Flavor string `json:"flavor,omitempty"`
	// NodeName is the Kubernetes node name it runs as: the override for
	// kubeasz and k3s, the hostname it registered with for kubeadm.
	NodeName string `json:"node_name,omitempty"`
	// PID is the agent's process as the node sees it.
	PID int `json:"pid,omitempty"`
}

// K3sToken is the join token every simulated k3s node carries in its
// environment file and process environment, as a real one does: tests
// check that it never leaves the node.
const K3sToken = "K10nodefixtestfleetsecret::server:0123456789abcdef"

// daemonEnv, set in a process's environment, makes the fleet's executable
// a stand-in daemon: see init.
const daemonEnv = "NODEFIX_TESTFLEET_DAEMON"

func init() {
	// The stand-in kubelet: the fleet's executable (a test binary or
	// bin/testfleet) started inside a node under the agent's name.
	if os.Getenv(daemonEnv) != "1" {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	os.Exit(0)
}

// kubeletCA signs the fleet's kubelet client certificates, as kubeasz's
// /etc/kubernetes/ssl/ca.pem and kubeadm's /etc/kubernetes/pki/ca.crt do.
type kubeletCA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

func newKubeletCA() (*kubeletCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the fleet CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubernetes", Organization: []string{"k8s"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing the fleet CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &kubeletCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// clientCert issues a kubelet client certificate for nodeName with a key
// of the distribution's kind (RSA 2048 for kubeasz and kubeadm, ECDSA
// P-256 for k3s), PEM encoded.
func (ca *kubeletCA) clientCert(nodeName string, rsaKey bool) (certPEM, keyPEM []byte, err error) {
	var key crypto.Signer
	if rsaKey {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generating the kubelet key of %s: %w", nodeName, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the kubelet certificate of %s: %w", nodeName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// kubeletInstall is what a flavour puts on a node: files (path in the
// node → content; a content starting with "->" is a symlink target),
// and the agent's command line.
type kubeletInstall struct {
	files map[string]string
	argv  []string
	env   []string
}

const symlinkPrefix = "->"

// kubeaszKubeletArgs is the ExecStart of kubeasz's kubelet.service.j2
// (roles/kube-node/templates) rendered for containerd.
func kubeaszKubeletArgs(nodeName string) []string {
	return []string{"/opt/kube/bin/kubelet",
		"--config=/var/lib/kubelet/config.yaml",
		"--container-runtime-endpoint=unix:///run/containerd/containerd.sock",
		"--hostname-override=" + nodeName,
		"--kubeconfig=/etc/kubernetes/kubelet.kubeconfig",
		"--root-dir=/var/lib/kubelet",
		"--v=2"}
}

func (ca *kubeletCA) install(k Kubelet, self string) (kubeletInstall, error) {
	switch k.Flavor {
	case KubeletKubeasz:
		cert, key, err := ca.clientCert(k.NodeName, true)
		if err != nil {
			return kubeletInstall{}, err
		}
		args := kubeaszKubeletArgs(k.NodeName)
		return kubeletInstall{argv: args, files: map[string]string{
			"/opt/kube/bin/kubelet": symlinkPrefix + self,
			"/etc/systemd/system/kubelet.service": "[Unit]\nDescription=Kubernetes Kubelet\n" +
				"Documentation=https://github.com/GoogleCloudPlatform/kubernetes\n\n[Service]\n" +
				"WorkingDirectory=/var/lib/kubelet\nExecStartPre=/bin/mount -o remount,rw '/sys/fs/cgroup'\n" +
				"ExecStart=" + strings.Join(args, " \\\n  ") + "\nRestart=always\nRestartSec=5\n\n" +
				"[Install]\nWantedBy=multi-user.target\n",
			"/etc/kubernetes/ssl/ca.pem":          string(ca.certPEM),
			"/etc/kubernetes/ssl/kubelet.pem":     string(cert),
			"/etc/kubernetes/ssl/kubelet-key.pem": string(key),
			"/etc/kubernetes/kubelet.kubeconfig": kubeconfig("https://127.0.0.1:6443", "/etc/kubernetes/ssl/ca.pem",
				"system:node:"+k.NodeName, "/etc/kubernetes/ssl/kubelet.pem", "/etc/kubernetes/ssl/kubelet-key.pem"),
			"/var/lib/kubelet/config.yaml": kubeletConfig("/etc/kubernetes/ssl/ca.pem"),
		}}, nil
	case KubeletKubeadm:
		cert, key, err := ca.clientCert(k.NodeName, true)
		if err != nil {
			return kubeletInstall{}, err
		}
		const flags = "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9"
		dated := "/var/lib/kubelet/pki/kubelet-client-2026-11-01-09-30-00.pem"
		argv := append([]string{"/usr/bin/kubelet",
			"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
			"--kubeconfig=/etc/kubernetes/kubelet.conf",
			"--config=/var/lib/kubelet/config.yaml"}, strings.Fields(flags)...)
		return kubeletInstall{argv: argv, files: map[string]string{
			"/usr/bin/kubelet": symlinkPrefix + self,
			"/usr/lib/systemd/system/kubelet.service": "[Unit]\nDescription=kubelet: The Kubernetes Node Agent\n" +
				"Documentation=https://kubernetes.io/docs/\nWants=network-online.target\nAfter=network-online.target\n\n" +
				"[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\nStartLimitInterval=0\nRestartSec=10\n\n" +
				"[Install]\nWantedBy=multi-user.target\n",
			"/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": "# Note: This dropin only works with kubeadm and kubelet v1.11+\n[Service]\n" +
				`Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"` + "\n" +
				`Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"` + "\n" +
				"EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\nEnvironmentFile=-/etc/default/kubelet\n" +
				"ExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n",
			"/var/lib/kubelet/kubeadm-flags.env": `KUBELET_KUBEADM_ARGS="` + flags + `"` + "\n",
			"/etc/default/kubelet":               "KUBELET_EXTRA_ARGS=\n",
			dated:                                string(cert) + string(key),
			"/var/lib/kubelet/pki/kubelet-client-current.pem": symlinkPrefix + dated,
			"/etc/kubernetes/pki/ca.crt":                      string(ca.certPEM),
			"/etc/kubernetes/kubelet.conf": kubeconfig("https://10.0.0.1:6443", "/etc/kubernetes/pki/ca.crt",
				"system:node:"+k.NodeName, "/var/lib/kubelet/pki/kubelet-client-current.pem", "/var/lib/kubelet/pki/kubelet-client-current.pem"),
			"/var/lib/kubelet/config.yaml": kubeletConfig("/etc/kubernetes/pki/ca.crt"),
		}}, nil
	case KubeletK3s:
		cert, key, err := ca.clientCert(k.NodeName, false)
		if err != nil {
			return kubeletInstall{}, err
		}
		return kubeletInstall{argv: []string{"/usr/local/bin/k3s", "server"}, env: []string{"K3S_TOKEN=" + K3sToken},
			files: map[string]string{
				"/usr/local/bin/k3s": symlinkPrefix + self,
				"/etc/systemd/system/k3s.service": "[Unit]\nDescription=Lightweight Kubernetes\nDocumentation=https://k3s.io\n" +
					"Wants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=notify\n" +
					"EnvironmentFile=-/etc/default/%N\nEnvironmentFile=-/etc/sysconfig/%N\nEnvironmentFile=-/etc/systemd/system/k3s.service.env\n" +
					"KillMode=process\nDelegate=yes\nRestart=always\nRestartSec=5s\n" +
					"ExecStartPre=/bin/sh -xc '! /usr/bin/systemctl is-enabled --quiet nm-cloud-setup.service 2>/dev/null'\n" +
					"ExecStartPre=-/sbin/modprobe br_netfilter\nExecStartPre=-/sbin/modprobe overlay\n" +
					"ExecStart=/usr/local/bin/k3s \\\n    server \\\n\n[Install]\nWantedBy=multi-user.target\n",
				"/etc/systemd/system/k3s.service.env":           "K3S_TOKEN='" + K3sToken + "'\n",
				"/etc/rancher/k3s/config.yaml":                  "write-kubeconfig-mode: \"0644\"\nnode-name: " + k.NodeName + "\n",
				"/var/lib/rancher/k3s/agent/client-kubelet.crt": string(cert),
				"/var/lib/rancher/k3s/agent/client-kubelet.key": string(key),
				"/var/lib/rancher/k3s/agent/client-ca.crt":      string(ca.certPEM),
			}}, nil
	}
	return kubeletInstall{}, fmt.Errorf("unknown kubelet flavour %q", k.Flavor)
}

func kubeconfig(server, caFile, user, certFile, keyFile string) string {
	return fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority: %s
    server: %s
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: %s
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
`, caFile, server, user, user, certFile, keyFile)
}

func kubeletConfig(caFile string) string {
	return "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\n" +
		"authentication:\n  x509:\n    clientCAFile: " + caFile + "\n" +
		"cgroupDriver: systemd\nclusterDNS:\n- 169.254.20.10\nclusterDomain: cluster.local\n"
}

// writeKubelet puts a flavour's files into the node's upper layers (before
// it boots) and returns its command line. /opt, /etc, /usr and /var are
// overlaid, so every path lands in the node's own layer.
func (n *Node) writeKubelet(ca *kubeletCA, k Kubelet, self string) (kubeletInstall, error) {
	inst, err := ca.install(k, self)
	if err != nil {
		return inst, fmt.Errorf("node %s: %w", n.Name, err)
	}
	for path, content := range inst.files {
		dst := n.path("upper" + path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return inst, fmt.Errorf("node %s: %w", n.Name, err)
		}
		if target, ok := strings.CutPrefix(content, symlinkPrefix); ok {
			if err := os.Symlink(target, dst); err != nil {
				return inst, fmt.Errorf("node %s: %w", n.Name, err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		if strings.Contains(content, "PRIVATE KEY") || strings.HasSuffix(path, ".env") {
			mode = 0o600
		}
		if err := os.WriteFile(dst, []byte(content), mode); err != nil {
			return inst, fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return inst, nil
}

// startKubelet starts the agent inside the booted node with its real
// command line, and records its pid.
func (n *Node) startKubelet(ctx context.Context, inst kubeletInstall) error {
	argv := append([]string{"env", daemonEnv + "=1"}, inst.env...)
	pid, err := n.StartProcess(ctx, append(argv, inst.argv...)...)
	if err != nil {
		return fmt.Errorf("node %s: starting %s: %w", n.Name, inst.argv[0], err)
	}
	n.Kubelet.PID = pid
	return nil
}

// StopKubelet ends the node's agent (a kubelet that is installed but not
// running: after a crash, or between a config change and a restart).
func (n *Node) StopKubelet(ctx context.Context) error {
	if n.Kubelet.PID == 0 {
		return nil
	}
	_, err := n.Sh(ctx, `kill -TERM "$1"; while [ -e /proc/"$1" ] && [ "$(cut -d' ' -f3 /proc/"$1"/stat)" != Z ]; do sleep 0.05; done`, fmt.Sprint(n.Kubelet.PID))
	n.Kubelet.PID = 0
	return err
}
