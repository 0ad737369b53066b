package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/termio/ptytest"
	"github.com/nodefix/nodefix/internal/testfleet"
)

// These tests drive the nodefix binary against the simulated fleet: real
// sshd nodes in namespaces (internal/testfleet). They skip without root,
// sshd or rpm, unless NODEFIX_FLEET=required.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// nodefixBinary builds cmd/nodefix once per test process.
func nodefixBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nodefix-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "nodefix")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// result is one nodefix process.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// nodefix runs the binary with args, in a clean environment: no agent, no
// ~/.ssh of this machine's, no host key checking override.
func nodefix(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(nodefixBinary(t), args...)
	cmd.Env = cleanEnv(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("nodefix %s: exit %d in %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.took, r.stdout, r.stderr)
	return r
}

func cleanEnv(t *testing.T) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "NO_COLOR=1"}
}

// jsonDoc is the part of --json the tests read.
type jsonDoc struct {
	ExitCode    int  `json:"exit_code"`
	Interrupted bool `json:"interrupted"`
	Hosts       map[string]struct {
		Status   string         `json:"status"`
		Msg      string         `json:"msg"`
		Warnings []string       `json:"warnings"`
		Stats    map[string]int `json:"stats"`
		Tasks    []struct {
			Task    string         `json:"task"`
			Status  string         `json:"status"`
			Changed bool           `json:"changed"`
			Msg     string         `json:"msg"`
			Details map[string]any `json:"details"`
		} `json:"tasks"`
	} `json:"hosts"`
	Summary map[string]int `json:"summary"`
}

func parseJSON(t *testing.T, r result) jsonDoc {
	t.Helper()
	var d jsonDoc
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	return d
}

var recapLine = regexp.MustCompile(`(?m)^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)`)

// recap reads PLAY RECAP: host → [ok changed unreachable failed skipped].
func recap(t *testing.T, out string) map[string][5]int {
	t.Helper()
	i := strings.Index(out, "PLAY RECAP")
	if i < 0 {
		t.Fatalf("no PLAY RECAP in:\n%s", out)
	}
	m := map[string][5]int{}
	for _, sub := range recapLine.FindAllStringSubmatch(out[i:], -1) {
		var v [5]int
		for k := range v {
			v[k], _ = strconv.Atoi(sub[k+2])
		}
		m[sub[1]] = v
	}
	return m
}

func TestFleetTwentyNodes(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 20})
	ctx := context.Background()
	// node05 lacks iscsiadm (longhorn-deps fails); node07 is called
	// localhost (hostname changes it).
	if err := f.Nodes[4].RemoveExecutable(ctx, "iscsiadm"); err != nil {
		t.Fatal(err)
	}
	if err := f.Nodes[6].SetHostname(ctx, "localhost"); err != nil {
		t.Fatal(err)
	}
	r := nodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "hostname,longhorn-deps", "-f", "20", "--json")
	if r.code != exitcode.HostFailed {
		t.Errorf("exit %d, want %d (a host failed)", r.code, exitcode.HostFailed)
	}
	d := parseJSON(t, r)
	rc := recap(t, r.stderr)
	if len(d.Hosts) != 20 || len(rc) != 20 {
		t.Fatalf("%d hosts in JSON, %d in the recap, want 20", len(d.Hosts), len(rc))
	}
	for _, n := range f.Nodes {
		h := d.Hosts[n.Name]
		want := "ok"
		switch n.Name {
		case "node05":
			want = "failed"
		case "node07":
			want = "changed"
		}
		if h.Status != want {
			t.Errorf("%s: status %s (%s), want %s", n.Name, h.Status, h.Msg, want)
		}
		// The recap says what the JSON says.
		st := h.Stats
		if got, wantRC := rc[n.Name], [5]int{st["ok"], st["changed"], st["unreachable"], st["failed"], st["skipped"]}; got != wantRC {
			t.Errorf("%s: recap %v, JSON stats %v", n.Name, got, wantRC)
		}
		var names []string
		for _, task := range h.Tasks {
			names = append(names, task.Task)
		}
		if got := strings.Join(names, ","); got != "hostname,longhorn-deps" {
			t.Errorf("%s ran %s", n.Name, got)
		}
	}
	if msg := d.Hosts["node05"].Tasks[1].Msg; !strings.Contains(msg, "iscsiadm") {
		t.Errorf("node05's failure does not name iscsiadm: %q", msg)
	}
	if got, _ := f.Nodes[6].Hostname(ctx); got != "worker-07" {
		t.Errorf("node07 hostname %q after the run", got)
	}
	if d.Summary["hosts"] != 20 || d.Summary["failed"] != 1 || d.Summary["changed"] != 1 || d.Summary["ok"] != 18 {
		t.Errorf("summary %v", d.Summary)
	}
	if !strings.Contains(r.stderr, "failed: [node05] => longhorn-deps") {
		t.Errorf("no failure line for node05 on stderr")
	}
}

