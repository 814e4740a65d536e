// Package harness runs N event bridges against one Redis, publishes
// randomized market-data events at a controlled rate, and accounts for every
// message: per instance and per source, delivered, missing, duplicated, out
// of order, self-received, with HDR latency histograms.
package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/redis/go-redis/v9"
	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/rusage"
)

// ErrUnavailable wraps every failure to reach Redis or set up the run's
// connections and subscriptions.
var ErrUnavailable = errors.New("redis unavailable")

// ErrUnsupported wraps a run the server cannot serve as configured, such
// as sharded pub/sub on a Redis older than 7.0: a usage error, not an
// outage.
var ErrUnsupported = errors.New("not supported by the server")

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
	tr := trust{startNs: time.Now().UnixNano(), limits: make([]seqLimit, cfg.Instances), settled: make([]seqLimit, cfg.Instances),
		base: cfg.seqBase()}
	var key bridge.TagKey
	if !cfg.DisableTags {
		var err error
		if key, err = bridge.NewTagKey(); err != nil {
			return nil, err
		}
		tr.keys = sourceKeys(key, prefix, cfg.Instances)
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
		if px, err = startProxies(0, n, n, up); err != nil {
			return nil, err
		}
		defer px.close()
	}
	// The probe is a plain client of the run's server for INFO, CONFIG
	// and CLIENT LIST; one connection for the whole run, opened first.
	probe, err := newServerProbe(cfg.Redis)
	if err != nil {
		return nil, err
	}
	defer probe.close()
	// What the server is decides how the bridges connect: a cluster's
	// nodes may fail over under them, and sharded pub/sub needs Redis 7.
	sharded := cfg.Redis.PubSub == bridge.PubSubSharded
	streams := cfg.Redis.Transport == bridge.TransportStreams
	version, cluster := probe.kind(ctx)
	if sharded && version != "" && majorVersion(version) < 7 {
		return nil, fmt.Errorf("%w: sharded pub/sub (SPUBLISH, SSUBSCRIBE) needs Redis 7.0 or later; the server is %s", ErrUnsupported, version)
	}
	// Spread over a cluster's nodes, each instance connects to a node of
	// its own: a classic publish crosses the bus before its subscribers
	// see it. Sharded instances connect to the shards their channels need.
	var nodeAddrs []string
	if cfg.Placement == PlacementSpread && px == nil && cluster && !sharded && !streams {
		nodeAddrs = probe.clusterAddrs(ctx)
	}
	// Where a sharded outage begins needs the sources' recent sequence
	// numbers (see issuedLog).
	issued, stopIssued := startIssuedLog(sharded, tr.settled)
	defer stopIssued()
	// External instances' adapters, started before their bridges: each
	// is stopped with its process group when the run ends, whatever it
	// does meanwhile.
	procs, err := startAdapters(cfg)
	if err != nil {
		return nil, err
	}
	defer procs.stop()
	recvs := make([]*receiver, n)
	bridges := make([]*bridge.Bridge, n)
	for i := range n {
		recvs[i] = newReceiver(i, n, prefix, tr, log)
		recvs[i].issued = issued
		recvs[i].gapLimit = gapLimit(n, sharded)
		if cfg.Series || cfg.Progress != nil {
			recvs[i].iv = newIntervalHist() // before its receive goroutine exists
		}
		o := cfg.Redis
		if px != nil {
			o = px.options(o, i)
		}
		if len(nodeAddrs) > 0 {
			recvs[i].node = nodeAddrs[i%len(nodeAddrs)]
			o = atAddr(o, recvs[i].node)
		}
		o.External = procs.external(i)
		if o.External != nil {
			// Another process's clock, read by another runtime: a receipt
			// may seem up to adapterClockTolerance before its send.
			recvs[i].tolNs.Store(int64(adapterClockTolerance))
		}
		b, err := instanceBridge(cfg, o, i, prefix, key, recvs[i], cluster)
		if err != nil {
			return nil, err
		}
		bridges[i] = b
	}
	defer closeAll(bridges)
	// Over streams, what the streams hold before any group is created:
	// the end takes out what the run added, and only that, also when the
	// run fails (abort): a stream outlives the run that made it.
	var sr *StreamsRun
	if streams {
		if sr, err = startStreams(ctx, probe, cfg, version, cluster, bridges[0], instanceIDs(prefix, n)); err != nil {
			return nil, err
		}
		defer sr.abort()
	}
	// The closed loop's receipts, wired before the receive goroutines
	// exist: a receiver writes its row from its first message on.
	var receipts [][]atomic.Uint64
	if cfg.MaxRate {
		receipts = make([][]atomic.Uint64, n)
		for i, r := range recvs {
			receipts[i] = make([]atomic.Uint64, n)
			r.receipts = receipts[i]
		}
	}

	// The barrier: nobody publishes until every instance is connected and
	// Redis has confirmed every subscription, so no early message counts as
	// lost.
	// An ACL that refuses the run's commands is said now, naming them.
	var channels []string
	for _, t := range cfg.EventTypes {
		channels = append(channels, bridges[0].Channels(t)...)
	}
	// A server that did not answer INFO is not asked: the connections'
	// own errors (and timeouts) say what is wrong with it.
	if version != "" {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := probe.checkPermissions(pctx, cfg, channels)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	connectStart := time.Now()
	if err := connectAll(ctx, cfg, bridges); err != nil {
		return nil, procs.explain(err, bridges)
	}

	// Publishing runs on this goroutine: the receivers run on the bridges'
	// own receive goroutines, so there is nothing else to coordinate.
	connectTime := time.Since(connectStart)
	// One bound for both reads: a server that stalls here must not hold
	// the run up beyond its MaxGrace.
	pctx, cancelProbe := context.WithTimeout(ctx, probeTimeout)
	server := probe.describe(pctx)
	if server.Cluster != nil {
		// Where the run's channels live: with sharded pub/sub, or just
		// for a reader, the traffic of a channel is its slot's master's.
		probe.placeChannels(pctx, server.Cluster, channels)
	}
	// Every node's counters, before and after: a cluster's cost of
	// pub/sub is spread over its nodes and its bus, not on the one node
	// the run talks to.
	var nodes *nodeProbes
	var nodesBefore []*nodeCounters
	if server.Cluster != nil {
		if nodes, err = newNodeProbes(cfg.Redis, server.Cluster); err != nil {
			cancelProbe()
			return nil, err
		}
		defer nodes.close()
		nodesBefore = nodes.counters(pctx)
	}
	server.StatsBefore = probe.stats(pctx)
	subscribers := 0
	for i := range n {
		if cfg.subscribes(i) {
			subscribers++
		}
	}
	orc := startOracle(pctx, cfg, probe, nodes, channels, subscribers)
	statsRead := time.Now()
	cancelProbe()

	// Sample subscribers' output buffers from the first publish to the end
	// of the drain: the only sign of a subscriber Redis is about to cut off.
	stopSampling := make(chan struct{})
	sampled := make(chan OutputBuffers, 1)
	var sampleNodes []*redis.Client
	if len(nodeAddrs) > 0 && nodes != nil {
		sampleNodes = nodes.clients // the subscribers are on every node
	}
	go func() { sampled <- probe.sampleOutputBuffers(prefix, n, stopSampling, sampleNodes) }()

	pub := newPublisher(cfg, seed, bridges, tr.limits, tr.settled, log)
	defer pub.preparePipes(ctx)()
	// The series runs from the first publish to the end of the drain.
	stopSeries := make(chan struct{})
	series := make(chan []SeriesPoint, 1)
	pub.receipts = receipts
	cpuStart, _ := rusage.Self()
	start := time.Now()
	if recvs[0].iv != nil {
		pub.sampleDelays()
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
		env := &faultEnv{cfg: cfg, start: start, probe: probe, proxies: px, recvs: recvs, prefix: prefix,
			channel: bridges[0].Channels(cfg.EventTypes[0])[0]}
		ready := make(chan struct{})
		go func() { faultRecords <- appliedFaults(runFaults(env, stopFaults, ready)) }()
		<-ready // faults at 0 are applied
	} else {
		faultRecords <- nil
	}
	// Publishing ends PublishGrace after the duration at the latest: a
	// publisher behind schedule, or waiting for a frozen server, stops
	// there, its round trip interrupted.
	pubCtx, stopPub := context.WithDeadline(ctx, start.Add(cfg.publishing()+PublishGrace))
	pub.run(pubCtx, start)
	stopPub()
	// Where the run's connections are, while every one is still open.
	var nodeConns [][2]int
	if nodes != nil {
		cctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		nodeConns = nodes.connections(cctx, prefix)
		cancel()
	}
	elapsed := max(time.Since(start)-max(cfg.Warmup, 0), 0) // the measured phase
	close(stopFaults)
	faults := <-faultRecords

	// Drain before reading anything: messages still in flight at the end
	// of publishing are not lost, only late.
	drainStart := time.Now()
	drained := drain(ctx, cfg, pub.sentTotals(), recvs, bridges)
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
	procs.stop()      // every adapter asked to stop by its bridge: now ended
	cpuEnd, _ := rusage.Self()
	// Fresh context: an interrupted run still reports the counters after.
	statsCtx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	probe.awaitGone(statsCtx, prefix)
	server.Counts = orc.finish(statsCtx, pub, recvs, metrics)
	server.StatsAfter = probe.stats(statsCtx)
	server.NoteTraffic(time.Since(statsRead).Seconds())
	buffers.LimitDisconnections = limitDisconnections(server.StatsBefore, server.StatsAfter)
	if nodes != nil {
		nodeStats(server.Cluster, nodes.addrs, nodesBefore, nodes.counters(statsCtx), nodeConns)
	}
	if sr != nil {
		sr.finish(statsCtx)
	}
	cancel()
	for i, b := range bridges {
		m := b.Metrics()
		m.Connected = metrics[i].Connected
		metrics[i] = m
		if sr != nil {
			sr.count(m)
		}
	}
	var st *StreamsStats
	if sr != nil {
		sr.settle()
		st = sr.st
	}

	echo := cfg.Echo()
	echo.SpreadOver = len(nodeAddrs)
	res := &Result{
		RunID:            runID,
		Redis:            redisLabel(cfg.Redis),
		KeyPrefix:        cmp.Or(cfg.Redis.KeyPrefix, bridge.DefaultKeyPrefix),
		Seed:             seed,
		Server:           server,
		OutputBuffers:    buffers,
		StartedAt:        start.UTC(),
		Config:           echo,
		ConnectSeconds:   connectTime.Seconds(),
		ElapsedSeconds:   elapsed.Seconds(),
		DrainSeconds:     drainTime.Seconds(),
		Drained:          drained,
		Interrupted:      ctx.Err() != nil,
		Series:           seriesPoints,
		Streams:          st,
		ClientCPUSeconds: (cpuEnd - cpuStart).Seconds(),
	}
	assemble(res, cfg, start, pub, recvs, metrics, faults)
	procs.reports(res, bridges)
	res.Warnings = append(res.Warnings, adapterWarnings(res)...)
	if pub.pipeErr != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the instances published through their bridges' go-redis pipelines, each waiting for its replies, because a pipe could not connect: %v", pub.pipeErr))
	}
	if partHook != nil {
		ps, err := partState(pub, recvs, metrics)
		partHook(ps, err, start)
	}
	return res, nil
}

