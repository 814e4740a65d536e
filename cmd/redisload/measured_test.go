package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/internal/redistest"
)

// The verdict must never PASS a run that measured nothing, however many
// checks are switched off: every flag that turns a check off (and a
// fault scenario's thresholds, which turn off errors and delivery), crossed
// with a ground truth in which nothing or too little was measured. Each
// truth is made from outside, as a user would meet it: a real ACL user,
// a server frozen before the first publish, subscribers killed whose
// permission was revoked. The exit code is the documented one: 3 where
// the server refuses the run up front, 1 where the run ran and failed.
func TestTheVerdictCannotBeMadeToLie(t *testing.T) {
	// A fault scenario's thresholds without its faults: delivery and
	// errors off, loss bounded by outages, recovery bounded.
	const faultThresholds = "thresholds:\n  min_delivery: -1\n  max_errors: -1\n  max_recovery: 2s\n  loss_only_in_outages: true\n"
	// The server frozen from the start to past the end of publishing.
	const frozen = "faults:\n  - at: 0s\n    action: hang\n    for: 3s\n"
	offs := map[string][]string{
		"defaults":             nil,
		"errors off":           {"--max-errors=-1"},
		"errors, delivery off": {"--max-errors=-1", "--min-delivery=-1"},
		"every limit off":      {"--max-errors=-1", "--min-delivery=-1", "--max-avg-latency=-1", "--max-p99-latency=-1", "--max-duplicates=-1"},
		"fault thresholds":     nil, // in the run's scenario file
	}
	type truth struct {
		// args runs the truth on a server of its own; it may start what
		// makes the truth happen and return the flags of the run.
		args func(t *testing.T) []string
		// faults is the fault script of its scenario file, if any.
		faults string
		code   int
		// says is what stderr or stdout must say.
		says string
	}
	truths := map[string]truth{
		// ACL DRYRUN allowed: refused before anything connects, naming
		// the command.
		"no publish permission, said up front": {func(t *testing.T) []string {
			srv := redistest.StartOwn(t)
			return []string{"--redis-url=" + srv.ACLUser(t, "nopub", "&*", "+@all", "-publish")}
		}, "", exitUnavailable, "refused PUBLISH ws:ticker, ws:trade: This user has no permissions to run the 'publish' command"},
		// Without DRYRUN every publish is refused as it is sent: counted
		// by reason, and nothing was measured.
		"no publish permission, found by publishing": {func(t *testing.T) []string {
			srv := redistest.StartOwn(t)
			return []string{"--redis-url=" + srv.ACLUser(t, "nopub", "&*", "+@all", "-publish", "-acl")}
		}, "", exitFail, "40 publishes not accepted: NOPERM this user has no permissions to run the 'publish' command"},
		// One channel refused at SUBSCRIBE: the server's words, naming it,
		// at once (it used to wait out the connect timeout).
		"no subscribe permission on one channel": {func(t *testing.T) []string {
			srv := redistest.StartOwn(t)
			return []string{"--redis-url=" + srv.ACLUser(t, "half", "&ws:ticker", "+@all", "-acl")}
		}, "", exitUnavailable, "refused SUBSCRIBE ws:trade: NOPERM"},
		"server frozen before the first publish": {func(t *testing.T) []string {
			return []string{"--redis=server", "--drain-timeout=200ms"}
		}, frozen, exitFail, "nothing published"},
		// Every subscriber killed once subscribed, its permission to
		// subscribe revoked first, so that none comes back.
		"all subscribers killed": {func(t *testing.T) []string {
			srv := redistest.StartOwn(t)
			url := srv.ACLUser(t, "victim", "&*", "+@all", "-acl")
			admin := srv.Client(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			t.Cleanup(func() { cancel(); <-done })
			go func() {
				defer close(done)
				for ctx.Err() == nil {
					m, err := admin.PubSubNumSub(ctx, "ws:ticker", "ws:trade").Result()
					if err == nil && m["ws:ticker"] == 3 && m["ws:trade"] == 3 {
						admin.Do(ctx, "ACL", "SETUSER", "victim", "resetchannels")
						admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub")
						return
					}
					time.Sleep(time.Millisecond)
				}
			}()
			return []string{"--redis-url=" + url}
		}, "", exitFail, "Overall Status: FAIL"},
	}
	for tname, tr := range truths {
		for oname, off := range offs {
			t.Run(tname+"/"+oname, func(t *testing.T) {
				t.Parallel()
				args := append(tr.args(t), "--duration=1", "--rate=40")
				args = append(args, off...)
				if file := tr.faults + map[bool]string{true: faultThresholds}[oname == "fault thresholds"]; file != "" {
					path := filepath.Join(t.TempDir(), "scenario.yaml")
					if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
						t.Fatal(err)
					}
					args = append(args, "--scenario-file="+path)
				}
				code, out, errs := invoke(t, context.Background(), args...)
				if code != tr.code || strings.Contains(out, "Overall Status: PASS") {
					t.Fatalf("exit %d, want %d\n%s\n%s", code, tr.code, out, errs)
				}
				if !strings.Contains(out+errs, tr.says) {
					t.Fatalf("lacks %q:\n%s\n%s", tr.says, out, errs)
				}
				if tr.code == exitUnavailable && strings.Count(errs, "\n") > 3 {
					t.Fatalf("the refusal is not one clear line:\n%s", errs)
				}
			})
		}
	}
}