func TestFleetUnreachableAndStalledNodes(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 4})
	ctx := context.Background()
	if err := f.Nodes[1].StopSSHD(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Nodes[2].StallSSHD(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Nodes[2].ResumeSSHD(context.Background()) })
	r := nodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "longhorn-deps", "-T", "3", "--json")
	if r.code != exitcode.Unreachable {
		t.Errorf("exit %d, want %d", r.code, exitcode.Unreachable)
	}
	d := parseJSON(t, r)
	want := map[string]string{"node01": "ok", "node02": "unreachable", "node03": "unreachable", "node04": "ok"}
	for name, st := range want {
		if d.Hosts[name].Status != st {
			t.Errorf("%s: %s (%s), want %s", name, d.Hosts[name].Status, d.Hosts[name].Msg, st)
		}
	}
	if msg := d.Hosts["node03"].Msg; !strings.Contains(msg, "handshake") {
		t.Errorf("stalled node's message %q does not say the handshake stalled", msg)
	}
	if msg := d.Hosts["node02"].Msg; !strings.Contains(msg, "refused") {
		t.Errorf("stopped node's message %q", msg)
	}
	// Bounded by the 3s connect timeout, with room for a loaded machine.
	if r.took > 20*time.Second {
		t.Errorf("run took %v with a 3s connect timeout", r.took)
	}
	if rc := recap(t, r.stderr); rc["node03"][2] != 1 || rc["node01"][0] != 1 {
		t.Errorf("recap %v", rc)
	}
}

func TestFleetHostKeys(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 2})
	ctx := context.Background()

	t.Run("unknown refused with instructions, accepted with --accept-new", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		args := []string{"run", "-i", f.InventoryYAML, "--tasks", "longhorn-deps", "--json",
			"-e", fmt.Sprintf(`{"ansible_ssh_common_args": "-o UserKnownHostsFile=%s"}`, kh)}
		r := nodefix(t, args...)
		if r.code != exitcode.Unreachable {
			t.Errorf("exit %d, want %d", r.code, exitcode.Unreachable)
		}
		d := parseJSON(t, r)
		for _, n := range f.Nodes {
			msg := d.Hosts[n.Name].Msg
			if d.Hosts[n.Name].Status != "unreachable" || !strings.Contains(msg, "is not known") ||
				!strings.Contains(msg, "--accept-new") || !strings.Contains(msg, "\n"+n.Addr+" ssh-ed25519 ") {
				t.Errorf("%s: %s %q: want unreachable with the known_hosts line to add", n.Name, d.Hosts[n.Name].Status, msg)
			}
		}
		if _, err := os.Stat(kh); err == nil {
			t.Errorf("%s written without --accept-new", kh)
		}

		r = nodefix(t, append(args, "--accept-new")...)
		if r.code != 0 {
			t.Fatalf("--accept-new: exit %d", r.code)
		}
		data, _ := os.ReadFile(kh)
		if lines := strings.Count(string(data), "\n"); lines != 2 {
			t.Errorf("%s has %d lines, want one per node:\n%s", kh, lines, data)
		}
		if r := nodefix(t, args...); r.code != 0 {
			t.Errorf("after accepting: exit %d", r.code)
		}
	})

	t.Run("changed key refused, even with --accept-new", func(t *testing.T) {
		if err := f.Nodes[0].ChangeHostKey(ctx); err != nil {
			t.Fatal(err)
		}
		for _, extra := range [][]string{nil, {"--accept-new"}} {
			r := nodefix(t, append([]string{"run", "-i", f.InventoryYAML, "--tasks", "longhorn-deps", "--json"}, extra...)...)
			if r.code != exitcode.Unreachable {
				t.Errorf("exit %d, want %d", r.code, exitcode.Unreachable)
			}
			d := parseJSON(t, r)
			if h := d.Hosts["node01"]; h.Status != "unreachable" || !strings.Contains(h.Msg, "HOST KEY CHANGED") {
				t.Errorf("node01: %s %q", h.Status, h.Msg)
			}
			if h := d.Hosts["node02"]; h.Status != "ok" {
				t.Errorf("node02: %s %q", h.Status, h.Msg)
			}
		}
		data, _ := os.ReadFile(f.KnownHostsFile)
		if strings.Count(string(data), f.Nodes[0].Addr+" ") != 2 {
			t.Errorf("known_hosts changed:\n%s", data)
		}
	})
}

