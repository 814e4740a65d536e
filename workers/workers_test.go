package workers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/workers"
)

func TestMain(m *testing.M) {
	os.Exit(redistest.CheckLeaks(m.Run()))
}

// fleet runs n workers in this process against the control Redis at
// addr until ctx ends; wait waits for them.
func fleet(ctx context.Context, t *testing.T, addr string, n int, version string) (wait func()) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ctl := redis.NewClient(&redis.Options{Addr: addr})
			defer ctl.Close()
			err := workers.Serve(ctx, ctl, workers.WorkerOptions{Once: true, Version: version, JoinTimeout: 10 * time.Second})
			if err != nil && ctx.Err() == nil {
				t.Logf("worker: %v", err)
			}
		})
	}
	return wg.Wait
}

// coordinated runs cfg over n in-process workers joined from announced
// places, and returns the merged result.
func coordinated(t *testing.T, srv *redistest.Server, cfg harness.Config, n int) *harness.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wait := fleet(ctx, t, srv.Addr, n, "v1")
	res, err := workers.Coordinate(ctx, srv.Client(t), cfg, workers.CoordinatorOptions{Workers: n, Announce: true, Version: "v1"})
	wait()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A run over three workers that joined an announced run: exact, equal per
// instance to one process with the same seed, with a report per worker,
// and nothing left on the control Redis.
func TestCoordinatedRunIsExact(t *testing.T) {
	srv := redistest.StartOwn(t)
	cfg := harness.Config{Instances: 6, Duration: 2 * time.Second, Rate: 600, Seed: 11, EventTypes: bridge.EventTypes,
		Redis: bridge.Options{URL: srv.URL}, Series: true}.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	one, err := harness.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var told []harness.SeriesPoint // the live view, from the coordinator
	var sends int64
	cfg.Progress = func(p harness.SeriesPoint) {
		if p.Latencies == nil || p.Latencies.TotalCount() > int64(p.Delivered) || p.SendDelays == nil {
			t.Errorf("point %+v: no interval latencies or send delays, or more latencies than delivered", p)
		} else {
			sends += p.SendDelays.TotalCount()
		}
		// Every worker's instances, one by one, in order, adding up.
		var published, delivered uint64
		for j, ip := range p.Instances {
			if ip.Index != j {
				t.Errorf("point at %.1f s: instance %d at position %d", p.Seconds, ip.Index, j)
			}
			published, delivered = published+ip.Published, delivered+ip.Delivered
		}
		if len(p.Instances) != 6 || published != p.Published || delivered != p.Delivered {
			t.Errorf("point at %.1f s: instances %+v do not add up to %d published, %d delivered", p.Seconds, p.Instances, p.Published, p.Delivered)
		}
		p.Latencies, p.SendDelays, p.Instances = nil, nil, nil // the series keeps none
		told = append(told, p)
	}
	wait := fleet(ctx, t, srv.Addr, 3, "v1")
	ctl := srv.Client(t)
	res, err := workers.Coordinate(ctx, ctl, cfg, workers.CoordinatorOptions{Workers: 3, Announce: true, Version: "v1"})
	wait()
	if err != nil {
		t.Fatal(err)
	}
	tot := res.Totals
	if tot.Published != tot.TargetEvents || tot.Delivered != tot.Expected || tot.Missing != 0 || tot.Duplicates != 0 ||
		tot.Connected != 6 || tot.Forged != 0 || tot.Delivered != 5*tot.Published || res.Histogram.TotalCount() != int64(tot.Delivered) {
		t.Fatalf("totals %+v, %d latency samples", tot, res.Histogram.TotalCount())
	}
	for i, ir := range res.Instances {
		if ir.Published != one.Instances[i].Published || ir.Expected != one.Instances[i].Expected {
			t.Errorf("instance %d: published %d expected %d; one process %d, %d", i, ir.Published, ir.Expected,
				one.Instances[i].Published, one.Instances[i].Expected)
		}
	}
	if len(res.Workers) != 3 {
		t.Fatalf("%d worker reports", len(res.Workers))
	}
	// The series, merged by second from the three workers' intervals,
	// ends where the totals end.
	if len(res.Series) < 2 {
		t.Fatalf("%d series points", len(res.Series))
	}
	last := res.Series[len(res.Series)-1]
	var rate float64
	for _, p := range res.Series {
		rate = max(rate, p.PublishRate)
	}
	if last.Published != tot.Published || last.Delivered != tot.Delivered || last.Pending != 0 || rate < 400 || rate > 800 {
		t.Errorf("last point %+v (totals published %d delivered %d), peak publish rate %.0f/s for 600/s", last, tot.Published, tot.Delivered, rate)
	}
	// The live view was the same merge, shown as each second was complete.
	if sends != res.SendDelay.Count {
		t.Errorf("the live intervals hold %d send delays, the run %d", sends, res.SendDelay.Count)
	}
	// Each worker's round trips, merged: one for every publish accepted.
	if res.PublishRTT.Count != int64(tot.Published) {
		t.Errorf("%d publish round trips merged for %d published", res.PublishRTT.Count, tot.Published)
	}
	// And each receiver's transits: one for every delivery.
	if res.Transit.Count != res.Latency.Count || res.Transit.Count == 0 {
		t.Errorf("%d transits merged for %d latencies", res.Transit.Count, res.Latency.Count)
	}
	if !reflect.DeepEqual(told, res.Series) {
		t.Errorf("progress told %d points, the series has %d:\n%+v\n%+v", len(told), len(res.Series), told, res.Series)
	}
	covered := 0
	var published uint64
	for _, w := range res.Workers {
		covered += w.Hi - w.Lo
		published += w.Published
		if w.Lost != "" || w.CPUSeconds <= 0 || w.RSSBytes <= 0 || w.ClockUncertaintyUs < 0 {
			t.Errorf("worker %+v", w)
		}
	}
	if covered != 6 || published != tot.Published {
		t.Errorf("workers cover %d instances and published %d, want 6 and %d", covered, published, tot.Published)
	}
	if left, err := ctl.Keys(ctx, "redisload:ctl:*").Result(); err != nil || len(left) != 0 {
		t.Errorf("keys left on the control Redis: %v %v", left, err)
	}
}

