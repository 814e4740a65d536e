package bridge_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/redistest"
)

// The package promises that a Bridge's methods are safe for concurrent use.
// Under -race, every exported method runs on goroutines of its own while
// Connect and Close happen, many times over; the race detector, not an
// assertion, is the test, with the one rule that nothing may be reported
// but the documented errors.
func TestEveryMethodConcurrentWithConnectAndClose(t *testing.T) {
	srv := redistest.Start(t)
	allowed := func(err error) bool {
		return err == nil || errors.Is(err, bridge.ErrClosed) || errors.Is(err, bridge.ErrNotConnected) ||
			errors.Is(err, bridge.ErrSubscriberDown) || errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, context.Canceled) || errors.Is(err, bridge.ErrOutcomeUnknown)
	}
	for round := range 20 {
		b, err := bridge.New(bridge.Options{URL: srv.URL, InstanceID: "conc", KeyPrefix: "conc:"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		do := func(name string, f func() error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					if err := f(); !allowed(err) {
						errs <- errors.New(name + ": " + err.Error())
						return
					}
				}
			}()
		}
		do("Connect", func() error { return b.Connect(ctx) })
		do("Publish", func() error { return b.Publish(ctx, bridge.TypeTicker, round) })
		do("PublishRaw", func() error { _, err := b.PublishRaw(ctx, bridge.TypeTrade, []byte("1")); return err })
		do("Subscribe", func() error { return b.Subscribe(ctx, bridge.TypeTicker) })
		do("SubscribeAll", func() error { return b.SubscribeAll(ctx) })
		do("Unsubscribe", func() error { return b.Unsubscribe(ctx, bridge.TypeTrade) })
		do("UnsubscribeAll", func() error { return b.UnsubscribeAll(ctx) })
		do("Ping", func() error { return b.Ping(ctx) })
		do("Handle", func() error { b.Handle(bridge.TypeCandle, func(*bridge.Event) {}); return nil })
		do("Ready/Metrics/ID/Channel", func() error {
			_, _, _, _ = b.Ready(), b.Metrics(), b.ID(), b.Channel(bridge.TypeTicker)
			return nil
		})
		do("Batch", func() error {
			bt := b.NewBatch()
			bt.Add(bridge.TypeTicker, []byte("2"))
			_, err := bt.Flush(ctx)
			return err
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(round%5) * time.Millisecond)
			_ = b.Close()
		}()
		wg.Wait()
		cancel()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		_ = b.Close()
		if err := b.Connect(context.Background()); !errors.Is(err, bridge.ErrClosed) {
			t.Fatalf("round %d: Connect after Close: %v", round, err)
		}
	}
}
