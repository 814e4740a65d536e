package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/redistest"
)

// A tagged bridge's messages verify with its key and with no other, and
// a changed field breaks the tag.
func TestTagsVerifyOnlyWithTheKey(t *testing.T) {
	srv := redistest.Start(t)
	key, err := bridge.NewTagKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := bridge.NewTagKey()
	prefix := "t-" + t.Name() + ":"
	c := newCollector()
	sub := newBridge(t, srv, "sub", bridge.Options{Handler: c.handle, KeyPrefix: prefix})
	if err := sub.Subscribe(ctx(t), "ticker"); err != nil {
		t.Fatal(err)
	}
	pub := newBridge(t, srv, "pub", bridge.Options{DisableSubscription: true, KeyPrefix: prefix, LoadTest: bridge.LoadTestOptions{TagKey: key}})
	if err := pub.Publish(ctx(t), "ticker", map[string]int{"p": 1}); err != nil {
		t.Fatal(err)
	}
	bt := pub.NewBatch()
	bt.AddAt("ticker", []byte(`{"p":2}`), 1700000000000000000)
	if _, err := bt.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	c.wait(t, 2)
	for i, ev := range c.events() {
		if ev.Tag == 0 || !key.Verify(&ev) {
			t.Fatalf("event %d: tag %x does not verify with the publisher's key", i, ev.Tag)
		}
		if other.Verify(&ev) {
			t.Fatalf("event %d verifies with another key", i)
		}
		forged := ev
		forged.Seq++
		if key.Verify(&forged) {
			t.Fatalf("event %d: its tag still verifies with seq changed", i)
		}
		forged = ev
		forged.SentNs--
		if key.Verify(&forged) {
			t.Fatalf("event %d: its tag still verifies with sent_ns changed", i)
		}
		forged = ev
		forged.Source = "pub2"
		if key.Verify(&forged) {
			t.Fatalf("event %d: its tag still verifies with source changed", i)
		}
	}
}

// An invalid event type in a batch takes no sequence number, puts nothing
// on the wire, and fails the Flush with the reason.
func TestBatchRejectsInvalidEventType(t *testing.T) {
	srv := redistest.Start(t)
	prefix := "t-" + t.Name() + ":"
	c := newCollector()
	sub := newBridge(t, srv, "sub", bridge.Options{Handler: c.handle, KeyPrefix: prefix})
	if err := sub.Subscribe(ctx(t), "ticker"); err != nil {
		t.Fatal(err)
	}
	pub := newBridge(t, srv, "pub", bridge.Options{DisableSubscription: true, KeyPrefix: prefix})
	bt := pub.NewBatch()
	if seq := bt.Add(`bad"type`, []byte("1")); seq != 0 {
		t.Fatalf("Add of an invalid type returned seq %d, want 0", seq)
	}
	bt.Add("ticker", []byte("1"))
	failed, err := bt.Flush(ctx(t))
	if failed != 1 || err == nil || !strings.Contains(err.Error(), `invalid event type "bad\"type"`) {
		t.Fatalf("Flush: %d failed, %v; want the ticker failed with the invalid type named", failed, err)
	}
	// The batch is usable again, and numbering went on from 1.
	if seq := bt.Add("ticker", []byte("2")); seq != 2 {
		t.Fatalf("next seq %d, want 2", seq)
	}
	if failed, err := bt.Flush(ctx(t)); failed != 0 || err != nil {
		t.Fatalf("second Flush: %d failed, %v", failed, err)
	}
	c.wait(t, 1)
	if m := sub.Metrics(); m.Malformed != 0 || m.Received != 1 {
		t.Fatalf("subscriber: %+v, want exactly the one valid event", m)
	}
}

