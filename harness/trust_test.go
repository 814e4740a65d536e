package harness_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
)

// checkCells asserts the accounting identities that must hold in any run,
// healthy or not: in every cell of the matrix delivered + missing = sent
// and delivered ≤ sent; per instance and in total delivered + missing =
// expected; delivery never over 100 %; every latency sample is a genuine
// arrival.
func checkCells(t *testing.T, res *harness.Result) {
	t.Helper()
	var tot harness.Counts
	for _, ir := range res.Instances {
		var exp, del, miss uint64
		for j := range res.Instances {
			if j == ir.Index || !res.Matrix.Subscribed[ir.Index] {
				continue
			}
			c := res.Matrix.Cell(ir.Index, j)
			if c.Delivered > c.Sent || c.Delivered+c.Missing != c.Sent {
				t.Errorf("cell [%d][%d]: delivered %d + missing %d, sent %d", ir.Index, j, c.Delivered, c.Missing, c.Sent)
			}
			exp, del, miss = exp+c.Sent, del+c.Delivered, miss+c.Missing
		}
		if ir.Expected != exp || ir.Delivered != del || ir.Missing != miss || ir.Delivered+ir.Missing != ir.Expected {
			t.Errorf("instance %d: expected %d delivered %d missing %d; cells say %d, %d, %d",
				ir.Index, ir.Expected, ir.Delivered, ir.Missing, exp, del, miss)
		}
		if ir.DeliveryRate != nil && *ir.DeliveryRate > 100 {
			t.Errorf("instance %d: delivery %.3f%%", ir.Index, *ir.DeliveryRate)
		}
		// Every genuine arrival from another instance is timed once:
		// delivered, late-confirmed, duplicate or untracked.
		if want := int64(ir.Delivered + ir.LateConfirmed + ir.Duplicates + ir.Untracked); ir.Latency.Count != want {
			t.Errorf("instance %d: %d latency samples, want %d (delivered %d, late-confirmed %d, duplicates %d, untracked %d)",
				ir.Index, ir.Latency.Count, want, ir.Delivered, ir.LateConfirmed, ir.Duplicates, ir.Untracked)
		}
		tot.Delivered += ir.Delivered
		tot.Missing += ir.Missing
		tot.Expected += ir.Expected
	}
	if tot.Delivered != res.Totals.Delivered || tot.Missing != res.Totals.Missing || tot.Expected != res.Totals.Expected ||
		res.Totals.Delivered+res.Totals.Missing != res.Totals.Expected {
		t.Errorf("totals %+v do not add up: %d delivered, %d missing, %d expected", res.Totals.Counts, tot.Delivered, tot.Missing, tot.Expected)
	}
	if r := res.Totals.DeliveryRate; r != nil && *r > 100 {
		t.Errorf("delivery %.3f%%", *r)
	}
	if res.Latency.Max >= 10_000_000 {
		t.Errorf("a latency of %d µs: a forged send time became a sample", res.Latency.Max)
	}
}

// runBounded runs cfg (defaults applied) and checks what every run owes
// whatever the server does: it ended within duration + drain + MaxGrace,
// and its cells add up.
func runBounded(t *testing.T, cfg harness.Config) *harness.Result {
	t.Helper()
	start := time.Now()
	res := run(t, cfg)
	if took, bound := time.Since(start), cfg.Duration+cfg.DrainTimeout+harness.MaxGrace; took > bound {
		t.Errorf("the run took %v, beyond its bound %v", took, bound)
	}
	checkCells(t, res)
	return res
}

// learnRunID reads the run ID off the first genuine message on a channel,
// as anyone who can subscribe can.
func learnRunID(ctx context.Context, rc *redis.Client, channel string) (string, *redis.Message, error) {
	ps := rc.Subscribe(ctx, channel)
	defer ps.Close()
	for {
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			return "", nil, err
		}
		var env struct {
			Source string `json:"source"`
		}
		if json.Unmarshal([]byte(m.Payload), &env) == nil && strings.HasPrefix(env.Source, "redisload-") {
			id := strings.TrimPrefix(env.Source, "redisload-")
			return id[:strings.LastIndex(id, "-")], m, nil
		}
	}
}

