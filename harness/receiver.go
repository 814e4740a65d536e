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
	sources      []seqTracker // by source index
	hist         *hdrhistogram.Histogram
	overflow     uint64
	selfReceived uint64
	foreign      uint64

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

	// iv, when the run collects a series, is the current interval's
	// latencies; nil otherwise, and then the hot path pays a nil check.
	iv *intervalHist

	// progress counts messages from this run (others' and, with the
	// self-filter off, its own) so that the drain can watch it.
	progress atomic.Uint64

	log *eventLog // nil unless verbose
}

func newReceiver(index, n int, prefix string, log *eventLog) *receiver {
	return &receiver{
		index:   index,
		prefix:  prefix,
		n:       n,
		sources: make([]seqTracker, n),
		hist:    newHistogram(),
		log:     log,
	}
}

// handle accounts for one event. It reads the clock not at all: the bridge
// stamped ReceivedNs once as the message came off the connection.
func (r *receiver) handle(ev *bridge.Event) {
	if d := r.slowNs.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	src, ok := r.sourceIndex(ev.Source)
	if !ok || ev.Seq == 0 {
		r.foreign++
		return
	}
	r.progress.Add(1)
	if src == r.index {
		// Only reachable when the bridge's self-filter failed (or was
		// switched off to prove this is detected).
		r.selfReceived++
		return
	}
	if r.attrib != nil {
		r.attribute(src, ev.Seq)
	}
	r.sources[src].observe(ev.Seq)
	if r.receipts != nil {
		r.receipts[src].Store(r.sources[src].highest)
	}
	// Publisher and receiver share this process's wall clock, so the
	// difference is a true one-way latency (across hosts it would need
	// synchronised clocks). Duplicates are timed too: they were delivered.
	lat := (ev.ReceivedNs - ev.SentNs) / 1000
	if lat < histMinUs {
		lat = histMinUs // sub-microsecond on loopback; never negative
	}
	if r.hist.RecordValue(lat) != nil {
		r.overflow++
		_ = r.hist.RecordValue(histMaxUs)
	}
	if r.iv != nil {
		r.iv.record(lat)
	}
	if r.log != nil {
		r.log.printf("instance %d received %s #%d from instance %d (%.3f ms)",
			r.index, ev.Type, ev.Seq, src, float64(ev.ReceivedNs-ev.SentNs)/1e6)
	}
}

// sourceIndex parses "<prefix><index>" without allocating.
func (r *receiver) sourceIndex(id string) (int, bool) {
	if !strings.HasPrefix(id, r.prefix) || len(id) == len(r.prefix) {
		return 0, false
	}
	n := 0
	for _, c := range id[len(r.prefix):] {
		if c < '0' || c > '9' || n > r.n {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n < r.n
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
