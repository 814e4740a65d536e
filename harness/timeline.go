package harness

import (
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
	missed                          uint64
	gaps                            []sourceGap // what was missed, by source
	dupAt                           uint64      // the receiver's duplicates when it was lost
}

// sourceGap is a range of one source's sequence numbers an outage skipped.
type sourceGap struct {
	src int
	seqRange
}

// subscriberChange records a change of the instance's subscriber
// connection. Like handle, it runs on the receive goroutine.
func (r *receiver) subscriberChange(ch bridge.SubscriberChange) {
	switch ch.State {
	case bridge.SubscriberLost:
		o := outage{lost: ch.At, dupAt: r.duplicates()}
		if ch.Err != nil {
			o.cause = ch.Err.Error()
		}
		r.outages = append(r.outages, o)
		// The next message from each source closes the gap the outage
		// opened in its sequence numbers.
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
			r.outages[k].resubscribed = ch.At
		}
	}
}

// attribute charges the gap before seq from source src to the outage that
// opened it, if any. attrib[src] is that outage's number, counting from 1.
func (r *receiver) attribute(src int, seq uint64) {
	k := r.attrib[src]
	if k == 0 {
		return
	}
	r.attrib[src] = 0
	if h := r.sources[src].highest; seq > h+1 {
		r.outages[k-1].addGap(src, h+1, seq-1)
	}
}

// addGap charges source src's sequence numbers lo..hi to the outage.
func (o *outage) addGap(src int, lo, hi uint64) {
	o.missed += hi - lo + 1
	o.gaps = append(o.gaps, sourceGap{src, seqRange{lo, hi}})
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

// duplicates sums the receiver's duplicated deliveries.
func (r *receiver) duplicates() uint64 {
	var d uint64
	for i := range r.sources {
		d += r.sources[i].duplicates
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
		// they sent after its last delivered message was missed in it.
		for j, k := range r.attrib {
			if k > 0 && j != i && sent[j] > r.sources[j].highest {
				r.outages[k-1].addGap(j, r.sources[j].highest+1, sent[j])
			}
		}
		var explained uint64
		for k, o := range r.outages {
			next := r.duplicates()
			if k+1 < len(r.outages) {
				next = r.outages[k+1].dupAt
			}
			out := Outage{Instance: i, LostAtSeconds: o.lost.Sub(start).Seconds(),
				ReconnectedAtSeconds: since(o.reconnected), ResubscribedAtSeconds: since(o.resubscribed),
				Missed: o.missed, Duplicates: next - o.dupAt, Cause: o.cause}
			for _, g := range o.gaps {
				out.FailedPublishes += failedWithin(failed[g.src], g.lo, g.hi)
			}
			if !o.resubscribed.IsZero() {
				rec := o.resubscribed.Sub(o.lost).Seconds()
				out.RecoverySeconds = &rec
				maxRecovery = max(maxRecovery, rec)
			} else {
				tl.Unrecovered++
			}
			explained += out.Missed - out.FailedPublishes
			tl.Outages = append(tl.Outages, out)
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
