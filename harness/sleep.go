package harness

import (
	"context"
	"time"
)

// preciseBelow is the longest wait the scheduler sleeps precisely; longer
// ones are rare (a slow schedule) and take the Go timer, which ctx can cut.
const preciseBelow = 2 * time.Millisecond

// sleep waits d, or until ctx ends; it reports whether ctx is still
// alive. A Go timer wakes a process with nothing else to do about 1.1 ms
// after it was set whatever it was set to (measured here: 50 µs asked,
// 1.08 ms slept), which made the scheduler's 1 ms window act as 2 and
// every window under a millisecond impossible. Short waits therefore
// sleep on the scheduler's own OS thread, with the kernel's timer slack
// at its least (see sleeper), and are bounded, so that ctx is looked at
// within preciseBelow.
//
// A longer wait takes the Go timer to preciseBelow before its end, then
// sleeps the rest precisely: the timer's lateness used to land on the
// event itself, which at a low rate (the seed's 10 events/s, every wait
// about 100 ms) made each event's send delay the timer's ~0.8 ms.
func (s *sleeper) sleep(ctx context.Context, timer *time.Timer, d time.Duration) bool {
	if !s.precise {
		return s.timerSleep(ctx, timer, d)
	}
	end := time.Now().Add(d)
	if d >= preciseBelow && !s.timerSleep(ctx, timer, d-preciseBelow) {
		return false
	}
	if rest := time.Until(end); rest > 0 {
		s.nanosleep(rest)
	}
	return ctx.Err() == nil
}

// timerSleep waits d on the Go timer, or until ctx ends; it reports
// whether ctx is still alive.
func (s *sleeper) timerSleep(ctx context.Context, timer *time.Timer, d time.Duration) bool {
	timer.Reset(d)
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
