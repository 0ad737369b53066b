package tasks

import "context"

// Hostname is a placeholder until issue 5 lands.
type Hostname struct{}

// Name implements Task.
func (Hostname) Name() string { return NameHostname }

// Apply implements Task.
func (Hostname) Apply(context.Context, Node, Host, Config) Outcome {
	return Outcome{Task: NameHostname, Status: StatusSkipped, Msg: "not implemented yet"}
}
