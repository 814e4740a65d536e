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
func (s *sleeper) sleep(ctx context.Context, timer *time.Timer, d time.Duration) bool {
	if d < preciseBelow && s.precise {
		s.nanosleep(d)
		return ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