// partHook, set by tests (export_test.go), receives each finished run's
// accounting as a worker would ship it.
var partHook func(ps PartState, err error, start time.Time)

// stagesEcho is a load shape as a report repeats it; nil for none.
func stagesEcho(stages []Stage) []StageEcho {
	var out []StageEcho
	for _, s := range stages {
		out = append(out, StageEcho{DurationSeconds: s.Duration.Seconds(), Rate: s.Rate})
	}
	return out
}

// Echo is the configuration as a Result repeats it.
func (c Config) Echo() ResultConfig {
	return ResultConfig{
		Instances:           c.Instances,
		DurationSeconds:     c.Duration.Seconds(),
		Rate:                targetRate(c),
		Pipeline:            c.Pipeline,
		BatchWindowUs:       batchWindowUs(c),
		PayloadSize:         c.PayloadSize,
		PayloadSizeMax:      c.PayloadSizeMax,
		Stages:              stagesEcho(c.Stages),
		WarmupSeconds:       max(c.Warmup, 0).Seconds(),
		Publishers:          c.publishers(),
		DedicatedPublishers: c.DedicatedPublishers,
		MaxRate:             c.MaxRate,
		MaxInFlight:         maxInFlight(c),
		EventTypes:          c.EventTypes,
		DrainTimeoutSeconds: max(c.DrainTimeout, 0).Seconds(),
		SelfFilterDisabled:  c.DisableSelfFilter,
		ChannelsPerType:     max(c.Redis.ChannelsPerType, 1),
		PubSub:              c.Redis.PubSub.String(),
		Transport:           transportEcho(c.Redis.Transport),
		InstanceCmd:         strings.Join(c.InstanceCmd, " "),
		ExternalInstances:   c.externalInstances(),
	}
}

