package redistest

import (
	"fmt"
	"os"
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

// CheckLeaks is the end of a TestMain: given m.Run's exit code, it fails
// a passing run that left goroutines running (see Leaks), saying which.
//
//	func TestMain(m *testing.M) { os.Exit(redistest.CheckLeaks(m.Run())) }
func CheckLeaks(code int) int {
	if code != 0 {
		return code
	}
	if err := Leaks(); err != nil {
		fmt.Fprintln(os.Stderr, "goleak:", err)
		return 1
	}
	return 0
}
