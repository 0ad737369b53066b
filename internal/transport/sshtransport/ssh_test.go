package sshtransport

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/inventory"
	"github.com/nodefix/nodefix/tasks"
)

func connection(t *testing.T, addr string) inventory.Connection {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return inventory.Connection{Address: host, Port: p, User: "root"}
}

func dialer(t *testing.T, o Options) *Dialer {
	t.Helper()
	if o.HomeDir == "" {
		o.HomeDir = t.TempDir() // no ~/.ssh of the machine's
	}
	d, err := NewDialer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func dial(t *testing.T, d *Dialer, c inventory.Connection) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := d.Dial(ctx, "node", c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestRunOverSSH(t *testing.T) {
	key := newClientKey(t, "")
	sshd := startSSHD(t, []ssh.PublicKey{key.pub}, sshdOptions{})
	d := dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{sshd.knownHosts(t, "ed25519")}})
	conn := dial(t, d, connection(t, sshd.addr))
	ctx := context.Background()

	args := []string{"", "two words", "it's", `"dq"`, "$HOME", "$(id)", "`id`", "*", "a\nb", "ünï ✓", `\`, "-n", "~", "!x"}
	res, err := conn.Run(ctx, tasks.Command{Argv: append([]string{"printf", `%s\0`}, args...)})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(string(res.Stdout), "\x00")
	if len(got) != len(args)+1 {
		t.Fatalf("remote read %d arguments, want %d: %q", len(got)-1, len(args), got)
	}
	for i, a := range args {
		if got[i] != a {
			t.Errorf("argument %d = %q, want %q", i, got[i], a)
		}
	}

	res, err = conn.Run(ctx, tasks.Command{Argv: []string{"sh", "-c", "cat; echo err >&2; exit 9"}, Stdin: []byte("some\ninput")})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "some\ninput" || string(res.Stderr) != "err\n" || res.ExitStatus != 9 {
		t.Errorf("got stdout %q stderr %q status %d", res.Stdout, res.Stderr, res.ExitStatus)
	}

	res, err = conn.Run(ctx, tasks.Command{Argv: []string{"no-such-program-nodefix"}})
	if err != nil || res.ExitStatus != 127 {
		t.Errorf("missing program: status %d, err %v; want 127 as a shell says", res.ExitStatus, err)
	}

	// One connection for every command: the client port is the same.
	var ports []string
	for i := 0; i < 3; i++ {
		res, err := conn.Run(ctx, tasks.Command{Argv: []string{"sh", "-c", `echo "$SSH_CONNECTION"`}})
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, strings.Fields(string(res.Stdout))[1])
	}
	if ports[0] != ports[1] || ports[1] != ports[2] {
		t.Errorf("commands came from client ports %v: not one connection", ports)
	}
}

func TestBecomeOverSSH(t *testing.T) {
	key := newClientKey(t, "")
	sshd := startSSHD(t, []ssh.PublicKey{key.pub}, sshdOptions{})
	d := dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{sshd.knownHosts(t, "ed25519")},
		Become: transport.BecomeDefaults{Enable: true, User: "nobody"}})
	conn := dial(t, d, connection(t, sshd.addr))
	res, err := conn.Run(context.Background(), tasks.Command{Argv: []string{"sh", "-c", "id -un; cat"}, Stdin: []byte("in")})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "nobody\nin" || len(res.Stderr) != 0 {
		t.Errorf("stdout %q stderr %q", res.Stdout, res.Stderr)
	}
}

func TestHostKeys(t *testing.T) {
	key := newClientKey(t, "")
	sshd := startSSHD(t, []ssh.PublicKey{key.pub}, sshdOptions{KeyTypes: []string{"ed25519", "rsa"}})
	c := connection(t, sshd.addr)
	ctx := context.Background()

	t.Run("only the rsa key recorded", func(t *testing.T) {
		// The server prefers ed25519; offering what known_hosts records
		// makes it send its RSA key.
		d := dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{sshd.knownHosts(t, "rsa")}})
		dial(t, d, c)
	})

	t.Run("unknown refused with the line to add, then accepted with accept-new", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		d := dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{kh}})
		_, err := d.Dial(ctx, "node", c)
		var hk *HostKeyError
		if !errors.As(err, &hk) || len(hk.Known) != 0 {
			t.Fatalf("err = %v, want an unknown-host HostKeyError", err)
		}
		line := knownhosts.Line([]string{sshd.addr}, hk.Key)
		if !strings.Contains(err.Error(), line) || !strings.Contains(err.Error(), kh) || !strings.Contains(err.Error(), "--accept-new") {
			t.Errorf("message lacks the line to add, the file or --accept-new:\n%v", err)
		}
		if _, err := os.Stat(kh); err == nil {
			t.Errorf("strict checking wrote %s", kh)
		}

		d = dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{kh}, AcceptNew: true})
		conn := dial(t, d, c)
		if w := conn.Warnings(); len(w) != 1 || !strings.Contains(w[0], "permanently added") {
			t.Errorf("warnings = %q, want one about the key added", w)
		}
		data, _ := os.ReadFile(kh)
		if string(data) != line+"\n" {
			t.Errorf("%s = %q, want %q", kh, data, line+"\n")
		}
		// Now known: strict checking connects.
		d = dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{kh}})
		dial(t, d, c)
	})

	t.Run("changed key refused under every policy", func(t *testing.T) {
		other := newClientKey(t, "") // any key that is not the host's
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, []byte(knownhosts.Line([]string{sshd.addr}, other.pub)+"\n"), 0o600)
		for _, o := range []Options{{}, {AcceptNew: true}, {HostKeyCheckingOff: true}} {
			o.PrivateKeyFile, o.KnownHostsFiles = key.path, []string{kh}
			d := dialer(t, o)
			_, err := d.Dial(ctx, "node", c)
			var hk *HostKeyError
			if !errors.As(err, &hk) || len(hk.Known) == 0 || !strings.Contains(err.Error(), "HOST KEY CHANGED") {
				t.Errorf("%+v: err = %v, want a changed-key HostKeyError", o, err)
			}
		}
	})

	t.Run("host key checking off accepts with a warning", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		c := c
		c.StrictHostKeyChecking = "no"
		d := dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{kh}})
		conn := dial(t, d, c)
		if w := conn.Warnings(); len(w) != 1 || !strings.Contains(w[0], "host key checking is off (StrictHostKeyChecking=no)") {
			t.Errorf("warnings = %q", w)
		}
	})
}

func TestHandshakeStallIsBounded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // accept, then say nothing
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	d := dialer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err = d.Dial(ctx, "stall", connection(t, l.Addr().String()))
	if err == nil || !strings.Contains(err.Error(), "handshake") {
		t.Errorf("err = %v, want a handshake timeout", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v for a 1s connect timeout", took)
	}
}

// A cancelled command is ended on the host: no process and no sshd
// session is left behind.
func TestCancelClosesTheSession(t *testing.T) {
	key := newClientKey(t, "")
	sshd := startSSHD(t, []ssh.PublicKey{key.pub}, sshdOptions{})
	d := dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{sshd.knownHosts(t, "ed25519")}, Grace: time.Second})
	conn := dial(t, d, connection(t, sshd.addr))
	for _, tc := range []struct{ name, script string }{
		{"obeys SIGTERM", "sleep 3001"},
		{"ignores SIGTERM", "trap '' TERM; sleep 3002; sleep 3002"},
		// timeout(1) moves to its own process group, in the same session.
		{"own process group", "timeout 300 sleep 3005"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := strings.Fields(tc.script)[len(strings.Fields(tc.script))-1]
			ctx, cancel := context.WithCancel(context.Background())
			cancelled := make(chan time.Time, 1)
			go func() {
				for !running("sleep", marker) {
					time.Sleep(20 * time.Millisecond)
				}
				cancelled <- time.Now()
				cancel()
			}()
			_, err := conn.Run(ctx, tasks.Command{Argv: []string{"sh", "-c", tc.script}})
			start := <-cancelled
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("cancelling took %v", took)
			}
			t.Logf("cancelled after %v", time.Since(start))
			deadline := time.Now().Add(5 * time.Second)
			for running("sleep", marker) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if running("sleep", marker) {
				t.Errorf("sleep %s still runs on the host", marker)
			}
			// The connection stays usable for the next command.
			if res, err := conn.Run(context.Background(), tasks.Command{Argv: []string{"true"}}); err != nil || res.ExitStatus != 0 {
				t.Errorf("next command: %v %d", err, res.ExitStatus)
			}
		})
	}
}

// running reports whether a live (non-zombie) process has exactly argv.
func running(argv ...string) bool {
	want := strings.Join(argv, "\x00") + "\x00"
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || string(cmdline) != want {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] != "Z" {
			return true
		}
	}
	return false
}

func TestEncryptedKey(t *testing.T) {
	key := newClientKey(t, "correct horse")
	sshd := startSSHD(t, []ssh.PublicKey{key.pub}, sshdOptions{})
	kh := sshd.knownHosts(t, "ed25519")

	t.Run("no terminal", func(t *testing.T) {
		d := dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{kh}})
		_, err := d.Dial(context.Background(), "node", connection(t, sshd.addr))
		if err == nil || !strings.Contains(err.Error(), "ssh-add") {
			t.Errorf("err = %v, want advice to use ssh-add", err)
		}
	})
	t.Run("passphrase asked once for many connections", func(t *testing.T) {
		p := &fakePrompter{answers: []string{"wrong", "correct horse"}}
		d := dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{kh}, Prompter: p})
		for i := 0; i < 3; i++ {
			dial(t, d, connection(t, sshd.addr))
		}
		if p.asked != 2 {
			t.Errorf("asked %d times, want 2 (one wrong answer, one right)", p.asked)
		}
	})
}

type fakePrompter struct {
	answers []string
	asked   int
}

func (p *fakePrompter) ReadSecret(string) (string, error) {
	if p.asked >= len(p.answers) {
		return "", errors.New("no more answers")
	}
	p.asked++
	return p.answers[p.asked-1], nil
}

func TestProxyJump(t *testing.T) {
	key := newClientKey(t, "")
	jump := startSSHD(t, []ssh.PublicKey{key.pub}, sshdOptions{})
	target := startSSHD(t, []ssh.PublicKey{key.pub}, sshdOptions{})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(knownhosts.Line([]string{jump.addr}, jump.hostKeys["ed25519"])+"\n"+
		knownhosts.Line([]string{target.addr}, target.hostKeys["ed25519"])+"\n"), 0o600)
	d := dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{kh}})
	c := connection(t, target.addr)
	c.ProxyJump = "root@" + jump.addr
	conn := dial(t, d, c)
	res, err := conn.Run(context.Background(), tasks.Command{Argv: []string{"sh", "-c", `echo "$SSH_CONNECTION"`}})
	if err != nil {
		t.Fatal(err)
	}
	// The target sees the connection coming from the jump host's sshd,
	// not from this process.
	if f := strings.Fields(string(res.Stdout)); len(f) != 4 || net.JoinHostPort(f[2], f[3]) != target.addr {
		t.Errorf("SSH_CONNECTION = %q", res.Stdout)
	}
	if len(d.jumps.conns) != 1 {
		t.Errorf("%d jump connections, want 1", len(d.jumps.conns))
	}
}

func TestParseProxyJump(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []endpoint
		err  bool
	}{
		{in: ""},
		{in: "none"},
		{in: "bastion", want: []endpoint{{"me", "bastion:22"}}},
		{in: "ops@bastion:2222", want: []endpoint{{"ops", "bastion:2222"}}},
		{in: "a@b,c:23", want: []endpoint{{"a", "b:22"}, {"me", "c:23"}}},
		{in: "ssh://u@h:2200", want: []endpoint{{"u", "h:2200"}}},
		{in: "u@[::1]:2200", want: []endpoint{{"u", "[::1]:2200"}}},
		{in: "a,,b", err: true},
		{in: "h:99999", err: true},
	} {
		got, err := parseProxyJump(tc.in, "me")
		if (err != nil) != tc.err {
			t.Errorf("%q: err = %v", tc.in, err)
			continue
		}
		if strings.Join(fmtEndpoints(got), " ") != strings.Join(fmtEndpoints(tc.want), " ") {
			t.Errorf("%q = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func fmtEndpoints(es []endpoint) []string {
	var s []string
	for _, e := range es {
		s = append(s, e.user+"@"+e.addr)
	}
	return s
}

// Cancelling a command that runs as another user (sudo) ends it too.
func TestCancelUnderBecome(t *testing.T) {
	key := newClientKey(t, "")
	sshd := startSSHD(t, []ssh.PublicKey{key.pub}, sshdOptions{})
	d := dialer(t, Options{PrivateKeyFile: key.path, KnownHostsFiles: []string{sshd.knownHosts(t, "ed25519")},
		Grace: time.Second, Become: transport.BecomeDefaults{Enable: true, User: "nobody"}})
	conn := dial(t, d, connection(t, sshd.addr))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for !running("sleep", "3003") {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}()
	if _, err := conn.Run(ctx, tasks.Command{Argv: []string{"sh", "-c", "trap '' TERM; sleep 3003; sleep 3003"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for running("sleep", "3003") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if running("sleep", "3003") {
		t.Errorf("sleep 3003 (as nobody, under sudo) still runs")
	}
}

func TestPIDWatcher(t *testing.T) {
	const marker = "NODEFIX-PGID-abc-"
	for _, tc := range []struct {
		name    string
		writes  []string
		wantOut string
		wantPID int
	}{
		{name: "marker first", writes: []string{marker + "42\nerr"}, wantOut: "err", wantPID: 42},
		{name: "split marker", writes: []string{"NODEFIX-PG", "ID-abc-4", "2\n", "rest"}, wantOut: "rest", wantPID: 42},
		{name: "noise before", writes: []string{"bashrc says hi\n" + marker + "7\nx"}, wantOut: "bashrc says hi\nx", wantPID: 7},
		{name: "no marker", writes: []string{"a", "b"}, wantOut: "ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			w := newPIDWatcher(marker, &out)
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			w.flush()
			if out.String() != tc.wantOut || w.pid() != tc.wantPID {
				t.Errorf("out %q pid %d, want %q %d", out.String(), w.pid(), tc.wantOut, tc.wantPID)
			}
		})
	}
}
