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

// Stage is one part of a load shape: the rate ramps linearly, over
// Duration, from where the previous stage ended (the first stage from 0)
// to Rate, as k6's stages do. A stage with its predecessor's Rate holds it.
type Stage struct {
	Duration time.Duration `json:"duration_ns"`
	Rate     float64       `json:"rate"` // events per second at the stage's end
}

// StagedPacer schedules a load shape of stages: the events due by t are
// the integral of the ramped rate from 0 to t, event k at the instant the
// integral reaches k (event 0 at once). Past the last stage nothing more
// is due.
type StagedPacer struct {
	stages []Stage
	// from[i] is stage i's starting rate; cum[i] the events due at its
	// start (cum[len] at the end of the last).
	from []float64
	cum  []float64
	ends []time.Duration // each stage's end, from the start
}

// NewStagedPacer returns the pacer of stages, which Config.Validate has
// checked (positive durations, rates finite and not negative).
func NewStagedPacer(stages []Stage) *StagedPacer {
	p := &StagedPacer{stages: stages, cum: []float64{0}}
	prev := 0.0
	var end time.Duration
	for _, s := range stages {
		p.from = append(p.from, prev)
		// The area of a trapezoid: the mean rate over the stage.
		p.cum = append(p.cum, p.cum[len(p.cum)-1]+(prev+s.Rate)/2*s.Duration.Seconds())
		end += s.Duration
		p.ends = append(p.ends, end)
		prev = s.Rate
	}
	return p
}

// integral is the events due by t: the rate's integral from 0 to t.
func (p *StagedPacer) integral(t time.Duration) float64 {
	var start time.Duration
	for i, s := range p.stages {
		if t < p.ends[i] {
			x := (t - start).Seconds()
			slope := (s.Rate - p.from[i]) / s.Duration.Seconds()
			return p.cum[i] + p.from[i]*x + slope*x*x/2
		}
		start = p.ends[i]
	}
	return p.cum[len(p.cum)-1]
}

// Due implements Pacer.
func (p *StagedPacer) Due(t time.Duration) uint64 {
	if t < 0 {
		return 0
	}
	// The epsilon keeps an integral of exactly k from flooring below k.
	return min(uint64(math.Floor(p.integral(t)+1e-9))+1, p.total(0))
}

// total is how many events the stages schedule, whatever the run's
// Duration (which Validate makes their sum).
func (p *StagedPacer) total(time.Duration) uint64 {
	return uint64(math.Floor(p.cum[len(p.cum)-1] + 1e-9))
}

// At implements Pacer: the instant the integral reaches k, solving the
// stage's quadratic.
func (p *StagedPacer) At(k uint64) time.Duration {
	target := float64(k)
	var start time.Duration
	for i, s := range p.stages {
		if target < p.cum[i+1] || i == len(p.stages)-1 {
			rem := target - p.cum[i]
			r0, d := p.from[i], s.Duration.Seconds()
			slope := (s.Rate - r0) / d
			var x float64
			if math.Abs(slope) < 1e-12 {
				if r0 > 0 {
					x = rem / r0
				}
			} else {
				// r0·x + slope·x²/2 = rem, the root within the stage.
				disc := math.Max(r0*r0+2*slope*rem, 0)
				x = (math.Sqrt(disc) - r0) / slope
			}
			x = math.Min(math.Max(x, 0), d)
			// Up to the next nanosecond: truncated, the instant can fall
			// just short of where the integral reaches k.
			return start + time.Duration(math.Ceil(x*float64(time.Second)))
		}
		start = p.ends[i]
	}
	return start
}

// TargetRate is the shape's rate at t, in events per second.
func (p *StagedPacer) TargetRate(t time.Duration) float64 {
	var start time.Duration
	for i, s := range p.stages {
		if t < p.ends[i] {
			return p.from[i] + (s.Rate-p.from[i])*(t-start).Seconds()/s.Duration.Seconds()
		}
		start = p.ends[i]
	}
	return 0
}

// runPacer is a Pacer that knows how many events a run of d schedules.
type runPacer interface {
	Pacer
	total(d time.Duration) uint64
}
