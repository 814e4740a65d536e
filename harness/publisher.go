package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/redisload/redisload/bridge"
)

// publisher is the open-loop load generator. A scheduler decides when each
// event is due (event k at k/Rate seconds after the start) and which
// instance publishes it (at random, as the seed tool did), and hands it to
// that instance's publisher goroutine through a lock-free ring; each
// instance publishes whatever is due in one pipeline per wake-up.
//
// Open loop: the schedule does not wait for Redis. A publisher that falls
// behind publishes late, and its events carry their intended send time, so
// the delay shows in the latency (no coordinated omission, as wrk2 and
// vegeta measure); what is not due by the end of the duration is a
// shortfall in the achieved rate.
type publisher struct {
	cfg   Config
	rng   *rand.Rand // chooses the instance of each event
	insts []*instancePublisher
	log   *eventLog

	// receipts[i][j], in MaxRate, is the highest sequence number receiver i
	// has seen from source j (written by receiver i only).
	receipts [][]atomic.Uint64

	// published, errors and unknown are filled from the instances when
	// run returns.
	published []uint64
	errors    []uint64
	unknown   []uint64
	// warmPublished and warmNotPublic are the warm-up's publishes accepted
	// and not, by instance (see Config.Warmup).
	warmPublished, warmNotPublic []uint64
	sendDelay                    *hdrhistogram.Histogram // merged; intended → actual, µs
	// publishRTT is, merged, each event's pipeline round trip: from its
	// batch's write to the last reply, µs (see instancePublisher.rtt).
	publishRTT *hdrhistogram.Histogram
	// shiftNs turns this process's clock into the run's reference clock
	// (0 in one process; see Share.ClockOffset).
	shiftNs int64
	// direct: on one server, the scheduler writes the due events itself,
	// through the instances' pipes, instead of waking each instance's
	// goroutine to flush a pipeline. Each hand-off was a thread's wake-up
	// on a busy machine: under NoBatching, p50 0.20 ms of send delay even
	// with the pipe; with the 1 ms window, a fifth of the client's CPU.
	// Events that come due while it writes go out together next.
	direct bool
	// pipeErr is why the pipes could not connect, when they could not:
	// the run then publishes through the bridges' own connections.
	pipeErr error
}

// instancePublisher publishes one instance's events. Everything in it is
// owned by its goroutine until run has waited for it; with a pipe (see
// publisher.direct), by the scheduler and the pipe's goroutine in turn,
// under pmu.
type instancePublisher struct {
	index int
	b     *bridge.Bridge
	ring  *ring
	kick  chan struct{} // capacity 1: "the ring has new events"
	gen   *eventGen     // its own seeded generator: types and payloads
	types []string
	batch *bridge.Batch
	// pipe, on one server, writes each batch without waiting for the
	// replies of the one before (see bridge.Pipe): the
	// outcomes are settled on its goroutine, through settlePiped, which
	// then owns the outcome counts below. nil: Flush, on this goroutine.
	pipe *bridge.Pipe
	// pmu, with a pipe, serialises publishDue between the scheduler and
	// the pipe's goroutine, which sends what came due while a batch was
	// unanswered as soon as its reply came (see tryPublish).
	pmu     sync.Mutex
	pipeCtx context.Context // the run's, for the pipe's goroutine
	due     []uint64        // popped event numbers, len = the pipeline limit
	payload []byte
	startNs int64
	shiftNs int64     // this process's clock to the run's (see publisher)
	pacer   Pacer     // the run's schedule: event k's intended time
	limit   *seqLimit // the receivers' bound on this instance's sequence numbers
	settled *seqLimit // the highest answered with all below it (see trust)
	log     *eventLog

	// published, errors and unknown are the outcomes of its publishes:
	// accepted, known to have failed, sent with no reply.
	published, errors, unknown uint64
	sent                       atomic.Uint64 // published, for the series sampler to read while running
	delay                      *hdrhistogram.Histogram
	// rtt is, for each event, its pipeline's round trip: the write of its
	// batch to the batch's last reply. Beside the send delay (before the
	// write) it says how much of the latency is the server's and the
	// network's: the PUBLISH reply comes once Redis has handed the message
	// to every subscriber's connection.
	rtt *hdrhistogram.Histogram
	// iv, when the run collects a series, is the current interval's send
	// delays (warm-up included, as the receivers' intervals): read once a
	// second by the sampler, hence its lock.
	iv     *intervalHist
	bursts []ErrorBurst // failed publishes, in seconds from startNs
	// failedSeqs are the sequence numbers of publishes not accepted (failed
	// or unknown), as ranges: failures come in runs, so this stays small.
	failedSeqs []seqRange
	// failures counts the publishes not accepted by reason
	// (bridge.ErrorReason): a refusal in the server's words, a timeout.
	failures reasonCounts

	// The warm-up (Config.Warmup): events numbered below warmK are its;
	// the first event at or above it moves the bridge's sequence to base,
	// so that every measured sequence number is above it. Its outcomes
	// are counted apart, and nothing of it enters the measured figures.
	warmK, base                  uint64
	measuring                    bool // the sequence has moved to base
	warmPublished, warmNotPublic uint64
}

