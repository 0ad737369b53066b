package tasks

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

// Recovery on a real (namespaced) node: it removes an rpmdb work
// directory only once nothing alive holds it — no live owner or install
// recorded in it, and no live process naming it in its arguments, which
// covers a lease between making the directory and recording itself
// there (and any step of a repair, which all name it).
func TestRecoveryHoldsWhatALiveRepairNames(t *testing.T) {
	n := newNSNode(t, nsNodeOptions{})
	ctx := context.Background()
	cfg := DefaultConfig()
	const w = "/var/lib/.nodefix-rpmdb.AbC123"
	recover := func(check bool) recovery {
		t.Helper()
		c := cfg
		c.Check = check
		rec, err := recoverNode(ctx, n, c, "h", NameRPMDB, "/var/lib")
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	exists := func() bool { return strings.TrimSpace(n.sh(`[ -d "$1" ] && echo yes || true`, w)) == "yes" }

	// A lease that has made its directory and not yet recorded itself: a
	// live process names the directory.
	n.sh(`mkdir -m 700 "$1"`, w)
	pid := strings.TrimSpace(n.sh(`sh -c 'sleep 1000; :' lease "$1" </dev/null >/dev/null 2>&1 & echo $!`, w))
	if rec := recover(false); !reflect.DeepEqual(rec.Held, []string{w}) || len(rec.Removed) != 0 || !exists() {
		t.Fatalf("a directory a live process names: %+v (still there: %t), want held", rec, exists())
	}
	// A live owner recorded in it (the lease, once it has): held.
	n.sh(`kill -KILL "$1"`, pid)
	owner := strings.TrimSpace(n.sh(`w=$1; sh -c 'sleep 1000; :' </dev/null >/dev/null 2>&1 & p=$!; read -r s <"/proc/$p/stat"; s=${s##*) }; set -- $s; printf '%s %s\n' "$p" "${20}" >"$w/.owner"; echo $p`, w))
	if rec := recover(false); !reflect.DeepEqual(rec.Held, []string{w}) || !exists() {
		t.Fatalf("a directory with a live owner: %+v (still there: %t), want held", rec, exists())
	}
	// Its owner gone, nobody naming it: stale. Check mode says so and
	// removes nothing; a run removes it and says so in the audit trail.
	n.sh(`kill -KILL "$1"`, owner)
	if rec := recover(true); !reflect.DeepEqual(rec.Stale, []string{w}) || len(rec.Held) != 0 || !exists() {
		t.Fatalf("check mode, a stale directory: %+v (still there: %t), want reported stale and kept", rec, exists())
	}
	if rec := recover(false); !reflect.DeepEqual(rec.Removed, []string{w}) || exists() {
		t.Fatalf("a stale directory: %+v (still there: %t), want removed", rec, exists())
	}
	if trail := n.read(AuditLogPath); !strings.Contains(trail, `"action":"recover an interrupted run"`) || !strings.Contains(trail, w) {
		t.Errorf("the audit trail does not record the removal:\n%s", trail)
	}
}
