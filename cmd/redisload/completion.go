package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/provision"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/scenarios"
)

// The completion scripts are generated from the very flag sets the
// subcommands parse (newFlagSet, newCapacityFlagSet, ...), so that a flag
// added to a command is offered without anyone remembering to: the
// scripts hold no list of their own, only the values of the flags whose
// values are a closed set.

// completionShells are the shells `redisload completion` writes for.
var completionShells = []string{"bash", "zsh", "fish"}

// subcommands are the words after `redisload` that are not flags of a
// run, with what each does, for the scripts to offer.
var subcommands = [][2]string{
	{"compare", "two saved JSON reports side by side"},
	{"report", "render a saved JSON report again, in any format"},
	{"capacity", "step the load up to the knee"},
	{"clients", "every client library's adapter through every fault, in one table"},
	{"worker", "run instances of runs announced on a control Redis"},
	{"cleanup", "remove what crashed runs over streams left in Redis"},
	{"scenarios", "list the named scenarios"},
	{"completion", "print a shell completion script"},
	{"version", "print the version"},
	{"help", "print the help"},
}

// completionCommand is one command's flags, and the values of those whose
// values are a closed set.
type completionCommand struct {
	name   string // "" for a run: flags with no subcommand
	fs     *pflag.FlagSet
	values map[string][]string // flag name → its values
}

// completionCommands builds every command's flag set as the command does.
func completionCommands() []completionCommand {
	var modes []string
	for _, m := range provision.Modes {
		modes = append(modes, string(m))
	}
	var names []string
	for _, s := range scenarios.All() {
		names = append(names, s.Name)
	}
	types := append([]string{"all"}, bridge.EventTypes...)
	var ro options
	var co compareOptions
	var cp capacityOptions
	var wo workerOptions
	var rpo reportOptions
	var clo cleanupOptions
	var cl clientsOptions
	shared := map[string][]string{"redis": modes, "event-types": types, "pubsub": {"classic", "sharded"}, "transport": {"pubsub", "streams"},
		"placement": {"spread", "single"}}
	with := func(extra map[string][]string) map[string][]string {
		m := map[string][]string{}
		for k, v := range shared {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	return []completionCommand{
		{"", newFlagSet(&ro), with(map[string][]string{"format": report.Formats(report.Run), "scenario": append(names, "list"),
			"baseline-mismatch": {"refuse", "warn"}})},
		{"compare", newCompareFlagSet(&co), map[string][]string{"format": report.Formats(report.Compare)}},
		{"capacity", newCapacityFlagSet(&cp), with(map[string][]string{"format": report.Formats(report.Capacity),
			"vary": {"rate", "instances"}})},
		{"worker", newWorkerFlagSet(&wo), nil},
		{"report", newReportFlagSet(&rpo), map[string][]string{"format": report.Formats(report.Run)}},
		{"cleanup", newCleanupFlagSet(&clo), nil},
		{"clients", newClientsFlagSet(&cl), map[string][]string{"format": report.Formats(report.Clients)}},
	}
}

// writeCompletion writes the completion script of shell to w.
func writeCompletion(w io.Writer, shell string) error {
	cmds := completionCommands()
	switch shell {
	case "bash":
		return bashCompletion(w, cmds, false)
	case "zsh":
		return bashCompletion(w, cmds, true)
	case "fish":
		return fishCompletion(w, cmds)
	}
	return fmt.Errorf("completion: want one of %s, got %q", strings.Join(completionShells, ", "), shell)
}

// flagWords lists a command's flags as typed: --name, and -x for a
// shorthand; valued lists those that take a value.
func flagWords(fs *pflag.FlagSet) (words, valued []string) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		words = append(words, "--"+f.Name)
		if f.Shorthand != "" {
			words = append(words, "-"+f.Shorthand)
		}
		if f.NoOptDefVal == "" { // a flag that needs its value
			valued = append(valued, "--"+f.Name)
			if f.Shorthand != "" {
				valued = append(valued, "-"+f.Shorthand)
			}
		}
	})
	return words, valued
}

