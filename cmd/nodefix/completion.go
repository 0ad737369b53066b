package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/exitcode"
)

// shells are those `nodefix completion` writes a script for.
var shells = []string{"bash", "zsh", "fish"}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: strings.Join(shells, "|"),
		Description: "Completes commands, flags, task names (--tasks), and the hosts and groups of the inventory\n" +
			"given with -i (-l, --limit). The script asks nodefix itself, so it stays right as nodefix changes.\n" +
			"  bash:  nodefix completion bash > /etc/bash_completion.d/nodefix\n" +
			"         (or, for one shell: source <(nodefix completion bash))\n" +
			"  zsh:   nodefix completion zsh > \"${fpath[1]}/_nodefix\"   (then: compinit)\n" +
			"         (or, for one shell: source <(nodefix completion zsh), after compinit)\n" +
			"  fish:  nodefix completion fish > ~/.config/fish/completions/nodefix.fish",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return exitcode.With(exitcode.Usage, fmt.Errorf("completion: name one shell: %s", strings.Join(shells, ", ")))
			}
			script, ok := completionScripts[c.Args().First()]
			if !ok {
				return exitcode.With(exitcode.Usage, fmt.Errorf("completion %q: nodefix completes %s", c.Args().First(), strings.Join(shells, ", ")))
			}
			_, err := io.WriteString(c.App.Writer, script)
			return err
		},
	}
}

// The scripts hand the line up to the cursor to `nodefix __complete` (see
// complete.go), run as the line names the program, and show what it
// prints: "word<TAB>description" lines, or ":files" for the shell's own
// file name completion.
var completionScripts = map[string]string{
	"bash": `# bash completion for nodefix (nodefix completion bash)
# Install: nodefix completion bash > /etc/bash_completion.d/nodefix
# or, for the current shell: source <(nodefix completion bash)
_nodefix() {
    local line=${COMP_LINE:0:COMP_POINT}
    local prog=${COMP_WORDS[0]}
    [[ $prog == "~/"* ]] && prog=$HOME/${prog#"~/"}
    local IFS=$'\n'
    local -a out
    out=($("$prog" __complete "${COMP_WORDS[0]}" "$line" 2>/dev/null))
    COMPREPLY=()
    # ":files": complete -o default below lets readline complete file names.
    [[ ${out[0]} == :files ]] && return
    # bash replaces only the part of the word after its last
    # COMP_WORDBREAKS character (":" and "=" among them): a host pattern
    # such as kube_node:!node01 would lose its start. Cut it off the
    # candidates.
    local word=${line##*[[:space:]]}
    local rest=$word
    [[ $COMP_WORDBREAKS == *:* ]] && rest=${rest##*:}
    [[ $COMP_WORDBREAKS == *=* ]] && rest=${rest##*=}
    local keep=${word%"$rest"}
    local c
    for c in "${out[@]}"; do
        c=${c%%$'\t'*}
        COMPREPLY+=("${c#"$keep"}")
    done
}
complete -o default -F _nodefix nodefix
`,
	"zsh": `#compdef nodefix
# zsh completion for nodefix (nodefix completion zsh)
# Install: nodefix completion zsh > "${fpath[1]}/_nodefix", then compinit
# or, for the current shell (after compinit): source <(nodefix completion zsh)
_nodefix() {
    local prog=${words[1]/#\~/$HOME}
    local line="${(j: :)words[1,CURRENT-1]} ${PREFIX}"
    local -a out cands descs
    out=("${(@f)$("$prog" __complete "${words[1]}" "$line" 2>/dev/null)}")
    if [[ ${out[1]} == :files ]]; then
        _files
        return
    fi
    local l
    for l in "${out[@]}"; do
        [[ -n $l ]] || continue
        cands+=("${l%%$'\t'*}")
        if [[ $l == *$'\t'* ]]; then
            descs+=("${l%%$'\t'*}  -- ${l#*$'\t'}")
        else
            descs+=("$l")
        fi
    done
    (( ${#cands} )) && compadd -l -d descs -- "${cands[@]}"
}
if [[ "${funcstack[1]}" == _nodefix ]]; then
    _nodefix "$@"
else
    compdef _nodefix nodefix
fi
`,
	"fish": `# fish completion for nodefix (nodefix completion fish)
# Install: nodefix completion fish > ~/.config/fish/completions/nodefix.fish
# or, for the current shell: nodefix completion fish | source
function __nodefix_complete
    set -l prog (commandline -opc)[1]
    set -l out (command $prog __complete $prog (commandline -cp) 2>/dev/null)
    if test "$out[1]" = ":files"
        __fish_complete_path (commandline -ct)
        return
    end
    printf '%s\n' $out
end
complete -c nodefix -f -a '(__nodefix_complete)'
`,
}
