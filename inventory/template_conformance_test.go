package inventory

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/nodefix/nodefix/internal/jinja"
	"github.com/nodefix/nodefix/internal/nodename"
	"github.com/nodefix/nodefix/internal/pycompat"
)

// ansibleAdhoc finds the real `ansible` command, as ansibleInventory
// finds ansible-inventory.
func ansibleAdhoc(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ansible")
	if err != nil {
		if os.Getenv("NODEFIX_FLEET") == "required" {
			t.Fatalf("ansible not found and NODEFIX_FLEET=required: install ansible-core (.ci/install-deps)")
		}
		t.Skip("ansible not found (install ansible-core to run the templating conformance suite)")
	}
	return p
}

// debugResult is one host's answer to `ansible -m debug -a var=NAME -o`.
type debugResult struct {
	failed    bool
	msg       string // why, when failed
	undefined bool   // VARIABLE IS NOT DEFINED!
	value     any    // decoded with json.Number
}

// ansibleDebug runs `ansible ARGS all -m debug -a var=NAME -o` and reads
// each host's line.
func (r *ansibleRunner) ansibleDebug(bin string, args []string, env map[string]string, name string) (map[string]debugResult, error) {
	cmd := exec.Command(bin, append(append([]string{}, args...), "all", "-m", "debug", "-a", "var="+name, "-o")...)
	cmd.Dir = r.dir
	cmd.Env = append(append([]string{}, r.env...), "ANSIBLE_LOCALHOST_WARNING=False", "ANSIBLE_INVENTORY_UNPARSED_WARNING=False")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := map[string]debugResult{}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		host, rest, ok := strings.Cut(line, " | ")
		if !ok {
			continue
		}
		status, body, ok := strings.Cut(rest, " => ")
		if !ok {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("ansible debug var=%s: %s: not JSON: %v\n%s", name, host, err, body)
		}
		switch status {
		case "SUCCESS":
			v := doc[name]
			out[host] = debugResult{value: v, undefined: v == "VARIABLE IS NOT DEFINED!"}
		case "FAILED!":
			msg, _ := doc["msg"].(string)
			out[host] = debugResult{failed: true, msg: msg}
		default:
			return nil, fmt.Errorf("ansible debug var=%s: %s: unexpected status %s", name, host, status)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ansible debug var=%s answered for no host: %v\n%s%s", name, err, stdout.String(), stderr.String())
	}
	return out, nil
}

func readEnvFile(t *testing.T, dir string) map[string]string {
	env := map[string]string{}
	b, err := os.ReadFile(filepath.Join(dir, "env"))
	if errors.Is(err, os.ErrNotExist) {
		return env
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s/env: %q is not NAME=VALUE", dir, line)
		}
		env[k] = v
	}
	return env
}

// TestTemplatedConformance compares, for every inventory in
// testdata/templated, what nodefix evaluates for each variable it reads
// with what `ansible -m debug -a var=NAME` prints (see the README there).
func TestTemplatedConformance(t *testing.T) {
	r := newAnsibleRunner(t)
	bin := ansibleAdhoc(t)
	cases, err := filepath.Glob("../testdata/templated/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cases {
		if st, err := os.Stat(c); err != nil || !st.IsDir() {
			continue
		}
		n++
		dir, _ := filepath.Abs(c)
		t.Run(filepath.Base(c), func(t *testing.T) {
			t.Parallel()
			conformCase(t, r, dir)
			templatedCase(t, r, bin, dir)
		})
	}
	if n < 15 {
		t.Errorf("only %d templated inventories, want at least 15", n)
	}
}

