// Command redisload is a load and latency test harness for Redis pub/sub:
// it runs N event-bridge instances against one Redis, publishes randomized
// market-data events at a controlled rate, and prints a pass/fail verdict.
//
// main only wires signals to a context; run does everything else, so that
// tests drive the whole command in-process. Each subcommand has a file of
// its own (run.go, compare.go, capacity.go); flags.go holds the load run's
// flags and their mapping to the library, outputs.go the report files,
// exit.go the exit codes.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// quietLogger drops go-redis's own log lines (pool dial retries and the
// like): every failure reaches the user once, as redisload's error or count.
type quietLogger struct{}

// Printf drops the line.
func (quietLogger) Printf(context.Context, string, ...any) {}

// main wires signals and the process's streams to run, and exits with
// what run returns: everything else is testable in-process.
func main() {
	redis.SetLogger(quietLogger{})
	// SIGHUP is a dropped SSH session: the report must still be written,
	// so it ends the run like Ctrl-C does.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		// After the first signal the run stops publishing and draining and
		// reports; restoring the default handling makes a second signal
		// end the process at once (the report files are written beside
		// their paths and renamed into place, so none is left truncated).
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to the subcommands and returns the exit code. compare and
// capacity have flags of their own; scenarios, help and version are the
// load run's flags spelled as words (as in go, git, kubectl), so they are
// translated rather than dispatched.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "compare":
			return runCompare(args[1:], stdout, stderr)
		case "capacity":
			return runCapacity(ctx, args[1:], stdout, stderr)
		case "clients":
			return runClients(ctx, args[1:], stdout, stderr)
		case "worker":
			return runWorker(ctx, args[1:], stderr)
		case "completion":
			return runCompletion(args[1:], stdout, stderr)
		case "report":
			return runReport(ctx, args[1:], stdout, stderr)
		case "cleanup":
			return runCleanup(ctx, args[1:], stdout, stderr)
		case "scenarios":
			args = append([]string{"--scenario=list"}, args[1:]...)
		case "help":
			if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
				return runHelpTopic(args[1], stdout, stderr)
			}
			args = append([]string{"--help"}, args[1:]...)
		case "version":
			args = append([]string{"--version"}, args[1:]...)
		}
	}
	return runLoad(ctx, args, stdout, stderr)
}
