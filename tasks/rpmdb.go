package tasks

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// RPMDB makes sure the rpm database opens and verifies, and rebuilds it
// when it does not: back up the database directory, rebuild, verify, and
// compare the package records; a rebuild that lost a record, failed to
// verify or hung is rolled back to the backup byte for byte. It refuses to
// touch a database a transaction holds.
type RPMDB struct{}

// Name implements Task.
func (RPMDB) Name() string { return NameRPMDB }

// qaFormat prints one line per package record; EPOCH is part of it so two
// records that differ only by epoch stay apart.
const qaFormat = `%{NAME}-%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}.%{ARCH}\n`

// rpmdbHealth is what rpm says about its database.
type rpmdbHealth struct {
	// Packages are the records rpm -qa could read, one NEVRA each.
	Packages []string
	// Problems says what is wrong, empty when the database is healthy.
	Problems []string
	// VerifySupported: this rpm has --verifydb.
	VerifySupported bool
}

func (h *rpmdbHealth) healthy() bool { return len(h.Problems) == 0 }

// dbFacts is the database as one listing found it.
type dbFacts struct {
	snap    *rpmSnapshot
	backend string
	dbpath  string
	// staleEnv are Berkeley DB __db.* environment files no process maps.
	staleEnv []string
	envInUse bool
}

// Apply implements Task.
func (t RPMDB) Apply(ctx context.Context, node Node, host Host, cfg Config) Outcome {
	out := Outcome{Task: NameRPMDB}
	if cfg.RPMBackupKeep < 1 {
		return Failed(NameRPMDB, "rpm backup keep must be at least 1 (the backup a repair just made), got %d", cfg.RPMBackupKeep)
	}
	if !path.IsAbs(cfg.RPMBackupDir) {
		return Failed(NameRPMDB, "rpm backup dir must be an absolute path, got %q", cfg.RPMBackupDir)
	}
	snap, err := takeSnapshot(ctx, node, cfg, withDB)
	if err != nil {
		return Failed(NameRPMDB, "%v", err)
	}
	if snap.RPMPath == "" {
		out.Status = StatusSkipped
		out.Msg = "rpm is not installed on this host (no rpm on PATH): no rpm database to check"
		return out
	}
	// What an interrupted repair left: finished or undone before the
	// database is judged (a half-installed database is restored from its
	// backup, then judged, and repaired again).
	parents := []string{"/var/lib", "/usr/lib/sysimage"}
	if p := path.Dir(path.Clean(snap.DBPath)); path.IsAbs(p) && p != "/var/lib" && p != "/usr/lib/sysimage" {
		parents = append(parents, p)
	}
	rec, err := recoverNode(ctx, node, cfg, host.Name, NameRPMDB, parents...)
	if err != nil {
		rec.Stale = append(rec.Stale, err.Error())
	}
	out.Warnings = append(out.Warnings, rec.warnings()...)
	if len(rec.Held) > 0 && !cfg.Check {
		failed := Failed(NameRPMDB, "another nodefix is repairing the rpm database on this node (it holds %s): run again when it is done", strings.Join(rec.Held, ", "))
		failed.Warnings = out.Warnings
		return failed
	}
	if len(rec.Restored) > 0 {
		if snap, err = takeSnapshot(ctx, node, cfg, withDB); err != nil {
			return Failed(NameRPMDB, "%v", err)
		}
	}
	if !cfg.Check {
		if snap, err = waitForHolders(ctx, node, cfg, snap); err != nil {
			return Failed(NameRPMDB, "%v", err)
		}
	}
	facts, skip := dbFactsOf(snap, cfg.RPMBackupDir)
	if skip != nil {
		return *skip
	}
	out.Details = map[string]any{"backend": facts.backend, "dbpath": facts.dbpath}
	if holders := transactionHolders(snap); len(holders) > 0 {
		out.Details["holders"] = holders
		return t.refuse(out, holders, cfg.Check)
	}

	health, err := checkHealth(ctx, node, cfg, snap.HaveTimeout, "")
	if err != nil {
		return Failed(NameRPMDB, "checking the rpm database at %s: %v", facts.dbpath, err)
	}
	out.Details["packages"] = len(health.Packages)
	out.Details["verifydb_supported"] = health.VerifySupported
	// healthy is the database as found; healthy_after (a run's repair)
	// the database as the run leaves it: what monitoring reports.
	out.Details["healthy"] = health.healthy()
	if len(facts.staleEnv) > 0 {
		out.Details["stale_env_files"] = facts.staleEnv
	}
	if health.healthy() {
		out.Status = StatusOK
		out.Msg = fmt.Sprintf("rpm database (%s at %s) opens and verifies: %d packages", facts.backend, facts.dbpath, len(health.Packages))
		if len(facts.staleEnv) > 0 {
			out.Warnings = append(out.Warnings, fmt.Sprintf("Berkeley DB environment files no process uses: %s (harmless while the database opens; removed on the next repair)", strings.Join(facts.staleEnv, ", ")))
		}
		return out
	}
	out.Details["problems"] = health.Problems
	if cfg.Check {
		out.Status, out.Changed = StatusChanged, true
		out.Msg = fmt.Sprintf("would back up and rebuild the rpm database at %s: %s", facts.dbpath, strings.Join(health.Problems, "; "))
		return out
	}
	if facts.envInUse {
		failed := Failed(NameRPMDB, "rpm database at %s needs a rebuild (%s) but its Berkeley DB environment is in use by pids %v; end them (the rpm-queries task ends hung queries) and run again",
			facts.dbpath, strings.Join(health.Problems, "; "), snap.EnvUsers)
		failed.Details = out.Details
		failed.Details["healthy_after"] = false
		return failed
	}
	out = t.repair(ctx, node, cfg, host.Name, facts, health, out)
	// Only a repair that installed and verified the rebuilt copy leaves a
	// healthy database (or finds it repaired by another run meanwhile); a
	// failed one leaves it as it was found, or, after a transaction wrote
	// to it during the repair, not proven healthy.
	out.Details["healthy_after"] = out.Status == StatusChanged || out.Status == StatusOK
	return out
}

