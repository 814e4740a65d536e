package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The streams transport: what the seed's roadmap calls "guaranteed
// delivery". Each channel is a Redis stream of the same name; a publish is
// an XADD (capped with MAXLEN ~, pipelined like PUBLISH), and each bridge
// reads every stream it subscribes to as a broadcast subscriber, through a
// consumer group of its own (XREADGROUP), acknowledging each entry (XACK)
// after its handler has returned. A subscriber that is away misses
// nothing: the group's position stays in Redis, and the bridge resumes
// from it when it is back — first the entries it was given and had not
// acknowledged (its pending list: delivered again, so a handler may see an
// event twice), then the new ones. What it can still lose is what MAXLEN
// trimmed before its group read it, and what a server restart lost with
// an unsynced AOF tail.
//
// The envelope, its tag, the self-filter and the handlers are the pub/sub
// ones: only the way in and out of Redis differs.

// Transport is how a bridge's events travel through Redis.
type Transport string

// The transports.
const (
	// TransportPubSub is PUBLISH/SUBSCRIBE: fire and forget, as the seed
	// bridge. A subscriber that is away misses what is published meanwhile.
	TransportPubSub Transport = "pubsub"
	// TransportStreams is a stream per channel with a consumer group per
	// bridge: a subscriber that is away gets what it missed when it is
	// back, at the cost of Redis memory (see Options.StreamMaxLen).
	TransportStreams Transport = "streams"
)

// DefaultStreamMaxLen is Options.StreamMaxLen's default: at 10 000 events
// a second, ten seconds of backlog per stream for a reader that is away.
const DefaultStreamMaxLen = 100_000

// streamField is the entry field that holds the envelope.
const streamField = "e"

// streamBlock is how long one XREADGROUP waits for new entries before the
// loop looks again at what it should read; entries that arrive end the
// wait at once, so it adds no latency.
const streamBlock = 200 * time.Millisecond

// streamCount bounds the entries one read returns per stream: a reader
// that is far behind catches up in batches, acknowledging each.
const streamCount = 512

// streams is a bridge's reading side under the streams transport.
type streams struct {
	// client manages groups; conn, one of its connections held by the
	// read loop alone, reads (XREADGROUP, blocking) and acknowledges. The
	// loop's own connection, not the pool's: a connection killed while the
	// loop was between reads must fail its next read, and be seen as an
	// outage, not be replaced by the pool unnoticed.
	client *redis.Client
	conn   *redis.Conn
	group  string
	// wake tells the loop that the streams to read changed.
	wake chan struct{}
	// redelivered counts entries read from the pending list (see
	// Metrics.Redelivered).
	redelivered atomic.Uint64
	// cl is the reading side in a cluster, where client, conn and the
	// loop are not used: a reader per stream.
	cl *clusterStreams
}

// streamsEnabled reports whether the bridge uses the streams transport.
func (b *Bridge) streamsEnabled() bool { return b.opts.Transport == TransportStreams }

// routed reports whether each publish goes to the master of its
// channel's slot: sharded pub/sub, and streams in a cluster (keys).
func (b *Bridge) routed() bool { return b.sh != nil || b.streamsEnabled() && b.opts.Cluster }

// xadd queues one XADD of payload to stream on pipe.
func (b *Bridge) xadd(ctx context.Context, pipe redis.Cmdable, stream string, payload []byte) *redis.StringCmd {
	a := &redis.XAddArgs{Stream: stream, Values: []any{streamField, payload}}
	if n := b.opts.StreamMaxLen; n > 0 {
		a.MaxLen, a.Approx = n, true
	}
	return pipe.XAdd(ctx, a)
}

