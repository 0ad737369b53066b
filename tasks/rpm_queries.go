package tasks

import "context"

// RPMQueries is a placeholder until issue 6 lands.
type RPMQueries struct{}

// Name implements Task.
func (RPMQueries) Name() string { return NameRPMQueries }

// Apply implements Task.
func (RPMQueries) Apply(context.Context, Node, Host, Config) Outcome {
	return Outcome{Task: NameRPMQueries, Status: StatusSkipped, Msg: "not implemented yet"}
}
