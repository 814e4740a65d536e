package main

// Exit codes and the one way every subcommand reports bad usage.

import (
	"fmt"
	"io"
)

// Exit codes, as docs/report.md's "Exit codes" section documents them.
const (
	exitPass        = 0
	exitFail        = 1
	exitUsage       = 2
	exitUnavailable = 3
	// exitOutput: the run finished, but a report could not be written;
	// distinct from a failed verdict, which a CI gate reads as "regressed".
	exitOutput      = 4
	exitInterrupted = 130
)

// usageErrors returns the usage-error reporter of command: one line naming
// the flag, then a pointer to its --help (the full usage would bury the
// line that matters), and the exit code for bad usage.
func usageErrors(stderr io.Writer, command string) func(format string, a ...any) int {
	return func(format string, a ...any) int {
		fmt.Fprintf(stderr, command+": "+format+"\n", a...)
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", command)
		return exitUsage
	}
}
