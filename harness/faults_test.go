package harness_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
)

// faultGrace bounds how long a fault run may outlast its duration plus
// drain timeout: the longest fault step (a restart waiting for PING) and
// closing.
const faultGrace = 6 * time.Second

// faultRun runs cfg against a redis-server of the test's own, with fast
// reconnection, and checks that the run finished within its bound.
func faultRun(t *testing.T, cfg harness.Config, serverArgs ...string) *harness.Result {
	t.Helper()
	srv := redistest.StartOwn(t, serverArgs...)
	cfg.Redis = bridge.Options{URL: srv.URL, Transport: cfg.Redis.Transport, StreamMaxLen: cfg.Redis.StreamMaxLen,
		Reconnect: bridge.ReconnectOptions{BaseDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond}}
	cfg.Server = srv.Inst
	cfg = cfg.WithDefaults()
	start := time.Now()
	res := run(t, cfg)
	if took, bound := time.Since(start), cfg.Duration+cfg.DrainTimeout+faultGrace; took > bound {
		t.Errorf("the run took %v, beyond duration + drain + grace = %v", took, bound)
	}
	return res
}

// checkRecovered asserts that exactly the instances in hit had exactly one
// outage each, lost after the fault began, resubscribed no sooner than
// downFor after it and within maxRecovery of the loss,
// that every missing message is explained by an outage, and that the
// others lost nothing.
func checkRecovered(t *testing.T, res *harness.Result, hit []int, downFor, maxRecovery time.Duration) {
	t.Helper()
	tl := res.Timeline
	if len(tl.Faults) != 1 || tl.Faults[0].Error != "" {
		t.Fatalf("faults %+v: want one, without error", tl.Faults)
	}
	f := tl.Faults[0]
	if len(tl.Outages) != len(hit) {
		t.Fatalf("%d outages %+v, want one for each of instances %v", len(tl.Outages), tl.Outages, hit)
	}
	for k, o := range tl.Outages {
		if o.Instance != hit[k] {
			t.Errorf("outage %d is instance %d's, want %d's", k, o.Instance, hit[k])
		}
		if o.LostAtSeconds < f.AtSeconds-0.01 || o.RecoverySeconds == nil || o.ResubscribedAtSeconds == nil ||
			*o.ResubscribedAtSeconds < f.AtSeconds+downFor.Seconds() || *o.RecoverySeconds > maxRecovery.Seconds() {
			t.Errorf("outage %+v (recovery %v): want lost after %.3fs, resubscribed after %.3fs, within %v",
				o, *o.RecoverySeconds, f.AtSeconds, f.AtSeconds+downFor.Seconds(), maxRecovery)
		}
		if o.Duplicates != 0 {
			t.Errorf("outage %+v: duplicates", o)
		}
	}
	if tl.LossOutsideOutages != 0 || tl.Unrecovered != 0 || tl.MaxRecoverySeconds == nil {
		t.Errorf("timeline: %d lost outside outages, %d unrecovered, max recovery %v", tl.LossOutsideOutages, tl.Unrecovered, tl.MaxRecoverySeconds)
	}
	// Exactly what each instance missed is what its outage skipped, less
	// the publishes that were never accepted.
	for _, o := range tl.Outages {
		if ir := res.Instances[o.Instance]; o.FailedPublishes > o.Missed || o.Missed-o.FailedPublishes != ir.Missing {
			t.Errorf("instance %d: outage skipped %d (%d failed publishes), missing %d", o.Instance, o.Missed, o.FailedPublishes, ir.Missing)
		}
	}
	for _, ir := range res.Instances {
		wantReconnects := uint64(0)
		for _, h := range hit {
			if h == ir.Index {
				wantReconnects = 1
			}
		}
		if ir.Reconnects != wantReconnects || !ir.Connected || ir.Duplicates != 0 {
			t.Errorf("instance %d: %d reconnects (want %d), connected %v, %d duplicates", ir.Index, ir.Reconnects, wantReconnects, ir.Connected, ir.Duplicates)
		}
		// A publish cut off before its reply may have been delivered all
		// the same: that is LateConfirmed, outside Expected and Delivered.
		if ir.Delivered+ir.Missing != ir.Expected {
			t.Errorf("instance %d: delivered %d + missing %d != expected %d", ir.Index, ir.Delivered, ir.Missing, ir.Expected)
		}
		if wantReconnects == 0 && (ir.Missing != 0 || ir.Delivered != ir.Expected) {
			t.Errorf("instance %d was not hit, yet missed %d of %d (delivered %d)", ir.Index, ir.Missing, ir.Expected, ir.Delivered)
		}
	}
}

