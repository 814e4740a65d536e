package bridge_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redisload/redisload/bridge"
)

// An application instance that forwards tickers from other instances and
// publishes its own trades. (No Output line: it needs a running Redis.)
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	b, err := bridge.New(bridge.Options{
		URL: "redis://127.0.0.1:6379",
		// InstanceID defaults to "<hostname>-<pid>"; KeyPrefix to "ws:".
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	b.Handle(bridge.TypeTicker, func(ev *bridge.Event) {
		var t struct {
			Symbol string  `json:"symbol"`
			Price  float64 `json:"price"`
		}
		if err := ev.Decode(&t); err == nil {
			fmt.Printf("%s %.2f from %s\n", t.Symbol, t.Price, ev.Source)
		}
	})
	if err := b.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	// Returns once Redis has confirmed every subscription.
	if err := b.SubscribeAll(ctx); err != nil {
		log.Fatal(err)
	}
	trade := map[string]any{"symbol": "BTC/USDT", "price": 65000.5, "amount": 0.01, "side": "buy"}
	if err := b.Publish(ctx, bridge.TypeTrade, trade); err != nil {
		log.Print(err) // counted in Metrics().PublishErrors; never retried
	}
	m := b.Metrics()
	fmt.Println(m.Published, m.Subscriptions)
}