// dbFactsOf reads backend and path from a listing; a non-nil outcome means
// there is nothing to check.
func dbFactsOf(snap *rpmSnapshot, backupDir string) (*dbFacts, *Outcome) {
	f := &dbFacts{snap: snap, dbpath: path.Clean(snap.DBPath)}
	if snap.DBPath == "" || !path.IsAbs(f.dbpath) || strings.Contains(f.dbpath, "%") {
		o := Failed(NameRPMDB, "rpm reports no usable database path (%%{_dbpath} = %q)", f.dbpath)
		return nil, &o
	}
	f.backend = backendOf(snap)
	if f.backend == "" {
		if snap.HaveDpkg {
			return nil, &Outcome{Task: NameRPMDB, Status: StatusSkipped,
				Msg: fmt.Sprintf("no rpm database at %s and dpkg is present: rpm is not this host's package manager", f.dbpath)}
		}
		o := Failed(NameRPMDB, "no rpm database at %s (backend %q): restore it from a backup (nodefix keeps them in %s) before running package tools", f.dbpath, snap.Backend, backupDir)
		return nil, &o
	}
	users := map[int]bool{}
	for _, pid := range snap.EnvUsers {
		users[pid] = true
	}
	f.envInUse = len(users) > 0
	if !f.envInUse {
		for name := range snap.DBSizes {
			if strings.HasPrefix(name, "__db.") {
				f.staleEnv = append(f.staleEnv, name)
			}
		}
		sort.Strings(f.staleEnv)
	}
	return f, nil
}

// backendOf names the database backend, from %{_db_backend} when rpm
// defines it (4.14 and later) and from the files otherwise (rpm 4.11 on
// EL7 has no such macro and only Berkeley DB). Empty: no database there.
func backendOf(snap *rpmSnapshot) string {
	has := func(name string) bool { _, ok := snap.DBSizes[name]; return ok }
	b := snap.Backend
	if b == "" || strings.Contains(b, "%") {
		switch {
		case has("rpmdb.sqlite"):
			b = "sqlite"
		case has("Packages.db"):
			b = "ndb"
		default:
			b = "bdb"
		}
	}
	switch {
	case !snap.DBExists:
		return ""
	case b == "sqlite" && has("rpmdb.sqlite"),
		b == "ndb" && has("Packages.db"),
		(b == "bdb" || b == "bdb_ro") && has("Packages"):
		return b
	}
	return ""
}

// dbHolder is a process that keeps rpmdb from touching the database.
type dbHolder struct {
	PID     int    `json:"pid"`
	Command string `json:"command"`
	Why     string `json:"why"`
}

