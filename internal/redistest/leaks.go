package redistest

import (
	"time"

	"go.uber.org/goleak"
)

// leakGrace is how long a goroutine may outlive its owner's Close:
// go-redis's dial prober (pool.tryDial), started when a server stops
// answering, sleeps a second between attempts and sees its pool closed
// only when it wakes. goleak's own retries give up after about half a
// second.
const leakGrace = 3 * time.Second

// Leaks reports the goroutines still running once every test has ended,
// after letting those that are ending end: nil when none is left.
func Leaks(opts ...goleak.Option) error {
	deadline := time.Now().Add(leakGrace)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