// A worker of another version is refused with the reason, and the run
// goes on with those that match; too few matching workers is an error
// naming how many came.
func TestCoordinatorRefusesOtherVersions(t *testing.T) {
	srv := redistest.StartOwn(t)
	cfg := harness.Config{Instances: 2, Duration: 300 * time.Millisecond, Rate: 100, Redis: bridge.Options{URL: srv.URL}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var refused error
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctl := redis.NewClient(&redis.Options{Addr: srv.Addr})
		defer ctl.Close()
		refused = workers.Serve(ctx, ctl, workers.WorkerOptions{Once: true, Version: "v0", JoinTimeout: 5 * time.Second})
	}()
	_, err := workers.Coordinate(ctx, srv.Client(t), cfg, workers.CoordinatorOptions{Workers: 1, Announce: true, Version: "v1",
		JoinTimeout: 2 * time.Second})
	<-done
	if err == nil || !strings.Contains(err.Error(), "0 of 1 workers joined") {
		t.Errorf("coordinator: %v", err)
	}
	if refused == nil || !strings.Contains(refused.Error(), "runs redisload v0, the coordinator v1") {
		t.Errorf("worker: %v", refused)
	}
}

// A worker interrupted mid-run (its own signal: here its ctx) stops where
// it is and still reports: the run is marked interrupted, nobody is
// counted lost, and every cell adds up. A worker that dies instead is
// TestSpawnedWorkerKilledIsHonest's, in the command's tests (a process
// can be killed there).
func TestInterruptedWorkerReports(t *testing.T) {
	srv := redistest.StartOwn(t)
	cfg := harness.Config{Instances: 4, Duration: 2 * time.Second, Rate: 200, Redis: bridge.Options{URL: srv.URL}}.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	good := fleet(ctx, t, srv.Addr, 1, "v1")
	doomed, kill := context.WithCancel(ctx)
	bad := fleet(doomed, t, srv.Addr, 1, "v1")
	time.AfterFunc(1500*time.Millisecond, kill) // mid-publishing
	start := time.Now()
	res, err := workers.Coordinate(ctx, srv.Client(t), cfg, workers.CoordinatorOptions{Workers: 2, Announce: true, Version: "v1"})
	good()
	bad()
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > cfg.Duration+cfg.DrainTimeout+harness.MaxGrace+15*time.Second {
		t.Errorf("took %v", took)
	}
	for _, w := range res.Workers {
		if w.Lost != "" {
			t.Errorf("worker %s counted lost: %s", w.ID, w.Lost)
		}
	}
	if !res.Interrupted || res.Totals.Published >= res.Totals.TargetEvents {
		t.Errorf("interrupted %v, published %d of %d", res.Interrupted, res.Totals.Published, res.Totals.TargetEvents)
	}
	for _, ir := range res.Instances {
		if ir.Delivered+ir.Missing != ir.Expected {
			t.Errorf("instance %d: delivered %d + missing %d != expected %d", ir.Index, ir.Delivered, ir.Missing, ir.Expected)
		}
	}
}

