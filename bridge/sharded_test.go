package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
)

// changes records a bridge's subscriber changes.
type changes struct {
	mu  sync.Mutex
	got []bridge.SubscriberChange
	ch  chan bridge.SubscriberState
}

func newChanges() *changes { return &changes{ch: make(chan bridge.SubscriberState, 100)} }

func (c *changes) record(sc bridge.SubscriberChange) {
	c.mu.Lock()
	c.got = append(c.got, sc)
	c.mu.Unlock()
	c.ch <- sc.State
}

// await waits for state, failing after limit.
func (c *changes) await(t *testing.T, state bridge.SubscriberState, limit time.Duration) {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case s := <-c.ch:
			if s == state {
				return
			}
		case <-deadline:
			t.Fatalf("no %v within %v; changes so far: %v", state, limit, c.states())
		}
	}
}

func (c *changes) states() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, g := range c.got {
		s := g.State.String()
		if g.Err != nil {
			s += " (" + g.Err.Error() + ")"
		}
		out = append(out, s)
	}
	return out
}

// Slot is the server's CLUSTER KEYSLOT, hash tags included.
func TestSlotMatchesServer(t *testing.T) {
	inst := redistest.Cluster(t, 1, -1)
	c := redis.NewClient(&redis.Options{Addr: inst.Nodes[0]})
	defer c.Close()
	ctx := context.Background()
	var names []string
	for i := range 2000 {
		names = append(names, fmt.Sprintf("ws:%s:%d", bridge.EventTypes[i%8], i))
	}
	names = append(names, "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "", "{", "}{a}")
	pipe := c.Pipeline()
	cmds := make([]*redis.IntCmd, len(names))
	for i, n := range names {
		cmds[i] = pipe.ClusterKeySlot(ctx, n)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		if got, want := bridge.Slot(n), int(cmds[i].Val()); got != want {
			t.Errorf("Slot(%q) = %d, server says %d", n, got, want)
		}
	}
}

// shardedBridge makes and connects a sharded bridge of the cluster at url,
// subscribed to every type.
func shardedBridge(t *testing.T, url, id string, h bridge.Handler, ch *changes) *bridge.Bridge {
	t.Helper()
	o := bridge.Options{URL: url, Cluster: true, PubSub: bridge.PubSubSharded, ChannelsPerType: 16,
		InstanceID: id, Handler: h, Reconnect: bridge.ReconnectOptions{MaxRetries: -1, BaseDelay: 50 * time.Millisecond, MaxDelay: 500 * time.Millisecond}}
	if ch != nil {
		o.OnSubscriberChange = ch.record
	}
	b, err := bridge.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.SubscribeAll(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// seqSet collects the (source, seq) pairs a handler saw.
type seqSet struct {
	mu   sync.Mutex
	seen map[string]map[uint64]int
	n    int
}

func newSeqSet() *seqSet { return &seqSet{seen: map[string]map[uint64]int{}} }

func (s *seqSet) handle(ev *bridge.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[ev.Source] == nil {
		s.seen[ev.Source] = map[uint64]int{}
	}
	s.seen[ev.Source][ev.Seq]++
	s.n++
}

func (s *seqSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// waitCount waits until the set holds n messages, failing after limit.
func (s *seqSet) waitCount(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for s.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d messages, want %d", s.count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Sharded pub/sub over a 3-master cluster with 16 channels per type: every
// message reaches every other bridge exactly once, each bridge holds one
// subscriber connection per master, and the masters saw SPUBLISH only.
func TestShardedMesh(t *testing.T) {
	inst := redistest.Cluster(t, 3, -1)
	const n, perBridge = 3, 400
	sets := make([]*seqSet, n)
	bs := make([]*bridge.Bridge, n)
	for i := range n {
		sets[i] = newSeqSet()
		bs[i] = shardedBridge(t, inst.URL, fmt.Sprintf("mesh-%d", i), sets[i].handle, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, b := range bs {
		bt := b.NewBatch()
		for k := range perBridge {
			bt.Add(bridge.EventTypes[k%len(bridge.EventTypes)], []byte(`{"k":1}`))
			if bt.Len() == 50 {
				if failed, err := bt.Flush(ctx); failed != 0 || err != nil {
					t.Fatalf("flush: %d failed: %v", failed, err)
				}
			}
		}
	}
	for i, s := range sets {
		s.waitCount(t, (n-1)*perBridge, 10*time.Second)
		time.Sleep(50 * time.Millisecond) // room for a duplicate to show
		s.mu.Lock()
		for j := range n {
			src := fmt.Sprintf("mesh-%d", j)
			got := s.seen[src]
			if j == i {
				if len(got) != 0 {
					t.Errorf("bridge %d got %d of its own messages", i, len(got))
				}
				continue
			}
			if len(got) != perBridge {
				t.Errorf("bridge %d got %d distinct messages from %s, want %d", i, len(got), src, perBridge)
			}
			for seq, times := range got {
				if times != 1 || seq < 1 || seq > perBridge {
					t.Errorf("bridge %d: %s seq %d received %d times", i, src, seq, times)
				}
			}
		}
		s.mu.Unlock()
	}
	for _, addr := range inst.Nodes {
		c := redis.NewClient(&redis.Options{Addr: addr})
		list, err := c.ClientList(ctx).Result()
		info, _ := c.Info(ctx, "commandstats").Result()
		_ = c.Close()
		if err != nil {
			t.Fatal(err)
		}
		subs := strings.Count(list, "/sub ")
		if subs != n {
			t.Errorf("node %s holds %d subscriber connections, want one per bridge (%d)", addr, subs, n)
		}
		if strings.Contains(info, "cmdstat_publish:") {
			t.Errorf("node %s ran PUBLISH in sharded mode", addr)
		}
		if !strings.Contains(info, "cmdstat_spublish:") {
			t.Errorf("node %s ran no SPUBLISH: the channels did not spread", addr)
		}
	}
}

// ownerOf returns the address of the master serving slot.
func ownerOf(t *testing.T, addr string, slot int) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	shards, err := c.ClusterShards(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shards {
		for _, r := range s.Slots {
			if int64(slot) < r.Start || int64(slot) > r.End {
				continue
			}
			for _, n := range s.Nodes {
				if n.Role == "master" {
					return fmt.Sprintf("%s:%d", n.IP, n.Port)
				}
			}
		}
	}
	t.Fatalf("no master serves slot %d", slot)
	return ""
}

// A slot migrated under a sharded subscriber: the server pushes SUNSUBSCRIBE,
// the bridge says it lost the channel, subscribes on the new owner, and
// receives what is published there: the go-redis #3099/#3806 class of bug,
// asserted absent.
func TestShardedSlotMigration(t *testing.T) {
	inst := redistest.Cluster(t, 2, -1)
	ch := newChanges()
	got := newSeqSet()
	sub := shardedBridge(t, inst.URL, "sub", got.handle, ch)
	pub := shardedBridge(t, inst.URL, "pub", nil, nil)
	channel := sub.Channels(bridge.TypeTicker)[0]
	slot := bridge.Slot(channel)
	from := ownerOf(t, inst.Nodes[0], slot)
	to := inst.Nodes[0]
	if to == from {
		to = inst.Nodes[1]
	}
	ctx := context.Background()
	// One message before, on the old owner.
	if _, err := pub.PublishRaw(ctx, bridge.TypeTicker, []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	got.waitCount(t, 1, 5*time.Second)
	src, dst := redis.NewClient(&redis.Options{Addr: from}), redis.NewClient(&redis.Options{Addr: to})
	defer src.Close()
	defer dst.Close()
	if err := harness.MigrateSlot(ctx, slot, src, dst); err != nil {
		t.Fatal(err)
	}
	ch.await(t, bridge.SubscriberLost, 5*time.Second)
	ch.await(t, bridge.SubscriberResubscribed, 5*time.Second)
	if c := ch.states(); !strings.Contains(c[0], bridge.ErrSlotMoved.Error()) {
		t.Errorf("lost for %q, want the slot moved", c[0])
	}
	if m := sub.Metrics(); !m.Connected || m.Subscriptions != len(bridge.EventTypes) {
		t.Errorf("after the migration: connected %v, %d subscriptions", m.Connected, m.Subscriptions)
	}
	// Sixteen publishes cycle through every ticker channel, the moved one
	// included: all arrive, from the new owner.
	for range 16 {
		if _, err := pub.PublishRaw(ctx, bridge.TypeTicker, []byte(`2`)); err != nil {
			t.Fatal(err)
		}
	}
	got.waitCount(t, 17, 5*time.Second)
	if owner := ownerOf(t, inst.Nodes[0], slot); owner != to {
		t.Fatalf("slot %d is served by %s, want %s", slot, owner, to)
	}
	c := redis.NewClient(&redis.Options{Addr: to})
	defer c.Close()
	n, err := c.Do(ctx, "PUBSUB", "SHARDNUMSUB", channel).Slice()
	if err != nil || len(n) != 2 || n[1] != int64(2) {
		t.Errorf("PUBSUB SHARDNUMSUB %s on the new owner: %v %v, want 2 subscribers (both bridges)", channel, n, err)
	}
	if err := sub.Ping(ctx); err != nil {
		t.Errorf("ping after the migration: %v", err)
	}
}

// A master killed under sharded subscribers: its replica takes over after
// the node timeout, and the bridge resubscribes there and receives again.
func TestShardedMasterKill(t *testing.T) {
	inst := redistest.Cluster(t, 3, 1)
	ch := newChanges()
	got := newSeqSet()
	sub := shardedBridge(t, inst.URL, "sub", got.handle, ch)
	pub := shardedBridge(t, inst.URL, "pub", nil, nil)
	victim := ownerOf(t, inst.Nodes[0], bridge.Slot(sub.Channels(bridge.TypeTicker)[0]))
	c := redis.NewClient(&redis.Options{Addr: victim})
	_ = c.Do(context.Background(), "SHUTDOWN", "NOSAVE").Err()
	_ = c.Close()
	ch.await(t, bridge.SubscriberLost, 5*time.Second)
	ch.await(t, bridge.SubscriberResubscribed, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The publisher finds the new master too (its first publishes may
	// fail while its map is stale: they are counted, never retried).
	sent := 0
	for k := 0; sent < 32 && k < 200; k++ {
		if _, err := pub.PublishRaw(ctx, bridge.TypeTicker, []byte(`3`)); err == nil {
			sent++
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if sent < 32 {
		t.Fatalf("only %d publishes went through after the failover", sent)
	}
	got.waitCount(t, sent, 5*time.Second)
	if m := pub.Metrics(); m.Published != uint64(sent) {
		t.Errorf("publisher counted %d published, %d went through", m.Published, sent)
	}
}

// Classic pub/sub in a cluster: a bridge whose node dies connects to
// another node and receives again.
func TestClassicClusterNodeKilled(t *testing.T) {
	inst := redistest.Cluster(t, 3, -1)
	victim := inst.Nodes[1]
	ch := newChanges()
	got := newSeqSet()
	o := bridge.Options{Addr: victim, Cluster: true, InstanceID: "sub", Handler: got.handle, OnSubscriberChange: ch.record,
		Reconnect: bridge.ReconnectOptions{MaxRetries: 20, BaseDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond}}
	sub, err := bridge.New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sub.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sub.SubscribeAll(ctx); err != nil {
		t.Fatal(err)
	}
	pub, err := bridge.New(bridge.Options{Addr: inst.Nodes[0], Cluster: true, InstanceID: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	k := redis.NewClient(&redis.Options{Addr: victim})
	_ = k.Do(ctx, "SHUTDOWN", "NOSAVE").Err()
	_ = k.Close()
	ch.await(t, bridge.SubscriberLost, 5*time.Second)
	ch.await(t, bridge.SubscriberResubscribed, 10*time.Second)
	for range 10 {
		if _, err := pub.PublishRaw(ctx, bridge.TypeTrade, []byte(`4`)); err != nil {
			t.Fatal(err)
		}
	}
	got.waitCount(t, 10, 5*time.Second)
	if err := sub.Ping(ctx); err != nil {
		t.Errorf("ping after the node died: %v", err)
	}
}

// Sentinel: a bridge given the sentinels follows the master through a
// SENTINEL FAILOVER, and its subscriber ends on the new master.
func TestSentinelFollowsFailover(t *testing.T) {
	inst := redistest.Sentinel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := bridge.SentinelScheme + "://" + strings.Join(inst.Sentinels, ",") + "/" + inst.MasterName
	ch := newChanges()
	got := newSeqSet()
	reconnect := bridge.ReconnectOptions{MaxRetries: -1, BaseDelay: 50 * time.Millisecond, MaxDelay: 500 * time.Millisecond}
	sub, err := bridge.New(bridge.Options{URL: url, InstanceID: "sub", Handler: got.handle, OnSubscriberChange: ch.record, Reconnect: reconnect})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub, err := bridge.New(bridge.Options{URL: url, InstanceID: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, b := range []*bridge.Bridge{sub, pub} {
		if err := b.Connect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.SubscribeAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.PublishRaw(ctx, bridge.TypeTicker, []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	got.waitCount(t, 1, 5*time.Second)
	old := inst.Nodes[0]
	s := redis.NewSentinelClient(&redis.Options{Addr: inst.Sentinels[0]})
	defer s.Close()
	if err := s.Failover(ctx, inst.MasterName).Err(); err != nil {
		t.Fatal(err)
	}
	// The sentinels close the old master's clients when they demote it.
	ch.await(t, bridge.SubscriberResubscribed, 30*time.Second)
	now, err := s.GetMasterAddrByName(ctx, inst.MasterName).Result()
	if err != nil || len(now) != 2 || now[0]+":"+now[1] == old {
		t.Fatalf("master after the failover: %v %v (was %s)", now, err, old)
	}
	sent := 0
	for k := 0; sent < 10 && k < 300; k++ {
		if _, err := pub.PublishRaw(ctx, bridge.TypeTicker, []byte(`2`)); err == nil {
			sent++
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	got.waitCount(t, 1+sent, 5*time.Second)
	nc := redis.NewClient(&redis.Options{Addr: now[0] + ":" + now[1]})
	defer nc.Close()
	list, err := nc.ClientList(ctx).Result()
	if err != nil || !strings.Contains(list, "name=sub/sub ") {
		t.Errorf("the subscriber is not on the new master %v: %v", now, err)
	}
}

// Bad topology options are refused with a reason.
func TestTopologyOptionsRefused(t *testing.T) {
	for _, o := range []bridge.Options{
		{PubSub: "fancy"},
		{Sentinel: bridge.SentinelOptions{MasterName: "m"}},
		{Cluster: true, Sentinel: bridge.SentinelOptions{MasterName: "m", Addrs: []string{"127.0.0.1:1"}}},
		{URL: "redis+sentinel://127.0.0.1:26379"},
		{URL: "redis+sentinel://127.0.0.1/m"},
	} {
		if _, err := bridge.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		} else if !strings.HasPrefix(err.Error(), "bridge: ") {
			t.Errorf("error without prefix: %v", err)
		}
	}
	_, err := bridge.New(bridge.Options{URL: "redis+sentinel://:secret@127.0.0.1:1/m/x"})
	if err == nil || strings.Contains(err.Error(), "secret") || !errors.Is(err, bridge.ErrInvalidURL) {
		t.Errorf("bad db: %v", err)
	}
}