func newPublisher(cfg Config, seed uint64, bridges []*bridge.Bridge, limits, settled []seqLimit, log *eventLog) *publisher {
	p := &publisher{
		cfg:           cfg,
		rng:           scheduleRNG(seed),
		log:           log,
		published:     make([]uint64, len(bridges)),
		errors:        make([]uint64, len(bridges)),
		unknown:       make([]uint64, len(bridges)),
		warmPublished: make([]uint64, len(bridges)),
		warmNotPublic: make([]uint64, len(bridges)),
	}
	perInstance := cfg.Rate / float64(cfg.publishers())
	for i, b := range bridges {
		if b == nil {
			// Another process's instance (a run split over workers): its
			// events are drawn, so that the schedule stays the one of the
			// whole run, and skipped.
			p.insts = append(p.insts, nil)
			continue
		}
		// Each instance draws its own types and payloads, so a seed gives
		// every instance the same sequence of events whatever the timing.
		rng := rand.New(rand.NewPCG(seed+uint64(i)+1, seed^0x51afd7ed558ccd))
		gen := newEventGen(rng)
		gen.padMin, gen.padMax = cfg.PayloadSize, cfg.PayloadSizeMax
		p.insts = append(p.insts, &instancePublisher{
			warmK: cfg.warmupEvents(), base: cfg.seqBase(), measuring: cfg.seqBase() == 0,
			index: i, b: b, ring: newRing(perInstance), kick: make(chan struct{}, 1),
			gen: gen, types: cfg.EventTypes, batch: b.NewBatch(),
			due: make([]uint64, cfg.Pipeline), payload: make([]byte, 0, 1024),
			pacer: cfg.pacer(), limit: &limits[i], settled: &settled[i], log: log, delay: newDelayHistogram(),
			rtt: newDelayHistogram(),
		})
	}
	return p
}

// sampleDelays gives each instance of this process an interval histogram
// of its send delays, for the series; before run, which starts the
// goroutines that record into them.
func (p *publisher) sampleDelays() {
	for _, ip := range p.insts {
		if ip != nil {
			ip.iv = newIntervalHist()
		}
	}
}

// sentTotals is what each instance had accepted, warm-up included: what
// the receivers' progress counts, and so what the drain waits for.
func (p *publisher) sentTotals() []uint64 {
	out := make([]uint64, len(p.published))
	for i := range out {
		out[i] = p.published[i] + p.warmPublished[i]
	}
	return out
}