// transportEcho is "streams" for a run over streams, and nothing for
// pub/sub: a report from before streams existed reads the same.
func transportEcho(t bridge.Transport) string {
	if t == bridge.TransportStreams {
		return string(t)
	}
	return ""
}

// batchWindowUs echoes the batch window in µs: none in MaxRate, which
// has no schedule; -1 for NoBatching.
func batchWindowUs(c Config) int64 {
	switch {
	case c.MaxRate:
		return 0
	case c.BatchWindow == NoBatching:
		return -1
	}
	return c.BatchWindow.Microseconds()
}

// RedisLabel names the server for a report, without the password.
func RedisLabel(o bridge.Options) string { return redisLabel(o) }

// instanceIDs are the run's instance IDs, which are also their stream
// groups.
func instanceIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
	}
	return ids
}

// sourceKeys derives every instance's tag key from the run's key.
func sourceKeys(key bridge.TagKey, prefix string, n int) []bridge.SourceKey {
	keys := make([]bridge.SourceKey, n)
	for i := range keys {
		keys[i] = key.For(prefix + strconv.Itoa(i))
	}
	return keys
}

// instanceBridge makes instance i's bridge from o, the run's connection
// options already pointed at the instance's node or proxy: its ID, tag
// key, handler and role, and, in a cluster, the cluster's failover.
func instanceBridge(cfg Config, o bridge.Options, i int, prefix string, key bridge.TagKey, r *receiver, cluster bool) (*bridge.Bridge, error) {
	// A cluster node that dies is replaced by another (classic) or by
	// its replica (sharded): the bridge follows the cluster.
	o.Cluster = o.Cluster || cluster && !o.Sentinel.Enabled()
	o.InstanceID = prefix + strconv.Itoa(i)
	o.LoadTest.TagKey = key
	o.Handler = r.handle
	o.LoadTest.BorrowPayload = true // handle keeps no string of the Event
	o.LoadTest.SkipData = true      // nor reads its data
	o.LoadTest.BufferSize = bufferSize(cfg)
	o.OnSubscriberChange = r.subscriberChange
	for _, f := range cfg.Faults {
		if f.Action == FaultSlowConsumer && f.Instance == i {
			o.LoadTest.SubscriberReadBuffer = f.withDefaults(cfg.Duration).ReadBuffer
		}
	}
	o.LoadTest.DeliverOwn = cfg.DisableSelfFilter
	o.DisablePublishing = !cfg.publishes(i)
	o.DisableSubscription = !cfg.subscribes(i)
	return bridge.New(o)
}

