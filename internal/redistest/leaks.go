package redistest

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/redisload/redisload/provision"
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

// MainWithServer is a TestMain for packages whose Examples need a Redis
// (an Example cannot start one): it starts a redis-server, gives its URL
// to setURL, runs the tests, stops the server and checks for leaks.
//
//	func TestMain(m *testing.M) { os.Exit(redistest.MainWithServer(m, func(u string) { redisURL = u })) }
func MainWithServer(m interface{ Run() int }, setURL func(string)) int {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	inst, err := provision.Start(c, provision.Options{Mode: provision.Server})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "the examples need redis-server on PATH:", err)
		return 1
	}
	setURL(inst.URL)
	code := m.Run()
	_ = inst.Close()
	return CheckLeaks(code)
}
