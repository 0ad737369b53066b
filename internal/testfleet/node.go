package testfleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nodefix/nodefix/tasks"
)

// Node is one simulated host: a real OpenSSH sshd in its own UTS, mount
// and PID namespaces, with private copy-on-write views of /etc, /usr, /var,
// /root and /home, and a private /run.
type Node struct {
	// Index is the node's position in the fleet, from 1.
	Index int `json:"index"`
	// Name is the node's inventory hostname in the YAML inventory.
	Name string `json:"name"`
	// Addr and Port are where its sshd listens (ansible_host, ansible_port).
	Addr string `json:"addr"`
	Port int    `json:"port"`
	// K8sNodename is the inventory's k8s_nodename for the node ("" when
	// the name is left to kubeasz's derivation).
	K8sNodename string `json:"k8s_nodename"`
	// Kubelet is the node's Kubernetes node agent (zero: none).
	Kubelet Kubelet `json:"kubelet"`
	// InitPID is the host's pid of the node's PID 1 (a bash that reaps
	// orphans, as init does); killing it ends every process of the node.
	InitPID int `json:"init_pid"`
	// UnsharePID is the unshare process that created the namespaces.
	UnsharePID int `json:"unshare_pid"`
	// Dir holds the node's sshd config, keys, logs and overlay layers.
	Dir string `json:"dir"`
	// Net is set for nodes of a jump topology (Options.BehindJump): they
	// live in their own network namespace.
	Net *NetLink `json:"net,omitempty"`

	fleetDir string
	unshare  *exec.Cmd
	exited   chan struct{}
}

// SSHAddr is host:port for ssh clients.
func (n *Node) SSHAddr() string { return net.JoinHostPort(n.Addr, strconv.Itoa(n.Port)) }

func (n *Node) path(name string) string { return filepath.Join(n.Dir, name) }