// After Close every method says ErrClosed and counts nothing.
func TestMethodsAfterCloseReturnErrClosed(t *testing.T) {
	srv := redistest.Start(t)
	b := newBridge(t, srv, "closed", bridge.Options{})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx(t), "ticker", 1); !errors.Is(err, bridge.ErrClosed) {
		t.Errorf("Publish: %v", err)
	}
	if err := b.Subscribe(ctx(t), "ticker"); !errors.Is(err, bridge.ErrClosed) {
		t.Errorf("Subscribe: %v", err)
	}
	if err := b.Ping(ctx(t)); !errors.Is(err, bridge.ErrClosed) {
		t.Errorf("Ping: %v", err)
	}
	bt := b.NewBatch()
	bt.Add("ticker", []byte("1"))
	if _, err := bt.Flush(ctx(t)); !errors.Is(err, bridge.ErrClosed) {
		t.Errorf("Flush: %v", err)
	}
	if m := b.Metrics(); m.Errors != 1 || m.PublishErrors != 1 || m.PublishUnknown != 0 || m.Connected {
		// Flush counts its event as failed; Publish fails before taking a
		// sequence number and counts nothing.
		t.Errorf("metrics after Close: %+v", m)
	}
}

// A frozen server keeps its sockets open: only a round trip tells. Ping
// fails within its ctx, a Flush whose ctx ends mid-round-trip returns at
// once with every event's outcome unknown, and one whose ctx had ended
// before sends nothing and knows it.
func TestFrozenServerPingAndInterruptedFlush(t *testing.T) {
	srv := redistest.StartOwn(t)
	prefix := "t-" + t.Name() + ":"
	b := newBridge(t, srv, "b", bridge.Options{KeyPrefix: prefix})
	if err := b.Subscribe(ctx(t), "ticker"); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping of a healthy server: %v", err)
	}
	if err := srv.Inst.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Inst.Thaw() }()

	pctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	start := time.Now()
	err := b.Ping(pctx)
	cancel()
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("Ping of a frozen server: %v after %v, want an error within the 200ms ctx", err, time.Since(start))
	}

	bt := b.NewBatch()
	for range 5 {
		bt.Add("ticker", []byte("1"))
	}
	fctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel) // a cancel, no deadline: go-redis alone would wait 3s
	start = time.Now()
	failed, err := bt.Flush(fctx)
	took := time.Since(start)
	if failed != 5 || bt.Unknown() != 5 || !errors.Is(err, context.Canceled) && !strings.Contains(fmt.Sprint(err), "closed") {
		t.Fatalf("interrupted Flush: %d failed, %d unknown, %v; want 5 and 5", failed, bt.Unknown(), err)
	}
	if took > time.Second {
		t.Fatalf("interrupted Flush took %v, want about 100ms", took)
	}

	bt.Add("ticker", []byte("1"))
	failed, err = bt.Flush(fctx) // already cancelled
	if failed != 1 || bt.Unknown() != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush with an ended ctx: %d failed, %d unknown, %v; want 1 known failure", failed, bt.Unknown(), err)
	}
	m := b.Metrics()
	if m.PublishUnknown != 5 || m.PublishErrors != 1 || m.Published != 0 || m.Errors != 6 {
		t.Fatalf("metrics: %+v, want 5 unknown, 1 failed", m)
	}
	if err := srv.Inst.Thaw(); err != nil {
		t.Fatal(err)
	}
	// Once the server is back, the next publish dials anew and succeeds.
	bt.Add("ticker", []byte("1"))
	if failed, err := bt.Flush(ctx(t)); failed != 0 || err != nil {
		t.Fatalf("Flush after thaw: %d failed, %v", failed, err)
	}
}

