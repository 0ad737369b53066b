// Package pycompat reproduces the few pieces of Python that decide what an
// Ansible inventory means: shlex.split (how INI host lines and ssh arguments
// are tokenised), ast.literal_eval (how INI values get their types), int()
// and float repr, and json.dumps as ansible-inventory prints. Ansible is the
// judge of what an inventory says, so these follow CPython 3.11's rules,
// quirks included, rather than any cleaner reading.
//
// Values use these Go types: nil, bool, int, *big.Int (integers beyond
// int64), float64, string, []any and map[string]any.
package pycompat
