package harness

import (
	"math"
	"time"
)

// Pacer is the open-loop schedule of a run, as vegeta's Pacer is: it
// answers both questions the publisher asks, "how many events are due by
// t" (the scheduler hands them out) and "when is event k due" (its
// intended send time, from which its latency counts). One type answers
// both, so that the two cannot disagree; a constant rate is one Pacer, and
// a ramp or stages another, for the run and for capacity's steps alike.
type Pacer interface {
	// Due is how many events are due by t from the start: events 0 to
	// Due(t)−1. It never decreases as t grows.
	Due(t time.Duration) uint64
	// At is when event k (from 0) is due, from the start; At(k) ≤ t for
	// every k below Due(t).
	At(k uint64) time.Duration
}

// ConstantPacer schedules Rate events per second, event k at k/Rate: the
// first at once, none skipped.
type ConstantPacer struct {
	Rate float64 // events per second, positive
}

// Due implements Pacer.
func (p ConstantPacer) Due(t time.Duration) uint64 {
	if t < 0 {
		return 0
	}
	return uint64(t.Seconds()*p.Rate) + 1
}

// At implements Pacer.
func (p ConstantPacer) At(k uint64) time.Duration {
	return time.Duration(float64(k) / p.Rate * float64(time.Second))
}

// total is how many events a pacer schedules before d: those due before
// the end. The epsilon keeps 10/s × 0.3 s from flooring to 2.
func (p ConstantPacer) total(d time.Duration) uint64 {
	return uint64(math.Floor(p.Rate*d.Seconds() + 1e-9))
}
