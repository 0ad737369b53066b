package metrics

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nodefix.prom")
	if err := os.WriteFile(path, []byte("old 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A scrape that opened the old file before the write keeps reading
	// the old file whole: the new one is a new inode renamed over it,
	// not the old one rewritten in place.
	reader, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()

	if err := WriteFile(path, []byte("new 2\n")); err != nil {
		t.Fatal(err)
	}
	old, err := io.ReadAll(reader)
	if err != nil || string(old) != "old 1\n" {
		t.Errorf("the reader of the old file read %q, %v; want the old content whole", old, err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "new 2\n" {
		t.Errorf("file holds %q, %v; want the new content", got, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != FileMode {
		t.Errorf("mode %v, want %v (node_exporter's user must read it)", st.Mode().Perm(), os.FileMode(FileMode))
	}
	assertOnly(t, dir, "nodefix.prom")
}

func TestWriteFileFails(t *testing.T) {
	cases := []struct {
		name string
		path func(dir string) string
		msg  string
	}{
		{name: "no such directory", path: func(dir string) string { return filepath.Join(dir, "missing", "nodefix.prom") }, msg: "creating a temporary file beside"},
		{name: "the path is a directory", path: func(dir string) string {
			p := filepath.Join(dir, "nodefix.prom")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(p, "keep"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, msg: "renaming"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			err := WriteFile(c.path(dir), []byte("x 1\n"))
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err %v, want one containing %q", err, c.msg)
			}
			// No temporary file is left behind.
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("left %s behind", e.Name())
				}
			}
		})
	}
}

func TestCheckDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		msg  string // "" for no error
	}{
		{path: filepath.Join(dir, "nodefix.prom")},
		{path: file}, // an existing file is replaced
		{path: filepath.Join(dir, "missing", "nodefix.prom"), msg: "no such file or directory"},
		{path: filepath.Join(file, "nodefix.prom"), msg: "not a directory"},
		{path: dir, msg: "is a directory; give a file name"},
		{path: "", msg: "no file name"},
	}
	for _, c := range cases {
		err := CheckDir(c.path)
		switch {
		case c.msg == "" && err != nil:
			t.Errorf("CheckDir(%q): %v", c.path, err)
		case c.msg != "" && (err == nil || !strings.Contains(err.Error(), c.msg)):
			t.Errorf("CheckDir(%q) = %v, want an error containing %q", c.path, err, c.msg)
		}
	}
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want only %v", dir, got, names)
	}
}
