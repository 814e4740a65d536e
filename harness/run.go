// Package harness runs N event bridges against one Redis, publishes
// randomized market-data events at a controlled rate, and accounts for every
// message: per instance and per source, delivered, missing, duplicated, out
// of order, self-received, with HDR latency histograms.
package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/redisload/redisload/bridge"
)

// ErrUnavailable wraps every failure to reach Redis or set up the run's
// connections and subscriptions.
var ErrUnavailable = errors.New("redis unavailable")

// connectParallelism bounds concurrent connection setups: enough to connect
// hundreds of instances quickly without a dial storm.
const connectParallelism = 32

// Run connects cfg.Instances bridges, waits until every one is subscribed,
// publishes for cfg.Duration, drains, and returns what it measured.
//
// When ctx is cancelled during the run, publishing and draining stop at
// once and the partial result is returned with Interrupted set and a nil
// error. Cancelled before publishing started, Run returns ctx's error.
// Every goroutine Run starts has ended when it returns.
//
// Whatever the server does (dies, freezes), Run returns within
// ConnectTimeout + Duration + DrainTimeout + MaxGrace: publishing stops
// PublishGrace after the duration, interrupting a round trip in progress,
// and each step after the drain has a bound of its own.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// A random seed is chosen here, not left to the generator, so that the
	// report can print it and any run can be replayed.
	seed := cfg.Seed
	for seed == 0 {
		seed = rand.Uint64()
	}
	// The run ID keeps two runs on one Redis (or one key prefix) apart: a
	// message from another run's instance is foreign, never delivered.
	runID := fmt.Sprintf("%08x", rand.Uint32())
	prefix := "redisload-" + runID + "-"
	var log *eventLog
	if cfg.EventLog != nil {
		log = &eventLog{w: cfg.EventLog, start: time.Now()}
	}
	// What a genuine message of this run satisfies: every receiver checks
	// it, so that nothing another publisher sends on the channels can
	// enter the run's accounting.
	tr := trust{startNs: time.Now().UnixNano(), limits: make([]seqLimit, cfg.Instances)}
	var key bridge.TagKey
	if !cfg.DisableTags {
		var err error
		if key, err = bridge.NewTagKey(); err != nil {
			return nil, err
		}
		tr.keys = make([]bridge.SourceKey, cfg.Instances)
	}

	n := cfg.Instances
	// Latency and partition faults need each instance behind a proxy of
	// its own, from the first connection.
	var px *proxies
	if slices.ContainsFunc(cfg.Faults, func(f Fault) bool { return f.Action.needsProxy() }) {
		up, err := upstream(cfg.Redis)
		if err != nil {
			return nil, err
		}
		if px, err = startProxies(n, up); err != nil {
			return nil, err
		}
		defer px.close()
	}
	recvs := make([]*receiver, n)
	bridges := make([]*bridge.Bridge, n)
	for i := range n {
		recvs[i] = newReceiver(i, n, prefix, tr, log)
		if cfg.Series || cfg.Progress != nil {
			recvs[i].iv = newIntervalHist() // before its receive goroutine exists
		}
		o := cfg.Redis
		if px != nil {
			o = px.options(o, i)
		}
		o.InstanceID = prefix + strconv.Itoa(i)
		o.TagKey = key
		if tr.keys != nil {
			tr.keys[i] = key.For(o.InstanceID)
		}
		o.Handler = recvs[i].handle
		o.BorrowPayload = true // handle keeps no string of the Event
		o.OnSubscriberChange = recvs[i].subscriberChange
		for _, f := range cfg.Faults {
			if f.Action == FaultSlowConsumer && f.Instance == i {
				o.SubscriberReadBuffer = f.withDefaults(cfg.Duration).ReadBuffer
			}
		}
		o.DeliverOwn = cfg.DisableSelfFilter
		o.DisablePublishing = !cfg.publishes(i)
		o.DisableSubscription = !cfg.subscribes(i)
		b, err := bridge.New(o)
		if err != nil {
			return nil, err
		}
		bridges[i] = b
	}
	defer closeAll(bridges)

	// The barrier: nobody publishes until every instance is connected and
	// Redis has confirmed every subscription, so no early message counts as
	// lost.
	connectStart := time.Now()
	if err := connectAll(ctx, cfg, bridges); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}

	// Publishing runs on this goroutine: the receivers run on the bridges'
	// own receive goroutines, so there is nothing else to coordinate.
	connectTime := time.Since(connectStart)
	probe, err := newServerProbe(cfg.Redis)
	if err != nil {
		return nil, err
	}
	defer probe.close()
	// One bound for both reads: a server that stalls here must not hold
	// the run up beyond its MaxGrace.
	pctx, cancelProbe := context.WithTimeout(ctx, probeTimeout)
	server := probe.describe(pctx)
	server.StatsBefore = probe.stats(pctx)
	cancelProbe()

	// Sample subscribers' output buffers from the first publish to the end
	// of the drain: the only sign of a subscriber Redis is about to cut off.
	stopSampling := make(chan struct{})
	sampled := make(chan OutputBuffers, 1)
	go func() { sampled <- probe.sampleOutputBuffers(prefix, n, stopSampling) }()

	pub := newPublisher(cfg, seed, bridges, tr.limits, log)
	// The series runs from the first publish to the end of the drain.
	stopSeries := make(chan struct{})
	series := make(chan []SeriesPoint, 1)
	if cfg.MaxRate {
		pub.receipts = make([][]atomic.Uint64, n)
		for i, r := range recvs {
			pub.receipts[i] = make([]atomic.Uint64, n)
			r.receipts = pub.receipts[i]
		}
	}
	start := time.Now()
	if recvs[0].iv != nil {
		s := &seriesSampler{cfg: cfg, start: start, pub: pub, recvs: recvs, bridges: bridges}
		go func() { series <- s.run(stopSeries) }()
	} else {
		series <- nil
	}
	// The fault script runs beside the publisher and stops with it,
	// undoing what is still applied, so that the drain sees a healthy
	// server.
	stopFaults := make(chan struct{})
	faultRecords := make(chan []FaultRecord, 1)
	if len(cfg.Faults) > 0 {
		env := &faultEnv{cfg: cfg, start: start, probe: probe, proxies: px, recvs: recvs, prefix: prefix}
		ready := make(chan struct{})
		go func() { faultRecords <- runFaults(env, stopFaults, ready) }()
		<-ready // faults at 0 are applied
	} else {
		faultRecords <- nil
	}
	// Publishing ends PublishGrace after the duration at the latest: a
	// publisher behind schedule, or waiting for a frozen server, stops
	// there, its round trip interrupted.
	pubCtx, stopPub := context.WithDeadline(ctx, start.Add(cfg.Duration+PublishGrace))
	pub.run(pubCtx, start)
	stopPub()
	elapsed := time.Since(start)
	close(stopFaults)
	faults := <-faultRecords

	// Drain before reading anything: messages still in flight at the end
	// of publishing are not lost, only late.
	drainStart := time.Now()
	drained := drain(ctx, cfg, pub, recvs, bridges)
	drainTime := time.Since(drainStart)

	// Connected means connected and still served at the end: a server
	// that died or froze fails this round trip on every connection.
	alive := pingAll(bridges)

	// Counters are read after Close (no message can arrive in between and
	// go uncounted), but Connected must be read before, or it is false.
	close(stopSampling)
	buffers := <-sampled
	close(stopSeries)
	seriesPoints := <-series
	buffers.LimitBytes = server.PubsubHardBytes

	metrics := make([]bridge.Metrics, n)
	for i, b := range bridges {
		metrics[i] = b.Metrics() // before Close: Connected means "at the end"
		if alive[i] != nil && metrics[i].Connected {
			metrics[i].Connected = false
			recvs[i].notConnected = "no answer at the end: " + alive[i].Error()
		}
	}
	closeAll(bridges) // the receive goroutines have ended after this
	// Fresh context: an interrupted run still reports the counters after.
	statsCtx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	probe.awaitGone(statsCtx, prefix)
	server.StatsAfter = probe.stats(statsCtx)
	cancel()
	for i, b := range bridges {
		m := b.Metrics()
		m.Connected = metrics[i].Connected
		metrics[i] = m
	}

	res := &Result{
		RunID:         runID,
		Redis:         redisLabel(cfg.Redis),
		KeyPrefix:     bridges[0].Channel(""),
		Seed:          seed,
		Server:        server,
		OutputBuffers: buffers,
		StartedAt:     start.UTC(),
		Config: ResultConfig{
			Instances:           n,
			DurationSeconds:     cfg.Duration.Seconds(),
			Rate:                targetRate(cfg),
			Pipeline:            cfg.Pipeline,
			Publishers:          cfg.publishers(),
			DedicatedPublishers: cfg.DedicatedPublishers,
			MaxRate:             cfg.MaxRate,
			MaxInFlight:         maxInFlight(cfg),
			EventTypes:          cfg.EventTypes,
			DrainTimeoutSeconds: max(cfg.DrainTimeout, 0).Seconds(),
			SelfFilterDisabled:  cfg.DisableSelfFilter,
		},
		ConnectSeconds: connectTime.Seconds(),
		ElapsedSeconds: elapsed.Seconds(),
		DrainSeconds:   drainTime.Seconds(),
		Drained:        drained,
		Interrupted:    ctx.Err() != nil,
		Series:         seriesPoints,
	}
	assemble(res, cfg, start, pub, recvs, metrics, faults)
	return res, nil
}

