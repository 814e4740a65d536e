package capacity_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/capacity"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/provision"
)

// Three steps of 3 instances, 200 to 800 events/s, half a second each,
// against a redis-server of the example's own: far below any knee, so
// every step passes and the search says the knee is beyond Max.
func ExampleRun() {
	ctx := context.Background()
	srv, err := provision.Start(ctx, provision.Options{Mode: provision.Server})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	cfg := capacity.Config{Start: 200, Factor: 2, Max: 800, StepDuration: 500 * time.Millisecond,
		Run: harness.Config{Instances: 3, Redis: bridge.Options{URL: srv.URL}}}
	res, err := capacity.Run(ctx, cfg, func(s capacity.Step) {
		fmt.Printf("%.0f events/s: passed %v\n", s.TargetRate, s.Passed)
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("knee found:", res.Knee >= 0)
	// Output:
	// 200 events/s: passed true
	// 400 events/s: passed true
	// 800 events/s: passed true
	// knee found: false
}
