package tasks

import (
	"context"
	"testing"
)

// The gather scripts only read, so they run on this machine as well: real
// sh, real /proc, real command -v.
func TestGatherScriptsOnThisMachine(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	st, err := gatherHostState(ctx, localNode{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", st)
	d, err := gatherDeps(ctx, localNode{}, cfg, cfg.LonghornExecutables)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", d)
	out := LonghornDeps{}.Apply(ctx, localNode{}, Host{Name: "self"}, cfg)
	t.Logf("%+v", out)
}