// bashCompletion writes a bash function, complete -F; for zsh the same
// through bashcompinit, as most Go tools without a zsh script of their own
// do.
func bashCompletion(w io.Writer, cmds []completionCommand, zsh bool) error {
	ew := &scriptBuffer{}
	if zsh {
		ew.printf("#compdef redisload\n# zsh completion for redisload: source <(redisload completion zsh)\n")
		ew.printf("autoload -U +X bashcompinit && bashcompinit\n")
	} else {
		ew.printf("# bash completion for redisload: source <(redisload completion bash)\n")
	}
	var subs []string
	for _, s := range subcommands {
		subs = append(subs, s[0])
	}
	ew.printf(`__redisload_flags() {
    case "$1" in
`)
	for _, c := range cmds {
		words, _ := flagWords(c.fs)
		ew.printf("    %q) echo %q ;;\n", c.name, strings.Join(words, " "))
	}
	ew.printf(`    esac
}
__redisload_valued() {
    case "$1:$2" in
`)
	for _, c := range cmds {
		_, valued := flagWords(c.fs)
		var pats []string
		for _, v := range valued {
			pats = append(pats, fmt.Sprintf("%q", c.name+":"+v))
		}
		if len(pats) > 0 {
			ew.printf("    %s) return 0 ;;\n", strings.Join(pats, "|"))
		}
	}
	ew.printf(`    esac
    return 1
}
__redisload_values() {
    case "$1:$2" in
`)
	for _, c := range cmds {
		keys := make([]string, 0, len(c.values))
		for k := range c.values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ew.printf("    %q) echo %q ;;\n", c.name+":--"+k, strings.Join(c.values[k], " "))
		}
	}
	ew.printf(`    esac
}
_redisload() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" cmd="" i flag
    [ "$COMP_CWORD" -gt 0 ] && prev="${COMP_WORDS[COMP_CWORD-1]}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            compare|capacity|clients|worker|completion|report|cleanup) cmd="${COMP_WORDS[i]}"; break ;;
            -*) ;;
            *) [ "${COMP_WORDS[i-1]}" = "=" ] || __redisload_valued "" "${COMP_WORDS[i-1]}" || break ;;
        esac
    done
    if [ "$cmd" = completion ]; then
        COMPREPLY=($(compgen -W %q -- "$cur"))
        return
    fi
    # The flag whose value is being typed: "--f v", or "--f=v", which
    # bash splits at the "=" into "--f" "=" "v".
    if [ "$cur" = "=" ]; then
        flag="$prev"; cur=""
    elif [ "$prev" = "=" ] && [ "$COMP_CWORD" -gt 1 ]; then
        flag="${COMP_WORDS[COMP_CWORD-2]}"
    elif __redisload_valued "$cmd" "$prev"; then
        flag="$prev"
    fi
    if [ -n "$flag" ]; then
        local values
        values="$(__redisload_values "$cmd" "$flag")"
        if [ -n "$values" ]; then
            COMPREPLY=($(compgen -W "$values" -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return
    fi
    if [ -z "$cmd" ] && [[ "$cur" != -* ]]; then
        COMPREPLY=($(compgen -W %q -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -W "$(__redisload_flags "$cmd")" -- "$cur"))
}
complete -F _redisload redisload
`, strings.Join(completionShells, " "), strings.Join(subs, " "))
	return ew.writeTo(w)
}

// fishCompletion writes one `complete` line per flag, conditioned on the
// subcommand.
func fishCompletion(w io.Writer, cmds []completionCommand) error {
	ew := &scriptBuffer{}
	ew.printf("# fish completion for redisload: redisload completion fish | source\n")
	var subs []string
	for _, s := range subcommands {
		subs = append(subs, s[0])
		ew.printf("complete -c redisload -n __fish_use_subcommand -f -a %s -d %s\n", s[0], fishQuote(s[1]))
	}
	ew.printf("complete -c redisload -n '__fish_seen_subcommand_from completion' -f -a %s\n",
		fishQuote(strings.Join(completionShells, " ")))
	for _, c := range cmds {
		cond := "'__fish_seen_subcommand_from " + c.name + "'"
		if c.name == "" {
			cond = "'not __fish_seen_subcommand_from " + strings.Join(subs, " ") + "'"
		}
		c.fs.VisitAll(func(f *pflag.Flag) {
			if f.Hidden {
				return
			}
			line := "complete -c redisload -n " + cond + " -l " + f.Name
			if f.Shorthand != "" {
				line += " -s " + f.Shorthand
			}
			if f.NoOptDefVal == "" {
				line += " -r"
				if v, ok := c.values[f.Name]; ok {
					line += " -f -a " + fishQuote(strings.Join(v, " "))
				}
			}
			usage, _, _ := strings.Cut(f.Usage, "\n")
			ew.printf("%s -d %s\n", line, fishQuote(usage))
		})
	}
	return ew.writeTo(w)
}

// scriptBuffer collects a script, written out whole at its end: one write,
// one error to check.
type scriptBuffer struct{ bytes.Buffer }

func (b *scriptBuffer) printf(format string, a ...any) { fmt.Fprintf(&b.Buffer, format, a...) }

func (b *scriptBuffer) writeTo(w io.Writer) error {
	_, err := w.Write(b.Bytes())
	return err
}

// fishQuote quotes s for fish: in single quotes, where only \ and ' are
// special.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// runCompletion is `redisload completion bash|zsh|fish`.
func runCompletion(args []string, stdout, stderr io.Writer) int {
	usageErr := usageErrors(stderr, "redisload completion")
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
		fmt.Fprintf(stdout, `Usage: redisload completion bash|zsh|fish

Prints a completion script for the shell: every subcommand, every flag of
each, and the values of flags with a fixed set (--format, --redis,
--scenario...). Load it with
  bash:  source <(redisload completion bash)
  zsh:   source <(redisload completion zsh)
  fish:  redisload completion fish | source
or install it where the shell loads completions from.
`)
		return exitPass
	}
	if len(args) != 1 || !slices.Contains(completionShells, args[0]) {
		return usageErr("want one shell, %s", strings.Join(completionShells, ", "))
	}
	if err := writeCompletion(stdout, args[0]); err != nil {
		fmt.Fprintf(stderr, "redisload completion: %v\n", err)
		return exitOutput
	}
	return exitPass
}
