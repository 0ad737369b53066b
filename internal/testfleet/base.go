package testfleet

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The fleet's base layer sits between every node's private overlay and the
// machine's own directories: what all nodes share and the machine must not
// see (the sudo user, rpm's database path, the recorded rpm database).
// Nodes write only to their own upper layers; the machine's /etc, /usr,
// /var, /root and /home are lower layers and are never written.

// overlaid lists the directories every node gets a private copy-on-write
// view of. /run is a private tmpfs instead (sshd, sudo and lock files).
// /opt holds kubeasz's binaries (bin_dir /opt/kube/bin).
var overlaid = []string{"etc", "usr", "var", "root", "home", "opt"}

// sudoUser is the non-root account present on every node; it may run
// anything with sudo, after giving its password.
const sudoUser = "deploy"

func buildBase(ctx context.Context, base, rpmDir, password string, authorizedKeys []byte) error {
	etc := filepath.Join(base, "etc")
	for _, d := range []string{"sudoers.d", "rpm"} {
		if err := os.MkdirAll(filepath.Join(etc, d), 0o755); err != nil {
			return fmt.Errorf("creating base layer: %w", err)
		}
	}
	uid, err := freeID()
	if err != nil {
		return err
	}
	hash, err := passwordHash(ctx, password)
	if err != nil {
		return err
	}
	id := strconv.Itoa(uid)
	appends := []struct {
		file, line string
		mode       os.FileMode
	}{
		{"passwd", sudoUser + ":x:" + id + ":" + id + ":nodefix test fleet:/home/" + sudoUser + ":/bin/bash", 0o644},
		{"group", sudoUser + ":x:" + id + ":", 0o644},
		{"shadow", sudoUser + ":" + hash + ":19000:0:99999:7:::", 0o640},
	}
	for _, a := range appends {
		if err := appendCopy("/etc/"+a.file, filepath.Join(etc, a.file), a.line, a.mode); err != nil {
			return err
		}
	}
	files := map[string]string{
		"sudoers.d/nodefix-" + sudoUser: sudoUser + " ALL=(ALL:ALL) ALL\n",
		// Debian's rpm keeps its database under $HOME; the nodes play EL
		// hosts, whose database lives in /var/lib/rpm.
		"rpm/macros": "%_dbpath /var/lib/rpm\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o440); err != nil {
			return fmt.Errorf("writing base %s: %w", name, err)
		}
	}
	// The fleet's client key is the only key authorized on the nodes: it
	// shadows the machine's own /root/.ssh/authorized_keys.
	for _, home := range []struct {
		dir string
		id  int
	}{{"root", 0}, {"home/" + sudoUser, uid}} {
		sshDir := filepath.Join(base, home.dir, ".ssh")
		if err := os.MkdirAll(sshDir, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", sshDir, err)
		}
		keys := filepath.Join(sshDir, "authorized_keys")
		if err := os.WriteFile(keys, authorizedKeys, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", keys, err)
		}
		owned := []string{filepath.Join(base, home.dir), sshDir, keys}
		// A node's home starts from /etc/skel, not from this machine's
		// dotfiles: bash reads ~/.bashrc for every command sshd runs, and
		// a developer's .bashrc (pyenv, nvm …) would cost every ssh
		// command on every node a second of CPU.
		for _, dot := range []string{".bashrc", ".profile", ".bash_logout"} {
			data, err := os.ReadFile(filepath.Join("/etc/skel", dot))
			if err != nil {
				continue
			}
			path := filepath.Join(base, home.dir, dot)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", path, err)
			}
			owned = append(owned, path)
		}
		for _, p := range owned {
			if err := os.Chown(p, home.id, home.id); err != nil {
				return fmt.Errorf("chown %s: %w", p, err)
			}
		}
	}
	if err := os.Chmod(filepath.Join(base, "home", sudoUser), 0o755); err != nil {
		return fmt.Errorf("chmod base home: %w", err)
	}
	return buildTemplateDB(ctx, rpmDir, filepath.Join(base, "var", "lib", "rpm"))
}

// appendCopy writes src plus one line to dst, keeping src's ownership.
func appendCopy(src, dst, line string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		data = append(data, '\n')
	}
	data = append(data, line+"\n"...)
	if err := os.WriteFile(dst, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return copyOwner(src, dst)
}

func copyOwner(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if err := os.Chown(dst, int(sys.Uid), int(sys.Gid)); err != nil {
			return fmt.Errorf("chown %s: %w", dst, err)
		}
	}
	return nil
}

// freeID returns a uid/gid unused in the machine's passwd and group files.
func freeID() (int, error) {
	used := map[int]bool{}
	for _, file := range []string{"/etc/passwd", "/etc/group"} {
		f, err := os.Open(file)
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", file, err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ":")
			if len(fields) > 2 {
				if n, err := strconv.Atoi(fields[2]); err == nil {
					used[n] = true
				}
			}
		}
		f.Close()
	}
	for id := 2900; id < 60000; id++ {
		if !used[id] {
			return id, nil
		}
	}
	return 0, fmt.Errorf("no free uid for the fleet's %s user", sudoUser)
}

// passwordHash returns a SHA-512 crypt(3) hash, computed by openssl with
// the password on stdin, never in argv.
func passwordHash(ctx context.Context, password string) (string, error) {
	cmd := exec.CommandContext(ctx, "openssl", "passwd", "-6", "-stdin")
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hashing the sudo user's password with openssl: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
