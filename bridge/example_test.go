package bridge_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redisload/redisload/bridge"
)

// Two application instances on one Redis: one subscribes to tickers, the
// other publishes one. The publisher drops its own echo; the subscriber
// gets the event once.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	got := make(chan string, 1)
	sub, err := bridge.New(bridge.Options{URL: redisURL, InstanceID: "ex-sub", KeyPrefix: "example:",
		Handler: func(ev *bridge.Event) {
			// The Event is reused after the handler returns: copy what
			// is kept.
			got <- ev.Type + " from " + ev.Source + ": " + ev.Data
		}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()
	pub, err := bridge.New(bridge.Options{URL: redisURL, InstanceID: "ex-pub", KeyPrefix: "example:"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pub.Close()
	for _, b := range []*bridge.Bridge{sub, pub} {
		if err := b.Connect(ctx); err != nil {
			fmt.Println(err)
			return
		}
		// Subscribe returns once Redis confirmed: nothing published
		// after it is missed.
		if err := b.Subscribe(ctx, bridge.TypeTicker); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := pub.Publish(ctx, bridge.TypeTicker, map[string]any{"symbol": "BTC/USDT", "price": 65000.5}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	// Wait for the echo to come back to the publisher, then count.
	for pub.Metrics().SelfFiltered == 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	m := pub.Metrics()
	fmt.Printf("publisher: published %d, self-filtered %d, received %d\n", m.Published, m.SelfFiltered, m.Received)
	fmt.Println("subscriber received", sub.Metrics().Received)
	// Output:
	// ticker from ex-pub: {"price":65000.5,"symbol":"BTC/USDT"}
	// publisher: published 1, self-filtered 1, received 0
	// subscriber received 1
}

// Close is final: every method returns ErrClosed after it.
func ExampleBridge_Close() {
	b, err := bridge.New(bridge.Options{URL: redisURL, InstanceID: "ex-closed"})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = b.Close()
	err = b.Publish(context.Background(), bridge.TypeTrade, 1)
	fmt.Println(err)
	// Output:
	// bridge: closed
}
