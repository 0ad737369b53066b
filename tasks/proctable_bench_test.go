package tasks

import (
	"fmt"
	"testing"
	"time"
)

// incidentSnapshot is a listing like the incident's node: n processes, of
// which most are rpm queries through nsenter, half of them hung.
func incidentSnapshot(n int) []byte {
	procs := []fakeProc{q(100, 1, 90000, "/usr/local/sbin/longhorn-manager", "-d", "daemon")}
	for pid := 1000; len(procs) < n; pid += 2 {
		age := 30
		if pid%4 == 0 {
			age = 3600
		}
		procs = append(procs,
			q(pid, 100, age, "nsenter", "--mount=/host/proc/1/ns/mnt", "--net=/host/proc/1/ns/net", "--", "rpm", "-q", "iscsi-initiator-utils"),
			q(pid+1, pid, age, "rpm", "-q", "iscsi-initiator-utils"))
	}
	s := sqliteSnap(procs...)
	s.locks = fmt.Sprintf(lockSqliteWrite, 1, 100)
	return s.bytes()
}

// BenchmarkParseSnapshot measures reading one listing of 5000 processes.
func BenchmarkParseSnapshot(b *testing.B) {
	out := incidentSnapshot(5000)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseSnapshot(out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlanQueries measures deciding on 5000 processes (2500 queries,
// half of them hung, each with its nsenter wrapper).
func BenchmarkPlanQueries(b *testing.B) {
	snap, err := parseSnapshot(incidentSnapshot(5000))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if plan := planQueries(snap, 10*time.Minute); len(plan.Targets) != 1250 {
			b.Fatalf("%d targets", len(plan.Targets))
		}
	}
}