// Workers whose clocks disagree by 65 ms (a test knob skews them): each
// measures its offset to the server's clock, stamps its send times and
// receipts on that clock, and the latencies between them stay those of
// loopback, not ±tens of milliseconds; nothing is taken for a forgery.
func TestClockSkewCorrected(t *testing.T) {
	srv := redistest.StartOwn(t)
	cfg := harness.Config{Instances: 4, Duration: time.Second, Rate: 400, Redis: bridge.Options{URL: srv.URL}}.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, skew := range []time.Duration{40 * time.Millisecond, -25 * time.Millisecond} {
		wg.Go(func() {
			ctl := redis.NewClient(&redis.Options{Addr: srv.Addr})
			defer ctl.Close()
			if err := workers.Serve(ctx, ctl, workers.WorkerOptions{Once: true, Version: "v1", ClockSkew: skew}); err != nil {
				t.Errorf("worker: %v", err)
			}
		})
	}
	res, err := workers.Coordinate(ctx, srv.Client(t), cfg, workers.CoordinatorOptions{Workers: 2, Announce: true, Version: "v1"})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	tot := res.Totals
	if tot.Forged != 0 || tot.Missing != 0 || tot.Delivered != tot.Expected || tot.Delivered != 3*tot.Published {
		t.Fatalf("totals %+v", tot)
	}
	for _, w := range res.Workers {
		skewUs := int64(40_000)
		if w.ClockOffsetUs < 0 {
			skewUs = -25_000
		}
		// The offset measured is the skew, within its uncertainty (and
		// the microsecond of TIME).
		if d := w.ClockOffsetUs - skewUs; d < -w.ClockUncertaintyUs-2 || d > w.ClockUncertaintyUs+2 {
			t.Errorf("worker %s: offset %d µs ± %d, skewed by %d", w.ID, w.ClockOffsetUs, w.ClockUncertaintyUs, skewUs)
		}
	}
	// Uncorrected, half the messages would be 65 ms late and the other
	// half from the future.
	if res.Latency.Max > 20_000 || res.Latency.P50 > 5_000 {
		t.Errorf("latency p50 %d µs, max %d µs: the skew was not corrected", res.Latency.P50, res.Latency.Max)
	}
}

// A coordinator that dies after assigning (it never says "go"): the
// worker gives up within its join timeout, closes everything and says
// why, instead of waiting for ever.
func TestWorkerOutlivesNoCoordinator(t *testing.T) {
	srv := redistest.StartOwn(t)
	ctl := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		defer c.Close()
		errc <- workers.Serve(ctx, c, workers.WorkerOptions{Once: true, RunID: "dead0001", Version: "v1", JoinTimeout: 2 * time.Second})
	}()
	// Play the coordinator's first step, then vanish.
	join, err := ctl.BLPop(ctx, 5*time.Second, "redisload:ctl:dead0001:joined").Result()
	if err != nil {
		t.Fatal(err)
	}
	id := join[1][strings.Index(join[1], `"id":"`)+6:]
	id = id[:strings.IndexByte(id, '"')]
	spec := workers.SpecOf(harness.Config{Instances: 2, Duration: time.Second, Rate: 10, Seed: 3, DisableTags: true}.WithDefaults(), "dead0001", "v1")
	msg, _ := json.Marshal(map[string]any{"type": "assign", "spec": spec, "lo": 0, "hi": 2})
	if err := ctl.RPush(ctx, "redisload:ctl:dead0001:to:"+id, msg).Err(); err != nil {
		t.Fatal(err)
	}
	err = <-errc
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), `waiting for "go" from the coordinator`) || took > 10*time.Second {
		t.Errorf("worker: %v after %v", err, took)
	}
}