// A server killed for good: the subscriber is not connected, and Ping says
// why.
func TestKilledServerIsNotConnected(t *testing.T) {
	srv := redistest.StartOwn(t)
	b := newBridge(t, srv, "b", bridge.Options{KeyPrefix: "t-" + t.Name() + ":"})
	if err := b.Subscribe(ctx(t), "ticker"); err != nil {
		t.Fatal(err)
	}
	redistest.Kill(t, srv)
	waitFor(t, "the loss to be noticed", func() bool { return !b.Metrics().Connected })
	if err := b.Ping(ctx(t)); !errors.Is(err, bridge.ErrSubscriberDown) {
		t.Fatalf("Ping: %v, want ErrSubscriberDown", err)
	}
	// The first publish may go out on the pooled connection before the
	// pool has seen it die: written, reset, outcome unknown (seen under a
	// loaded CI). Either way it is no success, and the next one, on a
	// fresh dial, is a known failure.
	err := b.Publish(ctx(t), "ticker", 1)
	if err == nil {
		t.Fatal("Publish to a dead server succeeded")
	}
	if errors.Is(err, bridge.ErrOutcomeUnknown) {
		err = b.Publish(ctx(t), "ticker", 2)
	}
	if err == nil || errors.Is(err, bridge.ErrOutcomeUnknown) {
		t.Fatalf("Publish to a dead server: %v, want a known failure (connection refused)", err)
	}
}

// A server at maxclients answers the connection with an error: Connect
// says so, not "TLS mismatch".
func TestMaxClientsIsNamed(t *testing.T) {
	srv := redistest.StartOwn(t, "--maxclients", "1")
	hold := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer hold.Close()
	if err := hold.Ping(ctx(t)).Err(); err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(bridge.Options{Addr: srv.Addr, InstanceID: "late"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Connect(ctx(t))
	if !errors.Is(err, bridge.ErrMaxClients) || !strings.Contains(err.Error(), "max number of clients reached") {
		t.Fatalf("Connect to a full server: %v, want ErrMaxClients", err)
	}
}

// The client-name contract the load test's server probe relies on.
func TestClientNameRoundTrip(t *testing.T) {
	for _, role := range []bridge.Role{bridge.RolePublisher, bridge.RoleSubscriber} {
		id, r, ok := bridge.ParseClientName(bridge.ClientName("redisload-ab12-3", role))
		if !ok || id != "redisload-ab12-3" || r != role {
			t.Errorf("%s: %q %q %v", role, id, r, ok)
		}
	}
	for _, name := range []string{"", "x", "/sub", "id/other", "id/", "id/subx"} {
		if _, _, ok := bridge.ParseClientName(name); ok {
			t.Errorf("ParseClientName(%q) accepted it", name)
		}
	}
}

// ChannelsPerType spreads a type over "<prefix><type>:<k>": a subscriber
// takes every channel, publishes go to each in turn, and the type counts
// as one subscription.
func TestChannelsPerType(t *testing.T) {
	srv := redistest.Start(t)
	prefix := "t-" + t.Name() + ":"
	c := newCollector()
	sub := newBridge(t, srv, "sub", bridge.Options{Handler: c.handle, KeyPrefix: prefix, ChannelsPerType: 4})
	if err := sub.Subscribe(ctx(t), "ticker", "trade"); err != nil {
		t.Fatal(err)
	}
	if got := sub.Channels("ticker"); len(got) != 4 || got[3] != prefix+"ticker:3" {
		t.Fatalf("channels %v", got)
	}
	if m := sub.Metrics(); m.Subscriptions != 2 || strings.Join(m.ActiveSubscriptions, ",") != "ticker,trade" {
		t.Fatalf("metrics %+v", m)
	}
	pub := newBridge(t, srv, "pub", bridge.Options{DisableSubscription: true, KeyPrefix: prefix, ChannelsPerType: 4})
	for range 8 {
		if err := pub.Publish(ctx(t), "ticker", 1); err != nil {
			t.Fatal(err)
		}
	}
	c.wait(t, 8)
	per := map[string]int{}
	for _, ev := range c.events() {
		per[ev.Channel]++
	}
	for k := range 4 {
		if ch := prefix + "ticker:" + strconv.Itoa(k); per[ch] != 2 {
			t.Errorf("%s got %d of 8, want 2: %v", ch, per[ch], per)
		}
	}
	if _, err := bridge.New(bridge.Options{ChannelsPerType: bridge.MaxChannelsPerType + 1}); err == nil {
		t.Error("too many channels per type accepted")
	}
}
