package harness

import "time"

// CaptureParts makes every Run hand its accounting, as a worker would ship
// it, to f; the returned func restores the default (none).
func CaptureParts(f func(ps PartState, err error, start time.Time)) (restore func()) {
	partHook = f
	return func() { partHook = nil }
}