// procScanner records any process argv or environment that holds a secret
// while it runs: this machine's and, since the nodes' PID namespaces are
// nested in this machine's, every node's too.
type procScanner struct {
	secret string
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	hits   []string
	scans  int
}

func scanProcs(secret string) *procScanner {
	s := &procScanner{secret: secret, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			s.scan()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return s
}

func (s *procScanner) scan() {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			data, err := os.ReadFile("/proc/" + e.Name() + "/" + f)
			if err == nil && bytes.Contains(data, []byte(s.secret)) {
				s.mu.Lock()
				s.hits = append(s.hits, fmt.Sprintf("pid %s %s: %q", e.Name(), f, bytes.ReplaceAll(data, []byte{0}, []byte{' '})))
				s.mu.Unlock()
			}
		}
	}
	s.mu.Lock()
	s.scans++
	s.mu.Unlock()
}

func (s *procScanner) finish() ([]string, int) {
	close(s.stop)
	<-s.done
	return s.hits, s.scans
}

// Become through a non-root user whose sudo asks for a password: the
// password reaches sudo and nothing else.
func TestFleetBecomeWithSudoPassword(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 3, Hostname: func(int) string { return "localhost" }})
	ctx := context.Background()
	vars := filepath.Join(t.TempDir(), "become.json")
	data, _ := json.Marshal(map[string]any{"ansible_user": f.SudoUser, "ansible_become": true, "ansible_become_password": f.SudoPassword})
	if err := os.WriteFile(vars, data, 0o600); err != nil {
		t.Fatal(err)
	}
	scanner := scanProcs(f.SudoPassword)
	r := nodefix(t, "run", "-i", f.InventoryYAML, "-e", "@"+vars, "--tasks", "hostname,longhorn-deps", "--json", "--diff")
	hits, scans := scanner.finish()
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	d := parseJSON(t, r)
	for _, n := range f.Nodes {
		// Renaming needs root: it happened, through sudo.
		if h := d.Hosts[n.Name]; h.Status != "changed" {
			t.Errorf("%s: %s %+v", n.Name, h.Status, h.Tasks)
		}
		if got, _ := n.Hostname(ctx); got != fmt.Sprintf("worker-%02d", n.Index) {
			t.Errorf("%s: hostname %q", n.Name, got)
		}
		logData, _ := os.ReadFile(filepath.Join(n.Dir, "sshd.log"))
		if bytes.Contains(logData, []byte(f.SudoPassword)) {
			t.Errorf("%s: password in sshd.log", n.Name)
		}
	}
	for name, out := range map[string]string{"stdout (JSON)": r.stdout, "stderr": r.stderr} {
		if strings.Contains(out, f.SudoPassword) {
			t.Errorf("password in %s", name)
		}
	}
	if len(hits) > 0 {
		t.Errorf("password in process argv/environment:\n%s", strings.Join(hits, "\n"))
	}
	if scans < 5 {
		t.Errorf("only %d scans of /proc during the run: the check proves nothing", scans)
	}
	t.Logf("%d scans of every process's argv and environment during the run", scans)
}

