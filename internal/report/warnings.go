package report

import (
	"fmt"
	"sort"

	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/tasks"
)

// warnKey is one distinct warning: the same text from the same task.
type warnKey struct{ task, msg string }

// warnGroup is a warning and every host that gave it.
type warnGroup struct {
	warnKey
	hosts []string
}

func (h *Human) collectWarning(task, host, msg string) {
	k := warnKey{task, msg}
	if h.warnIndex == nil {
		h.warnIndex = map[warnKey]*warnGroup{}
	}
	g, ok := h.warnIndex[k]
	if !ok {
		g = &warnGroup{warnKey: k}
		h.warnIndex[k] = g
		h.warnings = append(h.warnings, g)
	}
	for _, seen := range g.hosts {
		if seen == host {
			return
		}
	}
	g.hosts = append(g.hosts, host)
}

// printWarnings prints the WARNINGS section: each distinct warning once,
// with the hosts that gave it ("[6 hosts: node[01:06]] longhorn-deps:
// iscsid is not running"), grouped by task in run order (connection
// warnings first), hosts in the run's order. Hosts finish in any order;
// the section does not depend on it.
func (h *Human) printWarnings(res runner.Result) {
	if len(h.warnings) == 0 {
		return
	}
	pos := map[string]int{}
	for i, r := range res.Hosts {
		pos[r.Name] = i
	}
	taskRank := map[string]int{"": -1} // connecting comes before any task
	for i, n := range tasks.Names() {
		taskRank[n] = i
	}
	rank := func(task string) int {
		if r, ok := taskRank[task]; ok {
			return r
		}
		return len(taskRank) // a task this report does not know: last
	}
	groups := append([]*warnGroup(nil), h.warnings...)
	for _, g := range groups {
		sort.SliceStable(g.hosts, func(i, j int) bool { return pos[g.hosts[i]] < pos[g.hosts[j]] })
	}
	sort.SliceStable(groups, func(i, j int) bool {
		a, b := groups[i], groups[j]
		if rank(a.task) != rank(b.task) {
			return rank(a.task) < rank(b.task)
		}
		if a.task != b.task {
			return a.task < b.task
		}
		if pos[a.hosts[0]] != pos[b.hosts[0]] {
			return pos[a.hosts[0]] < pos[b.hosts[0]]
		}
		return a.msg < b.msg
	})
	fmt.Fprintln(h.w)
	fmt.Fprintln(h.w, banner("WARNINGS"))
	for _, g := range groups {
		hosts := hostList(g.hosts, hostListWidth)
		if len(g.hosts) > 1 {
			hosts = fmt.Sprintf("%d hosts: %s", len(g.hosts), hosts)
		}
		text := "[" + hosts + "] "
		if g.task != "" {
			text += g.task + ": "
		}
		h.warning(text + g.msg)
	}
}
