package harness_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
	"golang.org/x/sync/errgroup"
)

// captureRun runs cfg and returns its result with its accounting as the
// parts a run split over workers would ship: instances [0, split) in one,
// the rest in the other, each through JSON.
func captureRun(t *testing.T, cfg harness.Config, split int, runner func(*testing.T, harness.Config) *harness.Result) (*harness.Result, []harness.PartState, time.Time) {
	t.Helper()
	var ps harness.PartState
	var start time.Time
	restore := harness.CaptureParts(func(p harness.PartState, err error, s time.Time) {
		if err != nil {
			t.Error(err)
		}
		ps, start = p, s
	})
	defer restore()
	res := runner(t, cfg)
	parts := []harness.PartState{
		{Publishers: ps.Publishers[:split], Receivers: ps.Receivers[:split]},
		{Publishers: ps.Publishers[split:], Receivers: ps.Receivers[split:]},
	}
	for i := range parts {
		b, err := json.Marshal(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		parts[i] = harness.PartState{}
		if err := json.Unmarshal(b, &parts[i]); err != nil {
			t.Fatal(err)
		}
	}
	return res, parts, start
}

// ownServer runs cfg against a redis-server of the test's own.
func ownServer(t *testing.T, cfg harness.Config) *harness.Result { return faultRun(t, cfg) }

// merged is res's accounting recomputed from parts: what a coordinator
// makes of its workers' shipments.
func merged(t *testing.T, res *harness.Result, cfg harness.Config, start time.Time, parts []harness.PartState) *harness.Result {
	t.Helper()
	m := &harness.Result{RunID: res.RunID, Config: res.Config, ElapsedSeconds: res.ElapsedSeconds, DrainSeconds: res.DrainSeconds,
		Drained: res.Drained, Interrupted: res.Interrupted, Timeline: harness.Timeline{Faults: res.Timeline.Faults}}
	if err := harness.MergeParts(m, cfg, start, parts); err != nil {
		t.Fatal(err)
	}
	return m
}

// compareAccounting asserts that two results count the same: totals,
// every instance's counts and latency, the matrix, the timeline and the
// warnings.
func compareAccounting(t *testing.T, want, got *harness.Result) {
	t.Helper()
	for _, c := range []struct {
		name      string
		want, got any
	}{
		{"totals", want.Totals, got.Totals}, {"instances", want.Instances, got.Instances}, {"matrix", want.Matrix, got.Matrix},
		{"latency", want.Latency, got.Latency}, {"send delay", want.SendDelay, got.SendDelay},
		{"publish round trip", want.PublishRTT, got.PublishRTT}, {"transit", want.Transit, got.Transit},
		{"timeline", wallClock(want.Timeline), wallClock(got.Timeline)}, {"warnings", want.Warnings, got.Warnings},
	} {
		if !reflect.DeepEqual(c.want, c.got) {
			t.Errorf("%s differ:\none process: %+v\nmerged:      %+v", c.name, c.want, c.got)
		}
	}
}

// wallClock rounds a timeline's times to the millisecond: one process
// measures them on the monotonic clock, a part carries wall-clock times
// (as it must across processes), and the two differ by nanoseconds.
func wallClock(tl harness.Timeline) harness.Timeline {
	r := func(p *float64) *float64 {
		if p == nil {
			return nil
		}
		v := math.Round(*p*1000) / 1000
		return &v
	}
	out := tl
	out.Outages = nil
	for _, o := range tl.Outages {
		o.LostAtSeconds = *r(&o.LostAtSeconds)
		o.ReconnectedAtSeconds, o.ResubscribedAtSeconds, o.RecoverySeconds = r(o.ReconnectedAtSeconds), r(o.ResubscribedAtSeconds), r(o.RecoverySeconds)
		out.Outages = append(out.Outages, o)
	}
	out.MaxRecoverySeconds = r(tl.MaxRecoverySeconds)
	return out
}

// A run's accounting, shipped as two workers' parts and merged, is the
// one process's, to the last count: a clean run, and one whose
// subscribers were killed (outages, their ranges, the loss they explain).
func TestMergedPartsEqualOneProcess(t *testing.T) {
	cfg := harness.Config{Instances: 4, Duration: time.Second, Rate: 400, Seed: 7}.WithDefaults()
	res, parts, start := captureRun(t, cfg, 1, ownServer)
	compareAccounting(t, res, merged(t, res, cfg, start, parts))

	fcfg := harness.Config{Instances: 3, Duration: 2 * time.Second, Rate: 300, Seed: 9,
		Faults: []harness.Fault{{At: time.Second, Action: harness.FaultClientKill, Instance: harness.AllInstances}}}
	fres, fparts, fstart := captureRun(t, fcfg, 2, ownServer)
	if len(fres.Timeline.Outages) != 3 {
		t.Fatalf("%d outages: the fault did not happen", len(fres.Timeline.Outages))
	}
	compareAccounting(t, fres, merged(t, fres, fcfg, fstart, fparts))
}

// A part from another process is checked before it is merged: an
// instance missing or held twice, a tracker whose numbers do not add up, a
// corrupt histogram are refused with the reason, never merged.
func TestMergePartsRefusesBadParts(t *testing.T) {
	cfg := harness.Config{Instances: 3, Duration: 500 * time.Millisecond, Rate: 200}.WithDefaults()
	res, parts, start := captureRun(t, cfg, 1, ownServer)
	clone := func() []harness.PartState {
		var out []harness.PartState
		b, _ := json.Marshal(parts)
		_ = json.Unmarshal(b, &out)
		return out
	}
	for _, c := range []struct {
		name   string
		mangle func(p []harness.PartState) []harness.PartState
		want   string
	}{
		{"an instance missing", func(p []harness.PartState) []harness.PartState { return p[1:] }, "instance 0: no part has it"},
		{"an instance twice", func(p []harness.PartState) []harness.PartState { return append(p, p[0]) }, "out of range or twice"},
		{"a tracker that does not add up", func(p []harness.PartState) []harness.PartState {
			return mangleTrackers(t, p, func(ts []harness.TrackerState) []harness.TrackerState { ts[0].Unique++; return ts })
		}, "is not the highest"},
		{"a gap above the highest", func(p []harness.PartState) []harness.PartState {
			return mangleTrackers(t, p, func(ts []harness.TrackerState) []harness.TrackerState {
				ts[0].Gaps = append(ts[0].Gaps, [2]uint64{ts[0].Highest + 1, ts[0].Highest + 2})
				return ts
			})
		}, "out of order or out of range"},
		{"a truncated tracker", func(p []harness.PartState) []harness.PartState {
			r := &p[1].Receivers[0]
			r.Trackers = append(r.Trackers[:len(r.Trackers)-1], 0x80) // a uvarint that never ends
			return p
		}, "2 trackers, want one per instance (3): truncated or malformed tracker"},
		{"bytes after the trackers", func(p []harness.PartState) []harness.PartState {
			r := &p[1].Receivers[0]
			r.Trackers = append(r.Trackers, 0)
			return p
		}, "1 bytes after the last of 3 trackers"},
		{"a corrupt histogram", func(p []harness.PartState) []harness.PartState {
			p[0].Receivers[0].Histogram = []byte("not a histogram")
			return p
		}, "latency"},
		{"too few trackers", func(p []harness.PartState) []harness.PartState {
			return mangleTrackers(t, p, func(ts []harness.TrackerState) []harness.TrackerState { return ts[:1] })
		}, "1 trackers, want one per instance (3)"},
	} {
		m := &harness.Result{Config: res.Config}
		err := harness.MergeParts(m, cfg, start, c.mangle(clone()))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "harness: bad part state: ") {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

// mangleTrackers changes the packed trackers of part 1's first receiver.
func mangleTrackers(t *testing.T, p []harness.PartState, f func([]harness.TrackerState) []harness.TrackerState) []harness.PartState {
	t.Helper()
	r := &p[1].Receivers[0]
	ts, err := harness.DecodeTrackers(r.Trackers)
	if err != nil {
		t.Fatal(err)
	}
	r.Trackers = harness.EncodeTrackers(f(ts))
	return p
}

// Packed trackers come back as they went, the rare fields included, and
// one that arrived in order takes a few bytes.
func TestTrackersRoundTrip(t *testing.T) {
	in := []harness.TrackerState{
		{},
		{Highest: 100_000, Unique: 100_000},
		{Highest: 50, Unique: 45, Duplicates: 2, OutOfOrder: 3, Untracked: 1, Forgotten: 1, Floor: 7,
			Gaps: [][2]uint64{{10, 11}, {20, 21}}},
		{Highest: 3, Unique: 5}, // more than highest: packed as it is, refused by the merge
	}
	b := harness.EncodeTrackers(in)
	out, err := harness.DecodeTrackers(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fmt.Sprint(out), fmt.Sprint(in)) {
		t.Fatalf("got %v, want %v", out, in)
	}
	if n := len(harness.EncodeTrackers(in[1:2])); n != 4 {
		t.Errorf("an in-order tracker at 100 000 takes %d bytes, want 4", n)
	}
}

// exchange is what a coordinator does for the shares of a split run, in
// one process: one start instant once all are ready, and every share's
// published counts summed for the drain.
type exchange struct {
	mu        sync.Mutex
	parts     int
	ready     int
	go_       chan struct{}
	start     time.Time
	reported  int
	published []uint64
	all       chan struct{}
	tolerance time.Duration // announced with the start
}

func newExchange(parts, n int) *exchange {
	return &exchange{parts: parts, go_: make(chan struct{}), published: make([]uint64, n), all: make(chan struct{})}
}

func (e *exchange) share(lo, hi int, runID string, key bridge.TagKey, notBefore int64) harness.Share {
	return harness.Share{Lo: lo, Hi: hi, RunID: runID, TagKey: key, NotBeforeNs: notBefore,
		Ready: func(ctx context.Context) (harness.Go, error) {
			e.mu.Lock()
			if e.ready++; e.ready == e.parts {
				e.start = time.Now().Add(100 * time.Millisecond)
				close(e.go_)
			}
			e.mu.Unlock()
			select {
			case <-e.go_:
				return harness.Go{Start: e.start, Tolerance: e.tolerance}, nil
			case <-ctx.Done():
				return harness.Go{}, ctx.Err()
			}
		},
		Published: func(ctx context.Context, mine []uint64) ([]uint64, error) {
			e.mu.Lock()
			for i, v := range mine {
				e.published[i] += v
			}
			if e.reported++; e.reported == e.parts {
				close(e.all)
			}
			e.mu.Unlock()
			select {
			case <-e.all:
				return e.published, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}}
}

// A run split into three shares, each with connections of its own,
// publishes exactly what one process publishes with the same seed, and
// merges to an exact result: every message of every other instance, on
// any share, delivered once, and the latency of each.
func TestSplitRunEqualsOneProcess(t *testing.T) {
	srv := redistest.StartOwn(t)
	cfg := harness.Config{Instances: 5, Duration: time.Second, Rate: 500, Seed: 42, EventTypes: bridge.EventTypes,
		Redis: bridge.Options{URL: srv.URL}}.WithDefaults()
	one := run(t, cfg)
	checkExact(t, one)

	key, err := bridge.NewTagKey()
	if err != nil {
		t.Fatal(err)
	}
	ex := newExchange(3, cfg.Instances)
	notBefore := time.Now().UnixNano()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results := make([]*harness.ShareResult, 3)
	var g errgroup.Group
	for k, r := range [][2]int{{0, 2}, {2, 3}, {3, 5}} {
		g.Go(func() error {
			res, err := harness.RunShare(ctx, cfg, ex.share(r[0], r[1], "split0001", key, notBefore))
			results[k] = res
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	var parts []harness.PartState
	for _, r := range results {
		if !r.Start.Equal(results[0].Start) || !r.Drained {
			t.Errorf("share started %v (first %v), drained %v", r.Start, results[0].Start, r.Drained)
		}
		parts = append(parts, r.Part)
	}
	m := &harness.Result{Config: one.Config, ElapsedSeconds: results[0].ElapsedSeconds, Drained: true}
	if err := harness.MergeParts(m, cfg, results[0].Start, parts); err != nil {
		t.Fatal(err)
	}
	checkExact(t, m)
	checkCells(t, m)
	for i := range one.Instances {
		if a, b := one.Instances[i], m.Instances[i]; a.Published != b.Published || a.Expected != b.Expected || a.Delivered != b.Delivered {
			t.Errorf("instance %d: one process published %d, expected %d, delivered %d; split %d, %d, %d",
				i, a.Published, a.Expected, a.Delivered, b.Published, b.Expected, b.Delivered)
		}
	}
	if !reflect.DeepEqual(one.Matrix, m.Matrix) || m.Totals.Forged != 0 || m.Totals.Foreign != 0 {
		t.Errorf("matrix one process %+v, split %+v; forged %d foreign %d", one.Matrix, m.Matrix, m.Totals.Forged, m.Totals.Foreign)
	}
}

// A share whose clock is 50 ms ahead and not corrected, within a
// tolerance the start allows: every message it sends to the other share
// seems to arrive before it was sent. Each is counted as a negative
// latency, delivered and not taken for a forgery, and the run says so;
// the other way the 50 ms show as latency.
func TestUncorrectedSkewCountsNegativeLatency(t *testing.T) {
	srv := redistest.StartOwn(t)
	cfg := harness.Config{Instances: 4, Duration: time.Second, Rate: 200, Seed: 7,
		Redis: bridge.Options{URL: srv.URL}}.WithDefaults()
	key, err := bridge.NewTagKey()
	if err != nil {
		t.Fatal(err)
	}
	const skew = 50 * time.Millisecond
	ex := newExchange(2, cfg.Instances)
	ex.tolerance = 2 * skew
	notBefore := time.Now().Add(-time.Second).UnixNano()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results := make([]*harness.ShareResult, 2)
	var g errgroup.Group
	for k := range 2 {
		g.Go(func() error {
			sh := ex.share(2*k, 2*k+2, "skew0001", key, notBefore)
			if k == 0 {
				sh.ClockSkew = skew // ClockOffset left 0: nobody measured it
			}
			res, err := harness.RunShare(ctx, cfg, sh)
			results[k] = res
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	m := &harness.Result{Config: cfg.Echo(), ElapsedSeconds: results[1].ElapsedSeconds, Drained: true}
	if err := harness.MergeParts(m, cfg, results[1].Start, []harness.PartState{results[0].Part, results[1].Part}); err != nil {
		t.Fatal(err)
	}
	checkExact(t, m)
	// Instances 2 and 3 received from 0 and 1 before, by the stamps, it
	// was sent; 0 and 1 received from 2 and 3 50 ms late.
	var early uint64
	for _, i := range []int{2, 3} {
		for _, j := range []int{0, 1} {
			early += m.Matrix.Delivered[i][j]
		}
	}
	if early == 0 || m.Totals.NegativeLatency != early || m.Totals.Forged != 0 {
		t.Fatalf("negative latencies %d, want the %d deliveries from the skewed share; forged %d", m.Totals.NegativeLatency, early, m.Totals.Forged)
	}
	if !slices.ContainsFunc(m.Warnings, func(w string) bool {
		return strings.Contains(w, fmt.Sprintf("%d deliveries arrived before they were sent", early))
	}) {
		t.Errorf("warnings %q", m.Warnings)
	}
	// Two thirds of what 0 and 1 receive come from the other share.
	for _, i := range []int{0, 1} {
		if lat := m.Instances[i].Latency; lat.P50 < skew.Microseconds() {
			t.Errorf("instance %d (skewed share) p50 latency %d µs, want ≥ %d", i, lat.P50, skew.Microseconds())
		}
	}
}

// What cannot be split is refused before anything connects.
func TestRunShareRefuses(t *testing.T) {
	ok := harness.Share{Lo: 0, Hi: 1, RunID: "x", Ready: func(context.Context) (harness.Go, error) { return harness.Go{Start: time.Now()}, nil },
		Published: func(context.Context, []uint64) ([]uint64, error) { return nil, nil }}
	base := harness.Config{Instances: 2, Duration: time.Second, Rate: 10, Seed: 1}
	for _, c := range []struct {
		cfg  harness.Config
		sh   harness.Share
		want string
	}{
		{base, harness.Share{Lo: 1, Hi: 3, RunID: "x", Ready: ok.Ready, Published: ok.Published}, "instances [1, 3) of 2"},
		{harness.Config{Instances: 2, Duration: time.Second, Rate: 10}, ok, "needs its seed"},
		{harness.Config{Instances: 2, Duration: time.Second, MaxRate: true, Seed: 1}, ok, "needs Acks"},
		{harness.Config{Instances: 2, Duration: time.Second, Rate: 10, Seed: 1, EventLog: io.Discard}, ok, "are not the Config's in a split run"},
		{base, harness.Share{Lo: 0, Hi: 1, RunID: "x", Ready: ok.Ready, Published: ok.Published, Faults: []harness.Fault{{Action: harness.FaultPartition, Instance: 2}}}, "fault 1 (partition): instance 2 does not exist"},
		{base, harness.Share{Lo: 0, Hi: 1}, "a run ID, Ready and Published"},
	} {
		if _, err := harness.RunShare(context.Background(), c.cfg, c.sh); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.sh, err, c.want)
		}
	}
}
