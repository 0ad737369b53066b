package tasks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// The audit trail: every change a task makes on a node (not in check
// mode, not a no-op) appends one JSON line to AuditLogPath on that node,
// written by the node-side script that made the change, in the same
// critical section, so a change never lands without its line; and one
// line to syslog/journald through `logger -t nodefix` where logger exists.
//
// One line is one write(2) to a file opened with O_APPEND (the shell's
// >>): concurrent writers never interleave within a line and nothing is
// ever read back and rewritten. The shell writes a line of up to its
// output buffer in one call, so records are kept below auditMaxLine: long
// lists (ended queries) are clipped, with counts.

const (
	// AuditLogDir and AuditLogPath are where the trail lives on a node:
	// the directory is created 0750, the file 0640 (root and the adm-like
	// group that reads logs; records name processes and hosts, never a
	// secret).
	AuditLogDir  = "/var/log/nodefix"
	AuditLogPath = AuditLogDir + "/changes.jsonl"
	// auditMaxLine bounds one record below the smallest output buffer a
	// node's shell may use (glibc's stdio takes the file's 4 KiB block
	// size for bash's printf; dash buffers 8 KiB).
	auditMaxLine = 3800
)

// Audit says who makes a run's changes, for the audit trail.
type Audit struct {
	// RunID names the run (16 hex digits): the recap and the JSON
	// document print it, every record of the run carries it.
	RunID string
	// Version is nodefix's version.
	Version string
	// ControllerUser and ControllerHost are who ran nodefix, and where.
	ControllerUser string
	ControllerHost string
}

// NewRunID returns a random run id of 16 hex digits.
func NewRunID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating a run id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidRunID reports whether id may name a run: letters, digits, '.', '_'
// and '-', at most 64 (a playbook may pass its own).
func ValidRunID(id string) bool { return runIDPattern.MatchString(id) }

// auditRecord is one line of the trail, but for its time, which the node
// adds when it writes the line (see auditFuncs).
type auditRecord struct {
	RunID      string         `json:"run_id"`
	Version    string         `json:"nodefix_version"`
	Controller map[string]any `json:"controller"`
	Host       string         `json:"host"`
	Task       string         `json:"task"`
	Action     string         `json:"action"`
	Change     map[string]any `json:"change"`
	Outcome    string         `json:"outcome"`
}

// auditLine renders a record for auditFuncs: the JSON object without its
// opening brace (the node prepends {"time":"…",), newlines escaped.
func auditLine(cfg Config, host, task, action string, change map[string]any, outcome string) string {
	rec := auditRecord{
		RunID:      cfg.Audit.RunID,
		Version:    cfg.Audit.Version,
		Controller: map[string]any{"user": cfg.Audit.ControllerUser, "host": cfg.Audit.ControllerHost},
		Host:       host,
		Task:       task,
		Action:     action,
		Change:     change,
		Outcome:    outcome,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		// Only unencodable values (none are built here) get here: the
		// line still says what happened.
		rec.Change = map[string]any{"error": err.Error()}
		buf.Reset()
		_ = enc.Encode(rec)
	}
	line := strings.TrimSuffix(buf.String(), "\n")
	if len(line) > auditMaxLine {
		// Callers clip their lists; this is the backstop that keeps a
		// record one write.
		keys := make([]string, 0, len(change))
		for k := range change {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return auditLine(cfg, host, task, action, map[string]any{"clipped": true, "fields": keys}, outcome)
	}
	return strings.TrimPrefix(line, "{")
}

// auditSummary is the syslog line of a record: short, one line.
func auditSummary(cfg Config, task, text string) string {
	s := fmt.Sprintf("run %s: %s: %s", cfg.Audit.RunID, task, text)
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// auditFuncs defines nf_audit LINE SUMMARY for node-side scripts: it
// appends {"time":"<now, UTC>",LINE to AuditLogPath (the directory made
// 0750 and the file 0640 when missing) in one write, then sends SUMMARY
// to syslog with logger -t nodefix where logger exists. A trail that
// cannot be written is said on stderr and does not undo the change.
const auditFuncs = `nf_audit() {
	[ -n "$1" ] || return 0
	( umask 027
	  [ -d ` + AuditLogDir + ` ] || mkdir -p -m 0750 ` + AuditLogDir + `
	  printf '{"time":"%s",%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" >>` + AuditLogPath + ` ) ||
		echo "nodefix: cannot append to ` + AuditLogPath + `" >&2
	if command -v logger >/dev/null 2>&1; then logger -t nodefix -- "$2" >/dev/null 2>&1 || :; fi
	return 0
}
`

// clipped keeps the first n items of a list for a record, and says how
// many there were.
func clipped[T any](items []T, n int) ([]T, int) {
	if len(items) <= n {
		return items, 0
	}
	return items[:n], len(items) - n
}

// appendAudit appends one record to the node's audit trail for a change
// no node-side script of nodefix's made itself (a package manager's
// install), once it is over. The writer runs as a protected step, and
// outlives ctx: a run interrupted after the change still records it,
// within the command timeout.
func appendAudit(ctx context.Context, node Node, cfg Config, host, task, action string, change map[string]any, outcome, summary string) error {
	res, err := runProtected(context.WithoutCancel(ctx), node, cfg.CommandTimeout, "audit", auditFuncs+`nf_audit "$1" "$2"`, nil,
		auditLine(cfg, host, task, action, change, outcome), auditSummary(cfg, task, summary))
	if err == nil && res.ExitStatus != 0 {
		err = statusError("the audit writer", res)
	}
	return err
}

// auditInstall records what longhorn-deps --install-missing did: the
// packages it installed, the executables that were missing, which of them
// run now and which are still missing (once the install was verified),
// and the outcome. It is deferred in the install path and reads the
// task's final Outcome; a record that cannot be written is a warning.
func auditInstall(ctx context.Context, node Node, cfg Config, host string, pkgs, missing []string, out *Outcome) {
	change := map[string]any{"packages": pkgs, "missing_before": missing}
	_, verified := out.Details["installed"]
	change["verified"] = verified
	if execs, ok := out.Details["executables"].(map[string]execCheck); ok && verified {
		available, still := []string{}, []string{}
		for _, name := range missing {
			if e, ok := execs[name]; ok && e.Runnable {
				available = append(available, name)
			} else {
				still = append(still, name)
			}
		}
		change["available_after"], change["still_missing"] = available, still
	}
	outcome := "changed"
	if out.Status != StatusChanged {
		outcome = "failed"
		msg, _ := clipped([]rune(out.Msg), 600)
		change["error"] = string(msg)
	}
	summary := fmt.Sprintf("installed %s: %s", strings.Join(pkgs, " "), outcome)
	if err := appendAudit(ctx, node, cfg, host, NameLonghornDeps, "install packages", change, outcome, summary); err != nil {
		out.Warnings = append(out.Warnings, fmt.Sprintf("the install is not on record in %s: %v", AuditLogPath, err))
	}
}
