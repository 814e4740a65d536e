package workers_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/provision"
	"github.com/redisload/redisload/workers"
)

// One run of 4 instances over 2 workers (here goroutines; in production
// processes on other hosts, `redisload worker`), joined through a control
// Redis that is also the server under test. The merged result counts as
// one process would: every event to every other instance.
func ExampleCoordinate() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := provision.Start(ctx, provision.Options{Mode: provision.Server})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "redis://")
	var g errgroup.Group
	for range 2 {
		g.Go(func() error {
			ctl := redis.NewClient(&redis.Options{Addr: addr})
			defer ctl.Close()
			return workers.Serve(ctx, ctl, workers.WorkerOptions{Once: true, Version: "example", JoinTimeout: 10 * time.Second})
		})
	}
	ctl := redis.NewClient(&redis.Options{Addr: addr})
	defer ctl.Close()
	cfg := harness.Config{Instances: 4, Duration: time.Second, Rate: 100, Redis: bridge.Options{URL: srv.URL}}.WithDefaults()
	res, err := workers.Coordinate(ctx, ctl, cfg, workers.CoordinatorOptions{Workers: 2, Announce: true, Version: "example"})
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	t := res.Totals
	fmt.Printf("%d workers: published %d, delivered %d of %d, missing %d\n", len(res.Workers), t.Published, t.Delivered, t.Expected, t.Missing)
	// Output:
	// 2 workers: published 100, delivered 300 of 300, missing 0
}
