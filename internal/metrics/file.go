package metrics

import (
	"fmt"
	"os"
	"path/filepath"
)

// FileMode of the textfile: node_exporter runs as its own user (Debian's
// as prometheus) and must read what root wrote.
const FileMode = 0o644

// CheckDir reports whether path can become a textfile: its directory must
// exist (nodefix creates no node_exporter directory: a wrong path would
// only fill a directory nobody scrapes), and path must not be one.
func CheckDir(path string) error {
	if path == "" {
		return fmt.Errorf("no file name")
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a directory; give a file name (node_exporter reads *.prom)", path)
	}
	return nil
}

// WriteFile replaces path with data so that a reader sees the old file or
// the new one, never half of either: a temporary file in the same
// directory (named so that node_exporter's *.prom glob skips it), written
// and synced, then renamed over path, and the directory synced so the
// rename survives a crash.
func WriteFile(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file beside %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(FileMode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp.Name(), path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening %s to sync the rename: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
