package tasks_test

// The "done when" for rpm-queries and rpmdb, on simulated fleet
// nodes with Debian's real rpm 4.18 (sqlite) and real faults. The tasks
// reach a node through testfleet.Node.Run (nsenter into its namespaces),
// the same tasks.Node interface the ssh transport implements.

import (
	"context"
	"fmt"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nodefix/nodefix/internal/rpmfixture"
	"github.com/nodefix/nodefix/internal/testfleet"
	"github.com/nodefix/nodefix/tasks"
)

const fleetDBPath = "/var/lib/rpm"

// fleetNodes starts a fleet of n nodes for one test.
func fleetNodes(t *testing.T, n int) (*testfleet.Fleet, []*testfleet.Node) {
	t.Helper()
	f := testfleet.New(t, testfleet.Options{Nodes: n})
	return f, f.Nodes
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func detail(t *testing.T, out tasks.Outcome, key string) any {
	t.Helper()
	v, ok := out.Details[key]
	if !ok {
		t.Fatalf("outcome has no detail %q: %+v", key, out)
	}
	return v
}

func detailInt(t *testing.T, out tasks.Outcome, key string) int {
	t.Helper()
	switch v := detail(t, out, key).(type) {
	case int:
		return v
	case int64:
		return int(v)
	}
	t.Fatalf("detail %q is %T, not an integer", key, out.Details[key])
	return 0
}

func alive(t *testing.T, ctx context.Context, n *testfleet.Node, pids []int) (up, down []int) {
	t.Helper()
	for _, pid := range pids {
		ok, err := n.ProcessAlive(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			up = append(up, pid)
		} else {
			down = append(down, pid)
		}
	}
	return up, down
}

// A node with 20 hung queries of mixed ages (through nsenter and timeout
// too, one ignoring SIGTERM), an rpm transaction and a dnf process: only
// the old queries go, by SIGTERM where they obey it, and the counts in
// the report match.
func TestFleetRPMQueriesEndOnlyHungQueries(t *testing.T) {
	f, nodes := fleetNodes(t, 1)
	n := nodes[0]
	ctx := testContext(t)

	holder, err := n.HoldRPMDBLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old, err := n.StartRPMQueries(ctx, 9)
	if err != nil {
		t.Fatal(err)
	}
	stubborn, err := n.StartProcess(ctx, rpmfixture.IgnoringTERM("rpm", "-q", "iscsi-initiator-utils")...)
	if err != nil {
		t.Fatal(err)
	}
	old = append(old, stubborn)
	// Every old query is older than oldSince, every young one younger
	// than youngSince. Each run below gets a maximum age just short of
	// the old queries' age, measured right before it: the young ones
	// are then gap younger than the limit, however long starting them
	// took on a busy machine.
	oldSince := time.Now()
	const gap = 10 * time.Second
	time.Sleep(gap)
	youngSince := time.Now()
	young, err := n.StartRPMQueries(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	// The transaction waits behind the same lock to open the database.
	tx, err := n.StartProcess(ctx, "rpm", "-i", "--nodeps", f.SlowInstallRPM)
	if err != nil {
		t.Fatal(err)
	}
	dnf, err := n.StartDNF(ctx, "-y", "upgrade")
	if err != nil {
		t.Fatal(err)
	}
	keep := append([]int{holder, tx, dnf}, young...)
	if up, _ := alive(t, ctx, n, append(append([]int{}, old...), keep...)); len(up) != len(old)+len(keep) {
		t.Fatalf("before the run only %d of %d seeded processes run: the queries did not hang", len(up), len(old)+len(keep))
	}

	config := func(check bool) tasks.Config {
		cfg := tasks.DefaultConfig()
		cfg.RPMQueryMaxAge = time.Since(oldSince) - 200*time.Millisecond
		cfg.RPMQueryGrace = 2 * time.Second
		cfg.Check = check
		t.Logf("max age %s; the young queries are at most %s old", cfg.RPMQueryMaxAge.Round(time.Millisecond), time.Since(youngSince).Round(time.Millisecond))
		return cfg
	}

	out := tasks.RPMQueries{}.Apply(ctx, n, tasks.Host{Name: n.Name}, config(true))
	if out.Status != tasks.StatusChanged || !out.Changed || detailInt(t, out, "hung_queries") != len(old) {
		t.Fatalf("check mode: want changed with %d hung queries, got %+v", len(old), out)
	}
	if up, _ := alive(t, ctx, n, old); len(up) != len(old) {
		t.Fatalf("check mode ended %d queries; it must end none", len(old)-len(up))
	}

	out = tasks.RPMQueries{}.Apply(ctx, n, tasks.Host{Name: n.Name}, config(false))
	t.Logf("outcome: %s %s; warnings %q", out.Status, out.Msg, out.Warnings)
	if out.Status != tasks.StatusChanged || !out.Changed {
		t.Fatalf("want changed, got %+v", out)
	}
	if got := detailInt(t, out, "hung_queries"); got != len(old) {
		t.Errorf("hung_queries = %d, want %d", got, len(old))
	}
	if got := detailInt(t, out, "ended_sigterm"); got != len(old)-1 {
		t.Errorf("ended_sigterm = %d, want %d (every query but the one ignoring SIGTERM)", got, len(old)-1)
	}
	if got := detailInt(t, out, "ended_sigkill"); got != 1 {
		t.Errorf("ended_sigkill = %d, want 1 (the query ignoring SIGTERM)", got)
	}
	if got := detailInt(t, out, "young_queries"); got != len(young) {
		t.Errorf("young_queries = %d, want %d", got, len(young))
	}
	if rss := detail(t, out, "rss_freed_bytes").(int64); rss <= 0 {
		t.Errorf("rss_freed_bytes = %d, want > 0", rss)
	}
	if !strings.Contains(out.Msg, fmt.Sprintf("ended %d hung rpm queries (%d by SIGTERM, 1 by SIGKILL)", len(old), len(old)-1)) {
		t.Errorf("message %q does not report the counts", out.Msg)
	}
	// The python process holding the database lock is what the queries
	// wait behind; it is no query, so it is named and left.
	holders := detail(t, out, "left_lock_holders").([]map[string]any)
	if len(holders) != 1 || holders[0]["pid"] != holder || holders[0]["kind"] != "unknown process" {
		t.Errorf("left_lock_holders = %v, want the python lock holder %d as an unknown process", holders, holder)
	}
	// Queries through nsenter and timeout are reported with their wrapper.
	wrapped := 0
	for _, q := range detail(t, out, "queries").([]map[string]any) {
		if ws, ok := q["wrappers"].([]map[string]any); ok && len(ws) > 0 {
			wrapped++
		}
	}
	if want := 2 * 9 / len(testfleet.RPMQueryForms); wrapped < want {
		t.Errorf("%d queries reported with a wrapper, want at least %d (nsenter and timeout forms)", wrapped, want)
	}

	if up, _ := alive(t, ctx, n, old); len(up) > 0 {
		t.Errorf("old queries (or their wrappers) still running: %v", up)
	}
	if _, down := alive(t, ctx, n, keep); len(down) > 0 {
		t.Errorf("processes that must be left alone are gone: %v (holder %d, transaction %d, dnf %d, young %v)", down, holder, tx, dnf, young)
	}
}

// The incident's wedge (testfleet's WedgeRPMDB): a query stuck holding
// sqlite's shared lock, a transaction waiting behind it with the pending
// lock, and a dozen queries piled up behind the transaction. rpm-queries
// ends every query, the stuck one too, and leaves the transaction, which
// then completes: the database is usable again without a rebuild.
func TestFleetRPMQueriesUnwedgeIncident(t *testing.T) {
	f, nodes := fleetNodes(t, 1)
	n := nodes[0]
	ctx := testContext(t)
	w, err := n.WedgeRPMDB(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	piled, err := n.StartRPMQueries(ctx, 12)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	cfg := tasks.DefaultConfig()
	cfg.RPMQueryMaxAge = 2 * time.Second
	cfg.RPMQueryGrace = 2 * time.Second
	out := tasks.RPMQueries{}.Apply(ctx, n, tasks.Host{Name: n.Name}, cfg)
	t.Logf("outcome: %s %s; warnings %q", out.Status, out.Msg, out.Warnings)
	if out.Status != tasks.StatusChanged || detailInt(t, out, "hung_queries") != 13 || detailInt(t, out, "ended_sigterm") != 13 {
		t.Fatalf("want 13 queries (12 piled up and the stuck one) ended by SIGTERM, got %+v", out)
	}
	holders := detail(t, out, "left_lock_holders").([]map[string]any)
	if len(holders) != 1 || holders[0]["pid"] != w.WriterPID || holders[0]["kind"] != "transaction" {
		t.Errorf("left_lock_holders = %v, want the transaction %d", holders, w.WriterPID)
	}
	if up, _ := alive(t, ctx, n, append([]int{w.ReaderPID}, piled...)); len(up) > 0 {
		t.Errorf("queries still running: %v", up)
	}
	// The transaction was never signalled: it finishes on its own now.
	deadline := time.Now().Add(30 * time.Second)
	for {
		up, err := n.ProcessAlive(ctx, w.WriterPID)
		if err != nil {
			t.Fatal(err)
		}
		if !up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the transaction did not finish after the queries were ended")
		}
		time.Sleep(100 * time.Millisecond)
	}
	pending := strings.TrimSuffix(path.Base(f.PendingUpdateRPM), "-1.0-1.noarch.rpm")
	if res, err := n.Run(ctx, tasks.Command{Argv: []string{"rpm", "-q", pending}}); err != nil || res.ExitStatus != 0 {
		t.Errorf("the transaction's package %s is not recorded: %v %s%s", pending, err, res.Stdout, res.Stderr)
	}
	again := tasks.RPMQueries{}.Apply(ctx, n, tasks.Host{Name: n.Name}, cfg)
	if again.Status != tasks.StatusOK {
		t.Errorf("second run: want ok, got %+v", again)
	}
}

// seedAndCorrupt records extra packages on the node and corrupts its
// database with corrupt; it returns the package names rpm -qa lists.
func seedAndCorrupt(t *testing.T, ctx context.Context, n *testfleet.Node, corrupt func() error) []string {
	t.Helper()
	if _, err := rpmfixture.Seed(ctx, n, "nfx-pkg", 30); err != nil {
		t.Fatal(err)
	}
	pkgs, _, err := rpmfixture.Packages(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := corrupt(); err != nil {
		t.Fatal(err)
	}
	if res, err := n.Run(ctx, tasks.Command{Argv: []string{"rpm", "--verifydb"}}); err != nil || res.ExitStatus == 0 {
		t.Fatalf("the corrupted database still verifies (err %v)", err)
	}
	sort.Strings(pkgs)
	return pkgs
}

// A corrupted database (two real kinds of damage) is rebuilt, verifies,
// keeps every package, leaves its backup; a second run is ok and writes
// nothing.
func TestFleetRPMDBRebuildsCorruptDatabase(t *testing.T) {
	_, nodes := fleetNodes(t, 2)
	ctx := testContext(t)
	corruptions := []struct {
		name    string
		corrupt func(n *testfleet.Node) error
	}{
		{"index root page garbage (testfleet)", func(n *testfleet.Node) error { return n.CorruptRPMDB(ctx) }},
		{"index cell pointers (rpmfixture)", func(n *testfleet.Node) error {
			_, err := rpmfixture.CorruptIndex(ctx, n, fleetDBPath)
			return err
		}},
	}
	for i, c := range corruptions {
		n := nodes[i]
		t.Run(c.name, func(t *testing.T) {
			want := seedAndCorrupt(t, ctx, n, func() error { return c.corrupt(n) })
			cfg := tasks.DefaultConfig()

			check := cfg
			check.Check = true
			before, _ := rpmfixture.Sums(ctx, n, fleetDBPath)
			out := tasks.RPMDB{}.Apply(ctx, n, tasks.Host{Name: n.Name}, check)
			if out.Status != tasks.StatusChanged || !strings.HasPrefix(out.Msg, "would back up and rebuild") {
				t.Fatalf("check mode: want changed/would rebuild, got %+v", out)
			}
			if files, exists, _ := rpmfixture.Files(ctx, n, path.Dir(cfg.RPMBackupDir)); exists {
				t.Fatalf("check mode created %s: %v", path.Dir(cfg.RPMBackupDir), files)
			}
			if after, _ := rpmfixture.Sums(ctx, n, fleetDBPath); after["rpmdb.sqlite"] != before["rpmdb.sqlite"] {
				t.Fatal("check mode changed rpmdb.sqlite")
			}

			out = tasks.RPMDB{}.Apply(ctx, n, tasks.Host{Name: n.Name}, cfg)
			t.Logf("outcome: %s %s", out.Status, out.Msg)
			if out.Status != tasks.StatusChanged || !out.Changed {
				t.Fatalf("want changed, got %+v", out)
			}
			if b, a := detailInt(t, out, "packages_before"), detailInt(t, out, "packages_after"); b != len(want) || a != len(want) {
				t.Errorf("packages before/after = %d/%d, want %d/%d", b, a, len(want), len(want))
			}
			if res, err := n.Run(ctx, tasks.Command{Argv: []string{"rpm", "--verifydb"}}); err != nil || res.ExitStatus != 0 {
				t.Errorf("rebuilt database does not verify: %v %s", err, res.Stderr)
			}
			got, res, err := rpmfixture.Packages(ctx, n)
			if err != nil || res.ExitStatus != 0 || len(res.Stderr) > 0 {
				t.Fatalf("rpm -qa after the rebuild: %v %d %s", err, res.ExitStatus, res.Stderr)
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("packages after the rebuild differ:\n got %v\nwant %v", got, want)
			}
			if res, _ := n.Run(ctx, tasks.Command{Argv: []string{"rpm", "-q", "iscsi-initiator-utils"}}); res.ExitStatus != 0 {
				t.Errorf("rpm -q iscsi-initiator-utils after the rebuild: %s%s", res.Stdout, res.Stderr)
			}
			archive := detail(t, out, "backup").(string)
			backups, _, _ := rpmfixture.Files(ctx, n, cfg.RPMBackupDir)
			if len(backups) != 1 || path.Join(cfg.RPMBackupDir, backups[0]) != archive {
				t.Errorf("backup dir holds %v, want just %s", backups, archive)
			}
			if res, err := n.Run(ctx, tasks.Command{Argv: []string{"tar", "-tzf", archive}}); err != nil || res.ExitStatus != 0 || !strings.Contains(string(res.Stdout), "rpm/rpmdb.sqlite") {
				t.Errorf("archive %s does not hold the database: %v %s%s", archive, err, res.Stdout, res.Stderr)
			}

			sumsBefore, _ := rpmfixture.Sums(ctx, n, fleetDBPath)
			again := tasks.RPMDB{}.Apply(ctx, n, tasks.Host{Name: n.Name}, cfg)
			if again.Status != tasks.StatusOK || again.Changed {
				t.Errorf("second run: want ok and unchanged, got %+v", again)
			}
			if b, _, _ := rpmfixture.Files(ctx, n, cfg.RPMBackupDir); !reflect.DeepEqual(b, backups) {
				t.Errorf("second run changed the backups: %v, was %v", b, backups)
			}
			if sumsAfter, _ := rpmfixture.Sums(ctx, n, fleetDBPath); sumsAfter["rpmdb.sqlite"] != sumsBefore["rpmdb.sqlite"] {
				t.Error("second run wrote to rpmdb.sqlite")
			}
		})
	}
}

// A rebuild that loses records (fault injection: an rpm wrapper whose
// --rebuilddb erases three records afterwards) is rolled back, and the
// database is byte for byte the original.
func TestFleetRPMDBRollsBackLossyRebuild(t *testing.T) {
	_, nodes := fleetNodes(t, 1)
	n := nodes[0]
	ctx := testContext(t)
	want := seedAndCorrupt(t, ctx, n, func() error { _, err := rpmfixture.CorruptIndex(ctx, n, fleetDBPath); return err })
	original, err := rpmfixture.Sums(ctx, n, fleetDBPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rpmfixture.InstallLossyRebuild(ctx, n, "/usr/local/sbin", 3); err != nil {
		t.Fatal(err)
	}

	cfg := tasks.DefaultConfig()
	out := tasks.RPMDB{}.Apply(ctx, n, tasks.Host{Name: n.Name}, cfg)
	t.Logf("outcome: %s %s", out.Status, out.Msg)
	if out.Status != tasks.StatusFailed {
		t.Fatalf("want failed, got %+v", out)
	}
	wantMsg := fmt.Sprintf("packages before: %d, after the rebuild: %d", len(want), len(want)-3)
	if !strings.Contains(out.Msg, "the rebuild lost 3 package records") || !strings.Contains(out.Msg, wantMsg) {
		t.Errorf("message %q does not say the rebuild lost 3 records with both counts (%s)", out.Msg, wantMsg)
	}
	if out.Details["rolled_back"] != true {
		t.Errorf("rolled_back = %v, want true", out.Details["rolled_back"])
	}
	// The database is what it was before the run: rpmdb.sqlite byte for
	// byte as before the task opened it, every file as in the backup.
	now, err := rpmfixture.Sums(ctx, n, fleetDBPath)
	if err != nil {
		t.Fatal(err)
	}
	if now["rpmdb.sqlite"] != original["rpmdb.sqlite"] {
		t.Error("rpmdb.sqlite differs from the original after the rollback")
	}
	archive := detail(t, out, "backup").(string)
	if _, err := n.Sh(ctx, `rm -rf /tmp/unpacked && mkdir /tmp/unpacked && tar -xzf "$1" -C /tmp/unpacked`, archive); err != nil {
		t.Fatal(err)
	}
	inArchive, err := rpmfixture.Sums(ctx, n, "/tmp/unpacked/rpm")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(now, inArchive) {
		t.Errorf("database after the rollback differs from the backup:\n now %v\nbackup %v", now, inArchive)
	}
	if err := rpmfixture.RemoveShim(ctx, n, "/usr/local/sbin"); err != nil {
		t.Fatal(err)
	}
	got, _, _ := rpmfixture.Packages(ctx, n)
	if len(got) != len(want) {
		t.Errorf("after the rollback rpm -qa lists %d packages, want %d", len(got), len(want))
	}
}

// A transaction that runs and ends while rpmdb rebuilds its copy (fault
// injection of timing only: an rpm wrapper installs a real package with
// the real rpm right after the rebuild) leaves no holder to see, only its
// record. rpmdb must not install its older copy over that record; run
// again, it repairs and keeps it.
func TestFleetRPMDBKeepsATransactionThatRanDuringTheRepair(t *testing.T) {
	_, nodes := fleetNodes(t, 1)
	n := nodes[0]
	ctx := testContext(t)
	// A broken index would fail the transaction too (depending on the
	// page it lands on); a leaked page leaves the database writable.
	want := seedAndCorrupt(t, ctx, n, func() error { _, err := rpmfixture.LeakPage(ctx, n, fleetDBPath); return err })
	pkg, err := rpmfixture.BuildPackage(ctx, n, "nfx-late", "/root/rpms")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rpmfixture.InstallTransactionDuringRebuild(ctx, n, "/usr/local/sbin", pkg); err != nil {
		t.Fatal(err)
	}
	hasLate := func() bool {
		t.Helper()
		got, _, err := rpmfixture.Packages(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(got, "nfx-late")
	}

	out := tasks.RPMDB{}.Apply(ctx, n, tasks.Host{Name: n.Name}, tasks.DefaultConfig())
	t.Logf("outcome: %s %s", out.Status, out.Msg)
	if out.Status != tasks.StatusFailed || out.Details["rolled_back"] != true || !strings.Contains(out.Msg, "written to during the repair") {
		t.Fatalf("want failed with the rebuilt copy not installed, got %+v", out)
	}
	if !hasLate() {
		t.Fatal("the record of the transaction that ran during the repair is gone")
	}

	if err := rpmfixture.RemoveShim(ctx, n, "/usr/local/sbin"); err != nil {
		t.Fatal(err)
	}
	again := tasks.RPMDB{}.Apply(ctx, n, tasks.Host{Name: n.Name}, tasks.DefaultConfig())
	t.Logf("second run: %s %s", again.Status, again.Msg)
	if again.Status != tasks.StatusChanged || detailInt(t, again, "packages_after") != len(want)+1 {
		t.Fatalf("second run: want changed with %d packages, got %+v", len(want)+1, again)
	}
	if !hasLate() {
		t.Error("the second run's rebuild lost the transaction's record")
	}
	if res, err := n.Run(ctx, tasks.Command{Argv: []string{"rpm", "--verifydb"}}); err != nil || res.ExitStatus != 0 {
		t.Errorf("the database does not verify after the second run: %v %s", err, res.Stderr)
	}
}

// A rebuilt database that fails once installed (fault injection: an rpm
// wrapper whose --verifydb of the live database fails after a rebuild)
// is replaced by the backup, byte for byte.
func TestFleetRPMDBRestoresBackupWhenInstalledRebuildFails(t *testing.T) {
	_, nodes := fleetNodes(t, 1)
	n := nodes[0]
	ctx := testContext(t)
	want := seedAndCorrupt(t, ctx, n, func() error { _, err := rpmfixture.CorruptIndex(ctx, n, fleetDBPath); return err })
	original, _ := rpmfixture.Sums(ctx, n, fleetDBPath)
	if _, err := rpmfixture.InstallFailingLiveVerify(ctx, n, "/usr/local/sbin"); err != nil {
		t.Fatal(err)
	}
	out := tasks.RPMDB{}.Apply(ctx, n, tasks.Host{Name: n.Name}, tasks.DefaultConfig())
	t.Logf("outcome: %s %s", out.Status, out.Msg)
	if out.Status != tasks.StatusFailed || out.Details["rolled_back"] != true ||
		!strings.Contains(out.Msg, "after installing the rebuilt database") || !strings.Contains(out.Msg, "restored the backup") {
		t.Fatalf("want failed with the backup restored, got %+v", out)
	}
	now, _ := rpmfixture.Sums(ctx, n, fleetDBPath)
	if now["rpmdb.sqlite"] != original["rpmdb.sqlite"] {
		t.Error("rpmdb.sqlite differs from the original after the restore")
	}
	archive := detail(t, out, "backup").(string)
	if _, err := n.Sh(ctx, `rm -rf /tmp/unpacked && mkdir /tmp/unpacked && tar -xzf "$1" -C /tmp/unpacked`, archive); err != nil {
		t.Fatal(err)
	}
	if inArchive, _ := rpmfixture.Sums(ctx, n, "/tmp/unpacked/rpm"); !reflect.DeepEqual(now, inArchive) {
		t.Errorf("database after the restore differs from the backup:\n now %v\nbackup %v", now, inArchive)
	}
	if files, _, _ := rpmfixture.Files(ctx, n, fleetDBPath); strings.Contains(strings.Join(files, " "), ".nodefix") {
		t.Errorf("restore left staging files: %v", files)
	}
	if err := rpmfixture.RemoveShim(ctx, n, "/usr/local/sbin"); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := rpmfixture.Packages(ctx, n); len(got) != len(want) {
		t.Errorf("after the restore rpm -qa lists %d packages, want %d", len(got), len(want))
	}
}

// A rebuild that hangs (fault injection: an rpm wrapper whose --rebuilddb
// sleeps) is ended within the command timeout and the backup restored.
func TestFleetRPMDBEndsHungRebuild(t *testing.T) {
	_, nodes := fleetNodes(t, 1)
	n := nodes[0]
	ctx := testContext(t)
	seedAndCorrupt(t, ctx, n, func() error { _, err := rpmfixture.CorruptIndex(ctx, n, fleetDBPath); return err })
	original, _ := rpmfixture.Sums(ctx, n, fleetDBPath)
	if _, err := rpmfixture.InstallHungRebuild(ctx, n, "/usr/local/sbin"); err != nil {
		t.Fatal(err)
	}
	cfg := tasks.DefaultConfig()
	cfg.CommandTimeout = 3 * time.Second
	start := time.Now()
	out := tasks.RPMDB{}.Apply(ctx, n, tasks.Host{Name: n.Name}, cfg)
	t.Logf("outcome after %s: %s %s", time.Since(start).Round(time.Millisecond), out.Status, out.Msg)
	if out.Status != tasks.StatusFailed || !strings.Contains(out.Msg, "did not finish within 3s and was ended") || out.Details["rolled_back"] != true {
		t.Fatalf("want failed, rebuild ended, backup restored; got %+v", out)
	}
	if now, _ := rpmfixture.Sums(ctx, n, fleetDBPath); now["rpmdb.sqlite"] != original["rpmdb.sqlite"] {
		t.Error("rpmdb.sqlite differs from the original after the hung rebuild")
	}
	if res, _ := n.Run(ctx, tasks.Command{Argv: []string{"sh", "-c", "ps -eo args | grep -c '^sleep 86400$'"}}); strings.TrimSpace(string(res.Stdout)) != "0" {
		t.Errorf("the hung rebuild still runs: %s", res.Stdout)
	}
}

// While a transaction holds the database, rpmdb refuses, names it, and
// changes nothing: not the database, not the backup directory.
func TestFleetRPMDBRefusesWhileTransactionHolds(t *testing.T) {
	f, nodes := fleetNodes(t, 3)
	ctx := testContext(t)
	// The database is corrupted too, so that a task that failed to
	// refuse would write. rpm -i cannot start on a corrupted index (it
	// fails to write its record), so it takes the lock first; sqlite's
	// exclusive lock keeps even the corruption out, so it comes last.
	holders := []struct {
		name         string
		corruptFirst bool
		start        func(n *testfleet.Node) (int, error)
		why          string
	}{
		{"rpm -i holding .rpm.lock", false, func(n *testfleet.Node) (int, error) { return n.StartRPMTransaction(ctx, f) },
			"holds the transaction lock /var/lib/rpm/.rpm.lock"},
		{"live yum.pid", true, func(n *testfleet.Node) (int, error) {
			pid, err := n.StartProcess(ctx, "sleep", "600")
			if err == nil {
				_, err = n.Sh(ctx, `echo "$1" > /var/run/yum.pid`, fmt.Sprint(pid))
			}
			return pid, err
		}, "named by the live pid file /var/run/yum.pid"},
		{"unknown process with the database locked", true, func(n *testfleet.Node) (int, error) { return n.HoldRPMDBLock(ctx) },
			"holds a write lock on /var/lib/rpm/rpmdb.sqlite"},
	}
	for i, h := range holders {
		n := nodes[i]
		t.Run(h.name, func(t *testing.T) {
			corrupt := func() {
				if _, err := rpmfixture.CorruptIndex(ctx, n, fleetDBPath); err != nil {
					t.Fatal(err)
				}
			}
			if h.corruptFirst {
				corrupt()
			}
			pid, err := h.start(n)
			if err != nil {
				t.Fatal(err)
			}
			if !h.corruptFirst {
				corrupt()
			}
			before, _ := rpmfixture.Sums(ctx, n, fleetDBPath)
			cfg := tasks.DefaultConfig()
			out := tasks.RPMDB{}.Apply(ctx, n, tasks.Host{Name: n.Name}, cfg)
			t.Logf("outcome: %s %s", out.Status, out.Msg)
			if out.Status != tasks.StatusFailed || out.Changed {
				t.Fatalf("want failed and unchanged, got %+v", out)
			}
			if !strings.Contains(out.Msg, fmt.Sprintf("pid %d (", pid)) || !strings.Contains(out.Msg, h.why) {
				t.Errorf("message %q does not name pid %d and %q", out.Msg, pid, h.why)
			}
			if after, _ := rpmfixture.Sums(ctx, n, fleetDBPath); !reflect.DeepEqual(after, before) {
				t.Errorf("the database changed:\nbefore %v\n after %v", before, after)
			}
			if files, exists, _ := rpmfixture.Files(ctx, n, path.Dir(cfg.RPMBackupDir)); exists {
				t.Errorf("refusal created %s: %v", path.Dir(cfg.RPMBackupDir), files)
			}
			if ok, _ := n.ProcessAlive(ctx, pid); !ok {
				t.Errorf("the holder %d is gone", pid)
			}
		})
	}
}

// A disk that fills up while backing up: failed with the reason, nothing
// else done, no half archive, no backup directory left behind, the
// database untouched. Three ways: no room for the backup directory, no
// room for the archive in it, and too little space measured up front.
func TestFleetRPMDBDiskFullWhileBackingUp(t *testing.T) {
	cases := []struct {
		name   string
		mount  string
		reason string
	}{
		{"no room for the backup directory", "inodes=1", "No space left on device"},
		{"no room for the archive", "inodes=2", "No space left on device"},
		{"too little space measured", "size=16k", "KiB free and the backup needs"},
	}
	_, nodes := fleetNodes(t, len(cases))
	ctx := testContext(t)
	for i, c := range cases {
		n := nodes[i]
		t.Run(c.name, func(t *testing.T) {
			seedAndCorrupt(t, ctx, n, func() error { _, err := rpmfixture.CorruptIndex(ctx, n, fleetDBPath); return err })
			const full = "/mnt/full"
			var err error
			switch c.mount {
			case "inodes=1":
				err = rpmfixture.MountFull(ctx, n, full, 1)
			case "inodes=2":
				err = rpmfixture.MountFull(ctx, n, full, 2)
			default:
				_, err = n.Sh(ctx, `mkdir -p "$1" && mount -t tmpfs -o size=16k nodefix-small "$1"`, full)
			}
			if err != nil {
				t.Fatal(err)
			}
			before, _ := rpmfixture.Sums(ctx, n, fleetDBPath)
			cfg := tasks.DefaultConfig()
			cfg.RPMBackupDir = full + "/rpmdb-backups"
			out := tasks.RPMDB{}.Apply(ctx, n, tasks.Host{Name: n.Name}, cfg)
			t.Logf("outcome: %s %s", out.Status, out.Msg)
			if out.Status != tasks.StatusFailed || out.Changed || !strings.Contains(out.Msg, c.reason) ||
				!(strings.Contains(out.Msg, "nothing else was done") || strings.Contains(out.Msg, "nothing was changed")) {
				t.Fatalf("want failed with %q and nothing done, got %+v", c.reason, out)
			}
			if after, _ := rpmfixture.Sums(ctx, n, fleetDBPath); after["rpmdb.sqlite"] != before["rpmdb.sqlite"] {
				t.Error("the database changed")
			}
			if files, _, _ := rpmfixture.Files(ctx, n, full); len(files) != 0 {
				t.Errorf("the full file system holds %v, want nothing", files)
			}
			if files, _, _ := rpmfixture.Files(ctx, n, "/var/lib"); strings.Contains(strings.Join(files, " "), ".nodefix-rpmdb") {
				t.Errorf("a rebuild work directory was left in /var/lib: %v", files)
			}
			if res, _ := n.Run(ctx, tasks.Command{Argv: []string{"rpm", "--verifydb"}}); res.ExitStatus == 0 {
				t.Error("the database verifies: the task rebuilt it without a backup")
			}
		})
	}
}

// No rpm on the host: both tasks skip with the reason. A Debian host with
// rpm but no database: rpmdb skips and creates nothing.
func TestFleetRPMTasksSkip(t *testing.T) {
	_, nodes := fleetNodes(t, 2)
	ctx := testContext(t)
	noRPM, noDB := nodes[0], nodes[1]
	if err := noRPM.RemoveExecutable(ctx, "rpm"); err != nil {
		t.Fatal(err)
	}
	for _, task := range []tasks.Task{tasks.RPMQueries{}, tasks.RPMDB{}} {
		out := task.Apply(ctx, noRPM, tasks.Host{Name: noRPM.Name}, tasks.DefaultConfig())
		if out.Status != tasks.StatusSkipped || !strings.Contains(out.Msg, "rpm is not installed") {
			t.Errorf("%s without rpm: want skipped, got %+v", task.Name(), out)
		}
	}
	if _, err := noDB.Sh(ctx, `rm -rf /var/lib/rpm`); err != nil {
		t.Fatal(err)
	}
	out := tasks.RPMDB{}.Apply(ctx, noDB, tasks.Host{Name: noDB.Name}, tasks.DefaultConfig())
	if out.Status != tasks.StatusSkipped || !strings.Contains(out.Msg, "dpkg is present") {
		t.Errorf("rpm without a database on a dpkg host: want skipped, got %+v", out)
	}
	if files, exists, _ := rpmfixture.Files(ctx, noDB, fleetDBPath); exists {
		t.Errorf("rpmdb created %s: %v", fleetDBPath, files)
	}
}