// scheduleRNG is the generator that draws each event's instance: one per
// run, so that every process of a split run draws the same schedule.
func scheduleRNG(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// maxBatch bounds how many overdue events the scheduler hands out before
// it checks the clock and ctx again, so that a run far behind still stops
// on time.
const maxBatch = 1024

// run publishes until every event is sent, the duration is over, or ctx
// ends, and returns once every instance has published what it was handed.
// ctx bounds the publishes themselves too: when it ends, a round trip in
// progress is interrupted and what is still queued is not sent (a
// shortfall, not a failure).
func (p *publisher) run(ctx context.Context, start time.Time) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for _, ip := range p.insts[:p.cfg.publishers()] {
		if ip == nil {
			continue
		}
		ip.startNs, ip.shiftNs = start.UnixNano()+p.shiftNs, p.shiftNs
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p.direct {
				// The scheduler writes this instance's events (see
				// direct) and, once done, what is left; then every
				// batch's replies, before the counts are read.
				<-done
				_ = ip.pipe.Close(ctx)
				return
			}
			if p.cfg.MaxRate {
				ip.closedLoop(ctx, start.Add(p.cfg.Duration), p.receipts, p.cfg.MaxInFlight, p.cfg.subscribes)
				return
			}
			ip.loop(ctx, done)
		}()
	}
	if !p.cfg.MaxRate {
		p.schedule(ctx, start)
	}
	if p.direct {
		// What was held for an unanswered batch, now: its reply may
		// never come.
		for _, ip := range p.insts[:p.cfg.publishers()] {
			if ip != nil {
				ip.publishLocked(ctx)
			}
		}
	}
	close(done)
	wg.Wait()

	p.sendDelay, p.publishRTT = newHistogram(), newHistogram()
	for i, ip := range p.insts {
		if ip == nil {
			continue
		}
		p.publishRTT.Merge(ip.rtt) // same range: nothing is dropped
		p.published[i], p.errors[i], p.unknown[i] = ip.published, ip.errors, ip.unknown
		p.warmPublished[i], p.warmNotPublic[i] = ip.warmPublished, ip.warmNotPublic
		p.sendDelay.Merge(ip.delay) // same range: nothing is dropped
	}
}

// preparePipes, before the start, connects the instances' pipes (an open
// loop on one server), so that their dials do not delay the first events; the returned func closes whatever run did
// not (an error before it), and is safe to call after it.
func (p *publisher) preparePipes(ctx context.Context) (closePipes func()) {
	p.direct = !p.cfg.MaxRate && p.openPipes(ctx)
	return func() {
		for _, ip := range p.insts {
			if ip != nil && ip.pipe != nil {
				_ = ip.pipe.Close(ctx)
			}
		}
	}
}

// openPipes gives every instance of this process a pipe (see
// instancePublisher.pipe), and reports whether all have one; when one
// cannot (anything but one server's PUBLISH: a cluster, Sentinel,
// streams, an adapter; or a connection refused), none keeps one, and a
// refusal is kept in pipeErr for the report.
func (p *publisher) openPipes(ctx context.Context) bool {
	var ips []*instancePublisher
	for _, ip := range p.insts[:p.cfg.publishers()] {
		if ip == nil {
			continue
		}
		ip.pipeCtx = ctx
		pipe, err := ip.b.NewPipe(ctx, ip.settlePiped)
		if err != nil {
			for _, o := range ips {
				_ = o.pipe.Close(ctx)
				o.pipe = nil
			}
			if !errors.Is(err, bridge.ErrPipeUnsupported) {
				p.pipeErr = fmt.Errorf("instance %d: %w", ip.index, err)
			}
			return false
		}
		ip.pipe = pipe
		ips = append(ips, ip)
	}
	return len(ips) > 0
}

