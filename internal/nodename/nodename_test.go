package nodename

import (
	"strings"
	"testing"
)

func TestDerive(t *testing.T) {
	for _, c := range []struct{ host, k8s, want string }{
		{"192.168.1.1", "", "k8s-192-168-1-1"},
		{"192.168.1.1", "master-01", "master-01"},
		{"node1.example.com", "", "k8s-node1-example-com"},
		{"h", "Worker_01", "worker-01"},
		{"h", "A_B_C", "a-b-c"},
	} {
		if got := Derive(c.host, c.k8s); got != c.want {
			t.Errorf("Derive(%q, %q) = %q, want %q", c.host, c.k8s, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := []string{"a", "k8s-192-168-1-1", "master-01", "node1.example.com", "0abc", strings.Repeat("a", 63), strings.Repeat("a.", 126) + "a"}
	for _, n := range good {
		if err := Validate(n); err != nil {
			t.Errorf("Validate(%q) = %v, want ok", n, err)
		}
	}
	bad := map[string]string{
		"":                        "empty",
		"Master":                  "upper-case",
		"a_b":                     "character '_'",
		"-a":                      "start and end",
		"a-":                      "start and end",
		"a..b":                    "empty label",
		".a":                      "empty label",
		"a.":                      "empty label",
		strings.Repeat("a", 64):   "at most 63",
		strings.Repeat("a.", 127): "at most 253",
		"localhost localdomain":   "character ' '",
		"nöde":                    "character 'ö'",
	}
	for n, want := range bad {
		err := Validate(n)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%q) = %v, want an error mentioning %q", n, err, want)
		}
	}
}

func TestValidateHostname(t *testing.T) {
	if err := ValidateHostname(strings.Repeat("a", 30) + "." + strings.Repeat("b", 33)); err != nil {
		t.Errorf("64 characters: %v", err)
	}
	long := strings.Repeat("a", 40) + "." + strings.Repeat("b", 40)
	if err := Validate(long); err != nil {
		t.Errorf("Validate(81 chars) = %v, a node name may be that long", err)
	}
	if err := ValidateHostname(long); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("ValidateHostname(81 chars) = %v, want the kernel limit", err)
	}
	if err := ValidateHostname("Bad"); err == nil {
		t.Error("ValidateHostname(Bad): want an error")
	}
}
