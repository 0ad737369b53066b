package report

import (
	"fmt"
	"testing"
)

func TestHostList(t *testing.T) {
	seq := func(format string, from, to int) []string {
		var out []string
		for i := from; i <= to; i++ {
			out = append(out, fmt.Sprintf(format, i))
		}
		return out
	}
	cat := func(lists ...[]string) []string {
		var out []string
		for _, l := range lists {
			out = append(out, l...)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		hosts []string
		width int
		want  string
	}{
		{"one", []string{"node03"}, 60, "node03"},
		{"two stay names", []string{"node01", "node02"}, 60, "node01, node02"},
		{"a run of three", seq("node%02d", 1, 3), 60, "node[01:03]"},
		{"the demo", seq("node%02d", 1, 6), 60, "node[01:06]"},
		{"padded run crosses 10", seq("node%02d", 8, 12), 60, "node[08:12]"},
		{"unpadded run crosses 10", seq("worker-%d", 8, 12), 60, "worker-[8:12]"},
		{"gaps", []string{"node01", "node02", "node03", "node05", "node07", "node08", "node09"}, 60, "node[01:03], node05, node[07:09]"},
		{"input order kept", []string{"node07", "node08", "node09", "node01", "db", "node02", "node03"}, 60, "node[07:09], node[01:03], db"},
		{"unsorted input", []string{"node03", "node01", "node02"}, 60, "node[01:03]"},
		{"digits in the middle", seq("web%02d.example.com", 1, 4), 60, "web[01:04].example.com"},
		{"addresses", seq("10.0.0.%d", 5, 9), 60, "10.0.0.[5:9]"},
		{"different prefixes", cat(seq("master%d", 1, 3), seq("worker%d", 1, 3)), 60, "master[1:3], worker[1:3]"},
		{"padding differs", []string{"n1", "n2", "n3", "n01", "n02", "n03"}, 60, "n[1:3], n[01:03]"},
		{"no numbers", []string{"alpha", "beta", "gamma"}, 60, "alpha, beta, gamma"},
		{"duplicates", []string{"node01", "node01", "node02"}, 60, "node01, node02"},
		{"past the width", []string{"alpha", "beta", "gamma", "delta", "epsilon"}, 22, "alpha, beta and 3 more"},
		{"one short of the width", []string{"alpha", "beta", "gamma", "delta", "epsilon"}, 21, "alpha and 4 more"},
		{"ranges count as their hosts", cat(seq("node%02d", 1, 10), []string{"x1", "y2", "z3"}), 26, "node[01:10], x1 and 2 more"},
		{"a first item longer than the width is shown", []string{"a-very-long-host-name.example.com", "b"}, 10, "a-very-long-host-name.example.com and 1 more"},
		{"every host of 100", seq("node%03d", 1, 100), 60, "node[001:100]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hostList(tc.hosts, tc.width); got != tc.want {
				t.Errorf("hostList(%q, %d)\n got %q\nwant %q", tc.hosts, tc.width, got, tc.want)
			}
		})
	}
}
