package runner

import (
	"fmt"
	"strconv"
	"strings"
)

// Serial is one --serial value, as Ansible's serial keyword takes it: a
// number of hosts, or a percentage of the run's hosts.
type Serial struct {
	N       int
	Percent bool
}

// ParseSerial reads "5" or "20%". Ansible reads a percentage with int(),
// so "12.5%" is refused here as it is there; 0 (or 0%, which Ansible
// rounds up to one host) follows Ansible too: 0 means every remaining host
// in one batch.
func ParseSerial(s string) (Serial, error) {
	s = strings.TrimSpace(s)
	text, pct := strings.CutSuffix(s, "%")
	n, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil || n < 0 || (pct && n > 100) {
		return Serial{}, fmt.Errorf("--serial %q: want a number of hosts (1, 5) or a percentage of them (20%%, at most 100%%)", s)
	}
	return Serial{N: n, Percent: pct}, nil
}

func (s Serial) String() string {
	if s.Percent {
		return strconv.Itoa(s.N) + "%"
	}
	return strconv.Itoa(s.N)
}

// size is how many hosts one batch takes out of total, as Ansible's
// pct_to_int computes it: a percentage of all the run's hosts rounded
// down, and at least one host.
func (s Serial) size(total int) int {
	if !s.Percent {
		return s.N
	}
	if n := s.N * total / 100; n > 0 {
		return n
	}
	return 1
}

// BatchSizes splits total hosts into batches as ansible-playbook does
// (PlaybookExecutor._get_serialized_batches): the serial values in turn,
// the last one repeated until every host has a batch; a value of 0 takes
// every remaining host. No serial: one batch of every host.
func BatchSizes(total int, serial []Serial) []int {
	if total == 0 {
		return nil
	}
	if len(serial) == 0 {
		return []int{total}
	}
	var sizes []int
	left := total
	for i := 0; left > 0; i++ {
		n := serial[min(i, len(serial)-1)].size(total)
		if n <= 0 || n > left {
			n = left
		}
		sizes = append(sizes, n)
		left -= n
	}
	return sizes
}

// Budget is how many failures a run accepts before it starts no further
// host: Ansible's max_fail_percentage and any_errors_fatal.
type Budget struct {
	// MaxFailPercentage, when set, aborts the run as soon as the hosts of
	// a batch that failed or were unreachable exceed this percentage of
	// the batch (0: any failure aborts), as Ansible compares it:
	// failed / batch size > P / 100.
	MaxFailPercentage *float64
	// AnyErrorsFatal aborts the run at the first failed or unreachable
	// host.
	AnyErrorsFatal bool
}

// exceeded says why failed hosts of a batch of size break the budget, or
// "" when they do not.
func (b Budget) exceeded(failed, size int) string {
	switch {
	case failed == 0:
		return ""
	case b.AnyErrorsFatal:
		return fmt.Sprintf("%d of %d %s failed or unreachable and --any-errors-fatal is set", failed, size, plural(size, "host", "hosts"))
	case b.MaxFailPercentage != nil && float64(failed)/float64(size) > *b.MaxFailPercentage/100:
		return fmt.Sprintf("%d of %d %s failed or unreachable (%s), more than --max-fail-percentage %s",
			failed, size, plural(size, "host", "hosts"), formatPercent(100*float64(failed)/float64(size)), formatPercent(*b.MaxFailPercentage))
	}
	return ""
}

func formatPercent(p float64) string {
	return strconv.FormatFloat(p, 'f', -1, 64) + "%"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Abort says why a run stopped before every host had its turn.
type Abort struct {
	// Batch is the batch (from 1) whose failures stopped the run.
	Batch int `json:"batch"`
	// Reason says what happened, in words.
	Reason string `json:"reason"`
}
