package tasks

import "context"

// RPMDB is a placeholder until issue 6 lands.
type RPMDB struct{}

// Name implements Task.
func (RPMDB) Name() string { return NameRPMDB }

// Apply implements Task.
func (RPMDB) Apply(context.Context, Node, Host, Config) Outcome {
	return Outcome{Task: NameRPMDB, Status: StatusSkipped, Msg: "not implemented yet"}
}
