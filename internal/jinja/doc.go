// Package jinja evaluates the Jinja2 templates Ansible inventories hold in
// their variables, the way ansible-core 2.14 templates a variable for a
// host: lazily, only when something reads the variable, with the host's
// variables (each itself templated when a template reads it), hostvars,
// groups and extra vars, and with Ansible's conversions of the result
// (Templar.template: a lone "{{ var }}" keeps var's type, a rendering that
// looks like a list, a dict or a boolean becomes one, None renders as "").
//
// Templates are parsed by github.com/nikolalohinski/gonja/v2, a Jinja2
// parser and engine for Go. nodefix evaluates gonja's syntax tree itself
// rather than running gonja's evaluator, because that evaluator's meaning
// differs from Jinja2's where inventories care (measured on gonja 2.9.1):
// an undefined name is None, so `x is defined` is false for a variable
// set to null and `default` replaces null; `'%s' % x` and `'a' * -1`
// panic; `'a' + 1` is "a1" instead of a TypeError; `'abc'[5]` is "" instead
// of undefined; a template cannot see a variable that is itself a
// template (no lazy lookup); and there is no bound on time or memory.
//
// What is evaluated is deliberately small, the set Ansible inventories
// use: literals, variables, attribute and item access, slices, the
// operators, inline if/else, {% if %} and {% for %}, the filters default/d,
// lower, upper, replace, regex_replace, trim, int, bool, string, join,
// first, last, length/count and ternary, the tests defined and undefined
// (and the plain type and comparison tests), a few string and dict
// methods, range(), and lookup('env', …)/query('env', …). Anything else —
// another filter, test or lookup, {% set %}, macros, includes, an
// ansible-vault value — is an *Error of kind Unsupported naming the
// construct, so a caller can tell the user to pass a literal value with -e
// instead of acting on a guess.
//
// Every evaluation is bounded: a step budget, a limit on the size of every
// string and list produced, a limit on how deep variables may nest (a
// variable that refers to itself is a recursion error, as in Ansible), and
// a recover that turns any panic of the parser or the evaluator into an
// error.
package jinja
