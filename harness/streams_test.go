package harness_test

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
)

// Over streams the accounting is the pub/sub one, exactly, at 3 and 5
// instances; the streams counted every entry the run added, trimmed none,
// and were deleted with their groups at the end: nothing is left.
func TestStreamsExact(t *testing.T) {
	srv := redistest.StartOwn(t)
	rc := srv.Client(t)
	// One type, one stream: in order too (checkExact); every type, eight.
	for n, types := range map[int][]string{3: {"ticker"}, 5: bridge.EventTypes} {
		prefix := "hs" + string(rune('0'+n)) + ":"
		res := run(t, harness.Config{Instances: n, Duration: time.Second, Rate: 300, EventTypes: types,
			Redis: bridge.Options{URL: srv.URL, KeyPrefix: prefix, Transport: bridge.TransportStreams}})
		checkExact(t, res)
		st := res.Streams
		if st == nil || len(st.Streams) != len(types) || st.Added != res.Totals.Published || st.Trimmed != 0 ||
			st.Deleted != len(types) || st.Redelivered != 0 || st.CleanupError != "" || res.Config.Transport != "streams" {
			t.Fatalf("%d instances: streams %+v, published %d, transport %q", n, st, res.Totals.Published, res.Config.Transport)
		}
		if len(res.Warnings) != 0 {
			t.Errorf("%d instances: warnings %v", n, res.Warnings)
		}
		if keys, err := rc.Keys(ctx(t), prefix+"*").Result(); err != nil || len(keys) != 0 {
			t.Errorf("%d instances: left in Redis: %v (%v)", n, keys, err)
		}
	}
}

// A stream that was there before the run is left there, without the
// run's groups, and the report says so.
func TestStreamsLeaveForeignStream(t *testing.T) {
	srv := redistest.StartOwn(t)
	rc := srv.Client(t)
	if err := rc.XAdd(ctx(t), &redis.XAddArgs{Stream: "hsf:ticker", Values: []any{"x", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	res := run(t, harness.Config{Instances: 2, Duration: 500 * time.Millisecond, Rate: 100,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "hsf:", Transport: bridge.TransportStreams}})
	st := res.Streams
	if !slices.Equal(st.Preexisting, []string{"hsf:ticker"}) || st.Deleted != 1 || st.GroupsRemoved != 2 {
		t.Fatalf("streams %+v", st)
	}
	groups, err := rc.XInfoGroups(ctx(t), "hsf:ticker").Result()
	if err != nil || len(groups) != 0 || !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "hsf:ticker existed before the run") }) {
		t.Errorf("groups left %v (%v); warnings %v", groups, err, res.Warnings)
	}
	if n, _ := rc.Exists(ctx(t), "hsf:trade").Result(); n != 0 {
		t.Error("the run's own stream was left")
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

// addedAll reports whether the streams hold every publish Redis
// acknowledged: as many entries as acknowledged publishes, and at most
// those whose outcome was unknown on top (sent as the server went down,
// no reply: some landed).
func addedAll(res *harness.Result) bool {
	t := res.Totals
	return res.Streams.Added >= t.Published && res.Streams.Added <= t.Published+t.PublishUnknown
}

// streamsOpts is a streams run's Redis options for faultRun, which fills
// in the rest.
func streamsOpts(maxLen int64) bridge.Options {
	return bridge.Options{Transport: bridge.TransportStreams, StreamMaxLen: maxLen}
}

// Every reader killed: each reconnects, and what was published while it
// was away arrives late (recovered), not lost; whatever was handed over
// and not acknowledged comes again, and the duplicates are among those.
func TestStreamsReaderKilledResumes(t *testing.T) {
	res := faultRun(t, harness.Config{Instances: 3, Duration: 2 * time.Second, Rate: 300, Redis: streamsOpts(0),
		Faults: []harness.Fault{{At: time.Second, Action: harness.FaultClientKill, Instance: harness.AllInstances}}})
	tl, st := res.Timeline, res.Streams
	if len(tl.Outages) != 3 || res.Totals.Missing != 0 || tl.LossOutsideOutages != 0 || res.Totals.Reconnects != 3 {
		t.Fatalf("outages %+v, missing %d, reconnects %d: want 3 outages, nothing missing", tl.Outages, res.Totals.Missing, res.Totals.Reconnects)
	}
	for _, o := range tl.Outages {
		// The reader waits at least the 50 ms backoff before it dials
		// again, while 200 events/s from the two others go on.
		if o.Missed != 0 || o.Recovered == 0 || o.RecoverySeconds == nil {
			t.Errorf("outage %+v: want nothing missed, something recovered", o)
		}
	}
	if tl.Recovered == 0 || res.Totals.Duplicates > st.Redelivered || st.Trimmed != 0 || st.Lost != 0 || st.Added != res.Totals.Published {
		t.Errorf("recovered %d, duplicates %d, streams %+v, published %d", tl.Recovered, res.Totals.Duplicates, st, res.Totals.Published)
	}
}

// A restart of a server with an append-only file keeps the streams and
// the groups' positions: nothing XADD acknowledged is gone, nothing is
// missing. The same restart without persistence loses the streams, and
// the report counts the entries gone with the server's data.
func TestStreamsRestart(t *testing.T) {
	cfg := harness.Config{Instances: 3, Duration: 3 * time.Second, Rate: 300, Redis: streamsOpts(0),
		Faults: []harness.Fault{{At: time.Second, Action: harness.FaultRestart, For: 500 * time.Millisecond}}}
	res := faultRun(t, cfg, "--appendonly", "yes", "--appendfsync", "everysec")
	st := res.Streams
	if res.Totals.Missing != 0 || st.Lost != 0 || !addedAll(res) || len(res.Timeline.Outages) != 3 ||
		res.Totals.PublishErrors+res.Totals.PublishUnknown == 0 {
		t.Fatalf("with AOF: missing %d, streams %+v, published %d (+%d unknown), %d outages, %d publishes failed",
			res.Totals.Missing, st, res.Totals.Published, res.Totals.PublishUnknown, len(res.Timeline.Outages), res.Totals.PublishErrors+res.Totals.PublishUnknown)
	}
	// Without persistence, what the streams held before the restart is
	// gone: about a second's worth at 300/s.
	res = faultRun(t, cfg)
	st = res.Streams
	if st.Lost < 200 || st.Lost+st.Added != res.Totals.Published+res.Totals.PublishUnknown && st.Lost+st.Added != res.Totals.Published ||
		!slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "lost with the server's data") }) {
		t.Errorf("without AOF: streams %+v, published %d, warnings %v", st, res.Totals.Published, res.Warnings)
	}
}

