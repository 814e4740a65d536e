//go:build !unix

package rusage

import "time"

// Self is not measured outside Unix: the reports show 0.
func Self() (cpu time.Duration, maxRSS int64) { return 0, 0 }

// PeakRSS is not measured outside Unix.
func PeakRSS(int) (int64, bool) { return 0, false }
