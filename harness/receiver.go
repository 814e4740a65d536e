package harness

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/redisload/redisload/bridge"
)

// receiver is one instance's accounting. Its handle method runs only on
// that instance's receive goroutine, so everything but progress is plain
// fields with one writer; the harness reads them after the bridge has
// closed, which waits for that goroutine to end.
type receiver struct {
	index  int
	prefix string // "redisload-<run>-": the IDs of this run's instances
	n      int    // number of instances

	// sources is indexed by source instance, so the hot path finds a
	// tracker without a map lookup or an allocation.
	sources []seqTracker // by source index
	hist    *hdrhistogram.Histogram
	// transit is, for each delivery whose envelope says when its
	// publisher wrote it (pub_ns), the time from that write to its
	// receipt: the latency without the publisher's own delay.
	transit      *hdrhistogram.Histogram
	overflow     uint64
	selfReceived uint64
	foreign      uint64
	// forged counts messages that claim to be this run's own (their
	// source has the run's prefix) and fail a check of genuine: see
	// genuine. None of them touches the accounting.
	forged uint64

	// What a genuine message of this run satisfies; see genuine.
	keys    []bridge.SourceKey // keys[j]: source j's tag key; nil when the run does not tag
	startNs int64              // no genuine send time precedes the run
	limits  []seqLimit         // limits[j]: the highest sequence number source j has taken
	// shiftNs turns this process's clock into the run's, and tolNs is how
	// far the clocks of a split run may disagree (both 0 in one process):
	// a message may seem to arrive up to tolNs before it was sent.
	shiftNs int64
	tolNs   atomic.Int64 // stored when the run starts, the receive goroutine running
	// negative counts deliveries that seemed to arrive before they were
	// sent, within tolNs: recorded as the minimum latency, and counted.
	negative uint64
	// lastNs is when the last genuine delivery arrived, on the run's
	// clock: a subscriber that stopped receiving without an outage shows.
	lastNs int64

	// receipts, only in MaxRate, publishes the highest sequence number seen
	// from each source, for the publishers' back-pressure. One writer each;
	// nil otherwise, so the open-loop hot path does not pay for it.
	receipts []atomic.Uint64

	// slowNs, when positive, is slept per message: the slow-consumer
	// fault, set by the fault runner.
	slowNs atomic.Int64
	// outages are the subscriber's losses; attrib[j], once there has been
	// one, is the outage (counting from 1) whose sequence gap the next
	// message from source j closes, 0 for none. See timeline.go.
	outages []outage
	attrib  []int32
	// gapLimit bounds each tracker's open ranges (see gapLimit).
	gapLimit int
	// issued, in sharded mode, is the sources' sequence numbers over the
	// last moments, for where an outage begins; nil otherwise.
	issued *issuedLog

	// base: see trust. The warm-up's messages are counted here, and
	// their latencies kept apart (warmHist, made on the first); nothing of
	// them reaches the trackers or the run's histogram.
	base        uint64
	warmArrived uint64
	warmHist    *hdrhistogram.Histogram

	// iv, when the run collects a series, is the current interval's
	// latencies; nil otherwise, and then the hot path pays a nil check.
	iv *intervalHist

	// node is the cluster node the instance is connected to when the run
	// spreads them; empty otherwise.
	node string

	// notConnected, set after the run when the instance failed its final
	// round trip, says why.
	notConnected string

	// progress counts messages from this run (others' and, with the
	// self-filter off, its own) so that the drain can watch it.
	progress atomic.Uint64

	log *eventLog // nil unless verbose
}

// seqLimit is one source's highest sequence number taken so far, written
// by its publisher once per batch before the batch is sent, so that no
// genuine message can arrive above it. Padded to a cache line: every
// receiver reads it, and only its publisher writes it.
type seqLimit struct {
	atomic.Uint64
	_ [56]byte
}

func newReceiver(index, n int, prefix string, trust trust, log *eventLog) *receiver {
	return &receiver{
		index:    index,
		prefix:   prefix,
		n:        n,
		sources:  make([]seqTracker, n),
		hist:     newLatencyHistogram(n),
		transit:  newDelayHistogram(),
		keys:     trust.keys,
		startNs:  trust.startNs,
		limits:   trust.limits,
		base:     trust.base,
		log:      log,
		gapLimit: maxGaps,
	}
}

// trust is what every receiver of a run checks messages against; its
// slices are shared, read-only but for the limits' atomics.
type trust struct {
	keys    []bridge.SourceKey
	startNs int64
	limits  []seqLimit
	// settled[j] is the highest sequence number source j has had answered
	// (accepted or failed) with every one below it: a message above it is
	// in flight. Sharded outages reach back to it (see issuedLog); another
	// process's sources are never settled here (noAck: no reach).
	settled []seqLimit
	// base is where measured sequence numbers start (Config.Warmup): a
	// genuine message below it is the warm-up's; 0 without a warm-up.
	base uint64
}

