package verdict_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/provision"
	"github.com/redisload/redisload/verdict"
)

// A run judged by the seed's thresholds (all connected, nothing
// self-received, delivery above 95 %, no errors, average latency under
// 100 ms) and one of its own: p99 under a second. Each check says what it
// measured; the run passes when every check does.
func ExampleEvaluate() {
	ctx := context.Background()
	srv, err := provision.Start(ctx, provision.Options{Mode: provision.Server})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	res, err := harness.Run(ctx, harness.Config{Instances: 3, Duration: time.Second, Rate: 50,
		Redis: bridge.Options{URL: srv.URL}}.WithDefaults())
	if err != nil {
		fmt.Println(err)
		return
	}
	th := verdict.DefaultThresholds()
	th.MaxP99Latency = time.Second
	v := verdict.Evaluate(res, th)
	for _, c := range v.Checks {
		if c.Name == "Delivery rate" || c.Name == "All instances connected" {
			fmt.Printf("%s: %s (%s)\n", c.Name, c.Status, c.Measured)
		}
	}
	fmt.Println("overall:", v.Status)
	// Output:
	// All instances connected: PASS (3 of 3)
	// Delivery rate: PASS (100.00%)
	// overall: PASS
}
