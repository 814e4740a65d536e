package harness

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/redisload/redisload/bridge"
)

// Timeline is what happened to the run's connections, in time: the faults
// applied, each instance's subscriber outages and the bursts of failed
// publishes. Times are seconds from the start of publishing (negative:
// before it). It is empty in a healthy run without faults.
type Timeline struct {
	Faults        []FaultRecord `json:"faults,omitempty"`
	Outages       []Outage      `json:"outages,omitempty"`
	PublishErrors []ErrorBurst  `json:"publish_errors,omitempty"`
	// MaxRecoverySeconds is the longest recovery of any outage; nil when
	// there was no outage or one never recovered.
	MaxRecoverySeconds *float64 `json:"max_recovery_s,omitempty"`
	// Unrecovered counts outages that had not recovered when the run ended.
	Unrecovered int `json:"unrecovered,omitempty"`
	// LossOutsideOutages sums, over the instances, messages missing beyond
	// what the instance's outages account for (Outage.Missed less its
	// FailedPublishes): loss with no fault to explain it.
	LossOutsideOutages uint64 `json:"loss_outside_outages"`
	// Recovered sums the outages' Recovered: messages sent while their
	// receiver was away that reached it all the same.
	Recovered uint64 `json:"recovered,omitempty"`
}

// Outage is one loss of an instance's subscriber connection.
type Outage struct {
	Instance int `json:"instance"`
	// LostAtSeconds is when the bridge noticed the loss.
	LostAtSeconds float64 `json:"lost_at_s"`
	// ReconnectedAtSeconds is when a new connection was up; nil if never.
	ReconnectedAtSeconds *float64 `json:"reconnected_at_s"`
	// ResubscribedAtSeconds is when every subscription was confirmed again
	// and delivery resumed; nil if never.
	ResubscribedAtSeconds *float64 `json:"resubscribed_at_s"`
	// RecoverySeconds is ResubscribedAt − LostAt: the outage as the
	// application saw it; nil if it never recovered.
	RecoverySeconds *float64 `json:"recovery_s"`
	// Missed counts the sequence numbers, over all sources, skipped across
	// the outage: messages published while the instance could not receive
	// them, including publishes that failed meanwhile.
	Missed uint64 `json:"missed"`
	// FailedPublishes is the part of Missed whose publish failed: never
	// accepted by Redis, so lost to nobody. Missed − FailedPublishes is
	// what the outage cost this instance.
	FailedPublishes uint64 `json:"failed_publishes"`
	// Recovered counts the messages published while the instance could
	// not receive (from the loss to the resubscription) that it received
	// after all: over streams, what its group's position kept for it; over
	// pub/sub, at most what was in flight.
	Recovered uint64 `json:"recovered"`
	// Duplicates counts duplicated deliveries from the loss until the next
	// outage or the end; the bridge never retries, so it should be 0.
	Duplicates uint64 `json:"duplicates"`
	// Cause is the error that ended the connection.
	Cause string `json:"cause"`
}

// ErrorBurst is a run of failed publishes by one instance, none more than
// burstGap from the next.
type ErrorBurst struct {
	Instance    int     `json:"instance"`
	FromSeconds float64 `json:"from_s"`
	ToSeconds   float64 `json:"to_s"`
	Count       uint64  `json:"count"`
}

// burstGap joins failed publishes into one burst.
const burstGap = 250 * time.Millisecond

// outage is an Outage as the receiver records it, in absolute times.
type outage struct {
	lost, reconnected, resubscribed time.Time
	cause                           string
	// from[j] is the first sequence number of source j the outage may
	// have cost: one past the highest received when it was lost (in
	// sharded mode, earlier: see issuedLog).
	from []uint64
	// gaps are the sequence numbers the outage spans, by source: from
	// from[j] to the last before the first message received after it
	// ended. What of them never arrived is what it cost.
	gaps  []sourceGap
	dupAt uint64 // the receiver's duplicates when it was lost
	// lostNs and resubNs are lost and resubscribed on the run's clock, for
	// the receive path (0 until resubscribed); recovered counts the
	// messages sent between them that arrived after all.
	lostNs, resubNs int64
	recovered       uint64
}

// sourceGap is a range of one source's sequence numbers an outage spans.
type sourceGap struct {
	src int
	seqRange
}