func templatedCase(t *testing.T, r *ansibleRunner, bin, dir string) {
	a := readCaseArgs(t, dir)
	env := readEnvFile(t, dir)
	inv, err := Load(context.Background(), a.sources, Options{ExtraVars: a.extra, LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		t.Fatalf("nodefix: %v", err)
	}
	read := map[string]bool{}
	for _, n := range readVariables {
		read[n] = true
	}
	names := map[string]bool{}
	for _, h := range inv.Hosts() {
		for k := range h.merged {
			if read[k] || strings.HasPrefix(k, "nodefix_") {
				names[k] = true
			}
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	if len(sorted) == 0 {
		t.Fatal("the case sets none of the variables nodefix reads")
	}

	results := make(map[string]map[string]debugResult, len(sorted))
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	// Two at a time: each ansible is a Python process of its own.
	sem := make(chan struct{}, 2)
	for _, name := range sorted {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := r.ansibleDebug(bin, a.all, env, name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			results[name] = res
		}(name)
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}

	compared := 0
	for _, h := range inv.Hosts() {
		connFailed := ""
		for _, name := range sorted {
			res, ok := results[name][h.Name()]
			if !ok {
				t.Errorf("%s: ansible did not answer for var=%s", h.Name(), name)
				continue
			}
			if res.failed && strings.Contains(res.msg, "has an invalid value") {
				// Ansible templates the connection variables before
				// any task: it failed the host.
				connFailed = res.msg
				continue
			}
			if _, set := h.merged[name]; !set {
				// What debug shows for a variable the host does not
				// set is what Ansible's play context put there
				// (ansible_host is the inventory hostname, …), not
				// the inventory's.
				continue
			}
			got, gotErr := inv.Template(h, "{{"+name+"}}")
			var je *jinja.Error
			switch {
			case res.failed:
				if gotErr == nil {
					t.Errorf("%s: %s: Ansible fails (%.200s); nodefix gives %s", h.Name(), name, res.msg, showValue(got))
				}
			case res.undefined:
				if !errors.As(gotErr, &je) || je.Kind != jinja.Undefined {
					t.Errorf("%s: %s: Ansible: not defined; nodefix: %s, %v", h.Name(), name, showValue(got), gotErr)
				}
				if _, set := h.merged[name]; set {
					if _, _, err := inv.Var(h, name); err == nil || !strings.Contains(err.Error(), "host "+h.Name()+": variable "+name+":") {
						t.Errorf("%s: %s: Var: %v, want an undefined error naming the host and the variable", h.Name(), name, err)
					}
				}
			default:
				if gotErr != nil {
					t.Errorf("%s: %s: Ansible %s; nodefix fails: %v", h.Name(), name, showJSON(res.value), gotErr)
					continue
				}
				if g := decodeValue(t, got); !reflect.DeepEqual(g, res.value) {
					t.Errorf("%s: %s: Ansible %s; nodefix %s", h.Name(), name, showJSON(res.value), showJSON(g))
				}
				compared++
			}
		}
		// The host's connection: refused exactly when Ansible could not
		// template it.
		conn, err := inv.Connection(h)
		switch {
		case connFailed != "" && err == nil:
			t.Errorf("%s: Ansible cannot evaluate its connection (%.200s); nodefix resolves %+v", h.Name(), connFailed, conn)
		case connFailed == "" && err != nil:
			t.Errorf("%s: Ansible evaluates its connection; nodefix: %v", h.Name(), err)
		case err != nil && !strings.Contains(err.Error(), "host "+h.Name()+": variable "):
			t.Errorf("%s: connection error names no host and variable: %v", h.Name(), err)
		}
		checkNodeName(t, inv, h, results, connFailed != "")
	}
	if compared == 0 {
		t.Errorf("no value compared with Ansible")
	}
}

// checkNodeName: the node name nodefix plans is the one Ansible's
// variables give (nodefix_hostname, else K8S_NODENAME), and a name
// variable Ansible cannot evaluate is an error.
func checkNodeName(t *testing.T, inv *Inventory, h *Host, results map[string]map[string]debugResult, hostFailed bool) {
	if hostFailed {
		return
	}
	got, err := inv.NodeName(h)
	for _, name := range []string{"nodefix_hostname", "K8S_NODENAME"} {
		res, ok := results[name][h.Name()]
		if _, set := h.merged[name]; !ok || !set {
			continue
		}
		if res.failed || res.undefined {
			if err == nil {
				t.Errorf("%s: NodeName = %+v, but Ansible cannot evaluate %s", h.Name(), got, name)
			}
			return
		}
		s, isStr := res.value.(string)
		if !isStr || strings.TrimSpace(s) == "" {
			continue
		}
		want := NodeName{Name: strings.TrimSpace(s), Source: name}
		if verr := nodename.ValidateHostname(want.Name); verr != nil {
			// Not a name nodefix can give a host: refused, naming it.
			if err == nil || !strings.Contains(err.Error(), want.Name) {
				t.Errorf("%s: NodeName = %+v, %v; want it refused (%v)", h.Name(), got, err, verr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("%s: NodeName = %+v, %v; Ansible's %s gives %+v", h.Name(), got, err, name, want)
		}
		return
	}
}

// decodeValue is v as the JSON Ansible prints, decoded as the test
// decodes Ansible's (numbers as json.Number).
func decodeValue(t *testing.T, v any) any {
	b, err := pycompat.MarshalIndent(v)
	if err != nil {
		t.Fatalf("encoding %v: %v", v, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func showJSON(v any) string {
	b, _ := json.Marshal(v)
	return fmt.Sprintf("%s (%T)", b, v)
}

func showValue(v any) string {
	b, err := pycompat.MarshalIndent(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