// The fault script over workers is the coordinator's: every subscriber of
// both workers, killed with CLIENT KILL at 1 s, has its outage in the
// merged timeline, recovers, and loses only inside it.
func TestFaultsOverWorkers(t *testing.T) {
	srv := redistest.StartOwn(t)
	cfg := harness.Config{Instances: 4, Duration: 2 * time.Second, Rate: 300, Redis: bridge.Options{URL: srv.URL},
		Faults: []harness.Fault{{At: time.Second, Action: harness.FaultClientKill, Instance: harness.AllInstances}}}.WithDefaults()
	res := coordinated(t, srv, cfg, 2)
	tl := res.Timeline
	if len(tl.Faults) != 1 || tl.Faults[0].Error != "" || tl.Faults[0].Detail != "killed 4 subscriber connections" {
		t.Fatalf("faults %+v", tl.Faults)
	}
	hit := map[int]int{}
	for _, o := range tl.Outages {
		hit[o.Instance]++
		if o.RecoverySeconds == nil || o.LostAtSeconds < 0.9 || o.LostAtSeconds > 1.5 {
			t.Errorf("outage %+v: want lost at about 1 s, recovered", o)
		}
	}
	if len(hit) != 4 || tl.Unrecovered != 0 || tl.LossOutsideOutages != 0 || res.Totals.Connected != 4 {
		t.Errorf("outages per instance %v, %d unrecovered, %d lost outside, %d connected; warnings %q", hit, tl.Unrecovered,
			tl.LossOutsideOutages, res.Totals.Connected, res.Warnings)
	}
}

// Interrupted mid-run (the coordinator's ctx ends, as on Ctrl-C), the run
// stops at once on every worker and is reported as far as it went, with
// its counts consistent, as a run in one process is.
func TestInterruptedRunReports(t *testing.T) {
	srv := redistest.StartOwn(t)
	cfg := harness.Config{Instances: 4, Duration: 20 * time.Second, Rate: 200, Redis: bridge.Options{URL: srv.URL}}.WithDefaults()
	bg, cancelAll := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelAll()
	wait := fleet(bg, t, srv.Addr, 2, "v1")
	ctx, interrupt := context.WithCancel(bg)
	time.AfterFunc(2500*time.Millisecond, interrupt) // connected at ~0.5 s, publishing
	start := time.Now()
	res, err := workers.Coordinate(ctx, srv.Client(t), cfg, workers.CoordinatorOptions{Workers: 2, Announce: true, Version: "v1"})
	took := time.Since(start)
	wait()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || took > 10*time.Second {
		t.Fatalf("interrupted %v after %v", res.Interrupted, took)
	}
	tot := res.Totals
	if tot.Published == 0 || tot.Published >= tot.TargetEvents || tot.Connected != 4 {
		t.Errorf("published %d of %d, %d connected", tot.Published, tot.TargetEvents, tot.Connected)
	}
	for _, ir := range res.Instances {
		if ir.Delivered+ir.Missing != ir.Expected {
			t.Errorf("instance %d: delivered %d + missing %d != expected %d", ir.Index, ir.Delivered, ir.Missing, ir.Expected)
		}
	}
}

// The closed loop over workers: each worker's publishers are held back by
// every subscriber's receipts, the other workers' through the control
// Redis, and the run is lossless and exact at the highest rate it finds.
func TestMaxRateOverWorkers(t *testing.T) {
	srv := redistest.StartOwn(t)
	cfg := harness.Config{Instances: 4, Duration: 1500 * time.Millisecond, MaxRate: true, Redis: bridge.Options{URL: srv.URL}}.WithDefaults()
	res := coordinated(t, srv, cfg, 2)
	tot := res.Totals
	if tot.Published < 10_000 || tot.Missing != 0 || tot.Delivered != tot.Expected || tot.Delivered != 3*tot.Published || tot.Forged != 0 || tot.Connected != 4 {
		t.Fatalf("totals %+v", tot)
	}
	t.Logf("%d published, %.0f delivered/s", tot.Published, tot.DeliveryThroughput)
}

