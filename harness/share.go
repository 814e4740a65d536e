package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redisload/redisload/bridge"
)

// Share is one process's part of a run split over several: which of the
// run's instances it runs, and what every part must agree on for the
// messages of one to be genuine, and counted, in another. The workers
// package sets it up from what a coordinator announces.
type Share struct {
	// Lo and Hi are the instances this process runs, [Lo, Hi).
	Lo, Hi int
	// RunID is the run's ID, in every instance's ID.
	RunID string
	// TagKey is the run's message-tag key.
	TagKey bridge.TagKey
	// NotBeforeNs is the earliest send time (Unix ns, on the run's
	// clock) a genuine message of the run carries.
	NotBeforeNs int64
	// ClockOffset is this process's clock minus the run's reference clock
	// (the Redis server's, as the workers measure it): every time the
	// share stamps, a send time or a receipt, is taken on the reference
	// clock, so that latencies between hosts are true.
	// default: 0 (one clock)
	ClockOffset time.Duration
	// ClockSkew makes this process's clock seem off by this much, for the
	// tests of the correction; 0 outside tests.
	ClockSkew time.Duration
	// Ready is called once every instance of the share is connected and
	// subscribed, and returns when publishing starts: the same for every
	// part, so that nobody publishes before everybody listens.
	Ready func(ctx context.Context) (Go, error)
	// Published is called when publishing is over with the share's
	// accepted publishes by instance (0 for the others), and returns every
	// instance's, which the drain then waits for.
	Published func(ctx context.Context, mine []uint64) ([]uint64, error)
	// Acks, needed by the closed loop (Config.MaxRate), is called every
	// ackEvery while publishing with, for each source, the highest
	// sequence number every subscriber of this share has seen from it
	// (the most of the values it may publish beyond), and returns the same
	// for the other shares' subscribers: their back-pressure.
	Acks func(ctx context.Context, mine []uint64) ([]uint64, error)
	// Faults is the run's fault script, as the coordinator plays it (see
	// StartFaults): the share plays, for its own instances, the parts
	// that act inside their process, through proxies of its own (latency,
	// partition) or in their handlers (slow-consumer), and returns them
	// in ShareResult.Faults, by the script's index.
	Faults []Fault
	// Progress, when set, is given the share's counts and latencies once
	// a SeriesInterval from the start, for the coordinator's live view
	// (SeriesMerger): Config.Progress is the coordinator's.
	Progress func(SeriesRaw)
}

// ackEvery is how often a share of a closed loop exchanges its receipts.
const ackEvery = 5 * time.Millisecond

// noAck stands for "no subscriber holds this source back".
const noAck = ^uint64(0)

// Go is the coordinator's start signal: the instant, on the reference
// clock, and how far the parts' clocks may disagree after correction (the
// sum of the two largest uncertainties), within which a message may seem
// to arrive before it was sent.
type Go struct {
	Start     time.Time
	Tolerance time.Duration
}

// ShareResult is what a share ran: its accounting, to be merged with the
// other parts' (MergeParts), and its own timings.
type ShareResult struct {
	Part           PartState
	Start          time.Time
	ConnectSeconds float64
	ElapsedSeconds float64
	DrainSeconds   float64
	Drained        bool
	// Interrupted: ctx ended after the start; publishing and the drain
	// stopped at once, and the part counts what happened until then.
	Interrupted bool
	// Faults is what the share did of Share.Faults, by the script's
	// index, empty where it had nothing to do (MergeFaultRecords).
	Faults []FaultRecord
}

// errShare wraps a Share or Config that cannot be split.
var errShare = errors.New("harness: run share")

