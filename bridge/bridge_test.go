package bridge_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/redistest"
)

// redisURL is a server for the examples, which cannot start one of their
// own: a redis-server process on a free port, started here.
var redisURL string

func TestMain(m *testing.M) {
	os.Exit(redistest.MainWithServer(m, func(u string) { redisURL = u }))
}

// collector records what a handler saw; safe to read after Close.
type collector struct {
	mu   sync.Mutex
	evs  []bridge.Event
	seen chan struct{}
}

func newCollector() *collector { return &collector{seen: make(chan struct{}, 1000)} }

func (c *collector) handle(ev *bridge.Event) {
	c.mu.Lock()
	c.evs = append(c.evs, *ev)
	c.mu.Unlock()
	c.seen <- struct{}{}
}

// events returns a copy of what was handled so far.
func (c *collector) events() []bridge.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bridge.Event(nil), c.evs...)
}

// wait blocks until n events were handled, failing after a bound.
func (c *collector) wait(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-c.seen:
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d events, want %d", i, n)
		}
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func newBridge(t *testing.T, srv *redistest.Server, id string, opt bridge.Options) *bridge.Bridge {
	t.Helper()
	opt.URL = srv.URL
	opt.InstanceID = id
	if opt.KeyPrefix == "" {
		opt.KeyPrefix = "t-" + t.Name() + ":"
	}
	b, err := bridge.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestPublishSubscribeSelfFilter(t *testing.T) {
	srv := redistest.Start(t)
	ca, cb := newCollector(), newCollector()
	a := newBridge(t, srv, "inst-a", bridge.Options{Handler: ca.handle})
	b := newBridge(t, srv, "inst-b", bridge.Options{Handler: cb.handle})
	for _, br := range []*bridge.Bridge{a, b} {
		if err := br.Subscribe(ctx(t), bridge.TypeTicker, bridge.TypeTrade); err != nil {
			t.Fatal(err)
		}
		if !br.Ready() {
			t.Fatal("not ready after confirmed subscribe")
		}
	}
	for i := 0; i < 3; i++ {
		if err := a.Publish(ctx(t), bridge.TypeTicker, map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Publish(ctx(t), bridge.TypeCandle, map[string]int{"x": 1}); err != nil { // nobody subscribes
		t.Fatal(err)
	}
	if err := b.Publish(ctx(t), bridge.TypeTrade, map[string]string{"side": "buy"}); err != nil {
		t.Fatal(err)
	}
	cb.wait(t, 3)
	ca.wait(t, 1)
	// One more round trip on b's side proves nothing else is in flight: the
	// echo of b's own trade arrived before a's next message does.
	if err := a.Publish(ctx(t), bridge.TypeTrade, 1); err != nil {
		t.Fatal(err)
	}
	cb.wait(t, 1)
	// a's own echo of that last trade travels on a's subscriber connection,
	// independently of b's copy: wait for it before closing.
	waitFor(t, "a's last echo", func() bool { return a.Metrics().SelfFiltered == 4 })
	_ = a.Close()
	_ = b.Close()

	if got := len(cb.evs); got != 4 {
		t.Fatalf("b handled %d events, want 4", got)
	}
	for i, ev := range cb.evs[:3] {
		if ev.Source != "inst-a" || ev.Type != "ticker" || ev.Seq != uint64(i+1) || ev.Channel != "t-"+t.Name()+":ticker" {
			t.Errorf("b event %d = %+v", i, ev)
		}
		if ev.Data != `{"i":`+string(rune('0'+i))+`}` {
			t.Errorf("b event %d data %s", i, ev.Data)
		}
		if ev.SentNs <= 0 || ev.ReceivedNs < ev.SentNs {
			t.Errorf("b event %d: sent %d received %d", i, ev.SentNs, ev.ReceivedNs)
		}
	}
	if ev := cb.evs[3]; ev.Seq != 5 || ev.Type != "trade" {
		t.Errorf("b last event = %+v (a's 5th publish)", ev)
	}
	if len(ca.evs) != 1 || ca.evs[0].Source != "inst-b" || ca.evs[0].Seq != 1 {
		t.Fatalf("a handled %+v", ca.evs)
	}

	ma, mb := a.Metrics(), b.Metrics()
	if ma.Published != 5 || ma.Received != 1 || ma.SelfFiltered != 4 || ma.Errors != 0 || ma.Malformed != 0 {
		t.Errorf("a metrics %+v: want published 5, received 1, self-filtered 4 (3 ticker + 1 trade; candle unsubscribed)", ma)
	}
	if mb.Published != 1 || mb.Received != 4 || mb.SelfFiltered != 1 || mb.Errors != 0 {
		t.Errorf("b metrics %+v", mb)
	}
	if ma.Connected {
		t.Error("connected after Close")
	}
}

func TestSubscriptionManagement(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client(t)
	b := newBridge(t, srv, "inst-s", bridge.Options{KeyPrefix: "sm:"})
	numsub := func() map[string]int64 {
		m, err := rc.PubSubNumSub(ctx(t), "sm:ticker", "sm:trade", "sm:candle").Result()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if err := b.SubscribeAll(ctx(t)); err != nil {
		t.Fatal(err)
	}
	m := b.Metrics()
	if m.Subscriptions != 8 || strings.Join(m.ActiveSubscriptions, ",") !=
		"candle,exchange:connected,exchange:disconnected,exchange:error,exchange:reconnecting,orderbook,ticker,trade" {
		t.Fatalf("after SubscribeAll: %+v", m)
	}
	// Subscribing again is a no-op, not a second subscription.
	if err := b.Subscribe(ctx(t), bridge.TypeTicker); err != nil {
		t.Fatal(err)
	}
	if n := numsub(); n["sm:ticker"] != 1 || n["sm:trade"] != 1 {
		t.Fatalf("server sees %v", n)
	}
	if err := b.Unsubscribe(ctx(t), bridge.TypeTicker); err != nil {
		t.Fatal(err)
	}
	if n := numsub(); n["sm:ticker"] != 0 || n["sm:trade"] != 1 {
		t.Fatalf("after Unsubscribe(ticker) server sees %v", n)
	}
	if got := b.Metrics().Subscriptions; got != 7 {
		t.Fatalf("subscriptions %d, want 7", got)
	}
	if err := b.UnsubscribeAll(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := numsub(); n["sm:trade"] != 0 || n["sm:candle"] != 0 {
		t.Fatalf("after UnsubscribeAll server sees %v", n)
	}
	if m := b.Metrics(); m.Subscriptions != 0 || len(m.ActiveSubscriptions) != 0 || !b.Ready() {
		t.Fatalf("after UnsubscribeAll: %+v ready=%v", m, b.Ready())
	}
}

func TestPerTypeHandlers(t *testing.T) {
	srv := redistest.Start(t)
	tick, other := newCollector(), newCollector()
	recv := newBridge(t, srv, "r", bridge.Options{Handler: other.handle})
	recv.Handle(bridge.TypeTicker, tick.handle)
	pub := newBridge(t, srv, "p", bridge.Options{DisableSubscription: true, KeyPrefix: "t-" + t.Name() + ":"})
	if err := recv.Subscribe(ctx(t), bridge.TypeTicker, bridge.TypeTrade); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"ticker", "trade", "ticker"} {
		if _, err := pub.PublishRaw(ctx(t), typ, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	tick.wait(t, 2)
	other.wait(t, 1)
	if err := pub.Subscribe(ctx(t), "ticker"); err != bridge.ErrSubscriptionDisabled {
		t.Errorf("subscribe on publish-only bridge: %v", err)
	}
}

func TestSubscribeOnlyAndForeignMessages(t *testing.T) {
	srv := redistest.Start(t)
	c := newCollector()
	b := newBridge(t, srv, "only-sub", bridge.Options{DisablePublishing: true, Handler: c.handle, KeyPrefix: "f:"})
	if err := b.Publish(ctx(t), "ticker", 1); err != bridge.ErrPublishingDisabled {
		t.Fatalf("publish on subscribe-only bridge: %v", err)
	}
	if err := b.Subscribe(ctx(t), "ticker"); err != nil {
		t.Fatal(err)
	}
	rc := srv.Client(t)
	for _, p := range []string{
		"not json",
		`{"no":"type"}`,
		`{"type":"ticker","data":{"symbol":"BTC/USDT"},"timestamp":1700000000000,"source":4242}`, // the TypeScript bridge
	} {
		if err := rc.Publish(ctx(t), "f:ticker", p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c.wait(t, 1)
	_ = b.Close()
	m := b.Metrics()
	if m.Malformed != 2 || m.Received != 1 || m.Errors != 0 {
		t.Fatalf("metrics %+v: want 2 malformed, 1 received", m)
	}
	if ev := c.evs[0]; ev.Source != "4242" || ev.Seq != 0 || ev.Type != "ticker" {
		t.Fatalf("TypeScript event read as %+v", ev)
	}
}

func TestDeliverOwnKnob(t *testing.T) {
	srv := redistest.Start(t)
	c := newCollector()
	b := newBridge(t, srv, "me", bridge.Options{LoadTest: bridge.LoadTestOptions{DeliverOwn: true}, Handler: c.handle})
	if err := b.Subscribe(ctx(t), "trade"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx(t), "trade", 1); err != nil {
		t.Fatal(err)
	}
	c.wait(t, 1)
	if m := b.Metrics(); m.SelfFiltered != 0 || m.Received != 1 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestConnectErrorsNameAddressNotPassword(t *testing.T) {
	port := redistest.FreePort(t) // nothing listens there
	b, err := bridge.New(bridge.Options{URL: "redis://user:s3cretpw@127.0.0.1:" + strconv.Itoa(port), DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = b.Connect(ctx(t))
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("connect took %v", time.Since(start))
	}
	if !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(port)) || strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("error %q: want the address and not the password", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// Connect is bounded by its ctx even against a server that accepts the
// connection and never answers.
func TestConnectHonoursContextAgainstSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c // kept open, never answered
		}
	}()
	defer func() {
		l.Close()
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	b, err := bridge.New(bridge.Options{Addr: l.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := b.Connect(c); err == nil {
		t.Fatal("connected to a silent server")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Connect took %v with a 700ms context", took)
	}
}

func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opt  bridge.Options
		want string
	}{
		{bridge.Options{InstanceID: "a b"}, "invalid instance ID"},
		{bridge.Options{URL: "http://x"}, `scheme "http"`},
		{bridge.Options{URL: "redis://:hunter2@host:port"}, "invalid Redis URL"},
		{bridge.Options{URL: "redis://"}, "no host"},
		{bridge.Options{Transport: "kafka"}, `Transport must be pubsub or streams, got "kafka"`},
		{bridge.Options{Transport: bridge.TransportStreams, PubSub: bridge.PubSubSharded}, "does not go with sharded pub/sub"},
		{bridge.Options{Transport: bridge.TransportStreams, StreamMaxLen: -2}, "StreamMaxLen must be positive, or -1"},
		{bridge.Options{StreamGroup: "a b"}, "invalid stream group"},
	} {
		_, err := bridge.New(tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%+v) = %v, want error containing %q without the password", tc.opt, err, tc.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	if got := bridge.RedactURL("redis://u:pw@h:1/0"); got != "redis://u:xxxxx@h:1/0" {
		t.Fatal(got)
	}
	if got := bridge.RedactURL("redis://h:1"); got != "redis://h:1" {
		t.Fatal(got)
	}
}

func TestReconnectDelay(t *testing.T) {
	r := bridge.ReconnectOptions{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := r.Delay(i + 1); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
}

// The subscriber survives the server dropping its connection: it reconnects,
// re-subscribes, counts both, and receives again.
func TestSubscriberReconnects(t *testing.T) {
	srv := redistest.StartOwn(t) // CLIENT KILL must not hit anyone else's clients
	c := newCollector()
	b := newBridge(t, srv, "victim", bridge.Options{Handler: c.handle,
		Reconnect: bridge.ReconnectOptions{BaseDelay: 10 * time.Millisecond}})
	pub := newBridge(t, srv, "pub", bridge.Options{DisableSubscription: true, KeyPrefix: "t-" + t.Name() + ":"})
	if err := b.Subscribe(ctx(t), "ticker"); err != nil {
		t.Fatal(err)
	}
	rc := srv.Client(t)
	if n, err := rc.ClientKillByFilter(ctx(t), "TYPE", "pubsub").Result(); err != nil || n != 1 {
		t.Fatalf("CLIENT KILL: %d, %v", n, err)
	}
	ch := "t-" + t.Name() + ":ticker"
	waitFor(t, "re-subscription", func() bool {
		n, err := rc.PubSubNumSub(ctx(t), ch).Result()
		return err == nil && n[ch] == 1
	})
	if err := pub.Publish(ctx(t), "ticker", 1); err != nil {
		t.Fatal(err)
	}
	c.wait(t, 1)
	m := b.Metrics()
	if m.Reconnects != 1 || m.Errors != 1 || !m.Connected || m.Subscriptions != 1 {
		t.Fatalf("metrics %+v: want 1 reconnect, 1 error, connected, 1 subscription", m)
	}
}

// Across a server restart the subscriber is reported down (not Ready, no
// active subscriptions), keeps dialling, and on the new server subscribes
// again to everything wanted, including a type asked for during the outage.
func TestSubscriberSurvivesRestart(t *testing.T) {
	srv := redistest.StartOwn(t)
	c := newCollector()
	var mu sync.Mutex
	var changes []bridge.SubscriberChange
	b := newBridge(t, srv, "victim", bridge.Options{Handler: c.handle,
		Reconnect: bridge.ReconnectOptions{BaseDelay: 20 * time.Millisecond, MaxDelay: 50 * time.Millisecond},
		OnSubscriberChange: func(ch bridge.SubscriberChange) {
			mu.Lock()
			changes = append(changes, ch)
			mu.Unlock()
		}})
	if err := b.Subscribe(ctx(t), "ticker"); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if err := srv.Inst.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the loss to be noticed", func() bool { return !b.Ready() })
	// Retrying, but not connected: messages published now are lost to it.
	if m := b.Metrics(); m.Subscriptions != 0 || m.Connected {
		t.Fatalf("during the outage: %+v, want not connected, with 0 active subscriptions", m)
	}
	if err := b.Ping(ctx(t)); !errors.Is(err, bridge.ErrSubscriberDown) {
		t.Fatalf("Ping during the outage: %v, want ErrSubscriberDown", err)
	}
	// Asked for while down: waits for the new connection, then succeeds.
	subscribed := make(chan error, 1)
	go func() { subscribed <- b.Subscribe(ctx(t), "trade") }()
	time.Sleep(200 * time.Millisecond) // several failed dials
	if err := srv.Inst.Restart(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-subscribed; err != nil {
		t.Fatalf("Subscribe during the outage: %v", err)
	}
	waitFor(t, "readiness", b.Ready)
	pub := newBridge(t, srv, "pub", bridge.Options{DisableSubscription: true, KeyPrefix: "t-" + t.Name() + ":"})
	for _, typ := range []string{"ticker", "trade"} {
		if err := pub.Publish(ctx(t), typ, 1); err != nil {
			t.Fatal(err)
		}
	}
	c.wait(t, 2)
	m := b.Metrics()
	// One broken connection plus at least one refused dial, each counted.
	if m.Reconnects != 1 || m.Errors < 2 || m.Subscriptions != 2 || !m.Connected {
		t.Fatalf("metrics %+v: want 1 reconnect, >= 2 errors, 2 subscriptions", m)
	}
	// Told once each, in order, with the cause of the loss.
	mu.Lock()
	defer mu.Unlock()
	want := []bridge.SubscriberState{bridge.SubscriberLost, bridge.SubscriberReconnected, bridge.SubscriberResubscribed}
	if len(changes) != len(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	for i, ch := range changes {
		if ch.State != want[i] || ch.At.Before(stopped) || (i > 0 && ch.At.Before(changes[i-1].At)) {
			t.Fatalf("change %d: %v at +%v, want %v in order after the stop", i, ch.State, ch.At.Sub(stopped), want[i])
		}
	}
	if changes[0].Err == nil || changes[1].Err != nil {
		t.Fatalf("errors: lost %v, reconnected %v; want the cause on the loss only", changes[0].Err, changes[1].Err)
	}
}

// Payloads larger than the read buffer arrive whole and exact.
func TestLargePayload(t *testing.T) {
	srv := redistest.Start(t)
	c := newCollector()
	b := newBridge(t, srv, "recv", bridge.Options{Handler: c.handle})
	pub := newBridge(t, srv, "pub", bridge.Options{DisableSubscription: true, KeyPrefix: "t-" + t.Name() + ":"})
	if err := b.Subscribe(ctx(t), "orderbook"); err != nil {
		t.Fatal(err)
	}
	big := `"` + strings.Repeat("x", 100<<10) + `"` // over 3 read buffers
	for _, data := range []string{big, `"small"`, big} {
		if _, err := pub.PublishRaw(ctx(t), "orderbook", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	c.wait(t, 3)
	_ = b.Close()
	for i, want := range []string{big, `"small"`, big} {
		if ev := c.evs[i]; ev.Data != want || ev.Seq != uint64(i+1) {
			t.Fatalf("event %d: seq %d, %d bytes of data, want seq %d, %d bytes", i, ev.Seq, len(ev.Data), i+1, len(want))
		}
	}
}

// Batch.Failed names exactly the events a Flush could not publish, and is
// empty after one that succeeded.
func TestBatchFailedSeqs(t *testing.T) {
	srv := redistest.StartOwn(t)
	b := newBridge(t, srv, "pub", bridge.Options{DisableSubscription: true})
	bt := b.NewBatch()
	for range 3 {
		bt.Add("ticker", []byte("1"))
	}
	if failed, err := bt.Flush(ctx(t)); failed != 0 || err != nil || len(bt.Failed()) != 0 {
		t.Fatalf("healthy flush: %d failed, %v, %v", failed, err, bt.Failed())
	}
	if err := srv.Inst.Stop(); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for range 4 {
		want = append(want, bt.Add("ticker", []byte("1")))
	}
	failed, err := bt.Flush(ctx(t))
	got := bt.Failed()
	if failed != 4 || err == nil || len(got) != 4 || got[0] != want[0] || got[3] != want[3] || want[0] != 4 {
		t.Fatalf("flush to a stopped server: %d failed, %v; Failed() = %v, want %v", failed, err, got, want)
	}
}

// A bridge holds two connections to Redis, one each way, whatever it has
// sent: PING, single publishes and batches alike go over its one
// publisher connection (go-redis's separate pipeline pool would add one).
func TestOneConnectionEachWay(t *testing.T) {
	srv := redistest.StartOwn(t)
	b := newBridge(t, srv, "conns-1", bridge.Options{})
	if err := b.Subscribe(ctx(t), bridge.TypeTicker); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx(t), bridge.TypeTicker, map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	bt := b.NewBatch()
	for range 5 {
		bt.Add(bridge.TypeTicker, []byte(`{}`))
	}
	if _, err := bt.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
	list, err := srv.Client(t).ClientList(ctx(t)).Result()
	if err != nil {
		t.Fatal(err)
	}
	pub, sub := strings.Count(list, "name="+bridge.ClientName("conns-1", bridge.RolePublisher)+" "),
		strings.Count(list, "name="+bridge.ClientName("conns-1", bridge.RoleSubscriber)+" ")
	if pub != 1 || sub != 1 {
		t.Errorf("%d publisher and %d subscriber connections, want 1 and 1:\n%s", pub, sub, list)
	}
}