// Forged traffic beside a run over workers: messages that claim to come
// from the run's instances, on any worker, with no tag, a wrong one or
// impossible numbers, a foreign message and a replay of a genuine one.
// Every worker's receivers count them as a single process would: forged
// at every instance, foreign, a duplicate; the run's own counts exact.
func TestForgedTrafficOverWorkers(t *testing.T) {
	srv := redistest.StartOwn(t)
	rc := srv.Client(t)
	const channel = "forge:ticker"
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ps := rc.Subscribe(ctx, channel)
		defer ps.Close()
		var genuine *redis.Message
		var run string
		for genuine == nil { // the first message of the run names it
			m, err := ps.ReceiveMessage(ctx)
			if err != nil {
				done <- err
				return
			}
			var env struct {
				Source string `json:"source"`
			}
			if json.Unmarshal([]byte(m.Payload), &env) == nil && strings.HasPrefix(env.Source, "redisload-") {
				id := strings.TrimPrefix(env.Source, "redisload-")
				genuine, run = m, id[:strings.LastIndex(id, "-")]
			}
		}
		now := time.Now().UnixNano()
		id := func(s string) string { return "redisload-" + run + "-" + s }
		for _, a := range [][3]string{
			{id("01"), "1", ""},                         // leading zero: "instance 1"
			{id("9"), "1", ""},                          // no such instance
			{id("2"), "1000000", ""},                    // beyond what 2 is scheduled to publish
			{id("0"), "1", `,"tag":"0123456789abcdef"`}, // a wrong tag, from worker 1's instance
			{id("3"), "1", ""},                          // no tag, from worker 2's instance
		} {
			msg := fmt.Sprintf(`{"source":"%s","seq":%s,"sent_ns":%d%s,"type":"ticker","timestamp":1,"data":{}}`, a[0], a[1], now, a[2])
			if err := rc.Publish(ctx, channel, msg).Err(); err != nil {
				done <- err
				return
			}
		}
		if err := rc.Publish(ctx, channel, `{"type":"ticker","data":{},"timestamp":1,"source":"someone-else"}`).Err(); err != nil {
			done <- err
			return
		}
		done <- rc.Publish(ctx, channel, genuine.Payload).Err()
	}()
	cfg := harness.Config{Instances: 4, Duration: 2 * time.Second, Rate: 400, EventTypes: []string{"ticker"},
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "forge:"}}.WithDefaults()
	res := coordinated(t, srv, cfg, 2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, ir := range res.Instances {
		if ir.Forged != 5 || ir.Foreign != 1 {
			t.Errorf("instance %d: forged %d foreign %d, want 5 and 1", ir.Index, ir.Forged, ir.Foreign)
		}
	}
	tot := res.Totals
	// The replay is a duplicate at the three instances that are not its
	// source; nothing else moved.
	if tot.Forged != 20 || tot.Duplicates != 3 || tot.Missing != 0 || tot.Delivered != tot.Expected || tot.Delivered != 3*tot.Published ||
		tot.Published != tot.TargetEvents {
		t.Errorf("totals %+v: want 20 forged, 3 duplicates, exact", tot)
	}
}

// A run over streams splits over workers as over pub/sub: exact, its
// streams counted by the coordinator, which takes them out at the end.
func TestCoordinatedStreams(t *testing.T) {
	srv := redistest.StartOwn(t)
	cfg := harness.Config{Instances: 4, Duration: time.Second, Rate: 200, Seed: 5,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "wst:", Transport: bridge.TransportStreams}}.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wait := fleet(ctx, t, srv.Addr, 2, "v1")
	ctl := srv.Client(t)
	res, err := workers.Coordinate(ctx, ctl, cfg, workers.CoordinatorOptions{Workers: 2, Announce: true, Version: "v1"})
	wait()
	if err != nil {
		t.Fatal(err)
	}
	tot, st := res.Totals, res.Streams
	if tot.Published != tot.TargetEvents || tot.Missing != 0 || tot.Delivered != 3*tot.Published || tot.Connected != 4 {
		t.Fatalf("totals %+v", tot)
	}
	if st == nil || st.Added != tot.Published || st.Deleted != 2 || st.Lost != 0 || st.Redelivered != 0 || st.CleanupError != "" {
		t.Fatalf("streams %+v, published %d", st, tot.Published)
	}
	if keys, err := ctl.Keys(ctx, "wst:*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("left: %v (%v)", keys, err)
	}
}
