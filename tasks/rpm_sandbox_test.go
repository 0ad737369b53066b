package tasks_test

import (
	"context"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/rpmfixture"
	"github.com/nodefix/nodefix/tasks"
)

func TestSandboxSmoke(t *testing.T) {
	sb := rpmfixture.NewSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := rpmfixture.Seed(ctx, sb, "nfx-pkg", 30); err != nil {
		t.Fatal(err)
	}
	cfg := tasks.DefaultConfig()
	out := tasks.RPMDB{}.Apply(ctx, sb, tasks.Host{}, cfg)
	t.Logf("%+v", out)
	out = tasks.RPMQueries{}.Apply(ctx, sb, tasks.Host{}, cfg)
	t.Logf("%+v", out)
}