// windows are the two publishing paths a fault must not confuse: the
// default's pipelines, which wait for their replies, and NoBatching's
// pipe, which writes without waiting (bridge.Pipe).
var windows = map[string]time.Duration{"window": 0, "pipe": harness.NoBatching}

// restart: the server goes away for half a second. Every instance loses
// its subscriber, reconnects to the new server and subscribes again; what
// it missed is confined to its outage, and publishes fail only while the
// server is down.
func TestFaultRestart(t *testing.T) {
	for name, window := range windows {
		t.Run(name, func(t *testing.T) {
			res := faultRun(t, harness.Config{Instances: 3, Duration: 3 * time.Second, Rate: 300, BatchWindow: window,
				Faults: []harness.Fault{{At: time.Second, Action: harness.FaultRestart, For: 500 * time.Millisecond}}})
			checkRecovered(t, res, []int{0, 1, 2}, 500*time.Millisecond, 2*time.Second)
			// The restarted server counts its commands from 0: not compared.
			if c := res.Server.Counts; c == nil || !strings.Contains(c.Skipped, "restart fault") || c.Calls != 0 || len(c.Subscribers) != 2 {
				t.Errorf("server counts %+v", c)
			}
			f := res.Timeline.Faults[0]
			if d := f.EndSeconds - f.AtSeconds; d < 0.5 || d > 1.5 {
				t.Errorf("server down for %.3fs, want 0.5s plus the restart", d)
			}
			if res.Totals.PublishErrors == 0 || len(res.Timeline.PublishErrors) == 0 {
				t.Errorf("no publish failed while the server was down: %+v", res.Totals.Counts)
			}
			var burstTotal uint64
			for _, b := range res.Timeline.PublishErrors {
				burstTotal += b.Count
				if b.FromSeconds < f.AtSeconds-0.01 || b.ToSeconds > f.EndSeconds+1 {
					t.Errorf("publish errors %+v outside the outage %.3f–%.3fs", b, f.AtSeconds, f.EndSeconds)
				}
			}
			if burstTotal != res.Totals.PublishErrors+res.Totals.PublishUnknown {
				t.Errorf("bursts sum to %d, publish errors %d + unknown %d", burstTotal, res.Totals.PublishErrors, res.Totals.PublishUnknown)
			}
			// Every event scheduled took a sequence number and has one
			// outcome: accepted, failed or unknown.
			if tot := res.Totals; tot.Published+tot.PublishErrors+tot.PublishUnknown != tot.TargetEvents {
				t.Errorf("published %d + errors %d + unknown %d, for %d events", tot.Published, tot.PublishErrors, tot.PublishUnknown, tot.TargetEvents)
			}
		})
	}
}

// hang: a frozen server delays everything and loses nothing: connections
// stay open, no outage, every message arrives, the late ones about as
// late as the freeze was long.
func TestFaultHang(t *testing.T) {
	for name, window := range windows {
		t.Run(name, func(t *testing.T) {
			res := faultRun(t, harness.Config{Instances: 3, Duration: 3 * time.Second, Rate: 100, BatchWindow: window,
				Faults: []harness.Fault{{At: time.Second, Action: harness.FaultHang, For: time.Second}}})
			checkExact(t, res)
			if len(res.Timeline.Outages) != 0 || len(res.Timeline.Faults) != 1 || res.Timeline.Faults[0].Error != "" {
				t.Fatalf("timeline %+v: want the fault and no outage", res.Timeline)
			}
			if res.Latency.Max < 900_000 {
				t.Errorf("max latency %d µs after a 1 s freeze, want ≥ 0.9 s", res.Latency.Max)
			}
			// The first events of the freeze were written into it: their
			// second is the server's, and shows in the transit.
			if res.Transit.Max < 900_000 {
				t.Errorf("transit max %d µs after a 1 s freeze, want ≥ 0.9 s", res.Transit.Max)
			}
		})
	}
}

// client-kill of one instance: only it has an outage; the others lose
// nothing, and nobody's publishes fail.
func TestFaultClientKillOne(t *testing.T) {
	res := faultRun(t, harness.Config{Instances: 3, Duration: 2 * time.Second, Rate: 300,
		Faults: []harness.Fault{{At: time.Second, Action: harness.FaultClientKill, Instance: 1}}})
	checkRecovered(t, res, []int{1}, 0, time.Second)
	if f := res.Timeline.Faults[0]; f.Detail != "killed 1 subscriber connections" || f.Instance != 1 {
		t.Errorf("fault %+v", f)
	}
	if res.Totals.PublishErrors != 0 {
		t.Errorf("%d publish errors: CLIENT KILL hit a publisher", res.Totals.PublishErrors)
	}
}

