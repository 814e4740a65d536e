package harness_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/provision"
)

// Three bridges against a redis-server of the example's own, 100 events
// over one second: every event reaches the two other instances, once.
// The counts are exact; the latency is whatever the machine gives.
func ExampleRun() {
	ctx := context.Background()
	srv, err := provision.Start(ctx, provision.Options{Mode: provision.Server})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	cfg := harness.Config{Instances: 3, Duration: time.Second, Rate: 100, Redis: bridge.Options{URL: srv.URL}}
	res, err := harness.Run(ctx, cfg.WithDefaults())
	if err != nil {
		fmt.Println(err)
		return
	}
	t := res.Totals
	fmt.Printf("published %d, delivered %d of %d, missing %d, duplicates %d\n", t.Published, t.Delivered, t.Expected, t.Missing, t.Duplicates)
	fmt.Println("every latency sample counted:", res.Latency.Count == int64(t.Delivered))
	// Output:
	// published 100, delivered 200 of 200, missing 0, duplicates 0
	// every latency sample counted: true
}
