package tasks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// kubeletCertPEM is a client certificate with the given subject, signed by
// itself (the task reads the subject, not the chain), and its private key
// in the same file as kubeadm keeps them.
func kubeletCertPEM(t *testing.T, cn string, withKey bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"system:nodes"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	out := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if withKey {
		k, _ := x509.MarshalPKCS8PrivateKey(key)
		out += string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))
	}
	return out
}

const kubeaszUnit = "[Service]\nExecStart=/opt/kube/bin/kubelet \\\n  --config=/var/lib/kubelet/config.yaml \\\n" +
	"  --hostname-override=%s \\\n  --kubeconfig=/etc/kubernetes/kubelet.kubeconfig \\\n  --v=2\n"

func kubeaszProcs(name string) string {
	return "p 812 kubelet\na /opt/kube/bin/kubelet\na --hostname-override=" + name + "\n"
}

func TestParseNodeIdentity(t *testing.T) {
	cert := func(cn string) string { return kubeletCertPEM(t, cn, true) }
	tests := []struct {
		name       string
		procs      string
		files      map[string]string
		kernel     string
		want       string
		byHostname bool
		conflict   bool
		kubelet    bool
	}{
		{name: "no kubelet", kernel: "web01"},
		{
			name: "kubeasz: process, unit and certificate agree", kubelet: true, want: "worker-01",
			procs: kubeaszProcs("worker-01"),
			files: map[string]string{
				"/etc/systemd/system/kubelet.service": strings.ReplaceAll(kubeaszUnit, "%s", "worker-01"),
				"/etc/kubernetes/ssl/kubelet.pem":     cert("system:node:worker-01"),
			},
		},
		{
			name: "override as a separate word, upper case as kubelet lower-cases it", kubelet: true, want: "worker-01",
			procs: "p 9 kubelet\na /usr/bin/kubelet\na --hostname-override\na Worker-01\n",
		},
		{
			name: "unit edited, kubelet not restarted", kubelet: true, want: "worker-01", conflict: true,
			procs: kubeaszProcs("worker-01"),
			files: map[string]string{"/etc/systemd/system/kubelet.service": strings.ReplaceAll(kubeaszUnit, "%s", "worker-09")},
		},
		{
			name: "kubeadm: no override, named by the hostname it registered with", kubelet: true, want: "kubeadm-02", byHostname: true,
			procs: "p 77 kubelet\na /usr/bin/kubelet\na --config=/var/lib/kubelet/config.yaml\n",
			files: map[string]string{
				"/var/lib/kubelet/kubeadm-flags.env":              `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock"` + "\n",
				"/var/lib/kubelet/pki/kubelet-client-current.pem": cert("system:node:kubeadm-02"),
			},
			kernel: "renamed-since",
		},
		{
			name: "kubeadm flags carry an override", kubelet: true, want: "node-b",
			files: map[string]string{"/var/lib/kubelet/kubeadm-flags.env": `KUBELET_KUBEADM_ARGS="--hostname-override=node-b --v=2"` + "\n"},
		},
		{
			name: "kubelet without override or certificate: the current hostname, lower case", kubelet: true, want: "node-a", byHostname: true,
			procs: "p 77 kubelet\na /usr/bin/kubelet\n", kernel: "Node-A",
		},
		{
			name: "k3s: node-name in config.yaml, a drop-in and the certificate", kubelet: true, want: "k3s-03",
			procs: "p 5 k3s-server\na /usr/local/bin/k3s\na server\n",
			files: map[string]string{
				"/etc/rancher/k3s/config.yaml":                  "node-name: k3s-03\n",
				"/etc/rancher/k3s/config.yaml.d/10-x.yaml":      "# node-name: old\n",
				"/var/lib/rancher/k3s/agent/client-kubelet.crt": cert("system:node:k3s-03"),
			},
		},
		{
			name: "k3s: K3S_NODE_NAME in the process environment", kubelet: true, want: "edge-7",
			procs: "p 5 k3s\na /usr/local/bin/k3s\na agent\ne K3S_NODE_NAME=edge-7\n",
		},
		{
			name: "a serving certificate names no node", kubelet: true, want: "host-x", byHostname: true, kernel: "host-x",
			files: map[string]string{"/etc/kubernetes/ssl/kubelet.pem": cert("host-x")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHost(t)
			for p, c := range tc.files {
				f.files[p] = c
			}
			f.kubeProcs = tc.procs
			files, certs := f.kubeletSections()
			sec := func(c string) section {
				if c == "" {
					return section{Status: 1}
				}
				return section{Content: c}
			}
			if strings.Contains(files+certs, "PRIVATE KEY") {
				t.Fatal("the gather's sections carry a private key")
			}
			id := parseNodeIdentity(sec(tc.procs), sec(files), sec(certs), tc.kernel)
			if id.Kubelet != tc.kubelet || id.Name != tc.want || id.ByHostname != tc.byHostname || (len(id.Conflict()) > 0) != tc.conflict {
				t.Errorf("identity %+v (conflict %v); want kubelet %v name %q by hostname %v conflict %v",
					id, id.Conflict(), tc.kubelet, tc.want, tc.byHostname, tc.conflict)
			}
		})
	}
}