// subscriberChange records a change of the instance's subscriber
// connection; it runs on the receive goroutine, in order with handle.
func (r *receiver) subscriberChange(ch bridge.SubscriberChange) {
	local := ch.At
	ch.At = ch.At.Add(time.Duration(r.shiftNs)) // on the run's clock, as every time recorded
	switch ch.State {
	case bridge.SubscriberLost:
		o := outage{lost: ch.At, lostNs: ch.At.UnixNano(), dupAt: r.duplicates(), from: make([]uint64, r.n)}
		if ch.Err != nil {
			o.cause = ch.Err.Error()
		}
		for j := range o.from {
			o.from[j] = r.sources[j].highest + 1
		}
		if r.issued != nil {
			// Messages of one source reach a sharded subscriber over
			// several connections, whose order between them is not
			// kept: the highest received may have overtaken messages
			// the lost connection was about to deliver.
			r.issued.lowerTo(o.from, local.Add(-shardedReorder)) // the log's clock is this one
		}
		r.outages = append(r.outages, o)
		// The first message from each source after the outage ends
		// closes the range it spans in that source's sequence numbers.
		if r.attrib == nil {
			r.attrib = make([]int32, r.n)
		}
		for j := range r.attrib {
			r.attrib[j] = int32(len(r.outages))
		}
	case bridge.SubscriberReconnected:
		if k := len(r.outages) - 1; k >= 0 && r.outages[k].reconnected.IsZero() {
			r.outages[k].reconnected = ch.At
		}
	case bridge.SubscriberResubscribed:
		if k := len(r.outages) - 1; k >= 0 && r.outages[k].resubscribed.IsZero() {
			r.outages[k].resubscribed, r.outages[k].resubNs = ch.At, ch.At.UnixNano()
		}
	}
}

// countRecovered counts a message sent while the instance could not
// receive (between an outage's loss and its resubscription) that arrived
// all the same, after it: over pub/sub only what was in flight; over
// streams, whatever the group's position kept for it.
func (r *receiver) countRecovered(sentNs int64) {
	for k := len(r.outages) - 1; k >= 0; k-- {
		o := &r.outages[k]
		if sentNs < o.lostNs {
			continue // an earlier outage's, or none
		}
		if o.resubNs != 0 && sentNs <= o.resubNs {
			o.recovered++
		}
		return
	}
}

// attribute charges the range before seq from source src to the outage
// that opened it, once that outage is over; attrib[src] is its number,
// counting from 1. A message that arrives during a sharded outage, over a
// connection that was not lost, leaves the range open.
func (r *receiver) attribute(src int, seq uint64) {
	k := r.attrib[src]
	if k == 0 || r.outages[k-1].resubscribed.IsZero() {
		return
	}
	r.attrib[src] = 0
	if lo := r.outages[k-1].from[src]; seq > lo {
		r.outages[k-1].gaps = append(r.outages[k-1].gaps, sourceGap{src, seqRange{lo, seq - 1}})
	}
}

// failedWithin counts the sequence numbers of lo..hi inside the ranges.
func failedWithin(failed []seqRange, lo, hi uint64) uint64 {
	var n uint64
	for _, f := range failed {
		if a, b := max(f.lo, lo), min(f.hi, hi); a <= b {
			n += b - a + 1
		}
	}
	return n
}

// shardedReorder is how far back a sharded outage reaches before the
// moment its loss was noticed (see issuedLog).
const shardedReorder = 200 * time.Millisecond

// issuedLog remembers, every issuedEvery, each source's highest sequence
// number settled (answered, with all below it: see trust), for the last
// issuedKeep samples. A sharded subscriber receives a source's messages
// over one connection per master, so when one connection is lost, the
// highest number received (over another) is no bound on what the lost one
// still owed: a message in flight then (sent, not yet answered: waiting
// out a failover's pause, say, to be redirected to the new master) may be
// lost in the outage. The number the source had settled shardedReorder
// before the loss is the bound.
type issuedLog struct {
	mu   sync.RWMutex
	at   [issuedKeep]time.Time
	seqs [issuedKeep][]uint64
	next int
}

const (
	issuedEvery = 50 * time.Millisecond
	issuedKeep  = 16 // 800 ms, beyond shardedReorder
)

// record takes a sample of the limits.
func (l *issuedLog) record(limits []seqLimit, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seqs[l.next]
	if s == nil {
		s = make([]uint64, len(limits))
	}
	for j := range limits {
		s[j] = limits[j].Load()
	}
	l.seqs[l.next], l.at[l.next] = s, now
	l.next = (l.next + 1) % issuedKeep
}

// lowerTo lowers from[j] to one past what source j had taken at t, by the
// newest sample not after t; with none (t is before the run, or older
// than the log), from every number: the whole run.
func (l *issuedLog) lowerTo(from []uint64, t time.Time) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	best := -1
	for i, at := range l.at {
		if !at.IsZero() && !at.After(t) && (best < 0 || at.After(l.at[best])) {
			best = i
		}
	}
	for j := range from {
		bound := uint64(1)
		if best >= 0 {
			if l.seqs[best][j] == noAck {
				continue // another process's source: no reach back
			}
			bound = l.seqs[best][j] + 1
		}
		from[j] = min(from[j], bound)
	}
}

