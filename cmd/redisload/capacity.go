package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/capacity"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/provision"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/scenarios"
)

// capacityOptions are what `redisload capacity`'s flags set.
type capacityOptions struct {
	c                                                capacity.Config
	vary, eventTypes, format, output, mode, redisURL string
	prov                                             provision.Options
	sec                                              securityFlags
	spawn                                            int
	joinTimeout                                      time.Duration
	help                                             bool
}

// newCapacityFlagSet declares `redisload capacity`'s flags on f: the
// command parses them, and the completion scripts list them.
func newCapacityFlagSet(f *capacityOptions) *pflag.FlagSet {
	// Its own flag set: a sweep has limits per step, not a run's verdict
	// flags, and shares only where the server is and how to reach it.
	fs := pflag.NewFlagSet("redisload capacity", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.vary, "vary", "rate", "what the steps increase: rate (events/s at --instances) or instances (at --rate)")
	fs.Float64Var(&f.c.Start, "start", 0, "first step: events/s, or instances (default 1000 events/s, or 2 instances)")
	fs.Float64Var(&f.c.Factor, "factor", capacity.DefaultFactor, "multiply the load by this from step to step")
	fs.Float64Var(&f.c.Step, "step", 0, "add this instead of multiplying by --factor")
	fs.Float64Var(&f.c.Max, "max", 0, "last load tried (default 1000000 events/s, or 1000 instances)")
	fs.Var(newDurationValue(capacity.DefaultStepDuration, &f.c.StepDuration), "step-duration", "publishing time of each step")
	fs.IntVar(&f.c.Run.Instances, "instances", 5, "instances, when the rate varies")
	fs.Float64Var(&f.c.Run.Rate, "rate", 100, "events/s, when the instance count varies")
	fs.StringVar(&f.eventTypes, "event-types", strings.Join(harness.DefaultEventTypes, ","), "event types, or all")
	fs.Float64Var(&f.c.MinDelivery, "min-delivery", capacity.DefaultMinDelivery, "a step fails below this delivery rate, in percent (-1: no check)")
	fs.Var(newLimitValue(capacity.DefaultMaxP99, &f.c.MaxP99), "max-p99-latency", "a step fails above this p99 latency (-1: no check)")
	f.c.Resolution = capacity.DefaultResolution
	fs.Var(percentValue{&f.c.Resolution}, "resolution", "once a step fails, bisect between it and the last pass until they are this close, in percent of the load (5 or 5%; -1: no bisection)")
	fs.Float64Var(&f.c.MinAchievedPct, "min-achieved", capacity.DefaultMinAchievedPct, "a step fails when it publishes less than this share of its target rate, in percent (-1: no check)")
	fs.StringVar(&f.mode, "redis", "", "auto, url, server, container, embedded, cluster or sentinel, as for a run")
	// A sweep of a cluster takes a run's cluster flags.
	registerClusterFlags(fs, &f.prov, &f.c.Run)
	fs.StringVar(&f.redisURL, "redis-url", os.Getenv("REDIS_URL"), "Redis URL (default $REDIS_URL)")
	fs.StringArrayVar(&f.prov.ServerArgs, "redis-server-arg", nil, "extra redis-server argument in server mode")
	// Credentials and TLS as for a run, by the same code: a sweep reaches
	// the same servers.
	f.sec.register(fs)
	fs.StringVar(&f.c.Run.Redis.KeyPrefix, "key-prefix", bridge.DefaultKeyPrefix, "channel prefix")
	fs.IntVar(&f.spawn, "spawn-workers", 0, "run every step on this many worker processes started here, so that the generator's CPU is theirs")
	fs.DurationVar(&f.joinTimeout, "join-timeout", 30*time.Second, "with --spawn-workers: how long a step waits for them")
	fs.StringVar(&f.format, "format", "table", strings.Join(report.Formats(report.Capacity), ", "))
	fs.StringVarP(&f.output, "output", "o", "", "write the table to this file instead of standard output")
	fs.BoolVarP(&f.help, "help", "h", false, "show this help")
	return fs
}

