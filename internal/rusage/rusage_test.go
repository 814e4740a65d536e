//go:build linux

package rusage

import (
	"os"
	"testing"
)

// The peak is this process's own: at least what it touched, and what Self
// reports.
func TestPeakRSS(t *testing.T) {
	buf := make([]byte, 64<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1 // resident
	}
	peak, ok := PeakRSS(os.Getpid())
	if !ok || peak < 64<<20 {
		t.Fatalf("peak %d, %v: want at least the 64 MiB touched", peak, ok)
	}
	if _, self := Self(); self < peak {
		t.Errorf("Self says %d, below the peak %d", self, peak)
	}
	if _, ok := PeakRSS(-1); ok {
		t.Error("a process that does not exist has a peak")
	}
	_ = buf[len(buf)-1]
}