// client-kill of all: every subscriber, and only subscribers.
func TestFaultClientKillAll(t *testing.T) {
	res := faultRun(t, harness.Config{Instances: 3, Duration: 2 * time.Second, Rate: 300,
		Faults: []harness.Fault{{At: time.Second, Action: harness.FaultClientKill, Instance: harness.AllInstances}}})
	checkRecovered(t, res, []int{0, 1, 2}, 0, time.Second)
	if f := res.Timeline.Faults[0]; f.Detail != "killed 3 subscriber connections" {
		t.Errorf("fault %+v", f)
	}
	if res.Totals.PublishErrors != 0 {
		t.Errorf("%d publish errors: CLIENT KILL hit a publisher", res.Totals.PublishErrors)
	}
}

// latency: 50 ms ± 10 ms added to what Redis sends: the typical message is
// that late, none is lost. (Not every one: messages in flight when the
// latency is removed at the end of publishing pass at once.)
func TestFaultLatency(t *testing.T) {
	res := faultRun(t, harness.Config{Instances: 3, Duration: 2 * time.Second, Rate: 100,
		Faults: []harness.Fault{{Action: harness.FaultLatency, Instance: harness.AllInstances}}})
	checkExact(t, res)
	if res.Latency.P50 < 50_000 {
		t.Errorf("latency p50 %d µs: want ≥ 50 ms", res.Latency.P50)
	}
	if f := res.Timeline.Faults; len(f) != 1 || f[0].Error != "" || f[0].EndSeconds < 1.9 {
		t.Errorf("faults %+v: want latency until the end of publishing", f)
	}
}

// partition: instance 1 is cut off for a second. Only it loses messages,
// all inside its outage; its publishes fail meanwhile; the others miss
// nothing they were sent.
func TestFaultPartition(t *testing.T) {
	res := faultRun(t, harness.Config{Instances: 3, Duration: 3 * time.Second, Rate: 300,
		Faults: []harness.Fault{{At: time.Second, Action: harness.FaultPartition, Instance: 1, For: time.Second}}})
	checkRecovered(t, res, []int{1}, time.Second, 2*time.Second)
	if res.Instances[1].Missing == 0 || res.Timeline.Outages[0].Missed < res.Instances[1].Missing {
		t.Errorf("instance 1 missed %d, outage explains %d: want > 0, all explained", res.Instances[1].Missing, res.Timeline.Outages[0].Missed)
	}
	for _, ir := range res.Instances {
		if (ir.PublishErrors > 0) != (ir.Index == 1) {
			t.Errorf("instance %d: %d publish errors; only the cut instance's may fail", ir.Index, ir.PublishErrors)
		}
	}
}

// Fault scripts are checked before anything connects, naming the fault.
func TestFaultValidation(t *testing.T) {
	for _, c := range []struct {
		f    harness.Fault
		want string
	}{
		{harness.Fault{Action: "flood"}, `fault 1: unknown action "flood"`},
		{harness.Fault{Action: harness.FaultRestart}, "fault 1 (restart): needs a redis-server that redisload started"},
		{harness.Fault{Action: harness.FaultHang}, "fault 1 (hang): needs a redis-server"},
		{harness.Fault{Action: harness.FaultClientKill, At: time.Minute}, "fault 1 (client-kill): at 1m0s is outside the run's duration 20s"},
		{harness.Fault{Action: harness.FaultPartition, Instance: 3}, "fault 1 (partition): instance 3 does not exist (3 instances)"},
		{harness.Fault{Action: harness.FaultPartition, Instance: harness.AllInstances}, "fault 1 (partition): applies to one instance, not all"},
		{harness.Fault{Action: harness.FaultLatency, Jitter: -time.Second}, "fault 1 (latency): durations must not be negative"},
	} {
		err := harness.Config{Faults: []harness.Fault{c.f}}.WithDefaults().Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.f, err, c.want)
		}
	}
}

