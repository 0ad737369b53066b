package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// hostListWidth is how long a host list may grow in a warning line before
// the rest is counted ("and 12 more"): the warning itself must stay
// readable on one line of an 80-column terminal as often as it can.
const hostListWidth = 60

// minRange is the shortest run of numbered names shown as a range:
// "node01, node02" reads better than "node[01:02]".
const minRange = 3

// hostList shows host names compactly, in the order given: runs of names
// that differ only in a number become one range in Ansible's inventory
// syntax (node01…node06 → node[01:06]); once the list is width bytes long,
// the hosts left are counted instead ("…, node09 and 4 more").
func hostList(names []string, width int) string {
	items := collapse(names)
	var b strings.Builder
	shown := 0
	for i, it := range items {
		sep := ""
		if i > 0 {
			sep = ", "
		}
		rest := len(names) - shown - it.count
		// Leave room for " and N more" unless this is the last item.
		tail := 0
		if rest > 0 {
			tail = len(fmt.Sprintf(" and %d more", rest))
		}
		if i > 0 && b.Len()+len(sep)+len(it.text)+tail > width {
			break
		}
		b.WriteString(sep + it.text)
		shown += it.count
	}
	if left := countUnique(names) - shown; left > 0 {
		fmt.Fprintf(&b, " and %d more", left)
	}
	return b.String()
}

// listItem is one name or one range of names.
type listItem struct {
	text  string
	count int // hosts it stands for
	first int // position of its first host in the input
}

// numbered is a host name split around its last run of digits.
type numbered struct {
	prefix, digits, suffix string
	n                      int
	pos                    int
}

func (h numbered) padded() bool { return len(h.digits) > 1 && h.digits[0] == '0' }

func splitNumber(name string) (numbered, bool) {
	end := strings.LastIndexAny(name, "0123456789")
	if end < 0 {
		return numbered{}, false
	}
	start := end
	for start > 0 && name[start-1] >= '0' && name[start-1] <= '9' {
		start--
	}
	digits := name[start : end+1]
	if len(digits) > 9 { // not a counter; and would overflow int on 32 bits
		return numbered{}, false
	}
	n, _ := strconv.Atoi(digits)
	return numbered{prefix: name[:start], digits: digits, suffix: name[end+1:], n: n}, true
}

// collapse turns names into items: numbered names sharing their prefix,
// suffix and padding are grouped and consecutive numbers merged.
func collapse(names []string) []listItem {
	type groupKey struct {
		prefix, suffix string
		width          int // digits of zero-padded numbers; 0: not padded
	}
	seen := map[string]bool{}
	var items []listItem
	var hosts []numbered
	for pos, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		h, ok := splitNumber(name)
		if !ok {
			items = append(items, listItem{text: name, count: 1, first: pos})
			continue
		}
		h.pos = pos
		hosts = append(hosts, h)
	}
	// node10 belongs with node01…node09 (padded to 2), worker-10 with
	// worker-1…worker-9 (not padded): an unpadded number joins a padded
	// group of its own length when there is one.
	paddedWidths := map[groupKey]bool{}
	for _, h := range hosts {
		if h.padded() {
			paddedWidths[groupKey{h.prefix, h.suffix, len(h.digits)}] = true
		}
	}
	groups := map[groupKey][]numbered{}
	var order []groupKey
	for _, h := range hosts {
		k := groupKey{h.prefix, h.suffix, 0}
		if h.padded() || paddedWidths[groupKey{h.prefix, h.suffix, len(h.digits)}] {
			k.width = len(h.digits)
		}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], h)
	}
	for _, k := range order {
		g := groups[k]
		sort.SliceStable(g, func(i, j int) bool { return g[i].n < g[j].n })
		format := func(n int) string { return fmt.Sprintf("%0*d", k.width, n) }
		for i := 0; i < len(g); {
			j := i
			first := g[i].pos
			for j+1 < len(g) && g[j+1].n == g[j].n+1 {
				j++
				first = min(first, g[j].pos)
			}
			if j-i+1 >= minRange {
				items = append(items, listItem{
					text:  fmt.Sprintf("%s[%s:%s]%s", k.prefix, format(g[i].n), format(g[j].n), k.suffix),
					count: j - i + 1,
					first: first,
				})
			} else {
				for _, h := range g[i : j+1] {
					items = append(items, listItem{text: h.prefix + h.digits + h.suffix, count: 1, first: h.pos})
				}
			}
			i = j + 1
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].first < items[j].first })
	return items
}

func countUnique(names []string) int {
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	return len(seen)
}