// A reader slower than MAXLEN allows loses what was trimmed before it
// read it: counted as missing for that instance alone, outside any outage
// (its connection never broke), and the report names the cause.
func TestStreamsTrimmedIsLoss(t *testing.T) {
	res := faultRun(t, harness.Config{Instances: 3, Duration: 3 * time.Second, Rate: 600, Redis: streamsOpts(10),
		Faults: []harness.Fault{{At: 500 * time.Millisecond, Action: harness.FaultSlowConsumer, Instance: 2,
			For: 2 * time.Second, Delay: 10 * time.Millisecond}}})
	st := res.Streams
	if st.Trimmed == 0 || res.Instances[2].Missing == 0 || res.Instances[0].Missing != 0 || res.Instances[1].Missing != 0 ||
		len(res.Timeline.Outages) != 0 || res.Timeline.LossOutsideOutages != res.Instances[2].Missing {
		t.Fatalf("streams %+v; missing %d %d %d; outages %+v", st, res.Instances[0].Missing, res.Instances[1].Missing,
			res.Instances[2].Missing, res.Timeline.Outages)
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "MAXLEN ~10 trimmed") }) {
		t.Errorf("no warning naming MAXLEN: %v", res.Warnings)
	}
}

// Cleanup removes what crashed runs left under a prefix: the runs' groups
// everywhere, the streams that had no other group; it leaves streams of
// others (with a group of their own, or none), and those under another
// prefix. A dry run says the same and changes nothing.
func TestCleanupStreams(t *testing.T) {
	srv := redistest.StartOwn(t)
	rc := srv.Client(t)
	group := func(stream, name string) {
		if err := rc.XGroupCreateMkStream(ctx(t), stream, name, "$").Err(); err != nil {
			t.Fatal(err)
		}
	}
	group("cl:ticker", "redisload-ab12-0")
	group("cl:ticker", "redisload-ab12-1")
	group("cl:trade", "redisload-ab12-0")
	group("cl:trade", "billing")
	if err := rc.XAdd(ctx(t), &redis.XAddArgs{Stream: "cl:candle", Values: []any{"x", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	group("other:ticker", "redisload-ab12-0")
	want := harness.Cleanup{Deleted: []string{"cl:ticker"}, Kept: []string{"cl:trade"}, GroupsRemoved: 3}
	for _, dry := range []bool{true, false} {
		got, err := harness.CleanupStreams(ctx(t), bridge.Options{URL: srv.URL}, "cl:", dry)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("dry run %v: %+v, %v; want %+v", dry, got, err, want)
		}
		n, _ := rc.Exists(ctx(t), "cl:ticker").Result()
		if dry != (n == 1) {
			t.Fatalf("dry run %v: cl:ticker exists: %d", dry, n)
		}
	}
	groups, err := rc.XInfoGroups(ctx(t), "cl:trade").Result()
	if err != nil || len(groups) != 1 || groups[0].Name != "billing" {
		t.Errorf("cl:trade groups %+v (%v): want billing's alone", groups, err)
	}
	for _, k := range []string{"cl:candle", "other:ticker"} {
		if n, _ := rc.Exists(ctx(t), k).Result(); n != 1 {
			t.Errorf("%s was removed", k)
		}
	}
}

// In a cluster each stream lives on its slot's master and is read there:
// exact over 16 channels a type; a failover of the busiest stream's
// master (CLUSTER FAILOVER: the replica is in sync when it takes over)
// takes its readers down and back, and nothing is missing: what was
// published while they were away is recovered from the group's position
// on the new master. Nothing is left on any node.
func TestStreamsCluster(t *testing.T) {
	inst := redistest.Cluster(t, 3, 1)
	cfg := harness.Config{Instances: 3, Duration: 3 * time.Second, Rate: 300, DrainTimeout: 3 * time.Second,
		Placement: harness.PlacementSpread, Deployment: inst,
		Faults: []harness.Fault{{At: 1500 * time.Millisecond, Action: harness.FaultFailover}},
		Redis: bridge.Options{URL: inst.URL, Transport: bridge.TransportStreams, ChannelsPerType: 4,
			Reconnect: bridge.ReconnectOptions{BaseDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond}}}.WithDefaults()
	res := runBounded(t, cfg)
	tot, st, tl := res.Totals, res.Streams, res.Timeline
	if len(tl.Faults) != 1 || tl.Faults[0].Error != "" {
		t.Fatalf("faults %+v", tl.Faults)
	}
	if tot.Missing != 0 || tot.Connected != 3 || tl.Unrecovered != 0 || st == nil || len(st.Streams) != 8 || st.Deleted != 8 ||
		st.Lost != 0 || st.CleanupError != "" || res.Config.SpreadOver != 0 {
		t.Fatalf("missing %d, connected %d, unrecovered %d, streams %+v, spread over %d", tot.Missing, tot.Connected, tl.Unrecovered, st, res.Config.SpreadOver)
	}
	// How many were published while they were away depends on how soon
	// they came back: the client-kill test pins recovery down.
	if len(tl.Outages) == 0 || !addedAll(res) {
		t.Errorf("outages %+v; %d entries added for %d published: want the failed-over master's readers down and back, every entry counted",
			tl.Outages, st.Added, tot.Published)
	}
	// What a crashed run would leave, on several masters: cleanup finds
	// it on each.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: inst.Nodes[:1]})
	defer cc.Close()
	left := []string{"crashed:candle", "crashed:orderbook", "crashed:ticker", "crashed:trade"}
	for _, k := range left {
		if err := cc.XGroupCreateMkStream(ctx(t), k, "redisload-dead-0", "$").Err(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := harness.CleanupStreams(ctx(t), bridge.Options{URL: inst.URL}, "crashed:", false)
	if err != nil || !slices.Equal(got.Deleted, left) || got.GroupsRemoved != 4 {
		t.Errorf("cleanup on the cluster: %+v, %v", got, err)
	}
	for _, addr := range inst.Nodes {
		c := redis.NewClient(&redis.Options{Addr: addr})
		keys, err := c.Keys(ctx(t), "*").Result()
		_ = c.Close()
		if err != nil || len(keys) != 0 {
			t.Errorf("node %s: left %v (%v)", addr, keys, err)
		}
	}
}

// A crash (SIGKILL) of a server with an append-only file loses nothing
// XADD acknowledged: Redis writes the file before it replies, so what it
// acknowledged is in the kernel's hands when the process dies; only a
// crash of the machine loses what appendfsync everysec had not synced
// yet, which no test here can cause. So: every entry published is in the
// streams at the end, exactly, and nothing is missing. Without the file
// the same crash loses the streams, which the restart test counts.
func TestStreamsCrashLosesNothingAcknowledged(t *testing.T) {
	res := faultRun(t, harness.Config{Instances: 3, Duration: 3 * time.Second, Rate: 300, Redis: streamsOpts(0),
		Faults: []harness.Fault{{At: 1500 * time.Millisecond, Action: harness.FaultCrash, For: 500 * time.Millisecond}}},
		"--appendonly", "yes", "--appendfsync", "everysec")
	st, tot := res.Streams, res.Totals
	if f := res.Timeline.Faults; len(f) != 1 || f[0].Error != "" || f[0].Detail != "server killed (SIGKILL); server started" {
		t.Fatalf("faults %+v", f)
	}
	if !addedAll(res) || st.Lost != 0 || tot.Missing != 0 || len(res.Timeline.Outages) != 3 ||
		tot.PublishErrors+tot.PublishUnknown == 0 {
		t.Errorf("published %d, added %d, lost %d, missing %d, %d outages, %d publishes failed while it was down",
			tot.Published, st.Added, st.Lost, tot.Missing, len(res.Timeline.Outages), tot.PublishErrors+tot.PublishUnknown)
	}
}

// A foreign writer on the run's streams (garbage, an entry of another
// shape, TypeScript-format events) is counted, as on pub/sub, and
// changes nothing else: every instance reads every entry through its own
// group.
func TestStreamsForeignWriter(t *testing.T) {
	srv := redistest.StartOwn(t)
	rc := srv.Client(t)
	const n, garbage, ts = 3, 4, 5
	done := make(chan error, 1)
	go func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for { // the barrier: every instance's group exists
			g, err := rc.XInfoGroups(c, "fxs:trade").Result()
			if err == nil && len(g) == n {
				break
			}
			if c.Err() != nil {
				done <- c.Err()
				return
			}
			time.Sleep(time.Millisecond)
		}
		add := func(stream string, values ...any) error {
			return rc.XAdd(c, &redis.XAddArgs{Stream: stream, Values: values}).Err()
		}
		for i := range garbage {
			if err := add("fxs:ticker", "e", "\x00garbage "+strconv.Itoa(i)); err != nil {
				done <- err
				return
			}
		}
		if err := add("fxs:ticker", "payload", "not an envelope field"); err != nil {
			done <- err
			return
		}
		for i := range ts {
			msg := `{"type":"trade","data":{"symbol":"BTC/USDT"},"timestamp":1700000000000,"source":` + strconv.Itoa(4000+i) + `}`
			if err := add("fxs:trade", "e", msg); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	res := run(t, harness.Config{Instances: n, Duration: time.Second, Rate: 100,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "fxs:", Transport: bridge.TransportStreams}})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, ir := range res.Instances {
		if ir.Malformed != garbage+1 || ir.Foreign != ts || ir.Delivered != ir.Expected || ir.Missing != 0 || ir.Errors != 0 {
			t.Errorf("instance %d: malformed %d (want %d), foreign %d (want %d): %+v", ir.Index, ir.Malformed, garbage+1, ir.Foreign, ts, ir.Counts)
		}
	}
	if st := res.Streams; st.Added != res.Totals.Published+garbage+1+ts || st.Deleted != 2 {
		t.Errorf("streams %+v: want the run's %d entries and the %d foreign ones added, both streams deleted", st, res.Totals.Published, garbage+1+ts)
	}
}

// Interrupted (Ctrl-C) mid-run, a run over streams still reports what
// it published, delivered it all, and takes its streams out.
func TestStreamsInterruptedCleansUp(t *testing.T) {
	srv := redistest.StartOwn(t)
	rc := srv.Client(t)
	c, cancel := context.WithCancel(context.Background())
	time.AfterFunc(400*time.Millisecond, cancel)
	res, err := harness.Run(c, harness.Config{Instances: 3, Duration: 20 * time.Second, Rate: 50,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "sx:", Transport: bridge.TransportStreams}})
	if err != nil {
		t.Fatal(err)
	}
	tot, st := res.Totals, res.Streams
	if !res.Interrupted || tot.Published == 0 || tot.Published >= tot.TargetEvents || tot.Delivered != tot.Expected || tot.Missing != 0 {
		t.Fatalf("interrupted %v, totals %+v", res.Interrupted, tot)
	}
	if st.Added != tot.Published || st.Deleted != 2 || st.CleanupError != "" {
		t.Errorf("streams %+v for %d published", st, tot.Published)
	}
	if keys, err := rc.Keys(ctx(t), "sx:*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("left: %v (%v)", keys, err)
	}
}
