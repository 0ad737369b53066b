// Package tasks holds nodefix's remediations. Each task sees a host only
// through Node: it runs an argv and gets stdout, stderr and the exit status.
// Tasks know nothing of SSH, inventories or output formats; the runner owns
// parallelism, timeouts and cancellation, and reports own formatting.
//
// Every task follows the same contract: gather facts, decide, apply (unless
// Config.Check is set), then verify what it applied. A second run on a fixed
// host must report StatusOK with Changed false.
package tasks

import (
	"context"
	"fmt"
	"time"
)

// Command is one program to run on a node. Argv is passed as separate
// arguments: transports quote it (the ssh transport in exactly one place),
// so a task never builds a shell string by hand. When a task really needs a
// shell, it runs Argv {"sh", "-c", script} and quotes nothing itself.
type Command struct {
	Argv  []string
	Stdin []byte
}

// Result is what a command left behind. A non-zero ExitStatus is a normal
// result, not an error: the task decides what it means.
type Result struct {
	Stdout     []byte
	Stderr     []byte
	ExitStatus int
}

// Node is a host as a task sees it. Run returns an error only when the
// command could not be run or its status not learned (connection lost,
// context cancelled); a command that ran and failed is a Result.
type Node interface {
	Run(ctx context.Context, cmd Command) (Result, error)
}

// Status is a task's verdict on one host, in Ansible's vocabulary. The
// host-level state "unreachable" belongs to the runner, not to tasks.
type Status string

const (
	StatusOK      Status = "ok"
	StatusChanged Status = "changed"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped"
)

// Diff is the before/after text shown for --diff and Ansible's diff mode.
type Diff struct {
	Before string `json:"before"`
	After  string `json:"after"`
}

// Outcome is what one task did (or, in check mode, would do) on one host.
type Outcome struct {
	Task     string         `json:"task"`
	Status   Status         `json:"status"`
	Changed  bool           `json:"changed"`
	Msg      string         `json:"msg"`
	Warnings []string       `json:"warnings,omitempty"`
	Details  map[string]any `json:"details,omitempty"`
	Diff     *Diff          `json:"diff,omitempty"`
	// Facts are identity values gathered on the host (see the Fact*
	// constants) that only mean something compared across the fleet.
	Facts map[string]string `json:"facts,omitempty"`
}

// Identity facts compared across the fleet by AuditIdentities.
const (
	FactHostname       = "hostname"
	FactMachineID      = "machine_id"
	FactNFSIdentifier  = "nfs_client_identifier"
	FactISCSIInitiator = "iscsi_initiator_name"
)

// Host is what a task knows of the host it runs on, taken from the
// inventory by the planner.
type Host struct {
	// Name is the inventory hostname.
	Name string
	// TargetHostname is the node name the inventory gives the host
	// (nodefix_hostname, K8S_NODENAME, kubeasz's rule on k8s_nodename),
	// already checked fleet-wide by the planner; "" when the inventory
	// gives none. The hostname task renames to it only where the node's
	// kubelet agrees (see decideName).
	TargetHostname string
	// TargetSource names where TargetHostname came from, for messages.
	TargetSource string
	// SurveyedHostname is, for a host the inventory names nothing, the
	// name its kubelet gave before the run, which the fleet precheck
	// checked against every other host's: the task renames to nothing
	// else. "" when no survey ran.
	SurveyedHostname string
}

// Config carries every task option. One flat struct keeps the CLI, the
// Ansible module mode and tests building the same thing.
type Config struct {
	// Check: gather and decide, change nothing.
	Check bool
	// Diff: fill Outcome.Diff where the task can show one.
	Diff bool

	// RPMQueryMaxAge: an rpm query running longer than this is hung.
	RPMQueryMaxAge time.Duration
	// RPMQueryGrace: how long SIGTERM gets before SIGKILL.
	RPMQueryGrace time.Duration
	// RPMBackupDir: where rpmdb keeps its timestamped backups on the node.
	RPMBackupDir string
	// RPMBackupKeep: how many backups rpmdb keeps.
	RPMBackupKeep int
	// RPMLockWait: how long rpmdb waits for a process holding the
	// database (a transaction) to finish before it refuses.
	RPMLockWait time.Duration
	// CommandTimeout bounds every single command a task runs.
	CommandTimeout time.Duration

	// LonghornExecutables: what longhorn-deps requires on PATH.
	LonghornExecutables []string
	// InstallMissing: let longhorn-deps install what is missing.
	InstallMissing bool

	// SetNFSUniqueID: set a unique nfs4_unique_id for clusters that cannot
	// rename hosts (opt-in).
	SetNFSUniqueID bool
	// KeepHostname: the hostname task renames nothing; it still gathers
	// the identity facts and, with SetNFSUniqueID, sets the NFS
	// uniquifier (for clusters that cannot rename hosts).
	KeepHostname bool
	// TrustInventory: rename to the inventory's name even where the
	// node's kubelet runs under another (off by default: the node is then
	// registered again under the new name).
	TrustInventory bool

	// Audit names the run in the audit trail every change leaves on its
	// node (AuditLogPath).
	Audit Audit
}

// Task is one remediation.
type Task interface {
	// Name is the task's name on the command line.
	Name() string
	// Apply gathers, decides, applies (unless cfg.Check) and verifies.
	Apply(ctx context.Context, node Node, host Host, cfg Config) Outcome
}

// Failed builds a failed outcome with a formatted message.
func Failed(task, format string, args ...any) Outcome {
	return Outcome{Task: task, Status: StatusFailed, Msg: fmt.Sprintf(format, args...)}
}
