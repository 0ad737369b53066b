package inventory

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const patternInventory = `
lonely
[web]
web[01:04].example.com
[db]
db-a
db-b
[lb]
lb1 ansible_host=10.0.0.9
[prod:children]
web
db
[ungrouped_like]
ungrouped
`

func loadString(t *testing.T, name, content string) (*Inventory, string) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(context.Background(), []string{p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return inv, p
}

var patterns = []string{
	"all", "*", "web", "prod", "prod:!db", "prod:&db", "web:db", "web,db", "db,web",
	"web*", "*.example.com", "~web0[12]", "~db-.", "web[0]", "web[-1]", "web[1:2]", "web[2:]",
	"prod[0:2]", "lb1", "db-?", "db-[ab]", "db-[!a]", "all:!prod", "prod:!web[0]", "ungrouped",
	"ungr*", "lonely,lb", "&web,prod", "!db", "web01.example.com:db-a", "*:!~web.*", "web[1:1]",
	"web[3:10]", "web[2:0]",
}

// TestMatchAgainstAnsible compares Match with `ansible PATTERN
// --list-hosts`, the real pattern engine, host order included.
func TestMatchAgainstAnsible(t *testing.T) {
	bin, err := exec.LookPath("ansible")
	if err != nil {
		if os.Getenv("NODEFIX_FLEET") == "required" {
			t.Fatal("ansible not found and NODEFIX_FLEET=required")
		}
		t.Skip("ansible (ansible-core) not found")
	}
	r := newAnsibleRunner(t)
	r.bin = bin
	inv, path := loadString(t, "hosts", patternInventory)
	for _, p := range patterns {
		p := p
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			out, stderr, err := r.run("-i", path, p, "--list-hosts")
			if err != nil {
				t.Fatalf("ansible %s --list-hosts: %v\n%s", p, err, stderr)
			}
			var want []string
			for _, l := range strings.Split(out, "\n")[1:] {
				if l = strings.TrimSpace(l); l != "" {
					want = append(want, l)
				}
			}
			hosts, err := inv.Match(p)
			if len(want) == 0 {
				if err == nil {
					t.Errorf("Match(%q) = %v, ansible matches nothing", p, names(hosts))
				}
				return
			}
			if err != nil {
				if strings.Contains(stderr, "Could not match supplied host pattern") {
					return // part of the pattern matched nothing: nodefix refuses, Ansible warns
				}
				t.Fatalf("Match(%q): %v; ansible: %v", p, err, want)
			}
			if got := names(hosts); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("Match(%q) = %v, ansible %v", p, got, want)
			}
		})
	}
}

func names(hs []*Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name())
	}
	return out
}

func TestMatchErrors(t *testing.T) {
	inv, _ := loadString(t, "hosts", patternInventory)
	for _, p := range []string{"nosuch", "web:!nosuch", "~(", "web[9]", "!all"} {
		if hs, err := inv.Match(p); err == nil {
			t.Errorf("Match(%q) = %v, want an error", p, names(hs))
		} else if !strings.Contains(err.Error(), strings.TrimLeft(strings.SplitN(p, ":", 2)[0], "!")) && !strings.Contains(err.Error(), "nosuch") {
			t.Errorf("Match(%q): error %q does not name the pattern", p, err)
		}
	}
}

func TestMatchLimitFile(t *testing.T) {
	inv, path := loadString(t, "hosts", patternInventory)
	lf := filepath.Join(filepath.Dir(path), "limit")
	if err := os.WriteFile(lf, []byte("db-b\nlb1\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hs, err := inv.Match("@" + lf)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(hs), " "); got != "db-b lb1" {
		t.Errorf("Match(@file) = %s", got)
	}
	if _, err := inv.Match("@" + lf + ".missing"); err == nil {
		t.Error("missing limit file: want an error")
	}
}