// slow-consumer: instance 2's handler falls behind while the server's
// pub/sub output buffer limit is small, so Redis disconnects it: it alone
// has outages, all its loss falls inside them, and the server counts the
// disconnection.
func TestFaultSlowConsumer(t *testing.T) {
	res := faultRun(t, harness.Config{Instances: 3, Duration: 3 * time.Second, Rate: 5000,
		EventTypes: []string{bridge.TypeOrderbook}, Faults: []harness.Fault{{At: 500 * time.Millisecond, Action: harness.FaultSlowConsumer, Instance: 2,
			For: 1500 * time.Millisecond, OutputBufferLimit: "64kb 32kb 1"}}})
	tl := res.Timeline
	if len(tl.Faults) != 1 || tl.Faults[0].Error != "" {
		t.Fatalf("faults %+v", tl.Faults)
	}
	if len(tl.Outages) == 0 {
		t.Fatalf("no outage: Redis did not disconnect the slow instance (%+v)", res.Instances[2].Counts)
	}
	for _, o := range tl.Outages {
		if o.Instance != 2 || o.RecoverySeconds == nil || o.Cause != bridge.ErrClosedByServer.Error() {
			t.Errorf("outage %+v: want instance 2's, closed by the server, recovered", o)
		}
	}
	if tl.LossOutsideOutages != 0 || res.Instances[2].Missing == 0 {
		t.Errorf("instance 2 missed %d, %d of it outside outages: want > 0, none outside", res.Instances[2].Missing, tl.LossOutsideOutages)
	}
	for _, ir := range res.Instances[:2] {
		if ir.Missing != 0 || ir.Reconnects != 0 || ir.PublishErrors != 0 {
			t.Errorf("instance %d was not slow, yet: %+v", ir.Index, ir.Counts)
		}
	}
	// Redis 7.2 counts the disconnections; older servers do not say.
	if d := tl.Faults[0].Detail; strings.Contains(d, "; 0 clients") ||
		!strings.Contains(d, "clients disconnected for output buffer limits") && !strings.Contains(d, "Redis < 7.2") {
		t.Errorf("detail %q: want the server's count of disconnections, not 0, or that it keeps none", d)
	}
}

// The series: one point per second, counts that only grow and end at the
// run's totals, progress told each point as it is taken; under a freeze,
// the interval's max latency shows it and the pending count rises.
func TestSeriesAndProgress(t *testing.T) {
	var told []harness.SeriesPoint
	res := faultRun(t, harness.Config{Instances: 3, Duration: 3 * time.Second, Rate: 200,
		Progress: func(p harness.SeriesPoint) { told = append(told, p) },
		Faults:   []harness.Fault{{At: time.Second, Action: harness.FaultHang, For: 1200 * time.Millisecond}}})
	s := res.Series
	if len(s) < 3 || len(s) > 6 || len(told) != len(s) {
		t.Fatalf("%d points, %d told: want one a second for 3 s plus the drain", len(s), len(told))
	}
	// The callback gets each interval's latencies too; the series keeps
	// none, and between them the intervals hold every sample.
	var samples, sends int64
	for i, p := range s {
		if told[i].Latencies == nil || p.Latencies != nil || told[i].SendDelays == nil || p.SendDelays != nil {
			t.Fatalf("point %d: told latencies %v and send delays %v, kept %v and %v: want told only",
				i, told[i].Latencies, told[i].SendDelays, p.Latencies, p.SendDelays)
		}
		samples += told[i].Latencies.TotalCount()
		sends += told[i].SendDelays.TotalCount()
		// Three instances, under the limit: each one's counts, which add
		// up to the point's.
		var sum harness.InstancePoint
		for j, ip := range told[i].Instances {
			if ip.Index != j {
				t.Fatalf("point %d: instance %d at position %d", i, ip.Index, j)
			}
			sum.Published, sum.Delivered, sum.Errors = sum.Published+ip.Published, sum.Delivered+ip.Delivered, sum.Errors+ip.Errors
		}
		if len(told[i].Instances) != 3 || sum.Published != p.Published || sum.Delivered != p.Delivered || sum.Errors != p.Errors || p.Instances != nil {
			t.Errorf("point %d: instances %+v do not add up to %+v (or were kept)", i, told[i].Instances, p)
		}
		told[i].Latencies, told[i].SendDelays, told[i].Instances = nil, nil, nil
		if !reflect.DeepEqual(p, told[i]) {
			t.Errorf("point %d told as %+v, kept as %+v", i, told[i], p)
		}
		if i > 0 && (p.Published < s[i-1].Published || p.Delivered < s[i-1].Delivered || p.Seconds <= s[i-1].Seconds) {
			t.Errorf("point %d %+v goes back from %+v", i, p, s[i-1])
		}
	}
	if samples != res.Latency.Count || sends != res.SendDelay.Count {
		t.Errorf("the intervals hold %d latency and %d send-delay samples, the run %d and %d",
			samples, sends, res.Latency.Count, res.SendDelay.Count)
	}
	last := s[len(s)-1]
	// Delivered counts every message of the run a handler got: the totals'
	// received, as the drain ended.
	if last.Published != res.Totals.Published || last.Delivered != res.Totals.Received || last.Pending != 0 {
		t.Errorf("last point %+v, totals published %d received %d", last, res.Totals.Published, res.Totals.Received)
	}
	// The freeze holds the publishers back too: the events due during it
	// leave late, and an interval's send delay says so.
	var worst, worstSend int64
	for _, p := range s {
		worst, worstSend = max(worst, p.Max), max(worstSend, p.SendP99)
	}
	if worst < 1_000_000 || last.P99SoFar <= 0 || worstSend < 200_000 {
		t.Errorf("interval max latency %d µs and send-delay p99 %d µs under a 1.2 s freeze; p99 so far %d", worst, worstSend, last.P99SoFar)
	}
}