// nodePath is what processes inside the node get as PATH: what a root
// login on an EL host has.
const nodePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Run runs argv inside the node as root, without ssh: the way tests and
// fault seeding reach a node directly. It implements tasks.Node, so tasks
// can be tested on a node without a transport.
func (n *Node) Run(ctx context.Context, cmd tasks.Command) (tasks.Result, error) {
	if len(cmd.Argv) == 0 {
		return tasks.Result{}, errors.New("testfleet: empty argv")
	}
	args := append([]string{"-t", strconv.Itoa(n.InitPID), "-m", "-u", "-p", "--wd=/", "--",
		"env", "-i", "PATH=" + nodePath, "HOME=/root", "LANG=C.UTF-8", "USER=root", "LOGNAME=root"}, cmd.Argv...)
	c := exec.CommandContext(ctx, "nsenter", args...)
	c.Stdin = bytes.NewReader(cmd.Stdin)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	// A cancelled command ends nsenter only: what it started inside the
	// node may hold the output pipes, which must not hold Run.
	c.WaitDelay = 5 * time.Second
	err := c.Run()
	res := tasks.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil && exit.ExitCode() >= 0:
		res.ExitStatus = exit.ExitCode()
	default:
		return res, fmt.Errorf("running %q on %s: %w (stderr: %s)", cmd.Argv, n.Name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return res, nil
}

// Sh runs a shell script inside the node and returns its stdout; a
// non-zero exit is an error carrying stderr. Arguments are positional
// parameters ($1, $2 …), never interpolated into the script.
func (n *Node) Sh(ctx context.Context, script string, args ...string) (string, error) {
	res, err := n.Run(ctx, tasks.Command{Argv: append([]string{"sh", "-c", script, "sh"}, args...)})
	if err != nil {
		return "", err
	}
	if res.ExitStatus != 0 {
		return string(res.Stdout), fmt.Errorf("on %s: sh -c %q: exit %d: %s", n.Name, script, res.ExitStatus, bytes.TrimSpace(res.Stderr))
	}
	return string(res.Stdout), nil
}

// start creates the namespaces and boots the node: overlays, hostname,
// sshd. It returns once the node's PID 1 is known; waitSSH waits for sshd.
func (n *Node) start(ctx context.Context, baseDir, hostname string, detach bool) error {
	var mounts strings.Builder
	mounts.WriteString("mount -t tmpfs -o mode=755,size=64m nodefix-run /run\nmkdir -p /run/sshd /run/lock\n")
	for _, d := range overlaid {
		lower := "/" + d
		if st, err := os.Stat(filepath.Join(baseDir, d)); err == nil && st.IsDir() {
			lower = filepath.Join(baseDir, d) + ":/" + d
		}
		fmt.Fprintf(&mounts, "mount -t overlay nodefix-%s -o lowerdir=%s,upperdir=%s,workdir=%s /%s\n",
			d, lower, n.path("upper/"+d), n.path("work/"+d), d)
	}
	// PID 1 must reap orphans (processes whose parent died), as init does:
	// bash does so in its SIGCHLD handler while it waits.
	// In its own network namespace the node waits for its link (set up by
	// linkJumpTopology) before sshd binds to its address.
	if n.Net != nil {
		mounts.WriteString("ip link set lo up\nuntil ip -o addr show | grep -qF \" $4/\"; do sleep 0.02; done\n")
	}
	script := "set -e\n" + mounts.String() +
		"hostname \"$1\"\n" +
		"/usr/sbin/sshd -f \"$2\" -E \"$3\"\n" +
		"set +e\ntrap 'exit 0' TERM\nwhile :; do sleep 3600 & wait $!; done\n"
	namespaces := []string{"--uts", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "--kill-child"}
	if n.Net != nil {
		namespaces = append(namespaces, "--net")
	}
	cmd := exec.Command("unshare", append(namespaces,
		"bash", "-c", script, "nodefix-node-init", hostname, n.path("sshd_config"), n.path("sshd.log"), n.Addr)...)
	cmd.Env = []string{"PATH=" + nodePath, "HOME=/root", "LANG=C.UTF-8"}
	cmd.Dir = "/"
	logFile, err := os.OpenFile(n.path("init.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening %s: %w", n.path("init.log"), err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A detached fleet (testfleet up) outlives the command that started it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: detach}
	if !detach {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting node %s: %w", n.Name, err)
	}
	n.unshare = cmd
	n.UnsharePID = cmd.Process.Pid
	n.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		close(n.exited)
	}()
	pid, err := childOf(ctx, n.UnsharePID, n.exited)
	if err != nil {
		return fmt.Errorf("node %s: %w (see %s)", n.Name, err, n.path("init.log"))
	}
	n.InitPID = pid
	return nil
}

// childOf waits for the first child of pid (unshare's forked PID 1).
func childOf(ctx context.Context, pid int, exited <-chan struct{}) (int, error) {
	path := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			if f := strings.Fields(string(data)); len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
		select {
		case <-exited:
			return 0, errors.New("the node's namespaces exited while starting")
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// waitSSH waits until the node's sshd answers with its banner.
func (n *Node) waitSSH(ctx context.Context) error {
	pause := 10 * time.Millisecond
	for {
		if n.answers(ctx) {
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("node %s stopped while booting: %s", n.Name, n.logTail())
		case <-ctx.Done():
			return fmt.Errorf("node %s: sshd did not answer on %s: %w: %s", n.Name, n.SSHAddr(), ctx.Err(), n.logTail())
		case <-time.After(pause):
		}
		pause = min(2*pause, 250*time.Millisecond)
	}
}

// answers reports whether the node's sshd sends its banner, asked from
// where clients reach it: this machine, or the jump host for a node
// behind one.
func (n *Node) answers(ctx context.Context) bool {
	if n.Net == nil || n.Net.JumpPID == 0 {
		return sendsBanner(ctx, n.SSHAddr())
	}
	probe := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(n.Net.JumpPID), "-n", "--",
		"bash", "-c", `exec 3<>/dev/tcp/"$1"/"$2" && head -c4 <&3`, "probe", n.Addr, strconv.Itoa(n.Port))
	out, err := probe.Output()
	return err == nil && string(out) == "SSH-"
}

// sendsBanner reports whether a connection to addr gets an SSH banner
// before ctx ends. Once sshd has accepted, the probe waits for the banner
// as long as ctx allows: every connection costs sshd a fork and re-exec,
// and on a loaded machine a probe that gave up after a fixed time and
// asked again fed the load it was waiting out (100 booting nodes never
// answered within CI's five minutes).
func sendsBanner(ctx context.Context, addr string) bool {
	dialer := net.Dialer{Timeout: time.Second}
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	return err == nil && string(buf) == "SSH-"
}

func (n *Node) logTail() string {
	var out []string
	for _, name := range []string{"init.log", "sshd.log"} {
		data, _ := os.ReadFile(n.path(name))
		if s := strings.TrimSpace(string(data)); s != "" {
			if len(s) > 800 {
				s = s[len(s)-800:]
			}
			out = append(out, name+": "+s)
		}
	}
	return strings.Join(out, "; ")
}

// stop kills the node's PID 1; the kernel then kills every process in
// the node's PID namespace and its mounts vanish with it.
func (n *Node) stop(ctx context.Context) error {
	if n.InitPID > 0 && isOurInit(n.InitPID, n.UnsharePID) {
		if err := syscall.Kill(n.InitPID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stopping node %s (pid %d): %w", n.Name, n.InitPID, err)
		}
	}
	if n.exited != nil {
		select {
		case <-n.exited:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("node %s: unshare (pid %d) did not exit: %w", n.Name, n.UnsharePID, ctx.Err())
		}
	}
	// Detached node (loaded from state): wait for unshare to go.
	for n.UnsharePID > 0 && processExists(n.UnsharePID) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: unshare (pid %d) did not exit: %w", n.Name, n.UnsharePID, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// isOurInit guards against killing a recycled pid: the pid must still be
// a child of the node's unshare process.
func isOurInit(initPID, unsharePID int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", initPID))
	if err != nil {
		return false
	}
	// Field 4 (ppid) follows the parenthesised comm, which may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	return len(f) > 1 && f[1] == strconv.Itoa(unsharePID)
}

func processExists(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