// transactionHolders lists what holds the database for writing: the
// transaction lock .rpm.lock, a live yum/dnf/zypper pid file, an rpm
// process in a writing mode (it may still be waiting to take the lock),
// a package manager that runs transactions, or any other process with a
// write lock on a database file. Queries are not holders: rpm-queries
// deals with hung ones.
func transactionHolders(snap *rpmSnapshot) []dbHolder {
	var out []dbHolder
	seen := map[int]bool{}
	add := func(pid int, why string) {
		if seen[pid] || pid == snap.Self {
			return
		}
		seen[pid] = true
		cmd := "not in this host's process table"
		if p, ok := snap.Procs[pid]; ok {
			cmd = p.CommandLine()
		}
		out = append(out, dbHolder{PID: pid, Command: cmd, Why: why})
	}
	for _, pid := range snap.transactionLockHolders() {
		add(pid, "holds the transaction lock "+path.Join(snap.DBPath, ".rpm.lock"))
	}
	for _, pf := range snap.PIDFiles {
		if _, alive := snap.Procs[pf.PID]; alive {
			add(pf.PID, "named by the live pid file "+pf.Path)
		}
	}
	for _, l := range snap.dbLocks() {
		if !l.Write || l.Waiting || l.PID <= 0 {
			continue
		}
		if p, ok := snap.Procs[l.PID]; ok && classifyRPM(p.Argv) == rpmModeQuery {
			continue
		}
		add(l.PID, "holds a write lock on "+path.Join(snap.DBPath, l.Name))
	}
	for _, pid := range snap.sortedPIDs() {
		p := snap.Procs[pid]
		if p.State == 'Z' {
			continue
		}
		switch m := classifyRPM(p.Argv); {
		case m == rpmModeWrite || m == rpmModeDatabase:
			add(pid, "rpm "+m.String()+" in progress")
		case isPackageManager(p) && !idleDaemons[p.Program()] && !idleDaemons[p.Comm]:
			add(pid, "package manager running")
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// idleDaemons are package-management daemons that run all the time; they
// take the transaction lock when they do work, which is caught above.
var idleDaemons = map[string]bool{
	"packagekitd": true, "rpm-ostreed": true, "dnfdaemon-system": true, "dnf5daemon-server": true,
}

// waitForHolders lists the node again, every half second, until no
// process holds the database or cfg.RPMLockWait has passed, and returns
// the last listing.
func waitForHolders(ctx context.Context, node Node, cfg Config, snap *rpmSnapshot) (*rpmSnapshot, error) {
	deadline := time.Now().Add(cfg.RPMLockWait)
	for len(transactionHolders(snap)) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the rpm database to be released: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		var err error
		if snap, err = takeSnapshot(ctx, node, cfg, withDB); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// refuse reports the processes holding the database. A run fails: it
// waited (RPMLockWait) and still cannot judge the database. Check mode
// skips, since the run may well find the database free: a transaction
// waiting behind hung queries finishes once rpm-queries has ended them.
func (RPMDB) refuse(out Outcome, holders []dbHolder, check bool) Outcome {
	var parts []string
	for _, h := range holders {
		parts = append(parts, fmt.Sprintf("pid %d (%s): %s", h.PID, h.Command, h.Why))
	}
	if check {
		out.Status = StatusSkipped
		out.Msg = fmt.Sprintf("cannot check the rpm database now, another process holds it: %s; a run waits for it to finish",
			strings.Join(parts, "; "))
		// A warning too, so that Ansible (which shows no message of a
		// task that did not fail) shows it.
		out.Warnings = append(out.Warnings, out.Msg)
		return out
	}
	out.Status = StatusFailed
	out.Msg = fmt.Sprintf("refusing to check or repair the rpm database while another process holds it: %s; run again when it has finished",
		strings.Join(parts, "; "))
	return out
}

// checkHealth runs rpm -qa and rpm --verifydb, each bounded, on rpm's
// own database or, with dbpath, on the database there.
func checkHealth(ctx context.Context, node Node, cfg Config, haveTimeout bool, dbpath string) (*rpmdbHealth, error) {
	h := &rpmdbHealth{}
	rpm := []string{"rpm"}
	if dbpath != "" {
		rpm = append(rpm, "--dbpath", dbpath)
	}
	res, timedOut, err := runBounded(ctx, node, haveTimeout, cfg.CommandTimeout, append(rpm, "-qa", "--qf", qaFormat)...)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			h.Packages = append(h.Packages, line)
		}
	}
	switch {
	case timedOut:
		h.Problems = append(h.Problems, fmt.Sprintf("rpm -qa did not finish within %s", cfg.CommandTimeout))
	default:
		if errs := rpmErrors(res.Stderr); len(errs) > 0 {
			h.Problems = append(h.Problems, "rpm -qa: "+strings.Join(errs, "; "))
		} else if res.ExitStatus != 0 {
			h.Problems = append(h.Problems, statusError("rpm -qa", res).Error())
		}
	}

	res, timedOut, err = runBounded(ctx, node, haveTimeout, cfg.CommandTimeout, append(rpm, "--verifydb")...)
	if err != nil {
		return nil, err
	}
	h.VerifySupported = !unsupportedOption(res)
	switch {
	case timedOut:
		h.Problems = append(h.Problems, fmt.Sprintf("rpm --verifydb did not finish within %s", cfg.CommandTimeout))
	case !h.VerifySupported:
	case res.ExitStatus != 0:
		h.Problems = append(h.Problems, statusError("rpm --verifydb", res).Error())
	}
	return h, nil
}

// rpmErrors picks the lines rpm marks as errors, and the Berkeley DB and
// sqlite messages that come without the "error:" prefix.
func rpmErrors(stderr []byte) []string {
	var out []string
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		low := strings.ToLower(line)
		if strings.HasPrefix(low, "error:") || strings.Contains(line, "DB_RUNRECOVERY") ||
			strings.Contains(low, "cannot open packages") || strings.Contains(low, "database disk image is malformed") ||
			strings.Contains(line, "BDB0") {
			out = append(out, line)
			if len(out) == 5 {
				break
			}
		}
	}
	return out
}

// unsupportedOption reports rpm's answer to an option it does not know.
func unsupportedOption(res Result) bool {
	if res.ExitStatus == 0 {
		return false
	}
	s := strings.ToLower(string(res.Stderr))
	return strings.Contains(s, "unknown option") || strings.Contains(s, "unrecognized option")
}