func TestLineWords(t *testing.T) {
	for _, c := range []struct{ line, flag, want string }{
		{`ExecStart=/opt/kube/bin/kubelet --hostname-override=w1 \`, "hostname-override", "w1"},
		{`  --hostname-override=10.0.0.2 \`, "hostname-override", "10.0.0.2"},
		{`KUBELET_KUBEADM_ARGS="--a=b --hostname-override=x --v=2"`, "hostname-override", "x"},
		{`Environment="KUBELET_EXTRA_ARGS=--hostname-override y"`, "hostname-override", "y"},
		{`ExecStart=/usr/local/bin/k3s agent --node-name=edge-1`, "node-name", "edge-1"},
		{`ExecStart=/usr/local/bin/k3s agent -node-name edge-2`, "node-name", "edge-2"},
	} {
		if got, _ := flagValue(lineWords(c.line), c.flag); got != c.want {
			t.Errorf("%s: %s = %q, want %q (words %q)", c.line, c.flag, got, c.want, lineWords(c.line))
		}
	}
}

// Issue 11: the name is judged from both sides.
func TestHostnameJudgedAgainstTheKubelet(t *testing.T) {
	kubeasz := func(name string) func(f *fakeHost) {
		return func(f *fakeHost) {
			*f = *healthyHost(t, "localhost")
			f.kubeProcs = kubeaszProcs(name)
			f.files["/etc/systemd/system/kubelet.service"] = strings.ReplaceAll(kubeaszUnit, "%s", name)
			f.files["/etc/kubernetes/ssl/kubelet.pem"] = kubeletCertPEM(t, "system:node:"+name, false)
		}
	}
	kubeadm := func(f *fakeHost) {
		*f = *healthyHost(t, "kubeadm-02")
		f.kubeProcs = "p 77 kubelet\na /usr/bin/kubelet\na --config=/var/lib/kubelet/config.yaml\n"
		f.files["/var/lib/kubelet/pki/kubelet-client-current.pem"] = kubeletCertPEM(t, "system:node:kubeadm-02", true)
	}
	tests := []struct {
		name      string
		seed      func(f *fakeHost)
		host      Host
		cfg       func(c *Config)
		status    Status
		changed   bool
		msg, warn []string
		target    string
	}{
		{
			name: "inventory and kubelet agree: renamed", seed: kubeasz("worker-01"),
			host:   Host{Name: "10.0.0.1", TargetHostname: "worker-01", TargetSource: "K8S_NODENAME"},
			status: StatusChanged, changed: true, target: "worker-01",
			msg: []string{"renamed localhost → worker-01"},
		},
		{
			name: "two hosts swapped in the inventory: refused, both names said", seed: kubeasz("worker-01"),
			host:   Host{Name: "10.0.0.1", TargetHostname: "worker-02", TargetSource: "K8S_NODENAME"},
			status: StatusFailed,
			msg:    []string{"host 10.0.0.1", `names this node "worker-02" (K8S_NODENAME)`, `its kubelet runs as "worker-01"`, "--hostname-override", "renaming nothing", "--trust-inventory"},
		},
		{
			name: "--trust-inventory renames against the kubelet, loudly", seed: kubeasz("worker-01"),
			host:   Host{Name: "10.0.0.1", TargetHostname: "worker-02", TargetSource: "K8S_NODENAME"},
			cfg:    func(c *Config) { c.TrustInventory = true },
			status: StatusChanged, changed: true, target: "worker-02",
			warn: []string{`its kubelet runs as "worker-01"`, "re-register the node"},
		},
		{
			name: "no inventory name: the kubelet's name is the target", seed: kubeasz("10.0.0.2"),
			host:   Host{Name: "10.0.0.2"},
			status: StatusChanged, changed: true, target: "10.0.0.2",
			msg: []string{"renamed localhost → 10.0.0.2"},
		},
		{
			name: "kubeadm without override, inventory guesses another name: refused", seed: kubeadm,
			host:   Host{Name: "web01.example.com", TargetHostname: "k8s-web01-example-com", TargetSource: "nodefix_hostname"},
			status: StatusFailed,
			msg:    []string{`its kubelet runs as "kubeadm-02"`, "no --hostname-override", "registers a new node"},
		},
		{
			name: "kubeadm without override and no inventory name: ok, untouched", seed: kubeadm,
			host:   Host{Name: "web01"},
			status: StatusOK, target: "kubeadm-02",
			msg: []string{"hostname is kubeadm-02", "kubelet"},
		},
		{
			name: "the node's sources disagree: refused", seed: func(f *fakeHost) {
				kubeasz("worker-01")(f)
				f.files["/etc/kubernetes/ssl/kubelet.pem"] = kubeletCertPEM(t, "system:node:worker-07", false)
			},
			host:   Host{Name: "10.0.0.1", TargetHostname: "worker-01"},
			status: StatusFailed,
			msg:    []string{"disagree", `"worker-07"`, `"worker-01"`},
		},
		{
			name: "neither inventory nor node names the host: ok, nothing invented",
			seed: func(f *fakeHost) { *f = *healthyHost(t, "web01") },
			host: Host{Name: "web01.example.com"}, status: StatusOK,
			msg: []string{"no node name", "left as it is"},
		},
		{
			name: "the node changed its name after the fleet precheck: refused", seed: kubeasz("worker-05"),
			host:   Host{Name: "10.0.0.5", SurveyedHostname: "worker-04"},
			status: StatusFailed,
			msg:    []string{"fleet precheck approved \"worker-04\""},
		},
		{
			name: "--keep-hostname: a disagreement is a warning, not a failure", seed: kubeasz("worker-01"),
			host:   Host{Name: "10.0.0.1", TargetHostname: "worker-02"},
			cfg:    func(c *Config) { c.KeepHostname = true },
			status: StatusOK,
			warn:   []string{`its kubelet runs as "worker-01"`},
		},
		{
			name: "a kubelet name that cannot be a hostname: refused", seed: kubeasz(strings.Repeat("a", 40) + "." + strings.Repeat("b", 30)),
			host:   Host{Name: "n1"},
			status: StatusFailed,
			msg:    []string{"cannot be a hostname", "at most 64"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHost(t)
			tc.seed(f)
			f.t = t
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			out := Hostname{}.Apply(context.Background(), f, tc.host, cfg)
			if out.Status != tc.status || out.Changed != tc.changed {
				t.Fatalf("status %s changed %v, want %s %v: %s (warnings %q)", out.Status, out.Changed, tc.status, tc.changed, out.Msg, out.Warnings)
			}
			for _, want := range tc.msg {
				if !strings.Contains(out.Msg, want) {
					t.Errorf("msg %q lacks %q", out.Msg, want)
				}
			}
			for _, want := range tc.warn {
				if !strings.Contains(strings.Join(out.Warnings, "\n"), want) {
					t.Errorf("warnings %q lack %q", out.Warnings, want)
				}
			}
			if tc.status == StatusFailed && f.called("hostname-apply") > 0 {
				t.Errorf("a refused host was renamed")
			}
			if tc.target != "" && out.Details["target"] != tc.target {
				t.Errorf("target %v, want %s", out.Details["target"], tc.target)
			}
		})
	}
}

// Issue 11: where /etc/hosts is a bind mount (containers), the rename
// writes it in place.
func TestHostnameWritesMountedFilesInPlace(t *testing.T) {
	f := healthyHost(t, "localhost")
	f.mountinfo = "612 600 0:30 /containers/abc/hosts /etc/hosts rw,relatime - ext4 /dev/vda1 rw\n" +
		"613 600 0:30 /containers/abc/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n"
	f.systemd, f.hostnamectl = true, true
	out := Hostname{}.Apply(context.Background(), f, Host{Name: "n1", TargetHostname: "node-1"}, DefaultConfig())
	if out.Status != StatusChanged {
		t.Fatalf("%s: %s", out.Status, out.Msg)
	}
	args := f.args["hostname-apply"]
	if got := strings.Join(args[4:10], " "); got != "hostname 1 1 1 1 1" {
		t.Errorf("apply args %q: want the hostname method (hostnamectl renames /etc/hostname) and both files marked mounted", args)
	}
}
