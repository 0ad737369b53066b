package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/inventory"
	"github.com/nodefix/nodefix/tasks"
)

// fakeSudo is a Starter that behaves like sudo in front of `cat` followed
// by a write to stderr and exit status 3, under a given sudoers policy.
// It checks what nodefix does with the password: the command's stdout
// echoes everything the command read, so a leaked password shows up there.
type fakeSudo struct {
	password     string // the user's real password
	needPassword bool   // false: NOPASSWD (or a cached timestamp)
	argvSeen     [][]string
}

func (f *fakeSudo) Start(ctx context.Context, argv []string, stdout, stderr io.Writer) (Process, error) {
	f.argvSeen = append(f.argvSeen, argv)
	pr, pw := io.Pipe()
	p := &fakeProcess{stdin: pw, done: make(chan int, 1)}
	go func() { p.done <- f.run(argv, bufio.NewReader(pr), stdout, stderr); pr.Close() }()
	return p, nil
}

func (f *fakeSudo) run(argv []string, stdin *bufio.Reader, stdout, stderr io.Writer) int {
	if argv[0] != "sudo" {
		fmt.Fprintf(stderr, "not sudo: %q", argv)
		return 100
	}
	var nonInteractive bool
	var prompt string
	i := 1
	for ; argv[i] != "--"; i++ {
		switch argv[i] {
		case "-n":
			nonInteractive = true
		case "-p":
			i++
			prompt = argv[i]
		}
	}
	script := argv[i+3] // -- /bin/sh -c SCRIPT
	marker := strings.Fields(script)[1]
	if f.needPassword {
		if nonInteractive {
			fmt.Fprintln(stderr, "sudo: a password is required")
			return 1
		}
		authenticated := false
		for try := 0; try < 3 && !authenticated; try++ {
			if try > 0 {
				fmt.Fprintln(stderr, "Sorry, try again.")
			}
			fmt.Fprint(stderr, prompt)
			line, err := stdin.ReadString('\n')
			if err != nil {
				fmt.Fprintln(stderr, "sudo: no password was provided")
				return 1
			}
			authenticated = strings.TrimSuffix(line, "\n") == f.password
		}
		if !authenticated {
			return 1
		}
	}
	fmt.Fprintln(stderr, marker)
	data, _ := io.ReadAll(stdin)
	stdout.Write(data)
	fmt.Fprint(stderr, "command stderr")
	return 3
}

type fakeProcess struct {
	stdin *io.PipeWriter
	done  chan int
}

func (p *fakeProcess) Stdin() io.WriteCloser { return p.stdin }
func (p *fakeProcess) Wait() (int, error)    { return <-p.done, nil }

func TestBecomePasswordNeverReachesTheCommand(t *testing.T) {
	const secret = "s3cret pass'word$"
	input := []byte("the command's own input\n")
	for _, tc := range []struct {
		name         string
		sudo         fakeSudo
		password     Secret
		wantErr      string
		wantWrongPwd bool
	}{
		{name: "password required and given", sudo: fakeSudo{password: secret, needPassword: true}, password: secret},
		{name: "NOPASSWD with a password given", sudo: fakeSudo{password: secret}, password: secret},
		{name: "NOPASSWD without a password", sudo: fakeSudo{password: secret}},
		{name: "password required, none given", sudo: fakeSudo{password: secret, needPassword: true}, wantErr: "needs a password"},
		{name: "wrong password", sudo: fakeSudo{password: "other", needPassword: true}, password: secret, wantErr: "incorrect become password", wantWrongPwd: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Become{Enable: true, User: "app", Password: tc.password}
			res, err := Run(context.Background(), &tc.sudo, b, tasks.Command{Argv: []string{"cat"}, Stdin: input})
			for _, argv := range tc.sudo.argvSeen {
				if strings.Contains(strings.Join(argv, " "), secret) {
					t.Fatalf("password in argv: %q", argv)
				}
			}
			if tc.wantErr != "" {
				var be *BecomeError
				if !errors.As(err, &be) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want a BecomeError with %q", err, tc.wantErr)
				}
				if be.WrongPassword != tc.wantWrongPwd {
					t.Errorf("WrongPassword = %t, want %t", be.WrongPassword, tc.wantWrongPwd)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error holds the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Stdout) != string(input) {
				t.Errorf("command read %q, want exactly %q", res.Stdout, input)
			}
			if string(res.Stderr) != "command stderr" {
				t.Errorf("stderr = %q, want only the command's", res.Stderr)
			}
			if res.ExitStatus != 3 {
				t.Errorf("status = %d, want the command's 3", res.ExitStatus)
			}
			wantFlag := "-n"
			if tc.password != "" {
				wantFlag = "-S"
			}
			if argv := tc.sudo.argvSeen[0]; !contains(argv, wantFlag) || !contains(argv, "app") {
				t.Errorf("argv %q lacks %s or the become user", argv, wantFlag)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestBecomeNeverPrintsThePassword(t *testing.T) {
	b := Become{Enable: true, User: "root", Password: "hunter2"}
	for _, s := range []string{fmt.Sprint(b), fmt.Sprintf("%v %+v %#v %s", b, b, b, b), fmt.Sprintf("%v %#v", b.Password, b.Password)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("printed the password: %s", s)
		}
	}
	text, _ := b.Password.MarshalText()
	if strings.Contains(string(text), "hunter2") {
		t.Errorf("MarshalText printed the password")
	}
}

func TestBecomeFor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		conn    inventory.Connection
		def     BecomeDefaults
		want    Become
		wantErr string
	}{
		{name: "off", want: Become{}},
		{name: "flag", def: BecomeDefaults{Enable: true}, want: Become{Enable: true}},
		{name: "inventory wins over flags", conn: inventory.Connection{Become: true, BecomeUser: "app", BecomePassword: "inv"},
			def: BecomeDefaults{User: "other", Password: "cli"}, want: Become{Enable: true, User: "app", Password: "inv"}},
		{name: "flags fill gaps", conn: inventory.Connection{Become: true}, def: BecomeDefaults{User: "other", Password: "cli"},
			want: Become{Enable: true, User: "other", Password: "cli"}},
		{name: "su refused", conn: inventory.Connection{Become: true, BecomeMethod: "su"}, wantErr: `become method "su" is not supported`},
		{name: "su ignored without become", conn: inventory.Connection{BecomeMethod: "su"}, want: Become{Method: "su"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BecomeFor(tc.conn, tc.def)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %s %q %q, want %s %q %q", got, got.User, got.Method, tc.want, tc.want.User, tc.want.Method)
			}
		})
	}
}