// schedule hands each due event to a random instance.
func (p *publisher) schedule(ctx context.Context, start time.Time) {
	total := p.cfg.scheduledEvents() // the warm-up's and the measured ones
	pacer := p.cfg.pacer()
	n := p.cfg.publishers() // events go to publishing instances only
	touched := make([]bool, n)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	window := max(p.cfg.BatchWindow, 0) // NoBatching: each event at its time
	sl := newSleeper()
	defer sl.close()
	var sent uint64
	next := -1 // the instance drawn for event `sent`, kept while its ring is full
	for sent < total && ctx.Err() == nil {
		now := time.Since(start)
		over := now >= p.cfg.publishing()
		due := min(pacer.Due(now), total)
		if over {
			// Every remaining event was due before the end (event k at
			// k/rate < duration): hand out what fits without waiting; what
			// does not is the shortfall of a publisher that fell behind.
			due = total
		}
		full := false
		for batch := 0; sent < due && (batch < maxBatch || over); batch++ {
			if next < 0 {
				next = p.rng.IntN(n)
			}
			if p.insts[next] == nil { // another process publishes it
				next = -1
				sent++
				continue
			}
			if !p.insts[next].ring.push(sent) {
				// That instance is a ring behind: it is woken below, and
				// the event waits for it rather than go to another
				// instance, which would make the run depend on timing.
				touched[next], full = true, true
				break
			}
			touched[next] = true
			next = -1
			sent++
		}
		for i, t := range touched {
			if t {
				if p.direct {
					p.insts[i].tryPublish(ctx)
				} else {
					p.insts[i].wake()
				}
				touched[i] = false
			}
		}
		if over {
			return // the instances were woken above
		}
		if full {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		if sent < due {
			continue // behind schedule: keep handing out, checking the clock
		}
		// Sleep until the next event is due, but at least the batch
		// window: at high rates that gathers the window's events into one
		// pipeline per instance instead of a round trip (and its syscalls)
		// per event. The window is a floor on the sleep, not a grid.
		wait := max(time.Until(start.Add(pacer.At(sent))), window)
		if !sl.sleep(ctx, timer, wait) {
			return
		}
	}
}

// pipeAhead is how many unanswered batches an instance's pipe may hold
// before due events wait for a reply; they then go out together when it
// comes. It is Nagle's rule, loosened: at low load every event is written
// at its time, and when Redis slows, its replies slow, and the batches
// grow instead of the writes it must handle. Measured at N=5 (5 s runs,
// p50 latency / send delay, µs): at 50 k/s, 1 held 471/210, 2 289-327/
// 94-112, 3 211-277/60-82, 4 191-275/51-73, none 411/41; at 200 k/s,
// 1 4037/1904, 2 2153-2471, 4 1676-2701, none 8839 (Redis swamped by
// a write per event). CPU was the same for all within noise.
const pipeAhead = 4

// tryPublish, for the scheduler, publishes what is due unless the pipe
// holds pipeAhead unanswered batches: then the pipe's goroutine sends it
// as the reply comes (settlePiped).
func (ip *instancePublisher) tryPublish(ctx context.Context) {
	// Read before the lock: a reply that lowers it after is followed by
	// the pipe's goroutine publishing under the lock, which sees this
	// push.
	if ip.pipe.InFlight() < pipeAhead {
		ip.publishLocked(ctx)
	}
}

// now is the time on the run's clock, in Unix ns.
func (ip *instancePublisher) now() int64 { return time.Now().UnixNano() + ip.shiftNs }

// wake tells the instance's goroutine that its ring has events; a wake-up
// already pending covers this one.
func (ip *instancePublisher) wake() {
	select {
	case ip.kick <- struct{}{}:
	default:
	}
}

// loop publishes on every wake-up until done, then publishes what is left.
func (ip *instancePublisher) loop(ctx context.Context, done <-chan struct{}) {
	for {
		select {
		case <-ip.kick:
			ip.publishDue(ctx)
		case <-done:
			ip.publishDue(ctx)
			return
		}
	}
}

// closedLoop publishes as fast as back-pressure allows until the deadline
// or ctx: never more than window messages ahead of the slowest other
// instance's receipts. It compares sequence numbers, not counts, so a lost
// message cannot stall it. Each event's intended time is when it is sent:
// a closed loop has no schedule to fall behind.
func (ip *instancePublisher) closedLoop(ctx context.Context, deadline time.Time, receipts [][]atomic.Uint64, window int,
	subscribes func(int) bool) {
	var last uint64 // sequence number of the last event sent
	for ctx.Err() == nil && time.Now().Before(deadline) {
		acked := last
		for i := range receipts {
			// A publish-only instance acknowledges nothing: only
			// subscribers hold the window back.
			if i != ip.index && subscribes(i) {
				acked = min(acked, receipts[i][ip.index].Load())
			}
		}
		room := window - int(last-acked)
		if room <= 0 {
			time.Sleep(50 * time.Microsecond) // wait for the subscribers
			continue
		}
		n := min(room, len(ip.due))
		nowNs := ip.now()
		for range n {
			// No schedule: sent when intended, so its latency is its
			// transit, and the envelope carries no stamp (pubNs 0): at
			// the highest rate its bytes and their checks cost 10 % of
			// the throughput.
			last = ip.addStamped(nowNs, 0, nowNs, false)
		}
		ip.limit.Store(last)
		ip.flush(ctx, n, false)
		ip.settled.Store(last) // every publish up to last has its answer
	}
}

// publishDue empties the ring, one pipeline of at most Pipeline events at
// a time. Once ctx has ended it empties the ring without publishing: those
// events take no sequence number and count as not sent. A pipeline never
// mixes warm-up and measured events: at the first measured one, what the
// batch holds is flushed as warm-up, and the sequence moves to base.
func (ip *instancePublisher) publishDue(ctx context.Context) {
	for {
		n := ip.ring.popInto(ip.due)
		if n == 0 {
			return
		}
		if ctx.Err() != nil {
			continue // dropped, unsent
		}
		nowNs := ip.now() // once per batch
		var last uint64
		inBatch := 0
		for _, k := range ip.due[:n] {
			if !ip.measuring && k >= ip.warmK {
				if inBatch > 0 {
					ip.limit.Store(last)
					ip.flush(ctx, inBatch, true)
					inBatch = 0
				}
				if err := ip.b.SkipSequence(ip.base); err != nil && ip.log != nil {
					ip.log.printf("instance %d: %v", ip.index, err) // cannot happen: base is far above any warm-up
				}
				ip.measuring = true
			}
			last = ip.add(ip.startNs+int64(ip.pacer.At(k)), nowNs, !ip.measuring)
			inBatch++
		}
		ip.limit.Store(last) // before the batch is sent: see seqLimit
		ip.flush(ctx, inBatch, !ip.measuring)
		if ip.measuring && ip.pipe == nil { // a pipe's are settled as its replies come
			ip.settled.Store(last - ip.base) // in the measured numbering, as the trackers count
		}
	}
}

// add puts one event into the batch, with a random type and payload, and
// records how late it is (nowNs against its intended send time), unless it
// is the warm-up's. nowNs is stamped in the envelope too, as the time it is
// written (the batch is flushed right after), from which each receiver
// measures its transit. It returns the event's sequence number.
func (ip *instancePublisher) add(intendedNs, nowNs int64, warm bool) uint64 {
	return ip.addStamped(intendedNs, nowNs, nowNs, warm)
}

// addStamped is add with the publish time the envelope carries, pubNs (0:
// none).
func (ip *instancePublisher) addStamped(intendedNs, pubNs, nowNs int64, warm bool) uint64 {
	typ := ip.types[ip.gen.rng.IntN(len(ip.types))]
	ip.payload = ip.gen.appendPayload(ip.payload[:0], typ)
	seq := ip.batch.AddTimed(typ, ip.payload, intendedNs, pubNs)
	d := max((nowNs-intendedNs)/1000, histMinUs)
	if !warm && ip.delay.RecordValue(d) != nil {
		_ = ip.delay.RecordValue(histMaxUs)
	}
	if ip.iv != nil {
		ip.iv.record(d)
	}
	if ip.log != nil {
		ip.log.printf("instance %d published %s #%d", ip.index, typ, seq)
	}
	return seq
}

// recordBurst adds failed publishes to the timeline, extending the last
// burst when it ended less than burstGap ago: memory grows with the number
// of outages, not with their length.
func (ip *instancePublisher) recordBurst(failed uint64) {
	now := float64(ip.now()-ip.startNs) / 1e9
	if k := len(ip.bursts) - 1; k >= 0 && now-ip.bursts[k].ToSeconds < burstGap.Seconds() {
		ip.bursts[k].ToSeconds = now
		ip.bursts[k].Count += failed
		return
	}
	ip.bursts = append(ip.bursts, ErrorBurst{Instance: ip.index, FromSeconds: now, ToSeconds: now, Count: failed})
}

// flush publishes the batch of n events and counts the outcome: apart for
// the warm-up's. ctx ending interrupts the round trip: those publishes
// have an unknown outcome. Through a pipe, the outcome is counted when the
// replies come (settlePiped).
func (ip *instancePublisher) flush(ctx context.Context, n int, warm bool) {
	if ip.pipe != nil {
		var cookie int64
		if warm {
			cookie = 1
		}
		_ = ip.pipe.Send(ctx, ip.batch, cookie) // its error is the batch's, settled in turn
		return
	}
	t0 := time.Now()
	failed, err := ip.batch.Flush(ctx)
	ip.settle(&ip.batch.Outcome, n, failed, time.Since(t0).Microseconds(), warm, err)
}

// settlePiped counts the outcome of a batch the pipe sent, on the pipe's
// goroutine, in the order sent.
func (ip *instancePublisher) settlePiped(pb *bridge.PipeBatch) {
	n := len(pb.Seqs)
	rtt := int64(-1) // no reply: no round trip
	if pb.RepliedNs > 0 {
		rtt = (pb.RepliedNs - pb.WrittenNs) / 1000
	}
	warm := pb.Cookie == 1
	ip.settle(&pb.Outcome, n, n-pb.Accepted(), rtt, warm, pb.Err)
	if !warm && n > 0 {
		ip.settled.Store(pb.Seqs[n-1] - ip.base) // every publish up to it has its answer
	}
	ip.publishLocked(ip.pipeCtx) // what came due while it was unanswered (see tryPublish)
}

// publishLocked is publishDue under pmu, for the scheduler and the pipe's
// goroutine, which share the instance (see publisher.direct).
func (ip *instancePublisher) publishLocked(ctx context.Context) {
	ip.pmu.Lock()
	defer ip.pmu.Unlock()
	ip.publishDue(ctx)
}

// settle counts a batch's outcome: n events, failed of them not accepted,
// rttUs its round trip (negative: none), err its first failure.
func (ip *instancePublisher) settle(o *bridge.Outcome, n, failed int, rttUs int64, warm bool, err error) {
	ip.sent.Add(uint64(n - failed)) // once per batch: not a per-message atomic; the series counts the warm-up too
	if !warm && n > failed && rttUs >= 0 && ip.rtt.RecordValues(max(rttUs, histMinUs), int64(n-failed)) != nil {
		_ = ip.rtt.RecordValues(histMaxUs, int64(n-failed))
	}
	if warm {
		ip.warmPublished += uint64(n - failed)
		ip.warmNotPublic += uint64(failed)
		return
	}
	unknown := o.Unknown()
	ip.published += uint64(n - failed)
	ip.errors += uint64(failed - unknown)
	ip.unknown += uint64(unknown)
	if failed > 0 {
		ip.recordBurst(uint64(failed))
		var last error
		var why string
		for _, e := range o.FailedErrors() {
			if e != last { // a batch failed whole shares one error
				last, why = e, bridge.ErrorReason(e)
			}
			ip.failures.add(why, 1)
		}
		for _, raw := range o.Failed() {
			seq := raw - ip.base // as the trackers number it
			if k := len(ip.failedSeqs) - 1; k >= 0 && ip.failedSeqs[k].hi+1 == seq {
				ip.failedSeqs[k].hi = seq
				continue
			}
			ip.failedSeqs = append(ip.failedSeqs, seqRange{seq, seq})
		}
	}
	if err != nil && ip.log != nil {
		ip.log.printf("instance %d: %d of %d publishes failed: %v", ip.index, failed, n, err)
	}
}

// maxReasons bounds the distinct reasons an instance counts: the rest are
// "other", so that an error text with a varying part cannot grow without
// end.
const maxReasons = 16

// reasonCounts counts failures by reason.
type reasonCounts map[string]uint64

// add counts n failures of reason.
func (rc *reasonCounts) add(reason string, n uint64) {
	if *rc == nil {
		*rc = reasonCounts{}
	}
	if _, ok := (*rc)[reason]; !ok && len(*rc) >= maxReasons {
		reason = "other"
	}
	(*rc)[reason] += n
}

// sorted lists the reasons, most frequent first.
func (rc reasonCounts) sorted() []FailureReason {
	out := make([]FailureReason, 0, len(rc))
	for r, n := range rc {
		out = append(out, FailureReason{Reason: r, Count: n})
	}
	slices.SortFunc(out, func(a, b FailureReason) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}

// FailureReason is one reason publishes were not accepted, and how many
// were not for it.
type FailureReason struct {
	// Reason is the server's error reply (a refusal, in its words) or the
	// class of a connection failure (see bridge.ErrorReason).
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
}
