package harness

import (
	"testing"
	"time"
)

// The two answers of a pacer agree: every event counted due by t is due
// at or before t, the next one after it, at rates that do not divide a
// second evenly too.
func TestConstantPacerAgrees(t *testing.T) {
	for _, rate := range []float64{1, 3, 7.5, 1000, 33333, 1e6} {
		p := ConstantPacer{Rate: rate}
		for _, at := range []time.Duration{0, time.Nanosecond, 299 * time.Millisecond, time.Second, 1234567891 * time.Nanosecond} {
			due := p.Due(at)
			if due == 0 || p.At(due-1) > at {
				t.Errorf("rate %g: Due(%v) = %d, but event %d is due at %v", rate, at, due, due-1, p.At(due-1))
			}
			if p.At(due) <= at && p.At(due) != p.At(due-1) {
				t.Errorf("rate %g: Due(%v) = %d, but event %d is due at %v, not after", rate, at, due, due, p.At(due))
			}
		}
	}
	if got := (ConstantPacer{Rate: 10}).total(300 * time.Millisecond); got != 3 {
		t.Errorf("10/s for 0.3s: %d events, want 3", got)
	}
	if got := (ConstantPacer{Rate: 0.5}).total(time.Second); got != 0 {
		t.Errorf("0.5/s for 1s: %d events, want 0", got)
	}
}