// startIssuedLog starts sampling limits when the run is sharded (nil
// otherwise); stop ends the sampling and waits for it.
func startIssuedLog(sharded bool, limits []seqLimit) (l *issuedLog, stop func()) {
	if !sharded {
		return nil, func() {}
	}
	l = &issuedLog{}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); l.run(limits, quit) }()
	return l, func() { close(quit); <-done }
}

// run samples the limits until stop is closed.
func (l *issuedLog) run(limits []seqLimit, stop <-chan struct{}) {
	t := time.NewTicker(issuedEvery)
	defer t.Stop()
	l.record(limits, time.Now())
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			l.record(limits, now)
		}
	}
}

// duplicates sums the receiver's duplicated deliveries.
func (r *receiver) duplicates() uint64 {
	var d uint64
	for i := range r.sources {
		d += r.sources[i].r().duplicates
	}
	return d
}

// timeline turns the receivers' outages and the publishers' error bursts
// into the result's Timeline; sent[j] is every sequence number source j
// used (published and failed), failed[j] those whose publish failed. It
// runs after every goroutine has ended.
func timeline(start time.Time, faults []FaultRecord, recvs []*receiver, bursts [][]ErrorBurst,
	sent []uint64, failed [][]seqRange, missing []uint64) Timeline {
	tl := Timeline{Faults: faults}
	since := func(t time.Time) *float64 {
		if t.IsZero() {
			return nil
		}
		s := t.Sub(start).Seconds()
		return &s
	}
	var maxRecovery float64
	for i, r := range recvs {
		// Sources still owing their first message since an outage: what
		// they sent after it was lost is in its range.
		for j, k := range r.attrib {
			if k > 0 && j != i && sent[j] >= r.outages[k-1].from[j] {
				r.outages[k-1].gaps = append(r.outages[k-1].gaps, sourceGap{j, seqRange{r.outages[k-1].from[j], sent[j]}})
			}
		}
		// What the outages explain is what never arrived of the union of
		// their ranges, less the failed publishes there: ranges of
		// successive outages may overlap in sharded mode, and a number
		// must not be explained twice.
		spans := make([][]seqRange, r.n)
		for k, o := range r.outages {
			next := r.duplicates()
			if k+1 < len(r.outages) {
				next = r.outages[k+1].dupAt
			}
			out := Outage{Instance: i, LostAtSeconds: o.lost.Sub(start).Seconds(),
				ReconnectedAtSeconds: since(o.reconnected), ResubscribedAtSeconds: since(o.resubscribed),
				Duplicates: next - o.dupAt, Cause: o.cause, Recovered: o.recovered}
			tl.Recovered += o.recovered
			for _, g := range o.gaps {
				out.Missed += g.hi - g.lo + 1 - r.sources[g.src].receivedIn(g.lo, g.hi)
				out.FailedPublishes += failedWithin(failed[g.src], g.lo, g.hi)
				spans[g.src] = append(spans[g.src], g.seqRange)
			}
			if !o.resubscribed.IsZero() {
				rec := o.resubscribed.Sub(o.lost).Seconds()
				out.RecoverySeconds = &rec
				maxRecovery = max(maxRecovery, rec)
			} else {
				tl.Unrecovered++
			}
			tl.Outages = append(tl.Outages, out)
		}
		var explained uint64
		for j, rs := range spans {
			for _, g := range mergeRanges(rs) {
				explained += g.hi - g.lo + 1 - r.sources[j].receivedIn(g.lo, g.hi) - failedWithin(failed[j], g.lo, g.hi)
			}
		}
		if missing[i] > explained {
			tl.LossOutsideOutages += missing[i] - explained
		}
	}
	if len(tl.Outages) > 0 && tl.Unrecovered == 0 {
		tl.MaxRecoverySeconds = &maxRecovery
	}
	for _, b := range bursts {
		tl.PublishErrors = append(tl.PublishErrors, b...)
	}
	return tl
}

// mergeRanges returns the union of rs as disjoint ranges, in order.
func mergeRanges(rs []seqRange) []seqRange {
	if len(rs) < 2 {
		return rs
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b seqRange) int { return cmp.Compare(a.lo, b.lo) })
	out := rs[:1]
	for _, g := range rs[1:] {
		if last := &out[len(out)-1]; g.lo <= last.hi+1 {
			last.hi = max(last.hi, g.hi)
		} else {
			out = append(out, g)
		}
	}
	return out
}
