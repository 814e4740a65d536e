//go:build !linux

package harness

import "time"

// sleeper elsewhere sleeps with the Go timer only.
type sleeper struct{ precise bool }

func newSleeper() *sleeper                 { return &sleeper{} }
func (s *sleeper) nanosleep(time.Duration) {}
func (s *sleeper) close()                  {}
