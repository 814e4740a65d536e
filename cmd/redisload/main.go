// Command redisload is a load and latency test harness for Redis pub/sub:
// it runs N event-bridge instances against one Redis, publishes randomized
// market-data events at a controlled rate, and prints a pass/fail verdict.
//
// main only wires signals to a context; run does everything else, so that
// tests drive the whole command in-process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// quietLogger drops go-redis's own log lines (pool dial retries and the
// like): every failure reaches the user once, as redisload's error or count.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

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