// connectStreams opens the reading client and starts the read loop.
func (b *Bridge) connectStreams(ctx context.Context) error {
	if b.opts.Cluster {
		// Readers start with the subscriptions, one per stream; Close
		// waits for them itself.
		b.st = &streams{group: b.opts.StreamGroup, cl: &clusterStreams{readers: map[string]context.CancelFunc{}, clients: map[string]*redis.Client{}}}
		b.subConnects.Add(1)
		close(b.recvDone)
		return nil
	}
	ro := *b.redisOpt
	ro.MaxRetries = -1
	ro.ClientName = ClientName(b.opts.InstanceID, RoleSubscriber)
	ro.PoolSize, ro.MinIdleConns = 2, 0
	ro.PipelinePoolSize = -1
	// The blocking read's own deadline is its BLOCK plus the read timeout.
	ro.Dialer = func(ctx context.Context, network, _ string) (net.Conn, error) { return b.dialTo(ctx, network, "") }
	c := redis.NewClient(&ro)
	conn := c.Conn() // its round trip proves the server, as the pool's would
	if err := conn.Ping(ctx).Err(); err != nil {
		_ = conn.Close()
		_ = c.Close()
		return err
	}
	b.st = &streams{client: c, conn: conn, group: b.opts.StreamGroup, wake: make(chan struct{}, 1)}
	b.subConnects.Add(1)
	go b.streamLoop()
	return nil
}

// changeStreams creates the groups of channels (subscribe) or forgets
// them (unsubscribe), then confirms each, as a server confirms SUBSCRIBE.
// A group is created at the stream's end ("$", as a new pub/sub
// subscriber), with the stream if it does not exist yet; one that exists
// already is kept, with its position: a bridge restarted with the same
// group resumes where the old one stopped. An unsubscription leaves the
// group in Redis, so that subscribing again resumes it too.
func (b *Bridge) changeStreams(ctx context.Context, subscribe bool, channels []string) {
	for _, ch := range channels {
		if subscribe {
			if err := b.createGroup(ctx, ch, "$"); err != nil {
				b.errs.Add(1)
				continue // unconfirmed: the caller's wait ends with its ctx
			}
		}
		b.confirm(subscribe, ch)
		switch {
		case b.st.cl != nil && subscribe:
			b.startReader(ch)
		case b.st.cl != nil:
			b.stopReader(ch)
		}
	}
	if b.st.cl != nil {
		return
	}
	select {
	case b.st.wake <- struct{}{}:
	default:
	}
}

// createGroup creates the bridge's group on stream at id, unless it exists.
func (b *Bridge) createGroup(ctx context.Context, stream, id string) error {
	if b.st.cl != nil {
		return b.createGroupRouted(ctx, stream, id)
	}
	return existsOK(b.st.client.XGroupCreateMkStream(ctx, stream, b.st.group, id).Err())
}

// existsOK is err, but nil for BUSYGROUP: the group exists already, and
// keeps its position.
func existsOK(err error) error {
	if err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return nil
	}
	return err
}

// streamLoop reads every subscribed stream through the bridge's group and
// hands each entry to dispatch, on this one goroutine, in order with
// OnSubscriberChange: the acknowledgements of one read go out with the
// next read, in one round trip, after the handlers have run.
func (b *Bridge) streamLoop() {
	defer close(b.recvDone)
	ev := new(Event)
	acks := map[string][]string{}
	// At the start, and after a reconnection, the pending list comes
	// first: entries given to this consumer (by this bridge, or by one
	// before it with the same group that stopped) and never acknowledged.
	pending := true
	for !b.isClosing() {
		b.mu.Lock()
		keys := make([]string, 0, len(b.active))
		for ch := range b.active {
			keys = append(keys, ch)
		}
		b.mu.Unlock()
		slices.Sort(keys)
		if len(keys) == 0 {
			select {
			case <-b.st.wake:
			case <-b.closing:
			}
			continue
		}
		from := ">"
		if pending {
			from = "0"
		}
		args := &redis.XReadGroupArgs{Group: b.st.group, Consumer: b.opts.InstanceID, Count: streamCount, Block: streamBlock}
		args.Streams = append(args.Streams, keys...)
		for range keys {
			args.Streams = append(args.Streams, from)
		}
		if pending {
			args.Block = -1 // the pending list is there or not: no wait
		}
		ctx := b.dialCtx
		pipe := b.st.conn.Pipeline()
		for s, ids := range acks {
			if len(ids) > 0 {
				pipe.XAck(ctx, s, b.st.group, ids...)
			}
		}
		read := pipe.XReadGroup(ctx, args)
		_, err := pipe.Exec(ctx)
		if err == nil || errors.Is(err, redis.Nil) {
			clear(acks)
		}
		if errors.Is(err, redis.Nil) {
			pending = false // nothing pending, nothing new
			continue
		}
		if err != nil {
			if b.isClosing() {
				return
			}
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				// The stream or the group was deleted under the bridge (a
				// cleanup, a server restarted without persistence):
				// create it again, from the end.
				for _, k := range keys {
					_ = b.createGroup(ctx, k, "$")
				}
				continue
			}
			if !b.reconnectStreams(err, keys) {
				return
			}
			pending = true
			continue
		}
		got := b.deliver(read.Val(), pending, ev, func(stream, id string) { acks[stream] = append(acks[stream], id) })
		if pending && got == 0 {
			pending = false // the pending list is done: on to new entries
		}
	}
}