// Forged traffic beside a run with real loss: messages that claim to come
// from the run's instances (a leading-zero index, an index beyond the run,
// a sequence number beyond what the source published, one of 2^63, a send
// time of 1 ns, a wrong tag), a foreign message and a replay. None of them
// changes the run's own accounting: the forged are counted as forged at
// every instance, the foreign as foreign, the replay as a duplicate, and
// the real loss stays visible.
func TestForgedTrafficCannotSkewAccounting(t *testing.T) {
	srv := redistest.StartOwn(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	const n, prefix = 3, "forge:"
	now := time.Now().UnixNano()
	type attack struct{ id, seq, sent, tag string }
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		run, genuine, err := learnRunID(ctx, rc, prefix+"ticker")
		if err != nil {
			done <- err
			return
		}
		id := func(s string) string { return "redisload-" + run + "-" + s }
		forged := []attack{
			{id("01"), "1", fmt.Sprint(now), ""},                         // leading zero: "instance 1"
			{id("5"), "1", fmt.Sprint(now), ""},                          // no such instance
			{id("2"), "1000000", fmt.Sprint(now), ""},                    // beyond what 2 published
			{id("2"), "9223372036854775808", fmt.Sprint(now), ""},        // 2^63
			{id("2"), "1", "1", ""},                                      // a 56-year latency
			{id("0"), "1", fmt.Sprint(now), `,"tag":"0123456789abcdef"`}, // a wrong tag
			{id("1"), "1", fmt.Sprint(now), ""},                          // no tag at all
		}
		for _, a := range forged {
			msg := `{"source":"` + a.id + `","seq":` + a.seq + `,"sent_ns":` + a.sent + a.tag +
				`,"type":"ticker","timestamp":1,"data":{}}`
			if err := rc.Publish(ctx, prefix+"ticker", msg).Err(); err != nil {
				done <- err
				return
			}
		}
		// A message of another publisher, and a replay of a genuine one.
		if err := rc.Publish(ctx, prefix+"ticker", `{"type":"ticker","data":{},"timestamp":1,"source":"someone-else"}`).Err(); err != nil {
			done <- err
			return
		}
		if err := rc.Publish(ctx, prefix+"ticker", genuine.Payload).Err(); err != nil {
			done <- err
			return
		}
		// Real loss: instance 1's subscriber is cut off from outside.
		time.Sleep(500 * time.Millisecond)
		done <- rc.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes").Err()
		_ = id
	}()
	res := run(t, harness.Config{Instances: n, Duration: 3 * time.Second, Rate: 400, EventTypes: []string{"ticker"},
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: prefix,
			Reconnect: bridge.ReconnectOptions{BaseDelay: 50 * time.Millisecond, MaxDelay: 100 * time.Millisecond}}})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkCells(t, res)
	for _, ir := range res.Instances {
		if ir.Forged != 7 || ir.Foreign != 1 || ir.SelfReceived != 0 {
			t.Errorf("instance %d: forged %d foreign %d self-received %d, want 7, 1, 0", ir.Index, ir.Forged, ir.Foreign, ir.SelfReceived)
		}
	}
	// The replay is a duplicate at the two instances that are not its
	// source (the source drops it as its own echo).
	if res.Totals.Duplicates != 2 || res.Totals.Forged != 3*7 {
		t.Errorf("duplicates %d forged %d, want 2 and 21", res.Totals.Duplicates, res.Totals.Forged)
	}
	if res.Totals.Missing == 0 || *res.Totals.DeliveryRate >= 100 {
		t.Errorf("the real loss is hidden: missing %d, delivery %.3f%%", res.Totals.Missing, *res.Totals.DeliveryRate)
	}
	if res.Totals.SeqGaps > res.Totals.Expected {
		t.Errorf("seq gaps %d beyond what was expected (%d): a forged sequence number opened a gap", res.Totals.SeqGaps, res.Totals.Expected)
	}
	var forgedWarning bool
	for _, w := range res.Warnings {
		forgedWarning = forgedWarning || strings.Contains(w, "21 messages claimed to come from this run's instances")
	}
	if !forgedWarning {
		t.Errorf("no warning about the forged messages: %q", res.Warnings)
	}
}

// Without tags, the index, sequence and send-time checks alone still keep
// a forgery with plausible numbers from being delivered twice or early.
func TestForgedSequenceWithoutTagsIsBounded(t *testing.T) {
	srv := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	const prefix = "forge2:"
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		run, _, err := learnRunID(ctx, rc, prefix+"ticker")
		if err != nil {
			done <- err
			return
		}
		// Far ahead of what instance 0 has published: without the bound,
		// its real messages after this would all count as duplicates.
		msg := `{"source":"redisload-` + run + `-0","seq":100000,"sent_ns":` + fmt.Sprint(time.Now().UnixNano()) +
			`,"type":"ticker","timestamp":1,"data":{}}`
		done <- rc.Publish(ctx, prefix+"ticker", msg).Err()
	}()
	res := run(t, harness.Config{Instances: 2, Duration: 2 * time.Second, Rate: 200, EventTypes: []string{"ticker"},
		DisableTags: true, Redis: bridge.Options{URL: srv.URL, KeyPrefix: prefix}})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkCells(t, res)
	if res.Instances[1].Forged != 1 || res.Totals.Duplicates != 0 || res.Totals.Missing != 0 || res.Totals.Delivered != res.Totals.Expected {
		t.Errorf("%+v: want the forgery counted once at instance 1, nothing else touched", res.Totals.Counts)
	}
}