// targetRate is the rate echoed in the result: none in MaxRate, where the
// rate is what the run found.
func targetRate(cfg Config) float64 {
	if cfg.MaxRate {
		return 0
	}
	return cfg.Rate
}

// maxInFlight is the window echoed in the result, 0 when not in MaxRate.
func maxInFlight(cfg Config) int {
	if cfg.MaxRate {
		return cfg.MaxInFlight
	}
	return 0
}

// connectAll connects and subscribes every bridge, a bounded number at a
// time, within cfg.ConnectTimeout.
func connectAll(ctx context.Context, cfg Config, bridges []*bridge.Bridge) error {
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	g, gctx := errgroup.WithContext(cctx)
	g.SetLimit(connectParallelism)
	for i, b := range bridges {
		g.Go(func() error {
			if err := b.Connect(gctx); err != nil {
				return fmt.Errorf("instance %d: %w", i, err)
			}
			if !cfg.subscribes(i) {
				return nil
			}
			if err := b.Subscribe(gctx, cfg.EventTypes...); err != nil {
				return fmt.Errorf("instance %d: %w", i, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// closeAll closes every bridge concurrently; Close is idempotent.
func closeAll(bridges []*bridge.Bridge) {
	var g errgroup.Group
	g.SetLimit(connectParallelism)
	for _, b := range bridges {
		if b != nil {
			g.Go(b.Close)
		}
	}
	_ = g.Wait()
}

// redisLabel names the server for the report, without the password.
func redisLabel(o bridge.Options) string {
	if o.URL != "" {
		return bridge.RedactURL(o.URL)
	}
	if o.Addr != "" {
		return o.Addr
	}
	return bridge.DefaultAddr
}

// PublishGrace is how long after the duration publishing may go on: a
// publisher behind schedule sends what was due, and a round trip to a slow
// server completes. Past it, what is still queued is not sent.
const PublishGrace = time.Second

// pingTimeout bounds the round trip that proves each instance alive at the
// end of the run.
const pingTimeout = time.Second

// probeTimeout bounds the server probe's reads before the run and again
// after it (INFO, CONFIG, CLIENT LIST).
const probeTimeout = time.Second

// MaxGrace bounds the time a run takes beyond connecting, its duration and
// its drain timeout: the probe before the run, PublishGrace, the liveness
// round trip, the last output-buffer sample and the probe after the run
// (4.25 s at most), with room to spare.
const MaxGrace = 5 * time.Second

// pingAll checks every bridge with a round trip on each of its connections,
// concurrently, and returns each one's error (nil: alive).
func pingAll(bridges []*bridge.Bridge) []error {
	errs := make([]error, len(bridges))
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	// Unbounded fan-out: one bound for all, and a frozen server must not
	// make later instances queue behind earlier ones' timeouts.
	var g errgroup.Group
	for i, b := range bridges {
		g.Go(func() error {
			errs[i] = b.Ping(ctx)
			return nil
		})
	}
	_ = g.Wait()
	return errs
}

// drain waits until every instance has received everything expected of it
// (and, with the self-filter on, seen its own echoes), the drain timeout
// passes, or ctx ends. It reports whether everything arrived.
func drain(ctx context.Context, cfg Config, pub *publisher, recvs []*receiver, bridges []*bridge.Bridge) bool {
	var total uint64
	for i := range pub.published {
		total += pub.published[i]
	}
	deadline := time.Now().Add(max(cfg.DrainTimeout, 0)) // NoDrain: one look, no wait
	done := make([]bool, len(recvs))
	// Polling, not signalling: a receiver would otherwise pay for a check on
	// every message, and the drain lasts milliseconds in a healthy run.
	for {
		all := true
		for i, r := range recvs {
			if done[i] {
				continue
			}
			if !cfg.subscribes(i) {
				done[i] = true
				continue
			}
			own := pub.published[i]
			others := total - own
			if cfg.DisableSelfFilter {
				done[i] = r.progress.Load() >= others+own
			} else {
				// Cheap check first; Metrics takes a lock.
				done[i] = r.progress.Load() >= others && bridges[i].Metrics().SelfFiltered >= own
			}
			all = all && done[i]
		}
		if all {
			return true
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// assemble fills res from the publisher's and receivers' counts. It runs
// after every receive goroutine has ended.
func assemble(res *Result, cfg Config, start time.Time, pub *publisher, recvs []*receiver, metrics []bridge.Metrics, faults []FaultRecord) {
	n := len(recvs)
	t := &res.Totals
	t.Instances = n
	t.TargetEvents = cfg.TotalEvents()
	res.Matrix = Matrix{Sent: pub.published, Subscribed: make([]bool, n), Delivered: make([][]uint64, 0, n),
		Duplicates: []MatrixEntry{}, OutOfOrder: []MatrixEntry{}}
	total := newHistogram()
	for i, r := range recvs {
		m := metrics[i]
		ir := InstanceResult{
			Index:     i,
			ID:        m.InstanceID,
			Connected: m.Connected && !r.unrecovered(),
			Counts: Counts{
				Published:      pub.published[i],
				PublishErrors:  pub.errors[i],
				PublishUnknown: pub.unknown[i],
				Received:       m.Received,
				SelfFiltered:   m.SelfFiltered,
				SelfReceived:   r.selfReceived,
				Foreign:        r.foreign,
				Forged:         r.forged,
				Malformed:      m.Malformed,
				Errors:         m.Errors,
				Reconnects:     m.Reconnects,
			},
			LatencyOverflow: r.overflow,
			Latency:         Summarize(r.hist),
		}
		row := make([]uint64, n)
		res.Matrix.Subscribed[i] = cfg.subscribes(i)
		for j := range recvs {
			if j == i || !cfg.subscribes(i) {
				continue // nothing is expected of a publish-only instance
			}
			tr := &r.sources[j]
			s := cell(j, tr, pub.published[j], pub.insts[j].failedSeqs)
			row[j] = s.Delivered
			if tr.duplicates > 0 {
				res.Matrix.Duplicates = append(res.Matrix.Duplicates, MatrixEntry{uint64(i), uint64(j), tr.duplicates})
			}
			if tr.outOfOrder > 0 {
				res.Matrix.OutOfOrder = append(res.Matrix.OutOfOrder, MatrixEntry{uint64(i), uint64(j), tr.outOfOrder})
			}
			ir.Expected += s.Sent
			ir.Delivered += s.Delivered
			ir.Missing += s.Missing
			ir.Duplicates += s.Duplicates
			ir.OutOfOrder += s.OutOfOrder
			ir.LateConfirmed += s.LateConfirmed
			ir.Untracked += tr.untracked
			// Every publish attempt takes a sequence number.
			ir.SeqGaps += tr.missing(pub.published[j] + pub.errors[j] + pub.unknown[j])
		}
		res.Matrix.Delivered = append(res.Matrix.Delivered, row)
		ir.DeliveryRate = percent(ir.Delivered, ir.Expected)
		res.InstanceHistograms = append(res.InstanceHistograms, r.hist)
		if dropped := total.Merge(r.hist); dropped > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("instance %d: %d latency samples lost merging histograms", i, dropped))
		}

		if !ir.Connected {
			ir.NotConnected = r.whyNotConnected()
		} else {
			t.Connected++
		}
		t.add(ir.Counts)
		res.Instances = append(res.Instances, ir)
	}
	t.DeliveryRate = percent(t.Delivered, t.Expected)
	if res.ElapsedSeconds > 0 {
		t.PublishRate = float64(t.Published) / res.ElapsedSeconds
	}
	if s := res.ElapsedSeconds + res.DrainSeconds; s > 0 {
		t.DeliveryThroughput = float64(t.Delivered) / s
	}
	res.Histogram = total
	res.Latency = Summarize(total)
	res.SendDelay = Summarize(pub.sendDelay)

	sent := make([]uint64, n)
	missing := make([]uint64, n)
	var bursts [][]ErrorBurst
	var failed [][]seqRange
	for i, ip := range pub.insts {
		sent[i] = pub.published[i] + pub.errors[i] + pub.unknown[i]
		missing[i] = res.Instances[i].Missing
		bursts = append(bursts, ip.bursts)
		failed = append(failed, ip.failedSeqs)
	}
	res.Timeline = timeline(start, faults, recvs, bursts, sent, failed, missing)
	res.Warnings = append(res.Warnings, warnings(res, cfg)...)
}

// cell accounts for what one receiver got from source j: tr is its
// tracker of j, published what j got accepted, failed the sequence numbers
// of j's publishes that were not accepted (failed or unknown outcome).
//
// Expected is what was accepted. A message whose publish was not accepted
// but arrived all the same (a timeout after Redis acted on it) is counted
// as late-confirmed, not delivered, so that Delivered + Missing = Expected
// holds exactly in every cell, and Delivered never exceeds Expected.
func cell(j int, tr *seqTracker, published uint64, failed []seqRange) SourceStats {
	s := SourceStats{Source: j, Sent: published, Duplicates: tr.duplicates, OutOfOrder: tr.outOfOrder}
	for _, f := range failed {
		s.LateConfirmed += tr.receivedIn(f.lo, f.hi)
	}
	if tr.unique > s.LateConfirmed {
		s.Delivered = tr.unique - s.LateConfirmed
	}
	// receivedIn may overstate below a forgotten range (see seqTracker),
	// which can only understate Delivered; the bound below is a guard.
	s.Delivered = min(s.Delivered, s.Sent)
	s.Missing = s.Sent - s.Delivered
	return s
}

// warnings states what a reader of the numbers must know.
func warnings(res *Result, cfg Config) []string {
	t := res.Totals
	var w []string
	if cfg.DisableSelfFilter {
		w = append(w, "self-filtering was disabled (a test of the self-received check)")
	}
	if res.Interrupted {
		w = append(w, fmt.Sprintf("interrupted after %.1fs of %v: partial results", res.ElapsedSeconds, cfg.Duration))
	} else if attempts := t.Published + t.PublishErrors + t.PublishUnknown; !cfg.MaxRate && attempts < t.TargetEvents {
		w = append(w, fmt.Sprintf("publisher fell behind: %d of %d target events sent (%.1f/s of %g/s)",
			attempts, t.TargetEvents, t.PublishRate, cfg.Rate))
	}
	if notConnected := t.Instances - t.Connected; notConnected > 0 {
		for _, ir := range res.Instances {
			if !ir.Connected {
				w = append(w, fmt.Sprintf("instance %d was not connected at the end: %s", ir.Index, ir.NotConnected))
				break // the first; the table shows them all
			}
		}
		if notConnected > 1 {
			w = append(w, fmt.Sprintf("%d instances in all were not connected at the end: messages published while an instance was down are missing at it", notConnected))
		}
	}
	if notAccepted := t.PublishErrors + t.PublishUnknown; notAccepted > 0 {
		w = append(w, fmt.Sprintf("%d publishes were not accepted by Redis (%d failed, %d with an unknown outcome): delivery is measured over the %d accepted only",
			notAccepted, t.PublishErrors, t.PublishUnknown, t.Published))
	}
	if t.LateConfirmed > 0 {
		w = append(w, fmt.Sprintf("%d deliveries were of publishes not accepted (late-confirmed): Redis acted on them although no reply said so; counted apart from delivered", t.LateConfirmed))
	}
	if t.Forged > 0 {
		w = append(w, fmt.Sprintf("%d messages claimed to come from this run's instances but failed its checks (index, sequence, send time, tag): forged or corrupted, counted as forged and nothing else", t.Forged))
	}
	if t.Untracked > 0 {
		w = append(w, fmt.Sprintf("%d arrivals came from sequence ranges no longer tracked (over %d gaps from one source): left counted as missing", t.Untracked, maxGaps))
	}
	if t.Instances == 1 {
		w = append(w, "one instance: no other instance receives its events, so delivery is not measured")
	}
	if !res.Drained && res.Interrupted {
		w = append(w, fmt.Sprintf("interrupted: the drain was cut short, so %d of the missing messages may only be late", t.Missing))
	} else if !res.Drained {
		why := ""
		if len(res.Timeline.Outages) > 0 && res.Timeline.LossOutsideOutages == 0 {
			why = " (all of them inside subscriber outages: lost, not late)"
		}
		wait := fmt.Sprintf("drain timeout (%v)", cfg.DrainTimeout)
		if cfg.DrainTimeout == NoDrain {
			wait = "no drain"
		}
		w = append(w, fmt.Sprintf("%s: %d expected messages had not arrived%s", wait, t.Missing, why))
	}
	if t.Foreign > 0 {
		w = append(w, fmt.Sprintf("%d events from publishers outside this run arrived on %s* channels (not counted as delivered)", t.Foreign, res.KeyPrefix))
	}
	if t.Malformed > 0 {
		w = append(w, fmt.Sprintf("%d messages on %s* channels were not event envelopes (dropped)", t.Malformed, res.KeyPrefix))
	}
	if ob := res.OutputBuffers; ob.LimitBytes > 0 && ob.PeakBytes*2 >= ob.LimitBytes {
		w = append(w, fmt.Sprintf("instance %d's output buffer on the server reached %s, %.0f%% of the pubsub hard limit: Redis disconnects a subscriber at 100%%, and its messages are lost",
			ob.PeakInstance, BytesLabel(ob.PeakBytes), float64(ob.PeakBytes)/float64(ob.LimitBytes)*100))
	}
	for _, f := range res.Timeline.Faults {
		if f.Error != "" {
			w = append(w, fmt.Sprintf("fault %s at %.1fs failed: %s", f.Action, f.AtSeconds, f.Error))
		}
	}
	var overflow uint64
	for _, ir := range res.Instances {
		overflow += ir.LatencyOverflow
	}
	if overflow > 0 {
		w = append(w, fmt.Sprintf("%d latencies exceeded 60s and were recorded as 60s", overflow))
	}
	return w
}