// deliver hands each entry of a read to dispatch, and ack its stream and
// ID to acknowledge with the next read; an entry read from the pending
// list counts as redelivered. It returns how many entries the read held.
func (b *Bridge) deliver(read []redis.XStream, pending bool, ev *Event, ack func(stream, id string)) int {
	now := time.Now().UnixNano()
	got := 0
	for _, s := range read {
		for _, m := range s.Messages {
			got++
			ack(s.Stream, m.ID)
			text, ok := m.Values[streamField].(string)
			if !ok {
				// An entry of the pending list trimmed since it was read
				// leaves its ID with no fields; anything else is not one
				// of ours.
				if len(m.Values) > 0 {
					b.malformed.Add(1)
				}
				continue
			}
			if pending {
				b.st.redelivered.Add(1)
			}
			b.dispatchText(s.Stream, text, ev, now)
		}
	}
	return got
}

// reconnectStreams waits for the server again after the read failed with
// cause: it tells the subscription lost, retries with the backoff of
// Options.Reconnect, makes sure each group exists again (a server that
// lost its data lost them), and tells it recovered. Unlike pub/sub,
// nothing published meanwhile is lost: the group kept its position. It
// reports false when the bridge is closing or out of retries.
func (b *Bridge) reconnectStreams(cause error, keys []string) bool {
	b.errs.Add(1)
	b.mu.Lock()
	b.down = true
	b.mu.Unlock()
	if errors.Is(cause, io.EOF) {
		cause = ErrClosedByServer
	}
	b.tell(SubscriberLost, cause)
	_ = b.st.conn.Close()
	if !b.redial(func(ctx context.Context) error {
		conn := b.st.client.Conn()
		if err := conn.Ping(ctx).Err(); err != nil {
			_ = conn.Close()
			return err
		}
		for _, k := range keys {
			if err := b.createGroup(ctx, k, "0"); err != nil {
				_ = conn.Close() // or the next attempt waits for its pool slot
				return err
			}
		}
		b.st.conn = conn // the loop's alone: only this goroutine touches it
		return nil
	}) {
		return false
	}
	b.mu.Lock()
	b.down = false
	b.mu.Unlock()
	b.tell(SubscriberReconnected, nil)
	b.tell(SubscriberResubscribed, nil)
	return true
}

// closeStreams closes the reading client, which interrupts a blocking read.
func (b *Bridge) closeStreams() error {
	if b.st == nil {
		return nil
	}
	if b.st.cl != nil {
		return b.closeClusterStreams()
	}
	// Closing the client closes every connection of its pool, the loop's
	// too, which ends a blocking read at once.
	return b.st.client.Close()
}

// pingStreams is Ping's round trip on the reading client.
func (b *Bridge) pingStreams(ctx context.Context) error {
	if b.st.cl != nil {
		return b.pingClusterStreams(ctx)
	}
	if err := b.st.client.Ping(ctx).Err(); err != nil {
		return b.closedOr(fmt.Errorf("bridge: ping stream reader: %w", err))
	}
	return nil
}
