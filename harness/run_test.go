package harness_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
)

func TestMain(m *testing.M) {
	// The test binary is also the misbehaving adapter of adapter_test.go.
	if mode := os.Getenv("REDISLOAD_FAKE_ADAPTER"); mode != "" {
		runFakeAdapter(mode)
		os.Exit(0)
	}
	// go-redis logs every failed dial; fault tests make hundreds.
	redis.SetLogger(quietLogger{})
	code := m.Run()
	if adapterBuildDir != "" {
		os.RemoveAll(adapterBuildDir)
	}
	os.Exit(redistest.CheckLeaks(code))
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func run(t *testing.T, cfg harness.Config) *harness.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := harness.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkExact asserts the accounting identities of a clean run: every
// instance expected exactly what the others published, got all of it once,
// and filtered exactly its own messages.
func checkExact(t *testing.T, res *harness.Result) {
	t.Helper()
	var published, expected uint64
	for _, ir := range res.Instances {
		published += ir.Published
	}
	if published != res.Totals.TargetEvents || res.Totals.Published != published {
		t.Errorf("published %d (totals %d), target %d", published, res.Totals.Published, res.Totals.TargetEvents)
	}
	for _, ir := range res.Instances {
		others := published - ir.Published
		if ir.Expected != others || ir.Delivered != others || ir.Missing != 0 || ir.SeqGaps != 0 {
			t.Errorf("instance %d: expected %d delivered %d missing %d gaps %d, want %d each and 0 missing",
				ir.Index, ir.Expected, ir.Delivered, ir.Missing, ir.SeqGaps, others)
		}
		if ir.Received != others {
			t.Errorf("instance %d: received %d, want %d", ir.Index, ir.Received, others)
		}
		if ir.SelfReceived != 0 || ir.SelfFiltered != ir.Published {
			t.Errorf("instance %d: self-received %d self-filtered %d, want 0 and %d", ir.Index, ir.SelfReceived, ir.SelfFiltered, ir.Published)
		}
		// Over streams, each stream keeps its order but a read hands over
		// one stream's entries before another's: a source's events of two
		// types may arrive out of order, and that is counted, not lost.
		outOfOrderOK := res.Config.Transport == "streams" && len(res.Config.EventTypes) > 1
		if ir.Duplicates != 0 || ir.OutOfOrder != 0 && !outOfOrderOK || ir.Errors != 0 || ir.Foreign != 0 || ir.Malformed != 0 || !ir.Connected {
			t.Errorf("instance %d: %+v", ir.Index, ir)
		}
		if ir.Latency.Count != int64(ir.Delivered) {
			t.Errorf("instance %d: %d latency samples for %d deliveries", ir.Index, ir.Latency.Count, ir.Delivered)
		}
		if ir.DeliveryRate == nil || *ir.DeliveryRate != 100 {
			t.Errorf("instance %d: delivery rate %v", ir.Index, ir.DeliveryRate)
		}
		for j := range res.Instances {
			if j == ir.Index {
				if d := res.Matrix.Delivered[ir.Index][j]; d != 0 {
					t.Errorf("matrix[%d][%d] = %d, want 0 on the diagonal", j, j, d)
				}
				continue
			}
			s := res.Matrix.Cell(ir.Index, j)
			if s.Sent != res.Instances[j].Published || s.Delivered != s.Sent || s.Missing != 0 || s.Duplicates != 0 {
				t.Errorf("matrix[%d][%d] = %+v, source published %d", ir.Index, j, s, res.Instances[j].Published)
			}
		}
		expected += ir.Expected
	}
	n := uint64(len(res.Instances))
	if expected != (n-1)*published || res.Totals.Expected != expected || res.Totals.Delivered != expected {
		t.Errorf("total expected %d (totals %d, delivered %d), want (n-1)×published = %d",
			expected, res.Totals.Expected, res.Totals.Delivered, (n-1)*published)
	}
	if res.Latency.Count != int64(expected) || res.Latency.Min < 1 || res.Latency.Max < res.Latency.P99 {
		t.Errorf("latency %+v for %d deliveries", res.Latency, expected)
	}
	// The derived numbers of the report, exactly.
	if res.Totals.PublishRate != float64(published)/res.ElapsedSeconds ||
		res.Totals.DeliveryThroughput != float64(expected)/(res.ElapsedSeconds+res.DrainSeconds) ||
		res.Totals.DeliveryRate == nil || *res.Totals.DeliveryRate != 100 {
		t.Errorf("rates %+v", res.Totals)
	}
	if res.SendDelay.Count != int64(published) || res.SendDelay.Min < 1 || res.SendDelay.Max < res.SendDelay.P99 {
		t.Errorf("send delay %+v for %d events published", res.SendDelay, published)
	}
	// A round trip for every event accepted, and none without a write.
	if r := res.PublishRTT; r.Count != int64(published) || r.Min < 1 || r.Max < r.P99 || r.P99 < r.P50 {
		t.Errorf("publish round trip %+v for %d events published", r, published)
	}
	// A transit for every delivery (each envelope stamped when written),
	// and per event transit <= latency, so every percentile is too (within
	// the transit histogram's 1 % buckets).
	if tr, l := res.Transit, res.Latency; tr.Count != l.Count || tr.Min < 1 || tr.P50 > l.P50+l.P50/100+1 ||
		tr.P99 > l.P99+l.P99/100+1 || tr.Max > l.Max+l.Max/100+1 {
		t.Errorf("transit %+v for latency %+v", tr, l)
	}
	if res.Latency != harness.Summarize(res.Histogram) {
		t.Errorf("latency %+v is not the merged histogram's %+v", res.Latency, harness.Summarize(res.Histogram))
	}
	l := res.Latency
	if !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max &&
		float64(l.Min) <= l.Mean && l.Mean <= float64(l.Max)) {
		t.Errorf("latency out of order: %+v", l)
	}
	var sum int64
	for _, ir := range res.Instances {
		sum += ir.Latency.Count
	}
	if sum != l.Count {
		t.Errorf("instance latency samples %d, merged %d", sum, l.Count)
	}
	if !res.Drained || res.Interrupted || res.Totals.Connected != len(res.Instances) {
		t.Errorf("drained %v interrupted %v connected %d", res.Drained, res.Interrupted, res.Totals.Connected)
	}
}