// RunShare runs instances [sh.Lo, sh.Hi) of the run cfg describes, as one
// of several processes: its own publishers publish exactly the events a
// single process would have given them (the schedule is drawn whole from
// cfg.Seed, which must be set, and the others' events skipped), and its
// receivers account for every instance's messages. Faults, the closed
// loop, the series and the event log are the coordinator's or not yet
// split, and are refused. Every goroutine it starts has ended when it
// returns.
func RunShare(ctx context.Context, cfg Config, sh Share) (*ShareResult, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := cfg.Instances
	switch {
	case sh.Lo < 0 || sh.Hi > n || sh.Lo >= sh.Hi:
		return nil, fmt.Errorf("%w: instances [%d, %d) of %d", errShare, sh.Lo, sh.Hi, n)
	case cfg.Seed == 0:
		return nil, fmt.Errorf("%w: a split run needs its seed set, for one schedule in every part", errShare)
	case cfg.MaxRate && sh.Acks == nil:
		return nil, fmt.Errorf("%w: the closed loop over processes needs Acks, its back-pressure", errShare)
	case len(cfg.InstanceCmd) > 0:
		return nil, fmt.Errorf("%w: external instances (InstanceCmd) run in one process only, not over workers", errShare)
	case len(cfg.Faults) > 0 || cfg.Progress != nil || cfg.EventLog != nil:
		return nil, fmt.Errorf("%w: the fault script (Share.Faults and StartFaults), progress (Share.Progress) and the event log are not the Config's in a split run", errShare)
	case sh.RunID == "" || sh.Ready == nil || sh.Published == nil:
		return nil, fmt.Errorf("%w: a run ID, Ready and Published are needed", errShare)
	}
	for i, f := range sh.Faults {
		if err := cfg.validateFault(i, f); err != nil {
			return nil, fmt.Errorf("%w: %v", errShare, err)
		}
	}
	// From here the script is this share's to play, its own part of it.
	cfg.Faults = sh.Faults
	local := &faultEnv{cfg: cfg, side: sideInstances, lo: sh.Lo, hi: sh.Hi}
	playsLocal := slices.ContainsFunc(cfg.Faults, local.plays)
	var px *proxies
	if slices.ContainsFunc(cfg.Faults, func(f Fault) bool { return f.Action.needsProxy() && local.plays(f) }) {
		up, err := upstream(cfg.Redis)
		if err != nil {
			return nil, err
		}
		if px, err = startProxies(sh.Lo, sh.Hi, n, up); err != nil {
			return nil, err
		}
		defer px.close()
	}
	prefix := "redisload-" + sh.RunID + "-"
	// shift takes this process's clock readings to the reference clock.
	shift := sh.ClockSkew - sh.ClockOffset
	tr := trust{startNs: sh.NotBeforeNs, limits: make([]seqLimit, n), settled: make([]seqLimit, n), base: cfg.seqBase()}
	if !cfg.DisableTags {
		tr.keys = sourceKeys(sh.TagKey, prefix, n)
	}
	// Another process's source takes its sequence numbers out of sight:
	// it is bounded by all the events the schedule gives it, not by its
	// live count (the tag is what rules out a forgery).
	for j, total := range seqBounds(cfg) {
		if j < sh.Lo || j >= sh.Hi {
			if cfg.MaxRate {
				total = noAck // a closed loop has no schedule: the tag alone rules out a forgery
			}
			tr.limits[j].Store(total)
			tr.settled[j].Store(noAck) // its answers are not seen here
		}
	}
	cluster := false
	if probe, err := newServerProbe(cfg.Redis); err == nil {
		_, cluster = probe.kind(ctx)
		probe.close()
	}
	sharded := cfg.Redis.PubSub == bridge.PubSubSharded
	issued, stopIssued := startIssuedLog(sharded, tr.settled)
	defer stopIssued()
	recvs := make([]*receiver, n)
	bridges := make([]*bridge.Bridge, n)
	defer closeAll(bridges)
	for i := sh.Lo; i < sh.Hi; i++ {
		recvs[i] = newReceiver(i, n, prefix, tr, nil)
		recvs[i].issued, recvs[i].gapLimit = issued, gapLimit(n, sharded)
		recvs[i].shiftNs = int64(shift)
		if cfg.Series || sh.Progress != nil {
			recvs[i].iv = newIntervalHist() // before its receive goroutine exists
		}
		o := cfg.Redis
		if px != nil {
			o = px.options(o, i)
		}
		b, err := instanceBridge(cfg, o, i, prefix, sh.TagKey, recvs[i], cluster)
		if err != nil {
			return nil, err
		}
		bridges[i] = b
	}
	// The closed loop's receipts, wired before the receive goroutines
	// exist: a receiver writes its row from its first message on.
	var receipts [][]atomic.Uint64
	var remote []atomic.Uint64
	if cfg.MaxRate {
		// Local receivers write their rows; the other shares' receivers
		// are one row, the exchange's minimum of theirs.
		remote = make([]atomic.Uint64, n) // 0 until the first exchange: nothing acknowledged yet
		receipts = make([][]atomic.Uint64, n)
		for i := range n {
			if recvs[i] != nil {
				receipts[i] = make([]atomic.Uint64, n)
				recvs[i].receipts = receipts[i]
			} else {
				receipts[i] = remote
			}
		}
	}
	connectStart := time.Now()
	if err := connectAll(ctx, cfg, bridges); err != nil {
		return nil, err
	}
	connectTime := time.Since(connectStart)
	pub := newPublisher(cfg, cfg.Seed, bridges, tr.limits, tr.settled, nil)
	defer pub.preparePipes(ctx)()
	g, err := sh.Ready(ctx)
	if err != nil {
		return nil, err
	}
	for i := sh.Lo; i < sh.Hi; i++ {
		recvs[i].tolNs.Store(int64(g.Tolerance)) // before the first message of the run
	}
	// The start is on the reference clock; this clock reads shift less.
	start := g.Start.Add(-shift)
	select { // everybody starts at once
	case <-time.After(time.Until(start)):
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	pub.shiftNs = int64(shift)
	if cfg.MaxRate {
		pub.receipts = receipts
		stopAcks, acksDone := make(chan struct{}), make(chan struct{})
		go func() { defer close(acksDone); exchangeAcks(ctx, cfg, sh, recvs, remote, stopAcks) }()
		defer func() {
			select {
			case <-stopAcks:
			default:
				close(stopAcks)
			}
			<-acksDone
		}()
	}
	// The series, when asked for: this part's intervals, from the common
	// start, for the coordinator to merge by index.
	var sampler *seriesSampler
	stopSeries, seriesDone := make(chan struct{}), make(chan struct{})
	if cfg.Series || sh.Progress != nil {
		pub.sampleDelays()
		sampler = &seriesSampler{cfg: cfg, start: start, pub: pub, recvs: recvs, bridges: bridges, keep: cfg.Series, onRaw: sh.Progress}
		go func() { defer close(seriesDone); sampler.run(stopSeries) }()
	} else {
		close(seriesDone)
	}
	stopSampler := sync.OnceFunc(func() { close(stopSeries); <-seriesDone })
	defer stopSampler()
	// This share's part of the fault script runs beside its publisher, as
	// a single process's does, and is undone before the drain.
	stopFaults := make(chan struct{})
	faultRecords := make(chan []FaultRecord, 1)
	if playsLocal {
		local.start, local.proxies, local.recvs = start, px, recvs
		ready := make(chan struct{})
		go func() { faultRecords <- runFaults(local, stopFaults, ready) }()
		<-ready
	} else {
		faultRecords <- nil
	}
	pubCtx, stopPub := context.WithDeadline(ctx, start.Add(cfg.publishing()+PublishGrace))
	pub.run(pubCtx, start)
	stopPub()
	close(stopFaults)
	faults := <-faultRecords
	elapsed := max(time.Since(start)-max(cfg.Warmup, 0), 0) // the measured phase
	// Interrupted or not, the counts are owed to the coordinator: the
	// exchange is not cut off by ctx (the coordinator bounds it).
	all, err := sh.Published(context.WithoutCancel(ctx), pub.sentTotals())
	if err != nil {
		return nil, err
	}
	if len(all) != n {
		return nil, fmt.Errorf("%w: %d published counts for %d instances", errShare, len(all), n)
	}
	drainStart := time.Now()
	drained := drain(ctx, cfg, all, recvs, bridges)
	drainTime := time.Since(drainStart)
	stopSampler() // the series runs from the start to the end of the drain
	alive := pingAll(bridges)
	connected := make([]bool, n)
	for i := sh.Lo; i < sh.Hi; i++ {
		connected[i] = bridges[i].Metrics().Connected && alive[i] == nil // before Close
		if alive[i] != nil {
			recvs[i].notConnected = "no answer at the end: " + alive[i].Error()
		}
	}
	closeAll(bridges) // the receive goroutines have ended after this
	metrics := make([]bridge.Metrics, n)
	for i := sh.Lo; i < sh.Hi; i++ {
		metrics[i] = bridges[i].Metrics()
		metrics[i].Connected = connected[i]
	}
	part, err := partState(pub, recvs, metrics)
	if err != nil {
		return nil, err
	}
	if sampler != nil {
		part.Series = sampler.raws
	}
	return &ShareResult{Part: part, Start: g.Start, ConnectSeconds: connectTime.Seconds(), ElapsedSeconds: elapsed.Seconds(),
		DrainSeconds: drainTime.Seconds(), Drained: drained, Interrupted: ctx.Err() != nil, Faults: faults}, nil
}

// seqBounds replays the run's draw of an instance for each event (see
// publisher.schedule) and gives each instance's highest sequence number:
// its count of events, or, after a warm-up, MeasuredSeqBase and its count
// of measured events (its warm-up's are below the base).
func seqBounds(cfg Config) []uint64 {
	rng := scheduleRNG(cfg.Seed)
	counts := make([]uint64, cfg.Instances)
	warm := cfg.warmupEvents()
	for k := range cfg.scheduledEvents() {
		j := rng.IntN(cfg.publishers())
		if k >= warm {
			counts[j]++
		}
	}
	for j := range counts {
		counts[j] += cfg.seqBase()
	}
	return counts
}

// StartFaults plays cfg's fault script for a run split over processes,
// from the coordinator, as Run plays it for itself: start is when
// publishing starts on this process's clock, runID the run's. It plays
// what acts on the server; the parts that act inside an instance's
// process (latency, partition, the slow consumer's handler) are played by
// the share that runs it (Share.Faults). stop ends the script, undoes
// what is still applied, and returns what happened, by the script's
// index, to be merged with the shares' (MergeFaultRecords).
func StartFaults(cfg Config, start time.Time, runID string) (stop func() []FaultRecord, err error) {
	cfg = cfg.WithDefaults()
	env := &faultEnv{cfg: cfg, side: sideServer, start: start, prefix: "redisload-" + runID + "-"}
	if !slices.ContainsFunc(cfg.Faults, env.plays) {
		return func() []FaultRecord { return make([]FaultRecord, len(cfg.Faults)) }, nil
	}
	probe, err := newServerProbe(cfg.Redis)
	if err != nil {
		return nil, err
	}
	// The busiest channel, named as the bridges name it.
	o := cfg.Redis
	o.InstanceID = env.prefix + "0"
	b, err := bridge.New(o)
	if err != nil {
		probe.close()
		return nil, err
	}
	env.probe, env.channel = probe, b.Channels(cfg.EventTypes[0])[0]
	quit := make(chan struct{})
	records := make(chan []FaultRecord, 1)
	go func() { records <- runFaults(env, quit, nil) }()
	return func() []FaultRecord {
		close(quit)
		r := <-records
		probe.close()
		return r
	}, nil
}

// MergeFaultRecords makes the run's timeline of faults from what each
// side of a split run did of its script (StartFaults' records and each
// share's, all by the script's index): a fault is one record, from its
// first application to its last undoing, with every side's distinct
// details and errors. lost[i] names why fault i's instance went
// unplayed, when the share that held it was lost: that fault is recorded
// as failed rather than left out.
func MergeFaultRecords(script []Fault, lost map[int]string, sides ...[]FaultRecord) []FaultRecord {
	out := make([]FaultRecord, len(script))
	for i := range script {
		rec := &out[i]
		var details, errs []string
		for _, side := range sides {
			if i >= len(side) || side[i].Action == "" {
				continue
			}
			r := side[i]
			if rec.Action == "" {
				rec.Action, rec.Instance, rec.AtSeconds, rec.EndSeconds = r.Action, r.Instance, r.AtSeconds, r.EndSeconds
			}
			rec.AtSeconds, rec.EndSeconds = min(rec.AtSeconds, r.AtSeconds), max(rec.EndSeconds, r.EndSeconds)
			if r.Detail != "" && !slices.Contains(details, r.Detail) {
				details = append(details, r.Detail)
			}
			if r.Error != "" && !slices.Contains(errs, r.Error) {
				errs = append(errs, r.Error)
			}
		}
		if why, ok := lost[i]; ok {
			if rec.Action == "" {
				rec.Action, rec.Instance = script[i].Action, script[i].Instance
				rec.AtSeconds = script[i].At.Seconds()
				rec.EndSeconds = rec.AtSeconds
			}
			errs = append(errs, why)
		}
		rec.Detail, rec.Error = joinNonEmpty(details...), joinNonEmpty(errs...)
	}
	return appliedFaults(out)
}

// exchangeAcks trades this share's receipts for the others' until stop.
func exchangeAcks(ctx context.Context, cfg Config, sh Share, recvs []*receiver, remote []atomic.Uint64, stop <-chan struct{}) {
	n := cfg.Instances
	mine := make([]uint64, n)
	t := time.NewTicker(ackEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for j := range mine {
			mine[j] = noAck
			for i, r := range recvs {
				if r != nil && i != j && cfg.subscribes(i) {
					mine[j] = min(mine[j], r.receipts[j].Load())
				}
			}
		}
		others, err := sh.Acks(ctx, mine)
		if err != nil || len(others) != n {
			continue // the next exchange may go through; meanwhile the window holds
		}
		for j, v := range others {
			remote[j].Store(v)
		}
	}
}
