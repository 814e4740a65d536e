package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
)

// cleanupOptions are what `redisload cleanup`'s flags set.
type cleanupOptions struct {
	redisURL, keyPrefix string
	dryRun, jsonOut     bool
	security            securityFlags
}

// newCleanupFlagSet declares `redisload cleanup`'s flags on o: the
// command parses them, and the completion scripts list them.
func newCleanupFlagSet(o *cleanupOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("redisload cleanup", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.redisURL, "redis-url", cmp.Or(os.Getenv("REDIS_URL"), "redis://"+bridge.DefaultAddr), "the Redis to clean (default $REDIS_URL, else the local one)")
	fs.StringVar(&o.keyPrefix, "key-prefix", bridge.DefaultKeyPrefix, "the runs' key prefix: streams under it are looked at")
	fs.BoolVar(&o.dryRun, "dry-run", false, "say what would be removed, remove nothing")
	fs.BoolVar(&o.jsonOut, "json", false, "write what was removed as JSON")
	o.security.register(fs)
	return fs
}

// runCleanup is `redisload cleanup`: remove what runs over streams left
// behind (a run takes out what it added, unless it crashed or lost its
// server). Exit 0 (done, or nothing to do), 2 on bad usage, 3 when the
// server cannot be read or changed.
func runCleanup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o cleanupOptions
	fs := newCleanupFlagSet(&o)
	usageErr := usageErrors(stderr, "redisload cleanup")
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			fmt.Fprint(stdout, "Usage: redisload cleanup [--redis-url URL] [--key-prefix P] [--dry-run] [--json]\n\n"+
				"Removes what crashed runs over streams (--transport=streams) left: every consumer group named\n"+
				"like a run's instance (redisload-...) on the streams under the key prefix, and the streams that\n"+
				"had no other group. A stream with anyone else's group, or none, is left alone.\n\n"+groupedUsages(fs, cleanupGroups))
			return exitPass
		}
		return usageErr("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (flags only)", fs.Arg(0))
	}
	opts := bridge.Options{URL: o.redisURL}
	if err := o.security.apply(&opts, o.redisURL, stderr); err != nil {
		return usageErr("%v", err)
	}
	if _, err := opts.RedisOptions(); err != nil {
		return usageErr("--redis-url: %v", err)
	}
	res, err := harness.CleanupStreams(ctx, opts, o.keyPrefix, o.dryRun)
	if err != nil {
		fmt.Fprintf(stderr, "redisload cleanup: %v\n", err)
		return exitUnavailable
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return exitOutput
		}
		return exitPass
	}
	verb := "removed"
	if o.dryRun {
		verb = "would remove"
	}
	fmt.Fprintf(stdout, "redisload cleanup: %s %d groups; streams deleted: %s; streams kept (other groups on them): %s\n",
		verb, res.GroupsRemoved, list(res.Deleted), list(res.Kept))
	return exitPass
}

// list writes names for a line: "none" for none.
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