// A server killed for good mid-run: no instance is connected at the end,
// each says why, the loss is counted, and the run ends in its bound.
func TestServerKilledMidRun(t *testing.T) {
	srv := redistest.StartOwn(t)
	time.AfterFunc(1500*time.Millisecond, func() { redistest.Kill(t, srv) })
	cfg := harness.Config{Instances: 3, Duration: 3 * time.Second, Rate: 300, DrainTimeout: time.Second,
		Redis: bridge.Options{URL: srv.URL}}.WithDefaults()
	res := runBounded(t, cfg)
	if res.Totals.Connected != 0 {
		t.Errorf("%d of 3 instances connected after the server died", res.Totals.Connected)
	}
	for _, ir := range res.Instances {
		if ir.Connected || !strings.Contains(ir.NotConnected, "never subscribed again") {
			t.Errorf("instance %d: connected %v (%q)", ir.Index, ir.Connected, ir.NotConnected)
		}
	}
	if res.Timeline.Unrecovered != 3 || res.Totals.PublishErrors == 0 {
		t.Errorf("unrecovered %d, publish errors %d: want 3 and some", res.Timeline.Unrecovered, res.Totals.PublishErrors)
	}
}

// A server frozen (SIGSTOP) for longer than the run, with one event per
// pipeline: publishing stops at its deadline, a frozen round trip is
// interrupted, and the run ends within duration + drain + grace with no
// instance counted as connected.
func TestServerFrozenPastTheRunEndsInTime(t *testing.T) {
	srv := redistest.StartOwn(t)
	time.AfterFunc(time.Second, func() { _ = srv.Inst.Freeze() })
	t.Cleanup(func() { _ = srv.Inst.Thaw() })
	cfg := harness.Config{Instances: 3, Duration: 2 * time.Second, Rate: 500, Pipeline: 1, DrainTimeout: time.Second,
		Redis: bridge.Options{URL: srv.URL}}.WithDefaults()
	res := runBounded(t, cfg)
	if res.Totals.Connected != 0 {
		t.Errorf("%d instances connected to a frozen server", res.Totals.Connected)
	}
	for _, ir := range res.Instances {
		if !strings.Contains(ir.NotConnected, "no answer at the end") {
			t.Errorf("instance %d: %q", ir.Index, ir.NotConnected)
		}
	}
	if res.Totals.PublishUnknown == 0 {
		t.Errorf("no publish with an unknown outcome: %+v", res.Totals.Counts)
	}
}

// A freeze longer than a publish's timeout, then a thaw: the
// publishes that timed out reach the subscribers after all. They are
// late-confirmed, not delivered: delivered never exceeds expected.
func TestTimedOutPublishesDeliveredLate(t *testing.T) {
	srv := redistest.StartOwn(t)
	time.AfterFunc(700*time.Millisecond, func() { _ = srv.Inst.Freeze() })
	time.AfterFunc(2200*time.Millisecond, func() { _ = srv.Inst.Thaw() })
	t.Cleanup(func() { _ = srv.Inst.Thaw() })
	res := run(t, harness.Config{Instances: 3, Duration: 3 * time.Second, Rate: 200, DrainTimeout: 3 * time.Second,
		Redis: bridge.Options{URL: srv.URL, PublishTimeout: 500 * time.Millisecond}})
	checkCells(t, res)
	if res.Totals.PublishUnknown == 0 || res.Totals.LateConfirmed == 0 {
		t.Fatalf("unknown %d, late-confirmed %d: want both, the timed-out publishes having been delivered",
			res.Totals.PublishUnknown, res.Totals.LateConfirmed)
	}
	if res.Totals.Delivered > res.Totals.Expected {
		t.Errorf("delivered %d > expected %d", res.Totals.Delivered, res.Totals.Expected)
	}
	// Each unknown publish reaches at most the other two instances.
	if res.Totals.LateConfirmed > 2*res.Totals.PublishUnknown {
		t.Errorf("late-confirmed %d > 2 × unknown %d", res.Totals.LateConfirmed, res.Totals.PublishUnknown)
	}
}

// Cancelled during a long drain (the subscribers lost messages in an
// outage, so the drain would wait all of its 30 s for them), Run returns
// at once with the partial result.
func TestCancelDuringDrainReturnsAtOnce(t *testing.T) {
	srv := redistest.StartOwn(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	time.AfterFunc(700*time.Millisecond, func() { _ = rc.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err() })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(3*time.Second, cancel) // well into the drain
	start := time.Now()
	res, err := harness.Run(ctx, harness.Config{Instances: 2, Duration: 1500 * time.Millisecond, Rate: 400,
		DrainTimeout: 30 * time.Second, Redis: bridge.Options{URL: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancelled mid-drain, Run took %v (drain timeout 30s)", took)
	}
	if !res.Interrupted || res.Drained || res.Totals.Missing == 0 {
		t.Errorf("interrupted %v drained %v missing %d: want an interrupted drain with messages missing", res.Interrupted, res.Drained, res.Totals.Missing)
	}
	checkCells(t, res)
}