// bufferSize is what an instance's connections must hold at cfg's rate:
// a subscriber receives every event of the run (all but its own), and
// four milliseconds of them, at a generous 512 bytes each on the wire,
// fit; between 4 and 32 KiB (the most, for --rate=max). 1000 instances
// at 500 events/s need 4 KiB each, not 32.
func bufferSize(cfg Config) int {
	if cfg.MaxRate {
		return maxBuffer
	}
	need := int(cfg.Rate / 1000 * 512 * 4)
	size := minBuffer
	for size < need && size < maxBuffer {
		size *= 2
	}
	return size
}

// The bounds of bufferSize.
const (
	minBuffer = 4 << 10
	maxBuffer = 32 << 10
)

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
// time, within cfg.ConnectTimeout; nil bridges are another process's. Its
// error is ctx's when ctx ended, and wraps ErrUnavailable otherwise.
func connectAll(ctx context.Context, cfg Config, bridges []*bridge.Bridge) error {
	err := connectEach(ctx, cfg, bridges)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, ErrAdapterFailed):
		return err // the adapter's failure, not the server's
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// connectEach is connectAll's fan-out.
func connectEach(ctx context.Context, cfg Config, bridges []*bridge.Bridge) error {
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	g, gctx := errgroup.WithContext(cctx)
	g.SetLimit(connectParallelism)
	for i, b := range bridges {
		if b == nil {
			continue
		}
		g.Go(func() error {
			if err := b.Connect(gctx); err != nil {
				if _, ext := b.External(); ext {
					return fmt.Errorf("instance %d: %w: %w", i, ErrAdapterFailed, err)
				}
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
		if b == nil {
			continue // another process's instance
		}
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
//
// published is every source's accepted publishes: a process running some
// of a split run's instances learns the others' from the coordinator.
// recvs and bridges are nil at the instances another process runs.
func drain(ctx context.Context, cfg Config, published []uint64, recvs []*receiver, bridges []*bridge.Bridge) bool {
	var total uint64
	for i := range published {
		total += published[i]
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
			if r == nil || !cfg.subscribes(i) {
				done[i] = true
				continue
			}
			own := published[i]
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
