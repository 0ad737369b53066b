package tasks

import "context"

// LonghornDeps is a placeholder until issue 4 lands.
type LonghornDeps struct{}

// Name implements Task.
func (LonghornDeps) Name() string { return NameLonghornDeps }

// Apply implements Task.
func (LonghornDeps) Apply(context.Context, Node, Host, Config) Outcome {
	return Outcome{Task: NameLonghornDeps, Status: StatusSkipped, Msg: "not implemented yet"}
}
