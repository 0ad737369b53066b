package module

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/nodefix/nodefix/tasks"
)

// normalized is a's meaning without how it was said: the task list as
// Select reads it, and not which parameters were given.
func normalized(t *testing.T, a Args) Args {
	t.Helper()
	selected, err := tasks.Select(a.Tasks)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range selected {
		names = append(names, s.Name())
	}
	a.Tasks = strings.Join(names, ",")
	a.set = nil
	return a
}

// The documented defaults are the defaults: each, given explicitly, means
// what leaving the parameter out means. Every parameter is documented with
// a type, and one that is neither a boolean, a controller parameter nor
// "not given" when empty carries its default.
func TestOptionsDocumentTheDefaults(t *testing.T) {
	none, err := ParseArgs([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	want := normalized(t, none)
	opts := Options()
	if len(opts) != len(params) {
		t.Fatalf("%d options for %d parameters", len(opts), len(params))
	}
	for _, o := range opts {
		if o.Description == "" || o.Type == "" {
			t.Errorf("%s: description %q, type %q", o.Name, o.Description, o.Type)
		}
		if o.Controller {
			if o.Default != nil {
				t.Errorf("%s runs on the controller: no default, got %v", o.Name, o.Default)
			}
			continue
		}
		value := o.Default
		if value == nil {
			// No default: an empty value must mean "not given".
			if o.Type != "str" {
				t.Errorf("%s (%s) documents no default", o.Name, o.Type)
				continue
			}
			value = ""
		}
		data, err := json.Marshal(map[string]any{o.Name: value})
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseArgs(data)
		if err != nil {
			t.Errorf("%s: the documented default %s is refused: %v", o.Name, data, err)
			continue
		}
		if g := normalized(t, got); !reflect.DeepEqual(g, want) {
			t.Errorf("%s: the documented default %s is not the default:\n got %+v\nwant %+v", o.Name, data, g, want)
		}
	}
}

func TestOptionsTypes(t *testing.T) {
	byName := map[string]Option{}
	for _, o := range Options() {
		byName[o.Name] = o
	}
	for name, want := range map[string]string{
		"tasks": "list", "hostname": "str", "identify": "bool", "rpm_query_max_age": "str",
		"rpm_backup_dir": "path", "rpm_backup_keep": "int", "fleet_names": "dict", "fleet_identities": "dict",
	} {
		if got := byName[name].Type; got != want {
			t.Errorf("%s: type %q, want %q", name, got, want)
		}
	}
	if o := byName["identify"]; strings.HasPrefix(o.Description, "bool") {
		t.Errorf("identify: the type word stays in the description %q", o.Description)
	}
	if !byName["fleet_names"].Controller || byName["tasks"].Controller {
		t.Errorf("controller parameters: fleet_names %t, tasks %t", byName["fleet_names"].Controller, byName["tasks"].Controller)
	}
	if got := shortDuration(DefaultTaskTimeout); got != "15m" {
		t.Errorf("shortDuration(15m) = %q", got)
	}
}
