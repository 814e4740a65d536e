package bridge_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/redistest"
)

// seqsOf is the sequence numbers of the events from source, in order.
func seqsOf(evs []bridge.Event, source string) []uint64 {
	var out []uint64
	for _, ev := range evs {
		if ev.Source == source {
			out = append(out, ev.Seq)
		}
	}
	return out
}

// Streams deliver every event once, in order, and drop the bridge's own;
// a reader killed and dialled again, and a bridge started again with the
// same group, get what was published while they were away: late, not
// lost. What they were handed and had not acknowledged comes again, and
// is counted as redelivered.
func TestStreamsDeliverAndResume(t *testing.T) {
	srv := redistest.StartOwn(t)
	prefix := "t-streams:"
	opts := func(h bridge.Handler) bridge.Options {
		return bridge.Options{Transport: bridge.TransportStreams, KeyPrefix: prefix, Handler: h,
			Reconnect: bridge.ReconnectOptions{BaseDelay: 10 * time.Millisecond}}
	}
	c := newCollector()
	recv := newBridge(t, srv, "recv", opts(c.handle))
	pub := newBridge(t, srv, "pub", opts(nil))
	for _, b := range []*bridge.Bridge{recv, pub} {
		if err := b.Subscribe(ctx(t), "ticker"); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(n int) {
		t.Helper()
		bt := pub.NewBatch()
		for range n {
			bt.Add("ticker", []byte(`{"p":1}`))
		}
		if failed, err := bt.Flush(ctx(t)); failed != 0 || err != nil {
			t.Fatalf("flush: %d failed: %v", failed, err)
		}
	}
	publish(100)
	c.wait(t, 100)
	want := func(lo, hi uint64) []uint64 {
		var s []uint64
		for q := lo; q <= hi; q++ {
			s = append(s, q)
		}
		return s
	}
	if got := seqsOf(c.events(), "pub"); !slices.Equal(got, want(1, 100)) {
		t.Fatalf("got %v", got)
	}
	waitFor(t, "the publisher's own 100 filtered", func() bool { return pub.Metrics().SelfFiltered == 100 })

	// The reader's connection killed: the bridge reconnects, and what was
	// published meanwhile arrives.
	rc := srv.Client(t)
	if n := killReader(t, rc, "recv"); n < 1 {
		t.Fatal("no stream reader connection to kill")
	}
	publish(50)
	c.wait(t, 50)
	waitFor(t, "the reconnection", func() bool { return recv.Metrics().Reconnects == 1 })

	// Closed, then started again with the same group while 30 more are
	// published: the new bridge gets them.
	if err := recv.Close(); err != nil {
		t.Fatal(err)
	}
	publish(30)
	c2 := newCollector()
	again := newBridge(t, srv, "recv", opts(c2.handle))
	if err := again.Subscribe(ctx(t), "ticker"); err != nil {
		t.Fatal(err)
	}
	c2.wait(t, 30)
	// Every event once at least: the entries read again from a pending
	// list (handed to the consumer before and never acknowledged) are
	// all the duplicates there are. Not all of them are duplicates: an
	// entry handed to a connection as it died never arrived the first time.
	var all []uint64
	waitFor(t, "every event", func() bool {
		all = append(seqsOf(c.events(), "pub"), seqsOf(c2.events(), "pub")...)
		slices.Sort(all)
		return slices.Equal(slices.Compact(slices.Clone(all)), want(1, 180))
	})
	dups := len(all) - 180
	if redelivered := int(recv.Metrics().Redelivered + again.Metrics().Redelivered); dups > redelivered {
		t.Fatalf("%d events handled twice, %d read again from a pending list", dups, redelivered)
	}
}

// killReader kills every connection of a bridge's stream reader (by the
// client name it sets) and returns how many it killed.
func killReader(t *testing.T, rc *redis.Client, id string) int {
	t.Helper()
	list, err := rc.ClientList(ctx(t)).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		var cid, name string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				cid = v
			} else if v, ok := strings.CutPrefix(f, "name="); ok {
				name = v
			}
		}
		if name == bridge.ClientName(id, bridge.RoleSubscriber) {
			if err := rc.Do(ctx(t), "CLIENT", "KILL", "ID", cid).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	return killed
}