func TestRunThreeInstancesExact(t *testing.T) {
	srv := redistest.Start(t)
	res := run(t, harness.Config{
		Instances: 3, Duration: time.Second, Rate: 300,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "h3:"},
	})
	if res.Totals.TargetEvents != 300 {
		t.Fatalf("target %d, want 300", res.Totals.TargetEvents)
	}
	checkExact(t, res)
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %v", res.Warnings)
	}
}

// The seed's stress shape: five instances, expected = 4 × published.
func TestRunFiveInstancesAllEventTypes(t *testing.T) {
	srv := redistest.Start(t)
	res := run(t, harness.Config{
		Instances: 5, Duration: 1500 * time.Millisecond, Rate: 200,
		EventTypes: bridge.EventTypes,
		Redis:      bridge.Options{URL: srv.URL, KeyPrefix: "h5:"},
	})
	checkExact(t, res)
	if res.Totals.Expected != 4*res.Totals.Published || res.Totals.Published != 300 {
		t.Fatalf("expected %d published %d", res.Totals.Expected, res.Totals.Published)
	}
}

func TestRunSeedReproducesEvents(t *testing.T) {
	srv := redistest.Start(t)
	var logs [2]bytes.Buffer
	var counts [2][]uint64
	for k := range logs {
		res := run(t, harness.Config{
			Instances: 4, Duration: 500 * time.Millisecond, Rate: 100, Seed: 42,
			EventTypes: bridge.EventTypes,
			Redis:      bridge.Options{URL: srv.URL, KeyPrefix: "seed:"},
			EventLog:   &logs[k],
		})
		if res.Seed != 42 {
			t.Fatalf("seed %d", res.Seed)
		}
		for _, ir := range res.Instances {
			counts[k] = append(counts[k], ir.Published)
		}
	}
	if a, b := publishedLines(logs[0].String()), publishedLines(logs[1].String()); a != b || a == "" {
		t.Fatalf("same seed, different events:\n%s\n---\n%s", a, b)
	}
	for i := range counts[0] {
		if counts[0][i] != counts[1][i] {
			t.Fatalf("same seed, published per instance %v vs %v", counts[0], counts[1])
		}
	}
}