// Ctrl-C mid-run: no new host starts, running ones are cancelled, the
// partial recap is printed, exit 99, and no session is left on any node.
func TestFleetInterrupt(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 8})
	ctx := context.Background()
	// Nodes 2-8 have an iscsiadm that hangs (a dead iscsid does that):
	// longhorn-deps waits on it (for up to 10s) when the run is interrupted.
	for _, n := range f.Nodes[1:] {
		if _, err := n.Sh(ctx, `p=$(command -v iscsiadm) && printf '#!/bin/sh\nexec sleep 1001\n' > "$p"`); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(nodefixBinary(t), "run", "-i", f.InventoryYAML, "--tasks", "longhorn-deps", "-f", "3")
	cmd.Env = cleanEnv(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the hanging commands run on three nodes.
	deadline := time.Now().Add(30 * time.Second)
	for countProcs(f, "sleep\x001001\x00") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	err := cmd.Wait()
	took := time.Since(sent)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != exitcode.Interrupted {
		t.Errorf("exit %d, want %d", code, exitcode.Interrupted)
	}
	if took > 9*time.Second {
		t.Errorf("took %v to stop: the hanging commands were waited for, not cancelled", took)
	}
	out := stdout.String()
	rc := recap(t, out)
	if len(rc) == 0 || len(rc) == len(f.Nodes) {
		t.Errorf("recap has %d hosts: want the partial recap of the hosts that started", len(rc))
	}
	if !strings.Contains(out, "interrupted") || !strings.Contains(out, "not started: ") {
		t.Errorf("no interruption summary in:\n%s", out)
	}
	// Nothing left behind: no hung command, no sshd session process.
	deadline = time.Now().Add(5 * time.Second)
	for {
		left := leftovers(t, f)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("left behind on the nodes:\n%s", strings.Join(left, "\n"))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A second Ctrl-C exits at once, without waiting for the running hosts.
func TestFleetSecondInterruptExitsAtOnce(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 2})
	for _, n := range f.Nodes {
		if _, err := n.Sh(context.Background(), `p=$(command -v iscsiadm) && printf '#!/bin/sh\nexec sleep 1002\n' > "$p"`); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(nodefixBinary(t), "run", "-i", f.InventoryYAML, "--tasks", "longhorn-deps")
	cmd.Env = cleanEnv(t)
	var stdout lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for countProcs(f, "sleep\x001002\x00") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	// Once the first is seen (the warning is printed), the second.
	for !strings.Contains(stdout.String(), "Ctrl-C again") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	sent := time.Now()
	err := cmd.Wait()
	took := time.Since(sent)
	t.Logf("output:\n%s", stdout.String())
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitcode.Interrupted {
		t.Errorf("exit %v, want %d", err, exitcode.Interrupted)
	}
	if took > 2*time.Second {
		t.Errorf("took %v after the second Ctrl-C", took)
	}
	if !strings.Contains(stdout.String(), "exiting now") {
		t.Errorf("no word about exiting at once")
	}
}

// countProcs counts processes (on this machine, nodes included) whose
// cmdline is exactly cmdline.
func countProcs(f *testfleet.Fleet, cmdline string) int {
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if data, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && string(data) == cmdline {
			n++
		}
	}
	return n
}

// leftovers lists, per node, its sshd session processes and hung
// commands; the listening sshd and the node's init are expected.
func leftovers(t *testing.T, f *testfleet.Fleet) []string {
	var left []string
	for _, n := range f.Nodes {
		out, err := n.Sh(context.Background(), `for p in /proc/[0-9]*; do [ "${p#/proc/}" = "$$" ] && continue; c=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null) && printf '%s\n' "$c"; done`)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "sleep 1001") || strings.Contains(line, "@notty") || strings.Contains(line, "[priv]") ||
				strings.Contains(line, "# nodefix:") {
				left = append(left, n.Name+": "+line)
			}
		}
	}
	return left
}

// A node reachable only through another node, by ProxyJump.
func TestFleetProxyJump(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 3, BehindJump: []int{2, 3}})
	r := nodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "hostname,longhorn-deps", "--json", "-T", "5")
	if r.code != 0 {
		t.Errorf("exit %d", r.code)
	}
	d := parseJSON(t, r)
	for _, n := range f.Nodes {
		if h := d.Hosts[n.Name]; h.Status != "ok" {
			t.Errorf("%s: %s %q", n.Name, h.Status, h.Msg)
		}
	}
	// Without the jump host they are unreachable: the test proves the jump.
	r = nodefix(t, "run", "-i", f.InventoryYAML, "--tasks", "longhorn-deps", "--json", "-T", "2", "-l", "node02",
		"-e", fmt.Sprintf(`{"ansible_ssh_common_args": "-o UserKnownHostsFile=%s"}`, f.KnownHostsFile))
	if d := parseJSON(t, r); r.code != exitcode.Unreachable || d.Hosts["node02"].Status != "unreachable" {
		t.Errorf("node02 reached without the jump host: exit %d", r.code)
	}
}