// refusingServer stands for a server whose process cannot be frozen.
type refusingServer struct{}

func (refusingServer) Stop() error                   { return errors.New("stop refused") }
func (refusingServer) Kill() error                   { return errors.New("kill refused") }
func (refusingServer) Restart(context.Context) error { return errors.New("restart refused") }
func (refusingServer) Freeze() error                 { return errors.New("freeze refused") }
func (refusingServer) Thaw() error                   { return errors.New("thaw refused") }

// A fault that cannot be applied does not stop the run: the timeline
// records the error and a warning says so.
func TestFaultErrorIsReported(t *testing.T) {
	srv := redistest.Start(t)
	res := run(t, harness.Config{Instances: 2, Duration: time.Second, Rate: 20, Server: refusingServer{},
		Redis:  bridge.Options{URL: srv.URL, KeyPrefix: "ferr:"},
		Faults: []harness.Fault{{At: 500 * time.Millisecond, Action: harness.FaultHang, For: 200 * time.Millisecond}}})
	checkExact(t, res)
	f := res.Timeline.Faults
	if len(f) != 1 || f[0].Error != "freeze refused; undo: thaw refused" {
		t.Fatalf("faults %+v", f)
	}
	want := "fault hang at 0.5s failed: freeze refused; undo: thaw refused"
	if len(res.Warnings) != 1 || res.Warnings[0] != want {
		t.Fatalf("warnings %q, want %q", res.Warnings, want)
	}
}

// The sides of a split run's fault are one record: from the first
// application to the last undoing, each distinct detail once; a fault no
// side applied is left out, unless the worker that held its instance was
// lost, which fails it with the reason.
func TestMergeFaultRecords(t *testing.T) {
	script := []harness.Fault{
		{At: time.Second, Action: harness.FaultSlowConsumer, Instance: 2},
		{At: 2 * time.Second, Action: harness.FaultLatency, Instance: harness.AllInstances},
		{At: 3 * time.Second, Action: harness.FaultPartition, Instance: 1},
		{At: 3 * time.Second, Action: harness.FaultPartition, Instance: 0},
	}
	server := []harness.FaultRecord{
		{Action: harness.FaultSlowConsumer, Instance: 2, AtSeconds: 1.0, EndSeconds: 2.5, Detail: "limit"}, {}, {}, {},
	}
	w1 := []harness.FaultRecord{
		{}, {Action: harness.FaultLatency, Instance: -1, AtSeconds: 2.01, EndSeconds: 4, Detail: "+50ms"}, {}, {},
	}
	w2 := []harness.FaultRecord{
		{Action: harness.FaultSlowConsumer, Instance: 2, AtSeconds: 1.002, EndSeconds: 2.6, Detail: "handler"},
		{Action: harness.FaultLatency, Instance: -1, AtSeconds: 2.0, EndSeconds: 4.1, Detail: "+50ms", Error: "refused"}, {}, {},
	}
	got := harness.MergeFaultRecords(script, map[int]string{2: "worker lost"}, server, w1, w2)
	want := []harness.FaultRecord{
		{Action: harness.FaultSlowConsumer, Instance: 2, AtSeconds: 1.0, EndSeconds: 2.6, Detail: "limit; handler"},
		{Action: harness.FaultLatency, Instance: -1, AtSeconds: 2.0, EndSeconds: 4.1, Detail: "+50ms", Error: "refused"},
		{Action: harness.FaultPartition, Instance: 1, AtSeconds: 3, EndSeconds: 3, Error: "worker lost"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged\n%+v\nwant\n%+v", got, want)
	}
}