// publishedLines keeps the "published" lines of an event log, minus times,
// sorted: instances publish concurrently, so only each instance's own
// sequence is reproducible, not the interleaving.
func publishedLines(log string) string {
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if i := strings.Index(l, "] "); i >= 0 && strings.Contains(l, " published ") {
			lines = append(lines, l[i+2:])
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestRunVerboseLogsEveryEvent(t *testing.T) {
	srv := redistest.Start(t)
	var log bytes.Buffer
	res := run(t, harness.Config{
		Instances: 3, Duration: 200 * time.Millisecond, Rate: 50,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "v:"}, EventLog: &log,
	})
	pub := strings.Count(log.String(), " published ")
	recv := strings.Count(log.String(), " received ")
	if uint64(pub) != res.Totals.Published || uint64(recv) != res.Totals.Delivered || pub != 10 {
		t.Fatalf("log has %d published and %d received lines; result %d and %d", pub, recv, res.Totals.Published, res.Totals.Delivered)
	}
}

// A single instance receives nobody's events but its own, which it
// filters: nothing can be expected of it, so Run refuses it before
// connecting, rather than return a result that measured nothing.
func TestRunSingleInstanceRefused(t *testing.T) {
	_, err := harness.Run(context.Background(), harness.Config{
		Instances: 1, Duration: 300 * time.Millisecond, Rate: 20,
		Redis: bridge.Options{URL: "redis://127.0.0.1:1", KeyPrefix: "one:"},
	})
	var ce *harness.ConfigError
	if !errors.As(err, &ce) || ce.Field != "Instances" || !strings.Contains(ce.Reason, "no delivery can be expected") {
		t.Fatalf("one instance: %v", err)
	}
}

func TestRunDisabledSelfFilterIsCaught(t *testing.T) {
	srv := redistest.Start(t)
	res := run(t, harness.Config{
		Instances: 3, Duration: 500 * time.Millisecond, Rate: 60,
		Redis:             bridge.Options{URL: srv.URL, KeyPrefix: "sf:"},
		DisableSelfFilter: true,
	})
	for _, ir := range res.Instances {
		if ir.SelfReceived != ir.Published || ir.SelfFiltered != 0 {
			t.Errorf("instance %d: self-received %d self-filtered %d, published %d", ir.Index, ir.SelfReceived, ir.SelfFiltered, ir.Published)
		}
		if ir.Delivered != ir.Expected {
			t.Errorf("instance %d: delivered %d expected %d", ir.Index, ir.Delivered, ir.Expected)
		}
	}
	if res.Totals.SelfReceived != 30 {
		t.Fatalf("self-received %d, want 30", res.Totals.SelfReceived)
	}
}

// A foreign publisher writing garbage and TypeScript-format messages onto
// the run's channels is counted, and changes nothing else.
func TestRunForeignPublisher(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client(t)
	const n, garbage, ts = 3, 4, 5
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Wait for the barrier: every instance subscribed.
		for {
			m, err := rc.PubSubNumSub(ctx, "fx:trade").Result()
			if err != nil {
				done <- err
				return
			}
			if m["fx:trade"] == n {
				break
			}
			time.Sleep(time.Millisecond)
		}
		for i := 0; i < garbage; i++ {
			if err := rc.Publish(ctx, "fx:ticker", "\x00garbage "+strconv.Itoa(i)).Err(); err != nil {
				done <- err
				return
			}
		}
		for i := 0; i < ts; i++ {
			msg := `{"type":"trade","data":{"symbol":"BTC/USDT"},"timestamp":1700000000000,"source":` + strconv.Itoa(4000+i) + `}`
			if err := rc.Publish(ctx, "fx:trade", msg).Err(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	res := run(t, harness.Config{
		Instances: n, Duration: time.Second, Rate: 100,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "fx:"},
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, ir := range res.Instances {
		if ir.Malformed != garbage || ir.Foreign != ts {
			t.Errorf("instance %d: malformed %d foreign %d, want %d and %d", ir.Index, ir.Malformed, ir.Foreign, garbage, ts)
		}
		if ir.Delivered != ir.Expected || ir.Errors != 0 || ir.Received != ir.Expected+ts {
			t.Errorf("instance %d: %+v", ir.Index, ir)
		}
	}
	if len(res.Warnings) != 2 {
		t.Errorf("warnings %v, want foreign and malformed", res.Warnings)
	}
}

func TestRunCancelledMidwayReturnsPartialResult(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(400*time.Millisecond, cancel)
	start := time.Now()
	res, err := harness.Run(ctx, harness.Config{
		Instances: 3, Duration: 20 * time.Second, Rate: 50,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "cx:"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("cancelled run took %v", took)
	}
	if !res.Interrupted || res.Totals.Published == 0 || res.Totals.Published >= res.Totals.TargetEvents {
		t.Fatalf("interrupted %v published %d of %d", res.Interrupted, res.Totals.Published, res.Totals.TargetEvents)
	}
	if res.Totals.Delivered != res.Totals.Expected || !res.Drained {
		t.Fatalf("partial run lost messages: %+v", res.Totals)
	}
}

func TestRunUnreachableRedis(t *testing.T) {
	port := redistest.FreePort(t)
	start := time.Now()
	_, err := harness.Run(context.Background(), harness.Config{
		Instances: 2, Duration: time.Second,
		Redis: bridge.Options{URL: "redis://:pw123@127.0.0.1:" + strconv.Itoa(port)},
	})
	if !errors.Is(err, harness.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "pw123") || !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("error %q", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
}

// A server that accepts connections and never answers must not hang the
// run: it fails with ErrUnavailable within the connect timeout.
func TestRunSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	start := time.Now()
	_, err = harness.Run(context.Background(), harness.Config{
		Instances: 2, Duration: time.Second, ConnectTimeout: 1500 * time.Millisecond,
		Redis: bridge.Options{URL: "redis://" + l.Addr().String()},
	})
	if !errors.Is(err, harness.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("took %v with a 1.5s connect timeout", took)
	}
}

// Validate names the field and why; the command line maps the field to
// its flag.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg         harness.Config
		field, want string
	}{
		{harness.Config{Instances: -1}, "Instances", "must be at least 2, got -1"},
		{harness.Config{Instances: 20000}, "Instances", "must be at most 10000, got 20000"},
		{harness.Config{Duration: -time.Second}, "Duration", "must be positive"},
		{harness.Config{Rate: -3}, "Rate", "must be a positive number"},
		{harness.Config{EventTypes: []string{"tick"}}, "EventTypes", `unknown event type "tick"`},
		{harness.Config{Rate: 0.5, Duration: time.Second}, "Rate", "publishes no event"},
		{harness.Config{DrainTimeout: -2}, "DrainTimeout", "must be positive, or -1 for no drain"},
		{harness.Config{Pipeline: 10001}, "Pipeline", "must be from 1 to 10000"},
		{harness.Config{BatchWindow: -2}, "BatchWindow", "must be up to 1s, or -1 for none"},
		{harness.Config{PayloadSize: -1}, "PayloadSize", "must be from 0 to 1048576 bytes"},
		{harness.Config{PayloadSize: 500, PayloadSizeMax: 100}, "PayloadSizeMax", "must be from PayloadSize (500"},
		{harness.Config{PayloadSizeMax: 100}, "PayloadSizeMax", "which must be set"},
		{harness.Config{BatchWindow: 2 * time.Second}, "BatchWindow", "must be up to 1s"},
	} {
		var ce *harness.ConfigError
		err := tc.cfg.WithDefaults().Validate()
		if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(ce.Reason, tc.want) ||
			!strings.HasPrefix(err.Error(), "harness: "+tc.field+" ") {
			t.Errorf("Validate(%+v) = %v, want %s %q", tc.cfg, err, tc.field, tc.want)
		}
	}
	if err := (harness.Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if err := (harness.Config{DrainTimeout: harness.NoDrain}).WithDefaults().Validate(); err != nil {
		t.Fatalf("no drain: %v", err)
	}
	if err := (harness.Config{BatchWindow: harness.NoBatching}).WithDefaults().Validate(); err != nil {
		t.Fatalf("no batching: %v", err)
	}
}

// Every batch window publishes the same events, exactly: the window
// moves when events are handed over, never which or how many. Their
// send delay is measured (its timing targets are make bench's).
func TestBatchWindowIsExact(t *testing.T) {
	srv := redistest.Start(t)
	for _, w := range []time.Duration{harness.NoBatching, 200 * time.Microsecond, 5 * time.Millisecond} {
		res := run(t, harness.Config{Instances: 3, Duration: time.Second, Rate: 3000, Seed: 5, BatchWindow: w,
			Redis: bridge.Options{URL: srv.URL}})
		checkExact(t, res)
		want := w.Microseconds()
		if w == harness.NoBatching {
			want = -1
		}
		if res.SendDelay.Count != int64(res.Totals.Published) || res.Config.BatchWindowUs != want {
			t.Errorf("window %v: %d send delays for %d published, echoed %d µs", w, res.SendDelay.Count, res.Totals.Published, res.Config.BatchWindowUs)
		}
	}
}

func TestTotalEvents(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		d    time.Duration
		want uint64
	}{
		{10, 20 * time.Second, 200}, {10, 300 * time.Millisecond, 3}, {0.5, 3 * time.Second, 1}, {1000, time.Millisecond, 1},
	} {
		if got := (harness.Config{Rate: tc.rate, Duration: tc.d}).TotalEvents(); got != tc.want {
			t.Errorf("rate %g × %v = %d events, want %d", tc.rate, tc.d, got, tc.want)
		}
	}
}

func TestParseEventTypes(t *testing.T) {
	got, err := harness.ParseEventTypes("ticker, trade,ticker")
	if err != nil || strings.Join(got, ",") != "ticker,trade" {
		t.Fatalf("%v %v", got, err)
	}
	if got, _ := harness.ParseEventTypes("all"); len(got) != 8 {
		t.Fatalf("all = %v", got)
	}
	if _, err := harness.ParseEventTypes("ticker,bogus"); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Fatalf("err %v", err)
	}
}

// The result names the server: INFO server, the pubsub buffer limit as the
// server has it, and counters before and after.
func TestRunDescribesServer(t *testing.T) {
	srv := redistest.StartOwn(t, "--client-output-buffer-limit", "pubsub 2mb 1mb 30")
	res := run(t, harness.Config{
		Instances: 2, Duration: 200 * time.Millisecond, Rate: 20,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "info:"},
	})
	s := res.Server
	if !strings.HasPrefix(s.Version, "7.") || s.RedisMode != "standalone" || s.OS == "" || s.ArchBits != "64" {
		t.Errorf("server %+v", s)
	}
	if s.PubsubLimit != "hard 2 MiB, soft 1 MiB for 30s" || s.PubsubHardBytes != 2<<20 {
		t.Errorf("pubsub limit %q (%d bytes)", s.PubsubLimit, s.PubsubHardBytes)
	}
	if ob := res.OutputBuffers; ob.Samples < 1 || ob.LimitBytes != 2<<20 || ob.IntervalMs != 100 ||
		(ob.LimitDisconnections != nil && *ob.LimitDisconnections != 0) {
		t.Errorf("output buffers %+v: want sampled every 100 ms, with the 2 MiB limit, nobody cut off", ob)
	}
	// Before publishing: the probe and 2 × (publisher + subscriber) are
	// connected, the 2 types subscribed; after closing, only the probe.
	if s.StatsBefore["connected_clients"] != "5" || s.StatsBefore["pubsub_channels"] != "2" ||
		s.StatsAfter["connected_clients"] != "1" || s.StatsAfter["pubsub_channels"] != "0" {
		t.Errorf("stats before %v after %v", s.StatsBefore, s.StatsAfter)
	}
	// The same readings as numbers: the commands of the run counted, the
	// memory in bytes where the text says "1.94M".
	b, a := s.CountersBefore, s.CountersAfter
	if b == nil || a == nil || b.ConnectedClients != 5 || b.PubsubChannels != 2 || a.ConnectedClients != 1 || a.PubsubChannels != 0 ||
		a.TotalCommandsProcessed <= b.TotalCommandsProcessed || b.UsedMemoryBytes < 100_000 || a.UsedMemoryPeakBytes < b.UsedMemoryBytes ||
		a.CPUSeconds < b.CPUSeconds || a.NetInputBytes-b.NetInputBytes != s.NetInBytes || a.NetOutputBytes-b.NetOutputBytes != s.NetOutBytes {
		t.Errorf("counters before %+v after %+v (net %d in, %d out)", b, a, s.NetInBytes, s.NetOutBytes)
	}
}

// Closed loop with back-pressure: as many events as the machine allows,
// every one delivered exactly once, whatever the window.
func TestRunMaxRateIsLossless(t *testing.T) {
	srv := redistest.Start(t)
	for _, window := range []int{16, 2048} {
		res := run(t, harness.Config{
			Instances: 3, Duration: 700 * time.Millisecond, MaxRate: true, MaxInFlight: window,
			Redis: bridge.Options{URL: srv.URL, KeyPrefix: "max" + strconv.Itoa(window) + ":"},
		})
		tot := res.Totals
		if tot.TargetEvents != 0 || tot.Published < 1000 || !res.Config.MaxRate || res.Config.MaxInFlight != window || res.Config.Rate != 0 {
			t.Fatalf("window %d: totals %+v config %+v", window, tot, res.Config)
		}
		if tot.Expected != 2*tot.Published || tot.Delivered != tot.Expected || tot.Missing != 0 ||
			tot.Duplicates != 0 || tot.SelfFiltered != tot.Published || tot.Errors != 0 {
			t.Fatalf("window %d: %+v", window, tot)
		}
		if len(res.Warnings) != 0 {
			t.Fatalf("window %d: warnings %v", window, res.Warnings)
		}
		// Each event is written when intended: its latency is its
		// transit, and no envelope carries a stamp to measure one by.
		if res.Transit.Count != 0 || res.Latency.Count != int64(tot.Delivered) {
			t.Errorf("window %d: %d transits, %d latencies for %d delivered", window, res.Transit.Count, res.Latency.Count, tot.Delivered)
		}
	}
	err := harness.Config{Instances: 1, MaxRate: true}.WithDefaults().Validate()
	if err == nil || !strings.Contains(err.Error(), "Instances must be at least 2") {
		t.Fatalf("one instance: %v", err)
	}
}

// The seed's production topology: one publish-only host, subscribe-only
// bots. Everything the host publishes reaches every bot; the host expects
// nothing and echoes nothing.
func TestRunFanoutTopology(t *testing.T) {
	srv := redistest.Start(t)
	for _, maxRate := range []bool{false, true} {
		res := run(t, harness.Config{
			Instances: 5, Publishers: 1, DedicatedPublishers: true,
			Duration: 500 * time.Millisecond, Rate: 100, MaxRate: maxRate,
			Redis: bridge.Options{URL: srv.URL, KeyPrefix: "fan" + strconv.FormatBool(maxRate) + ":"},
		})
		host := res.Instances[0]
		if host.Published == 0 || (!maxRate && host.Published != 50) || host.Expected != 0 || host.Received != 0 || host.SelfFiltered != 0 {
			t.Fatalf("max=%v host %+v", maxRate, host)
		}
		for _, bot := range res.Instances[1:] {
			if bot.Published != 0 || bot.Expected != host.Published || bot.Delivered != host.Published || bot.SelfFiltered != 0 {
				t.Fatalf("max=%v bot %d %+v", maxRate, bot.Index, bot)
			}
		}
		tot := res.Totals
		if tot.Expected != 4*host.Published || tot.Delivered != tot.Expected || tot.Missing != 0 || !res.Drained {
			t.Fatalf("max=%v totals %+v", maxRate, tot)
		}
		if c := res.Matrix.Cell(0, 1); c.Sent != 0 || c.Missing != 0 || res.Matrix.Subscribed[0] {
			t.Fatalf("max=%v host's matrix cell %+v", maxRate, c)
		}
		if c := res.Matrix.Cell(3, 0); c.Sent != host.Published || c.Delivered != host.Published {
			t.Fatalf("max=%v bot's matrix cell %+v", maxRate, c)
		}
		if res.Config.Publishers != 1 || !res.Config.DedicatedPublishers {
			t.Fatalf("config %+v", res.Config)
		}
	}
}

// Two of four instances publish and also subscribe: each publisher expects
// the other's events, each subscriber-only instance both publishers'.
func TestRunSomePublishers(t *testing.T) {
	srv := redistest.Start(t)
	res := run(t, harness.Config{
		Instances: 4, Publishers: 2, Duration: 500 * time.Millisecond, Rate: 80,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "some:"},
	})
	p0, p1 := res.Instances[0].Published, res.Instances[1].Published
	if p0+p1 != 40 || res.Instances[2].Published != 0 || res.Instances[3].Published != 0 {
		t.Fatalf("published %d %d %d %d", p0, p1, res.Instances[2].Published, res.Instances[3].Published)
	}
	want := []uint64{p1, p0, p0 + p1, p0 + p1}
	for i, ir := range res.Instances {
		if ir.Expected != want[i] || ir.Delivered != want[i] {
			t.Errorf("instance %d expected %d delivered %d, want %d", i, ir.Expected, ir.Delivered, want[i])
		}
	}
	if res.Instances[0].SelfFiltered != p0 || res.Instances[2].SelfFiltered != 0 {
		t.Errorf("self-filtered %d and %d", res.Instances[0].SelfFiltered, res.Instances[2].SelfFiltered)
	}
	for _, tc := range []struct {
		cfg  harness.Config
		want string
	}{
		{harness.Config{Instances: 3, Publishers: 4}, "Publishers must be from 1 to the instances (3)"},
		{harness.Config{Instances: 3, Publishers: 3, DedicatedPublishers: true}, "someone must subscribe"},
		{harness.Config{Instances: 3, DedicatedPublishers: true}, "someone must subscribe"},
	} {
		if err := tc.cfg.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
}

// Spread over 8 channels per type, the accounting stays exact: every
// instance subscribes to all of them and gets every message once.
func TestRunChannelsPerTypeExact(t *testing.T) {
	srv := redistest.Start(t)
	res := run(t, harness.Config{Instances: 3, Duration: time.Second, Rate: 200, EventTypes: []string{"ticker", "trade"},
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "cpt:", ChannelsPerType: 8}})
	checkExact(t, res)
	if res.Config.ChannelsPerType != 8 {
		t.Errorf("config says %d channels per type", res.Config.ChannelsPerType)
	}
}