// handle accounts for one event. It reads the clock not at all: the bridge
// stamped ReceivedNs once as the message came off the connection.
func (r *receiver) handle(ev *bridge.Event) {
	if d := r.slowNs.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	src, claimed := r.sourceIndex(ev.Source)
	if !claimed {
		r.foreign++
		return
	}
	// On the run's clock: a no-op in one process.
	ev.ReceivedNs += r.shiftNs
	if src < 0 || !r.genuine(src, ev) {
		r.forged++
		if r.log != nil {
			r.log.printf("instance %d: FORGED message claiming to be %s #%d (sent_ns %d)", r.index, ev.Source, ev.Seq, ev.SentNs)
		}
		return
	}
	r.progress.Add(1)
	if src == r.index {
		// Only reachable when the bridge's self-filter failed (or was
		// switched off to prove this is detected).
		r.selfReceived++
		return
	}
	lat := max((ev.ReceivedNs-ev.SentNs)/1000, histMinUs) // sub-microsecond on loopback
	seq := ev.Seq
	if r.base > 0 {
		if seq <= r.base {
			r.warmup(lat)
			return
		}
		seq -= r.base // the measured phase's numbering, from 1
	}
	if r.attrib != nil {
		r.attribute(src, seq)
		r.countRecovered(ev.SentNs)
	}
	r.sources[src].observeWithin(seq, r.gapLimit)
	r.lastNs = ev.ReceivedNs
	if r.receipts != nil {
		r.receipts[src].Store(r.sources[src].highest)
	}
	// Publisher and receiver share this process's wall clock, so the
	// difference is a true one-way latency (across hosts it would need
	// synchronised clocks). Duplicates are timed too: they were delivered.
	// genuine has checked that it is not negative.
	if ev.SentNs > ev.ReceivedNs {
		r.negative++ // only across clocks, within tolNs (see genuine)
	}
	if r.hist.RecordValue(lat) != nil {
		r.overflow++
		_ = r.hist.RecordValue(histMaxUs)
	}
	if ev.PubNs != 0 { // authenticated with the rest by genuine
		if r.transit.RecordValue(max((ev.ReceivedNs-ev.PubNs)/1000, histMinUs)) != nil {
			_ = r.transit.RecordValue(histMaxUs) // counted in overflow above: transit <= latency
		}
	}
	if r.iv != nil {
		r.iv.record(lat)
	}
	if r.log != nil {
		r.log.printf("instance %d received %s #%d from instance %d (%.3f ms)",
			r.index, ev.Type, seq, src, float64(ev.ReceivedNs-ev.SentNs)/1e6)
	}
}

// warmup counts a genuine warm-up message and its latency, apart.
func (r *receiver) warmup(lat int64) {
	r.warmArrived++
	if r.warmHist == nil {
		r.warmHist = newDelayHistogram() // 2 significant digits: a figure apart, not a gate
	}
	if r.warmHist.RecordValue(lat) != nil {
		_ = r.warmHist.RecordValue(histMaxUs)
	}
	if r.iv != nil {
		r.iv.record(lat) // the live view shows the warm-up too
	}
}

// sourceIndex parses "<prefix><index>" without allocating. claimed says
// whether id has the run's prefix, that is claims to be one of its
// instances; index is -1 when what follows is not the canonical decimal of
// an instance index (no sign, no leading zero, below n), which no instance
// of the run writes.
func (r *receiver) sourceIndex(id string) (index int, claimed bool) {
	if !strings.HasPrefix(id, r.prefix) {
		return 0, false
	}
	digits := id[len(r.prefix):]
	if digits == "" || len(digits) > 1 && digits[0] == '0' {
		return -1, true
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' || n >= r.n {
			return -1, true
		}
		n = n*10 + int(c-'0')
	}
	if n >= r.n {
		return -1, true
	}
	return n, true
}

// genuine reports whether a message from instance src of this run can be
// what that instance published: its sequence number one the source has
// taken, its send time inside the run's window (after the run began, not
// after its receipt) and, when the run tags, its tag valid. The bounds
// stop a forged sequence number from opening a gap, wrapping a counter or
// making real messages look like duplicates, and a forged send time from
// becoming a latency sample; the tag makes forging infeasible without the
// run's key.
func (r *receiver) genuine(src int, ev *bridge.Event) bool {
	tol := r.tolNs.Load()
	return ev.Seq >= 1 && ev.Seq <= r.limits[src].Load() &&
		ev.SentNs >= r.startNs-tol && ev.SentNs <= ev.ReceivedNs+tol &&
		(r.keys == nil || r.keys[src].Verify(ev))
}

// eventLog serialises verbose lines from many goroutines, each stamped with
// the time since the run started.
type eventLog struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (l *eventLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "[%8.3fs] ", time.Since(l.start).Seconds())
	fmt.Fprintf(l.w, format, args...)
	_, _ = io.WriteString(l.w, "\n")
}

// unrecovered reports whether the subscriber's last outage never ended.
func (r *receiver) unrecovered() bool {
	k := len(r.outages) - 1
	return k >= 0 && r.outages[k].resubscribed.IsZero()
}

// whyNotConnected says why an instance was not connected at the end: the
// outage it never recovered from, or its failed final round trip. Called
// after the receive goroutine has ended.
func (r *receiver) whyNotConnected() string {
	if r.unrecovered() {
		why := "subscriber lost, never subscribed again"
		if c := r.outages[len(r.outages)-1].cause; c != "" {
			why += " (" + c + ")"
		}
		return why
	}
	if r.notConnected != "" {
		return r.notConnected
	}
	return "not connected at the end"
}