// runCapacity is `redisload capacity`: step the load up until a step
// breaks a limit, and print the capacity table. Exit 0 when a sustainable
// step was found, 1 when even the first failed, 2 on bad usage, 3 when
// Redis cannot be reached, 130 when interrupted.
func runCapacity(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f capacityOptions
	fs := newCapacityFlagSet(&f)
	usageErr := usageErrors(stderr, "redisload capacity")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	// REDISLOAD_<FLAG> as for a run: a CI job's settings without a long
	// command line; the command line wins.
	if !f.help {
		if err := applyEnv(fs, os.LookupEnv); err != nil {
			return usageErr("%v", err)
		}
	}
	c, vary, eventTypes, format, output, mode, redisURL := f.c, f.vary, f.eventTypes, f.format, f.output, f.mode, f.redisURL
	prov, sec, spawn, joinTimeout := f.prov, f.sec, f.spawn, f.joinTimeout
	if f.help {
		fmt.Fprintln(stdout, "Usage: redisload capacity [flags]\n\nSteps the load up, a short measured run per step, and stops at the knee:")
		fmt.Fprintln(stdout, "the first step whose delivery, p99 latency or achieved rate breaks its limit.")
		fmt.Fprint(stdout, "\n"+groupedUsages(fs, capacityGroups))
		return exitPass
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (flags only)", fs.Arg(0))
	}
	if fs.Changed("redis-url") && strings.TrimSpace(redisURL) == "" {
		return usageErr("--redis-url is empty: give a URL, or leave the flag out to find or start a server (--redis=auto)")
	}
	if err := formatError(report.Capacity, format); err != nil {
		return usageErr("%v", err)
	}
	c.Vary = capacity.Vary(vary)
	types, err := harness.ParseEventTypes(eventTypes)
	if err != nil {
		return usageErr("--event-types: %v", err)
	}
	c.Run.EventTypes = types
	if mode != "" {
		if prov.Mode, err = provision.ParseMode(mode); err != nil {
			return usageErr("--redis: %v", err)
		}
	}
	// Provisioning as for a run: a URL, or a server of its own.
	prov.URL = redisURL
	if err := checkClusterFlags(prov); err != nil {
		return usageErr("%v", err)
	}
	// The library checks the sweep and its first step's run; its field
	// errors come back in the flags' words.
	if err := c.WithDefaults().Validate(); err != nil {
		return usageErr("%v", flagError(err))
	}
	if err := sec.apply(&c.Run.Redis, redisURL, stderr); err != nil {
		return usageErr("%v", err)
	}
	if spawn < 0 || joinTimeout <= 0 {
		return usageErr("--spawn-workers must not be negative, and --join-timeout must be positive")
	}
	// The table replaces an existing file only once it is complete, as a
	// run's reports do.
	out := stdout
	var files pendingFiles
	defer files.abort()
	if output != "" {
		p, err := files.create(ctx, "output", output)
		if err != nil {
			return usageErr("%v", err)
		}
		out = p
	}
	prov.Persistent = f.c.Run.Redis.Transport == bridge.TransportStreams // as a run's: see run.go
	inst, err := provision.Start(ctx, prov)
	if err != nil {
		fmt.Fprintf(stderr, "redisload capacity: %v\n", err)
		return exitUnavailable
	}
	defer inst.Close()
	scenarios.UseDeployment(&c.Run, inst)
	if spawn > 0 {
		stop, runner, err := sweepWorkers(spawn, c.Run, joinTimeout, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "redisload capacity: %v\n", err)
			return exitUnavailable
		}
		defer stop()
		c.Runner = runner
	}
	fmt.Fprintf(stderr, "redisload capacity: varying %s on %s...\n", c.WithDefaults().Vary, bridge.RedactURL(inst.URL))
	// One line per step on stderr as it finishes: a sweep takes minutes,
	// and its table comes only at the end.
	res, err := capacity.Run(ctx, c, func(s capacity.Step) {
		state := "pass"
		if !s.Passed {
			state = "FAIL: " + s.Failed
		}
		fmt.Fprintf(stderr, "redisload capacity: %d instances at %.0f events/s: %.2f%% delivered, p99 %s: %s\n",
			s.Instances, s.TargetRate, s.DeliveryPct, msText(s.P99us), state)
	})
	switch {
	// Interrupted, the steps measured so far are still a table worth
	// having.
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(stderr, "redisload capacity: interrupted")
		if res != nil && len(res.Steps) > 0 && renderCapacity(res, format, out) == nil {
			_ = files.commit()
		}
		return exitInterrupted
	case errors.Is(err, harness.ErrUnsupported):
		fmt.Fprintf(stderr, "redisload capacity: %v\n", err)
		return exitUsage
	case errors.Is(err, harness.ErrUnavailable):
		fmt.Fprintf(stderr, "redisload capacity: %s\n", explainConnectError(bridge.RedactURL(inst.URL), err))
		return exitUnavailable
	case err != nil:
		fmt.Fprintf(stderr, "redisload capacity: %v\n", err)
		return exitUnavailable // as for a load run: the sweep could not be set up
	}
	if err := renderCapacity(res, format, out); err != nil {
		fmt.Fprintf(stderr, "redisload capacity: writing the table: %v\n", err)
		return exitOutput
	}
	if err := files.commit(); err != nil {
		fmt.Fprintf(stderr, "redisload capacity: writing the table: %v\n", err)
		return exitOutput
	}
	if res.Sustainable < 0 {
		return exitFail
	}
	return exitPass
}

// renderCapacity writes res in format (checked against the registry).
func renderCapacity(res *capacity.Result, format string, w io.Writer) error {
	r, err := report.New(format, report.Capacity, report.Input{Capacity: res, Version: toolVersion()})
	if err != nil {
		return err
	}
	return r(w)
}