// The payload size shows in the server's own byte counters: every
// publish brings at least its padded data in, and every copy delivered
// takes it out.
func TestPayloadSizeInServerBytes(t *testing.T) {
	srv := redistest.StartOwn(t)
	const size = 4096
	res := run(t, harness.Config{Instances: 3, Duration: time.Second, Rate: 200, PayloadSize: size, Seed: 9,
		Redis: bridge.Options{URL: srv.URL}})
	checkExact(t, res)
	s, tot := res.Server, res.Totals
	in, out := uint64(s.NetInBytes), uint64(s.NetOutBytes)
	// Received counts every copy read, own echoes included (filtered after).
	copies := tot.Received + tot.SelfFiltered
	if in < tot.Published*size || in > tot.Published*(size+1024)+64<<10 || out < copies*size || out > copies*(size+1024)+64<<10 ||
		s.TrafficSeconds <= 0 || res.Config.PayloadSize != size {
		t.Errorf("server read %d and wrote %d bytes over %.2fs for %d publishes and %d copies of %d bytes", in, out,
			s.TrafficSeconds, tot.Published, copies, size)
	}
}

// A warm-up publishes at the rate before the measured duration, and none
// of its events reaches a measured figure: the counts, the latency and
// send-delay samples and the matrix are the measured phase's exactly, and
// the warm-up's are reported apart, exactly too.
func TestWarmupExcludedExactly(t *testing.T) {
	srv := redistest.Start(t)
	res := run(t, harness.Config{
		Instances: 3, Warmup: 500 * time.Millisecond, Duration: 500 * time.Millisecond, Rate: 40, Series: true,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "warm:"},
	})
	// The series covers both phases: its first second asks for the rate,
	// warm-up and measured events alike (it was capped at the measured
	// count, so a warm-up made the target fall early).
	if len(res.Series) == 0 || math.Abs(res.Series[0].TargetRate-40) > 2 {
		t.Errorf("series %+v: want a first second targeted at 40/s", res.Series)
	}
	tt := res.Totals
	// 40/s × 0.5 s = 20 measured events, each expected by the 2 others.
	if tt.TargetEvents != 20 || tt.Published != 20 || tt.Expected != 40 || tt.Delivered != 40 || tt.Missing != 0 ||
		tt.Received != 40 || tt.SelfFiltered != 20 || tt.Errors != 0 || tt.Duplicates != 0 || tt.SeqGaps != 0 {
		t.Errorf("measured totals %+v: want the 20 measured events only", tt)
	}
	if res.Latency.Count != 40 || res.SendDelay.Count != 20 || res.Histogram.TotalCount() != 40 {
		t.Errorf("%d latency samples, %d send delays: want 40 and 20", res.Latency.Count, res.SendDelay.Count)
	}
	var sent uint64
	for _, s := range res.Matrix.Sent {
		sent += s
	}
	w := res.Warmup
	if sent != 20 || w == nil || w.TargetEvents != 20 || w.Published != 20 || w.Expected != 40 || w.Arrived != 40 ||
		w.Latency.Count != 40 || w.Seconds != 0.5 || res.Config.WarmupSeconds != 0.5 {
		t.Errorf("matrix sent %d, warm-up %+v", sent, w)
	}
	if res.ElapsedSeconds < 0.45 || res.ElapsedSeconds > 0.8 {
		t.Errorf("elapsed %.2fs: want the measured half second", res.ElapsedSeconds)
	}
	for _, tc := range []struct {
		cfg  harness.Config
		want string
	}{
		{harness.Config{Warmup: -time.Second}, "Warmup must not be negative"},
		{harness.Config{Warmup: time.Second, MaxRate: true, Instances: 2}, "Warmup needs a schedule"},
		{harness.Config{Warmup: time.Second, Stages: []harness.Stage{{Duration: time.Second, Rate: 5}}}, "Warmup does not go with stages"},
		{harness.Config{Warmup: time.Second, Faults: []harness.Fault{{Action: harness.FaultRestart, At: time.Second}}}, "Warmup does not go with a fault script"},
	} {
		if err := tc.cfg.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg.Warmup, err, tc.want)
		}
	}
}