// -K asks the become password on the terminal, once for the whole fleet,
// without echoing it.
func TestFleetAskBecomePass(t *testing.T) {
	f := testfleet.New(t, testfleet.Options{Nodes: 3, Hostname: func(int) string { return "localhost" }})
	master, slave := ptytest.Open(t)
	cmd := exec.Command(nodefixBinary(t), "run", "-i", f.InventoryYAML, "-u", f.SudoUser, "-b", "-K",
		"-e", `{"ansible_user": "`+f.SudoUser+`"}`, "--tasks", "hostname")
	cmd.Env = cleanEnv(t)
	cmd.Stdin = slave
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	scanner := scanProcs(f.SudoPassword)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var terminal bytes.Buffer
	prompts := 0
	termDone := make(chan struct{})
	go func() {
		defer close(termDone)
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			terminal.Write(buf[:n])
			if bytes.Count(terminal.Bytes(), []byte("BECOME password: ")) > prompts {
				prompts++
				master.WriteString(f.SudoPassword + "\n")
			}
			if err != nil {
				return
			}
		}
	}()
	err := cmd.Wait()
	hits, _ := scanner.finish()
	slave.Close()
	master.SetReadDeadline(time.Now().Add(time.Second))
	<-termDone
	t.Logf("terminal: %q\nstdout:\n%s\nstderr:\n%s", terminal.String(), stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("nodefix: %v", err)
	}
	if prompts != 1 {
		t.Errorf("asked %d times, want once", prompts)
	}
	if strings.Contains(terminal.String(), f.SudoPassword) {
		t.Error("the password was echoed on the terminal")
	}
	for _, out := range []string{stdout.String(), stderr.String()} {
		if strings.Contains(out, f.SudoPassword) {
			t.Error("password in the output")
		}
	}
	if len(hits) > 0 {
		t.Errorf("password in process argv/environment:\n%s", strings.Join(hits, "\n"))
	}
	if rc := recap(t, stdout.String()); len(rc) != 3 || rc["node01"][1] != 1 {
		t.Errorf("recap %v: want every host changed (renamed as root through sudo)", rc)
	}
}

// Two hosts that would get the same name: the run is refused before any
// host is touched, even when --limit leaves one of them out.
func TestFleetPrecheckRefuses(t *testing.T) {
	names := map[int]string{1: "Worker_01", 2: "worker-01", 3: "worker-03"}
	f := testfleet.New(t, testfleet.Options{Nodes: 3, K8sNodename: func(i int) string { return names[i] },
		Hostname: func(int) string { return "localhost" }})
	ctx := context.Background()
	for _, args := range [][]string{
		{"run", "-i", f.InventoryYAML},
		{"run", "-i", f.InventoryYAML, "-l", "node02,node03", "--tasks", "hostname"},
		{"run", "-i", f.InventoryYAML, "--json", "--tasks", "hostname"},
	} {
		r := nodefix(t, args...)
		if r.code != exitcode.Usage {
			t.Errorf("exit %d, want %d", r.code, exitcode.Usage)
		}
		if !strings.Contains(r.stderr, "node01, node02") || !strings.Contains(r.stderr, `"worker-01"`) {
			t.Errorf("stderr does not name both hosts and the name:\n%s", r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "PLAY RECAP") {
			t.Error("a recap for a run that did not happen")
		}
		if slicesContains(args, "--json") {
			var d struct {
				ExitCode int `json:"exit_code"`
				Hosts    map[string]struct {
					Status string `json:"status"`
				} `json:"hosts"`
				Fleet struct {
					Precheck struct {
						OK  bool   `json:"ok"`
						Msg string `json:"msg"`
					} `json:"precheck"`
				} `json:"fleet"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.Fleet.Precheck.OK || d.ExitCode != 1 {
				t.Errorf("JSON %+v (%v):\n%s", d, err, r.stdout)
			}
			for _, n := range f.Nodes {
				if d.Hosts[n.Name].Status != "not_run" {
					t.Errorf("%s: %q, want not_run", n.Name, d.Hosts[n.Name].Status)
				}
			}
		}
	}
	for _, n := range f.Nodes {
		if got, _ := n.Hostname(ctx); got != "localhost" {
			t.Errorf("%s renamed to %q by a refused run", n.Name, got)
		}
	}
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lockedBuffer is written by a process's output copier and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
