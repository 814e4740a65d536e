// Package bridge is the Redis pub/sub event bridge: it fans market-data events
// out to every application instance on one Redis, and is wire-compatible with
// the TypeScript RedisEventBridge it replaces.
//
// A Bridge holds two connections, a publisher and a subscriber, and an
// instance ID that it writes into every message; it drops the messages that
// carry its own ID when Redis echoes them back, and counts them.
//
// The receive path is the hot path of any deployment (each message is read
// once per receiving instance), so it reads the envelope by scanning rather
// than decoding, reuses one Event, and reads the clock once per message.
package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// Handler processes one received event. See Event for what it may keep.
//
// It takes a pointer to an Event the bridge reuses, not an Event by value:
// measured, passing the 96-byte Event by value cost 8.6 ns a call against
// 1.7 ns (about 1.3 % of a receiver's CPU per message at the highest
// rate), for the convenience of keeping the struct, which copying the
// fields it needs gives as well.
type Handler func(*Event)

// Errors returned by the bridge's methods.
var (
	ErrNotConnected         = errors.New("bridge: not connected")
	ErrClosed               = errors.New("bridge: closed")
	ErrPublishingDisabled   = errors.New("bridge: publishing is disabled")
	ErrSubscriptionDisabled = errors.New("bridge: subscription is disabled")
	// ErrSubscriberDown: the subscriber connection is lost and not yet
	// subscribed again.
	ErrSubscriberDown = errors.New("bridge: the subscriber connection is down")
	// ErrClosedByServer is the cause of a SubscriberLost when the server
	// closed the connection: a restart, CLIENT KILL, or a subscriber over
	// its output buffer limit.
	ErrClosedByServer = errors.New("bridge: the server closed the connection")
)

// Metrics is a snapshot of a bridge's counters.
type Metrics struct {
	// InstanceID is the bridge's ID.
	InstanceID string `json:"instance_id"`
	// Connected is true between a successful Connect and Close while the
	// subscriber (if any) is up and subscribed to everything asked for: not
	// during an outage, and not after giving up reconnecting.
	Connected bool `json:"connected"`
	// Published counts messages Redis accepted.
	Published uint64 `json:"published"`
	// PublishErrors counts publishes known to have failed: never sent, or
	// refused by the server. They are never retried.
	PublishErrors uint64 `json:"publish_errors"`
	// PublishUnknown counts publishes whose outcome is unknown: sent, but
	// no reply came (a timeout, a broken connection), so the server may
	// or may not have delivered them. They are never retried either, so
	// none is delivered twice.
	PublishUnknown uint64 `json:"publish_unknown"`
	// Received counts events handed to a handler (or dropped for want of
	// one): every valid message except the bridge's own.
	Received uint64 `json:"received"`
	// SelfFiltered counts the bridge's own messages echoed back by Redis and
	// dropped.
	SelfFiltered uint64 `json:"self_filtered"`
	// Malformed counts messages on subscribed channels that were not event
	// envelopes; they are dropped.
	Malformed uint64 `json:"malformed"`
	// Errors counts every failure: publish errors, subscribe errors and
	// broken subscriber connections.
	Errors uint64 `json:"errors"`
	// Reconnects counts subscriber connections made after the first.
	Reconnects uint64 `json:"reconnects"`
	// Redelivered counts, under the streams transport, entries read from
	// the bridge's pending list at its start or after a reconnection:
	// handed to its consumer before and never acknowledged. Most reached
	// the handler before, which sees them twice; one handed to a
	// connection as it died arrives here for the first time.
	Redelivered uint64 `json:"redelivered,omitempty"`
	// Subscriptions is len(ActiveSubscriptions).
	Subscriptions int `json:"subscriptions"`
	// ActiveSubscriptions lists the confirmed subscribed event types, sorted.
	ActiveSubscriptions []string `json:"active_subscriptions"`
	// State is the subscriber's: "connected", "recovering" (reconnected,
	// its subscriptions not all confirmed again), "down" (lost, being
	// redialled), "gave up" (out of retries), "closed", or "new" (not
	// connected yet).
	State string `json:"state,omitempty"`
	// LastReceived is when the last event was received; zero before the
	// first. Its age tells a quiet feed from a dead one.
	LastReceived time.Time `json:"last_received,omitzero"`
}

// SubscriberState is a step in the life of the subscriber connection.
type SubscriberState int

const (
	// SubscriberLost: the connection broke; messages published from now
	// until SubscriberResubscribed are not delivered to this bridge.
	SubscriberLost SubscriberState = iota + 1
	// SubscriberReconnected: a new connection is dialled and authenticated;
	// its subscriptions are not yet confirmed.
	SubscriberReconnected
	// SubscriberResubscribed: Redis has confirmed every wanted subscription
	// on the new connection: delivery has resumed.
	SubscriberResubscribed
)

// String names the state.
func (s SubscriberState) String() string {
	switch s {
	case SubscriberLost:
		return "lost"
	case SubscriberReconnected:
		return "reconnected"
	case SubscriberResubscribed:
		return "resubscribed"
	}
	return "unknown"
}

// SubscriberChange is one call of Options.OnSubscriberChange.
type SubscriberChange struct {
	State SubscriberState
	// At is when the bridge noticed the change.
	At time.Time
	// Err is why the connection was lost (SubscriberLost only).
	Err error
}

// Bridge is one application instance's link to Redis pub/sub. Its methods
// are safe for concurrent use.
type Bridge struct {
	opts     Options
	redisOpt *redis.Options
	tagKey   SourceKey           // the key of this bridge's own tags, when tagging
	channels map[string][]string // event type -> its channels, for the known types
	typeOf   map[string]string   // channel -> event type, for Metrics

	// baseDial reaches one address (TLS or TCP); with Sentinel, the
	// master wherever it is.
	baseDial dialFunc
	// sentinel: the master is found through sentinels.
	sentinel bool

	// pub is set once by Connect; atomic because publishes may run
	// concurrently with Connect. nil when publishing is disabled. In a
	// cluster it is also where the slot map is read.
	pub    atomic.Pointer[redis.Client]
	pconns pubConns          // pub's connections, for interrupting a publish
	known  map[string]string // channel -> itself: resolves names without allocating
	seq    atomic.Uint64

	// wmu serialises writes to the subscriber connection and guards sconn,
	// which the receive loop swaps when it reconnects; nil while down.
	wmu   sync.Mutex
	sconn *subConn
	// dialCtx bounds reconnection dials; Close cancels it.
	dialCtx    context.Context
	cancelDial context.CancelFunc

	handlers atomic.Pointer[map[string]Handler] // copy on write

	// In a cluster, or with sharded pub/sub: the slot map as last read
	// and the clients of the masters that sharded publishes go to.
	smap  atomic.Pointer[shardMap]
	mapMu sync.Mutex // one reading of the map at a time
	nodes nodeClients
	// sh is the sharded subscriber's state; nil with classic pub/sub.
	sh *sharded
	// st is the streams transport's reading side; nil with pub/sub.
	st *streams
	// ext is an external instance's link to its adapter; nil for a
	// bridge of its own connections.
	ext *extLink

	// mu guards the subscription state below; the receive loop takes it only
	// for subscribe/unsubscribe replies, never for messages.
	mu           sync.Mutex
	state        int             // stateNew, stateConnected, stateClosed
	wanted       map[string]bool // channels asked for, re-sent after a reconnect
	active       map[string]bool // channels the current connection confirmed
	pendingSub   map[string]chan struct{}
	pendingUnsub map[string]chan struct{}
	// refusals are the channels whose subscription the server refused,
	// until the Subscribe that asked for them has read them.
	refusals   map[string]subRefusal
	down       bool // the subscriber connection is lost and not yet back
	recovering bool // reconnected; SubscriberResubscribed not yet told
	// pongs wait for the PINGs sent on the subscriber connection, oldest
	// first: the server answers them in order.
	pongs pongQueue

	closing  chan struct{} // closed by Close to stop the receive loop
	recvDone chan struct{} // closed when the receive loop has returned
	gaveUp   atomic.Bool   // the subscriber ran out of reconnection retries

	published, publishErrors, publishUnknown atomic.Uint64
	received, selfFiltered, malformed, errs  atomic.Uint64
	subConnects                              atomic.Uint64
	// lastNs is when the last event was received (the socket read's
	// stamp), for its age in a health check.
	lastNs atomic.Int64
}

const (
	stateNew = iota
	stateConnected
	stateClosed
)

// New validates opts and returns an unconnected bridge.
func New(opts Options) (*Bridge, error) {
	opts = opts.withDefaults()
	if !validName(opts.InstanceID) {
		return nil, fmt.Errorf("bridge: invalid instance ID %q: no spaces, quotes or backslashes", opts.InstanceID)
	}
	if !validName(opts.KeyPrefix) {
		return nil, fmt.Errorf("bridge: invalid key prefix %q: no spaces, quotes or backslashes", opts.KeyPrefix)
	}
	if opts.ChannelsPerType < 1 || opts.ChannelsPerType > MaxChannelsPerType {
		return nil, fmt.Errorf("bridge: ChannelsPerType must be from 1 to %d, got %d", MaxChannelsPerType, opts.ChannelsPerType)
	}
	if n := opts.LoadTest.BufferSize; n < 0 || n > 0 && n < minBufferSize {
		return nil, fmt.Errorf("bridge: LoadTest.BufferSize must be at least %d bytes (0: the default), got %d", minBufferSize, n)
	}
	ro, err := opts.redisOptions()
	if err != nil {
		return nil, err
	}
	b := &Bridge{
		opts:         opts,
		redisOpt:     ro,
		channels:     make(map[string][]string, len(EventTypes)),
		typeOf:       make(map[string]string, len(EventTypes)),
		known:        make(map[string]string, len(EventTypes)),
		wanted:       map[string]bool{},
		active:       map[string]bool{},
		pendingSub:   map[string]chan struct{}{},
		refusals:     map[string]subRefusal{},
		pendingUnsub: map[string]chan struct{}{},
		closing:      make(chan struct{}),
		recvDone:     make(chan struct{}),
	}
	for _, t := range EventTypes {
		b.channels[t] = b.channelsOf(t)
		for _, ch := range b.channels[t] {
			b.known[ch] = ch
			b.typeOf[ch] = t
		}
	}
	if !opts.LoadTest.TagKey.IsZero() {
		b.tagKey = opts.LoadTest.TagKey.For(opts.InstanceID)
	}
	b.dialCtx, b.cancelDial = context.WithCancel(context.Background())
	b.handlers.Store(&map[string]Handler{})
	b.baseDial = baseDialer(ro)
	if so, err := opts.SentinelSet(); err == nil && so.Enabled() {
		b.sentinel = true
	}
	b.nodes.newFn = b.newNodeClient
	switch {
	case opts.Transport != TransportPubSub && opts.Transport != TransportStreams:
		return nil, fmt.Errorf("bridge: Transport must be pubsub or streams, got %q", opts.Transport)
	case opts.Transport == TransportStreams && opts.PubSub == PubSubSharded:
		return nil, errors.New("bridge: Transport streams replaces pub/sub: it does not go with sharded pub/sub")
	case opts.StreamMaxLen < -1:
		return nil, fmt.Errorf("bridge: StreamMaxLen must be positive, or -1 for no cap, got %d", opts.StreamMaxLen)
	case !validName(opts.StreamGroup):
		return nil, fmt.Errorf("bridge: invalid stream group %q: no spaces, quotes or backslashes", opts.StreamGroup)
	}
	if opts.PubSub == PubSubSharded {
		b.sh = newSharded()
	} else if opts.PubSub != PubSubClassic {
		return nil, fmt.Errorf("bridge: PubSub must be classic or sharded, got %q", opts.PubSub)
	}
	if x := opts.External; x != nil {
		switch {
		case x.Conn == nil:
			return nil, errors.New("bridge: External needs its Conn")
		case opts.Transport == TransportStreams:
			return nil, errors.New("bridge: External instances speak pub/sub, not the streams transport")
		}
		b.ext = newExtLink(b, x)
	}
	return b, nil
}

// ID returns the bridge's instance ID.
func (b *Bridge) ID() string { return b.opts.InstanceID }

// Channel returns the Redis channel that carries eventType.
func (b *Bridge) Channel(eventType string) string {
	return b.Channels(eventType)[0]
}

// Channels returns every channel of eventType: one, unless
// Options.ChannelsPerType spreads the type over several.
func (b *Bridge) Channels(eventType string) []string {
	if cs, ok := b.channels[eventType]; ok {
		return cs
	}
	return b.channelsOf(eventType)
}

// channelsOf names eventType's channels.
func (b *Bridge) channelsOf(eventType string) []string {
	n := b.opts.ChannelsPerType
	if n <= 1 {
		return []string{b.opts.KeyPrefix + eventType}
	}
	cs := make([]string, n)
	for k := range cs {
		cs[k] = b.opts.KeyPrefix + eventType + ":" + strconv.Itoa(k)
	}
	return cs
}

// channelFor is the channel of message seq of eventType: the type's
// channels in turn, so that a publisher's traffic spreads evenly.
func (b *Bridge) channelFor(eventType string, seq uint64) string {
	cs := b.Channels(eventType)
	return cs[seq%uint64(len(cs))]
}

// pubReadBuffer is the publisher connection's read buffer (see Connect).
const pubReadBuffer = 4 << 10

// minBufferSize is the smallest LoadTestOptions.BufferSize: a RESP
// header and a channel name must fit in a read.
const minBufferSize = 1 << 10

// bufferSize is LoadTestOptions.BufferSize or its default.
func (b *Bridge) bufferSize() int {
	if n := b.opts.LoadTest.BufferSize; n > 0 {
		return n
	}
	return defaultBufferSize
}

// Connect opens the publisher and subscriber connections and checks both
// with a round trip; it returns once both answered, or ctx ends. A bridge
// connects once: after Close, make a new one.
func (b *Bridge) Connect(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateConnected:
		return nil
	case stateClosed:
		return ErrClosed
	}
	if b.ext != nil {
		// The adapter connects its client; nothing of the bridge's own.
		if err := b.ext.connect(ctx); err != nil {
			return err
		}
		close(b.recvDone) // the adapter's output has a loop of its own
		b.state = stateConnected
		return nil
	}
	if !b.opts.DisablePublishing {
		pub := b.newPublisherClient()
		if err := pub.Ping(ctx).Err(); err != nil {
			_ = pub.Close()
			return b.connectError("publisher", err)
		}
		b.pub.Store(pub)
	}
	if b.opts.Cluster || b.sh != nil {
		// Where the slots are: the sharded routes, and the nodes to try
		// when the configured one is down.
		if _, err := b.refreshMap(ctx, nil); err != nil {
			b.closeClients()
			return b.connectError("slot map", err)
		}
	}
	if b.streamsEnabled() && !b.opts.DisableSubscription {
		if err := b.connectStreams(ctx); err != nil {
			b.closeClients()
			return b.connectError("stream reader", err)
		}
	} else if b.sh != nil && !b.opts.DisableSubscription {
		// Subscriber connections are made per shard as subscriptions
		// need them, by the shard loop.
		b.sh.wg.Add(1)
		go b.shardLoop()
	} else if !b.opts.DisableSubscription {
		sc, err := b.dialSubscriber(ctx, "")
		if err != nil {
			b.closeClients()
			return b.connectError("subscriber", err)
		}
		b.wmu.Lock() // writers hold wmu, not mu
		b.sconn = sc
		b.wmu.Unlock()
		b.subConnects.Add(1)
		go b.receiveLoop(sc)
	} else {
		close(b.recvDone)
	}
	b.state = stateConnected
	return nil
}

// connectError names the address (never the password) and the connection,
// and says what to fix where the cause is known.
func (b *Bridge) connectError(which string, err error) error {
	usingTLS := b.redisOpt.TLSConfig != nil
	if !usingTLS && closedAtOnce(err) {
		// A server that refuses a client (maxclients) says why and
		// closes at once; the reset usually destroys the reply before it
		// is read. Listening once more, without writing, hears it.
		if text := refusal(b.redisOpt.Addr, b.opts.DialTimeout); text != "" {
			err = fmt.Errorf("%s: %w", text, err)
		}
	}
	return fmt.Errorf("bridge: connect %s to %s: %w", which, b.redisOpt.Addr, classify(err, usingTLS))
}

// Close stops the receive loop, closes both connections and waits for the
// loop to return; no handler runs after Close returns. It is idempotent.
func (b *Bridge) Close() error {
	b.mu.Lock()
	if b.state == stateClosed {
		b.mu.Unlock()
		return nil
	}
	wasConnected := b.state == stateConnected
	b.state = stateClosed
	close(b.closing)
	// Wake anyone waiting for a subscription reply that will not come.
	for ch, w := range b.pendingSub {
		close(w)
		delete(b.pendingSub, ch)
	}
	for ch, w := range b.pendingUnsub {
		close(w)
		delete(b.pendingUnsub, ch)
	}
	b.mu.Unlock()

	// Interrupt a reconnection in progress, then the read in progress.
	b.cancelDial()
	var err error
	b.wmu.Lock()
	if b.sconn != nil {
		err = b.sconn.conn.Close()
		b.sconn = nil
	}
	if b.sh != nil {
		for _, l := range b.sh.links {
			_ = l.sc.conn.Close()
		}
	}
	b.wmu.Unlock()
	if serr := b.closeStreams(); err == nil {
		err = serr // the blocking read returns at once
	}
	if b.ext != nil {
		if wasConnected {
			err = b.ext.close()
		} else {
			err = b.ext.conn.Close()
		}
	}
	if wasConnected && b.sh != nil && b.ext == nil {
		b.sh.wg.Wait()
	} else if wasConnected {
		<-b.recvDone
	}
	if cerr := b.closeClients(); err == nil {
		err = cerr
	}
	return err
}

// closeClients closes the publisher's clients, if any.
func (b *Bridge) closeClients() error {
	err := b.nodes.close()
	if pub := b.pub.Load(); pub != nil {
		err = errors.Join(pub.Close(), err)
	}
	return err
}

// Handle sets the handler for one event type, replacing Options.Handler for
// it; a nil h removes it. It may be called at any time.
func (b *Bridge) Handle(eventType string, h Handler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.handlers.Load()
	m := make(map[string]Handler, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if h == nil {
		delete(m, eventType)
	} else {
		m[eventType] = h
	}
	b.handlers.Store(&m)
}

// Publish sends data, encoded as JSON, as one event of eventType.
func (b *Bridge) Publish(ctx context.Context, eventType string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("bridge: encode %s event: %w", eventType, err)
	}
	_, err = b.PublishRaw(ctx, eventType, raw)
	return err
}

// envelopePool recycles envelope buffers; go-redis has written the bytes to
// the connection by the time Publish returns.
var envelopePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// PublishRaw sends data, which must be one valid JSON value, as one event of
// eventType, and returns the sequence number it carried. Every call takes a
// sequence number, failed or not, so receivers see a failed publish as a gap.
//
// When ctx ends while the publish waits for Redis, the wait is interrupted
// at once, and so are the bridge's other publishes then in flight; the
// error then wraps ErrOutcomeUnknown when the message may have been sent.
func (b *Bridge) PublishRaw(ctx context.Context, eventType string, data []byte) (uint64, error) {
	if b.ext != nil {
		bt := b.NewBatch()
		seq := bt.Add(eventType, data)
		_, err := bt.Flush(ctx)
		return seq, err
	}
	pub, err := b.publisher()
	if err != nil {
		return 0, err
	}
	if !validName(eventType) {
		return 0, fmt.Errorf("bridge: invalid event type %q", eventType)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bridge: publish %s: %w", eventType, err)
	}
	seq := b.seq.Add(1)
	now := time.Now().UnixNano()
	bp := envelopePool.Get().(*[]byte)
	buf := appendEnvelope((*bp)[:0], b.opts.InstanceID, seq, now, 0, b.tag(seq, now, 0), eventType, data)
	stop := context.AfterFunc(ctx, b.pconns.interrupt)
	if ch := b.channelFor(eventType, seq); b.routed() {
		err = b.spublish(ctx, ch, buf)
	} else if b.streamsEnabled() {
		err = b.xadd(ctx, pub, ch, buf).Err()
	} else {
		err = pub.Publish(ctx, ch, buf).Err()
	}
	stop()
	*bp = buf
	envelopePool.Put(bp)
	if err != nil {
		b.errs.Add(1)
		if outcomeUnknown(err) {
			b.publishUnknown.Add(1)
			return seq, b.closedOr(fmt.Errorf("bridge: publish %s: %w: %w", eventType, ErrOutcomeUnknown, err))
		}
		b.publishErrors.Add(1)
		return seq, b.closedOr(fmt.Errorf("bridge: publish %s: %w", eventType, err))
	}
	b.published.Add(1)
	return seq, nil
}

// ErrOutcomeUnknown is wrapped by a publish error when the message was sent
// but no reply said whether Redis took it: it may still be delivered.
var ErrOutcomeUnknown = errors.New("bridge: publish outcome unknown")

// newPublisherClient is the publisher's go-redis client, not yet
// connected: it dials at its first command.
func (b *Bridge) newPublisherClient() *redis.Client {
	po := *b.redisOpt
	// A PUBLISH retried after a timeout can be delivered twice, and one
	// that timed out may have been delivered: never retry, count instead.
	po.MaxRetries = -1
	// Named so that CLIENT LIST on the server maps connections to
	// instances (the harness reads subscribers' buffers that way).
	po.ClientName = ClientName(b.opts.InstanceID, RolePublisher)
	// Buffers sized by what the publisher reads and writes: replies
	// to PUBLISH are integers, and a pipeline larger than the write
	// buffer is written in its steps. go-redis's defaults (32 KiB,
	// and 128 KiB each way for a pipeline connection) made 290 MB of
	// the 350 MB a 1000-instance run held.
	po.ReadBufferSize, po.WriteBufferSize = pubReadBuffer, b.bufferSize()
	// No pool apart for pipelines: go-redis's own would hold a second
	// connection beside the one PING and PUBLISH use, a third of a
	// run's clients and open files for nothing.
	po.PipelinePoolSize = -1
	po.Dialer = b.pconns.dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
		return b.dialTo(ctx, network, "")
	})
	return redis.NewClient(&po)
}

// publisher returns the publisher's client, or why there is none.
func (b *Bridge) publisher() (*redis.Client, error) {
	if b.opts.DisablePublishing {
		return nil, ErrPublishingDisabled
	}
	if b.isClosing() {
		return nil, ErrClosed
	}
	pub := b.pub.Load()
	if pub == nil {
		return nil, ErrNotConnected
	}
	return pub, nil
}

// tag is the authentication tag of one message, 0 (none) without a key.
func (b *Bridge) tag(seq uint64, sentNs, pubNs int64) uint64 {
	if b.opts.LoadTest.TagKey.IsZero() {
		return 0
	}
	return b.tagKey.Tag(seq, sentNs, pubNs)
}

// Subscribe subscribes to the given event types and returns once Redis has
// confirmed every subscription, so that no message published after it
// returns can be missed. Types already subscribed are skipped.
func (b *Bridge) Subscribe(ctx context.Context, eventTypes ...string) error {
	return b.changeSubscriptions(ctx, true, eventTypes)
}

// Unsubscribe removes the given subscriptions and waits for Redis to
// confirm. Types not subscribed are skipped.
func (b *Bridge) Unsubscribe(ctx context.Context, eventTypes ...string) error {
	return b.changeSubscriptions(ctx, false, eventTypes)
}

// SubscribeAll subscribes to every type in EventTypes.
func (b *Bridge) SubscribeAll(ctx context.Context) error {
	return b.Subscribe(ctx, EventTypes...)
}

// UnsubscribeAll removes every active subscription.
func (b *Bridge) UnsubscribeAll(ctx context.Context) error {
	return b.Unsubscribe(ctx, b.Metrics().ActiveSubscriptions...)
}

func (b *Bridge) changeSubscriptions(ctx context.Context, subscribe bool, eventTypes []string) error {
	if b.opts.DisableSubscription {
		return ErrSubscriptionDisabled
	}
	var channels []string
	for _, t := range eventTypes {
		if !validName(t) {
			return fmt.Errorf("bridge: invalid event type %q", t)
		}
		channels = append(channels, b.Channels(t)...)
	}
	err := b.changeChannels(ctx, subscribe, channels)
	var re *RefusedError
	if !errors.As(err, &re) || len(re.Channels) < 2 {
		return err
	}
	// One reply refused a command of several channels, and Redis names
	// none of them ("one of the channels used as arguments"): ask for
	// each alone, so that the error names the ones refused.
	var refused []string
	for _, ch := range re.Channels {
		var one *RefusedError
		switch err := b.changeChannels(ctx, subscribe, []string{ch}); {
		case errors.As(err, &one):
			refused = append(refused, ch)
		case err != nil:
			return err
		}
	}
	if len(refused) > 0 {
		re.Channels = refused
	}
	return re
}

// RefusedError is the server's refusal of a subscription: an error reply
// such as NOPERM (an ACL without the channel) to SUBSCRIBE or SSUBSCRIBE,
// or to the XGROUP CREATE of the streams transport. It is permanent:
// asking again is refused again, so Subscribe returns it at once.
type RefusedError struct {
	// Command is what was refused: SUBSCRIBE, SSUBSCRIBE or XGROUP.
	Command string
	// Channels are the channels (or streams) refused.
	Channels []string
	// Reply is the server's error reply, in its words.
	Reply string
}

// Error names the channels and quotes the server.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("bridge: the server refused %s %s: %s", e.Command, strings.Join(e.Channels, ", "), e.Reply)
}

// changeChannels subscribes to (or unsubscribes from) channels and waits
// for Redis to confirm each, or to refuse them.
func (b *Bridge) changeChannels(ctx context.Context, subscribe bool, all []string) error {
	b.mu.Lock()
	if state := b.state; state != stateConnected {
		b.mu.Unlock()
		if state == stateClosed {
			return ErrClosed
		}
		return ErrNotConnected
	}
	if b.ext != nil {
		for _, ch := range all {
			b.wanted[ch] = subscribe
		}
		b.mu.Unlock()
		if !subscribe {
			return errors.New("bridge: the instance protocol has no unsubscribe")
		}
		return b.ext.subscribe(ctx, all)
	}
	pending := b.pendingSub
	if !subscribe {
		pending = b.pendingUnsub
	}
	// Register a waiter per channel before sending the command: the reply
	// may arrive on the receive goroutine before Subscribe returns. Two
	// callers subscribing to the same channel share one waiter and one
	// command.
	var channels, waited []string
	var waits []chan struct{}
	for _, ch := range all {
		// What is wanted survives a reconnect: the receive loop
		// subscribes to it again on the new connection.
		if subscribe {
			b.wanted[ch] = true
		} else {
			delete(b.wanted, ch)
		}
		if b.active[ch] == subscribe {
			continue // already in the wanted state
		}
		w, ok := pending[ch]
		if !ok {
			w = make(chan struct{})
			pending[ch] = w
			channels = append(channels, ch)
		}
		waits, waited = append(waits, w), append(waited, ch)
	}
	b.mu.Unlock()

	if len(channels) > 0 && b.st != nil {
		b.changeStreams(ctx, subscribe, channels)
	} else if len(channels) > 0 && b.sh != nil {
		b.changeSharded(subscribe, channels)
	} else if len(channels) > 0 {
		command := "SUBSCRIBE"
		if !subscribe {
			command = "UNSUBSCRIBE"
		}
		b.wmu.Lock()
		// While the connection is down there is nothing to write to: the
		// reconnect subscribes to every wanted channel, and an
		// unsubscription is moot on a connection that is gone. A failed
		// write means the connection broke, which the receive loop sees
		// and repairs the same way; the caller waits for the reply either
		// way, bounded by ctx.
		if b.sconn != nil {
			_ = b.sconn.send(command, channels)
		}
		b.wmu.Unlock()
	}
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return fmt.Errorf("bridge: waiting for subscription confirmation: %w", ctx.Err())
		}
	}
	select {
	case <-b.closing:
		return ErrClosed
	default:
	}
	// A waiter released by a refusal: the channel is not subscribed, and
	// is no longer wanted (a reconnection would only be refused again).
	b.mu.Lock()
	defer b.mu.Unlock()
	var refused *RefusedError
	for _, ch := range waited {
		r, ok := b.refusals[ch]
		if !ok {
			continue
		}
		delete(b.refusals, ch)
		delete(b.wanted, ch)
		if refused == nil {
			refused = &RefusedError{Command: r.command, Reply: r.reply}
		}
		refused.Channels = append(refused.Channels, ch)
	}
	if refused != nil {
		return refused
	}
	return nil
}

// subRefusal is the server's refusal of one channel's subscription.
type subRefusal struct{ command, reply string }

// refuse releases the waiters of channels whose subscription the server
// refused with reply, and records why for changeChannels. A refusal
// while recovering from an outage keeps the bridge recovering: a channel
// it cannot subscribe to again is not delivered, and its outage is not
// over. Callers hold mu.
func (b *Bridge) refuse(command, reply string, channels []string) {
	for _, ch := range channels {
		w, ok := b.pendingSub[ch]
		if !ok {
			continue
		}
		b.refusals[ch] = subRefusal{command, reply}
		close(w)
		delete(b.pendingSub, ch)
	}
}

// refusedPending handles an error reply on the subscriber connection: the
// server refused a SUBSCRIBE (Redis names no channel, so every channel
// still waiting for its confirmation is refused; Subscribe then asks for
// each alone), or a PING.
func (b *Bridge) refusedPending(reply string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pendingSub) == 0 {
		b.pongs.pop(fmt.Errorf("bridge: ping subscriber: %s", reply))
		return
	}
	var chs []string
	for ch := range b.pendingSub {
		chs = append(chs, ch)
	}
	b.refuse("SUBSCRIBE", reply, chs)
}

// Ping checks both connections with a round trip within ctx: PING on the
// publisher, and PING on the subscriber connection answered through its
// receive loop, which proves the server is still serving this subscriber,
// not only that the socket is open (a frozen server keeps it open).
func (b *Bridge) Ping(ctx context.Context) error {
	b.mu.Lock()
	state, down := b.state, b.down || b.gaveUp.Load()
	b.mu.Unlock()
	switch {
	case state == stateClosed:
		return ErrClosed
	case state != stateConnected:
		return ErrNotConnected
	}
	if down && !b.opts.DisableSubscription {
		return ErrSubscriberDown
	}
	if b.ext != nil {
		return b.ext.ping(ctx)
	}
	if pub := b.pub.Load(); pub != nil {
		stop := context.AfterFunc(ctx, b.pconns.interrupt)
		err := pub.Ping(ctx).Err()
		stop()
		if err != nil {
			return b.closedOr(fmt.Errorf("bridge: ping publisher: %w", err))
		}
	}
	if b.opts.DisableSubscription {
		return nil
	}
	if b.sh != nil {
		return b.pingShards(ctx)
	}
	if b.st != nil {
		return b.pingStreams(ctx)
	}
	w := make(chan error, 1)
	b.wmu.Lock()
	if b.sconn == nil {
		b.wmu.Unlock()
		return ErrSubscriberDown
	}
	// The waiter is queued under wmu, with the write: pongs come back in
	// the order the PINGs were written.
	b.mu.Lock()
	b.pongs.push(w)
	b.mu.Unlock()
	b.sconn.appendCommand("PING")
	_ = b.sconn.flush() // a failed write shows as a lost connection
	b.wmu.Unlock()
	select {
	case err := <-w:
		return err
	case <-ctx.Done():
		return fmt.Errorf("bridge: ping subscriber: %w", ctx.Err())
	}
}

// pong releases the oldest PING waiter of q with err.
func (b *Bridge) pong(q *pongQueue, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q.pop(err)
}

// pongQueue holds the waiters of the PINGs written to one subscriber
// connection, oldest first: the server answers them in order.
type pongQueue []chan error

// push queues a waiter; its channel must have room for one value.
func (q *pongQueue) push(w chan error) { *q = append(*q, w) }

// pop releases the oldest waiter with err.
func (q *pongQueue) pop(err error) {
	if len(*q) > 0 {
		(*q)[0] <- err // buffered: never blocks
		*q = (*q)[1:]
	}
}

// failAll releases every waiter with err: the connection is gone.
func (q *pongQueue) failAll(err error) {
	for _, w := range *q {
		w <- err
	}
	*q = nil
}

// Ready reports whether the bridge is connected and has no subscription
// change waiting for confirmation.
func (b *Bridge) Ready() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == stateConnected && !b.gaveUp.Load() && !b.down &&
		len(b.pendingSub) == 0 && len(b.pendingUnsub) == 0
}

// Metrics returns a snapshot of the bridge's counters.
func (b *Bridge) Metrics() Metrics {
	b.mu.Lock()
	st := b.st // set under mu, by Connect
	connected := b.state == stateConnected && !b.gaveUp.Load() && !b.down && !b.recovering
	var state string
	switch {
	case b.state == stateNew:
		state = "new"
	case b.state == stateClosed:
		state = "closed"
	case b.gaveUp.Load():
		state = "gave up"
	case b.down:
		state = "down"
	case b.recovering:
		state = "recovering"
	default:
		state = "connected"
	}
	// Subscriptions are by type: a type spread over channels counts once,
	// when every one of its channels is confirmed.
	perType := map[string]int{}
	for ch := range b.active {
		t, ok := b.typeOf[ch]
		if !ok { // a type outside EventTypes: its name, less ":<k>"
			t = ch[len(b.opts.KeyPrefix):]
			if b.opts.ChannelsPerType > 1 {
				t = t[:strings.LastIndexByte(t, ':')]
			}
		}
		perType[t]++
	}
	b.mu.Unlock()
	subs := make([]string, 0, len(perType))
	for t, n := range perType {
		if n == len(b.Channels(t)) {
			subs = append(subs, t)
		}
	}
	sort.Strings(subs)
	// Classic counts every subscriber connection, the first one too;
	// sharded counts only the links that replaced lost ones.
	reconnects := b.subConnects.Load()
	if b.sh == nil && reconnects > 0 {
		reconnects--
	}
	var redelivered uint64
	if st != nil {
		redelivered = st.redelivered.Load()
	}
	return Metrics{
		InstanceID:          b.opts.InstanceID,
		Redelivered:         redelivered,
		Connected:           connected,
		Published:           b.published.Load(),
		PublishErrors:       b.publishErrors.Load(),
		PublishUnknown:      b.publishUnknown.Load(),
		Received:            b.received.Load(),
		SelfFiltered:        b.selfFiltered.Load(),
		Malformed:           b.malformed.Load(),
		Errors:              b.errs.Load(),
		Reconnects:          reconnects,
		Subscriptions:       len(subs),
		ActiveSubscriptions: subs,
		State:               state,
		LastReceived:        lastReceived(b.lastNs.Load()),
	}
}

// lastReceived is a receive stamp as a time; zero for none.
func lastReceived(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// receiveLoop reads the subscriber connection until Close, reconnecting
// when it breaks. It is the only reader, so messages are handled in arrival
// order and nothing is dropped between the socket and the handler.
func (b *Bridge) receiveLoop(sc *subConn) {
	defer close(b.recvDone)
	ev := new(Event)
	for {
		p, err := sc.readKnown(b.known)
		if err == nil {
			switch p.kind {
			case pushMessage:
				b.dispatch(p.channel, p.payload, ev, sc.stamp.at)
			case pushSubscribe, pushUnsubscribe:
				b.confirm(p.kind == pushSubscribe, p.channel)
			case pushPong:
				b.pong(&b.pongs, nil)
			case pushError:
				b.errs.Add(1) // a command refused, e.g. SUBSCRIBE under an ACL
				b.refusedPending(string(p.payload))
			}
			continue
		}
		if sc = b.reconnect(sc, err); sc == nil {
			return // closed, or out of retries
		}
	}
}

// reconnect replaces the broken connection old: it marks the subscriptions
// lost, dials again with the backoff of Options.Reconnect, and re-sends
// every wanted subscription. It returns the new connection, or nil when the
// bridge is closing or has run out of retries.
func (b *Bridge) reconnect(old *subConn, cause error) *subConn {
	b.wmu.Lock()
	_ = old.conn.Close()
	if b.sconn == old {
		b.sconn = nil
	}
	b.wmu.Unlock()
	if b.isClosing() {
		return nil
	}
	b.errs.Add(1) // the broken connection
	b.mu.Lock()
	b.down = true
	clear(b.active) // the server forgot them with the connection
	// PINGs written to the lost connection will not be answered.
	b.pongs.failAll(ErrSubscriberDown)
	// An unsubscription is complete: the connection that held it is gone.
	for ch, w := range b.pendingUnsub {
		close(w)
		delete(b.pendingUnsub, ch)
	}
	b.mu.Unlock()
	if errors.Is(cause, io.EOF) {
		cause = ErrClosedByServer
	}
	b.tell(SubscriberLost, cause)

	var sc *subConn
	if !b.redial(func(ctx context.Context) (err error) {
		sc, err = b.dialSubscriber(ctx, "")
		return err
	}) {
		return nil
	}
	b.tell(SubscriberReconnected, nil)
	if b.resubscribe(sc) {
		return sc
	}
	_ = sc.conn.Close()
	return nil // closed while dialling
}

// redial tries dial with the backoff of Options.Reconnect until it
// succeeds (true) or the bridge closes or runs out of retries (false).
// Each failure counts as an error; each success as a subscriber
// connection.
func (b *Bridge) redial(dial func(context.Context) error) bool {
	lost := time.Now()
	for failures := 1; ; failures++ {
		if b.outOfRetries(failures, lost) {
			b.gaveUp.Store(true)
			return false
		}
		select {
		case <-b.closing:
			return false
		case <-time.After(b.retryDelay(failures)):
		}
		ctx, cancel := context.WithTimeout(b.dialCtx, b.opts.DialTimeout+tlsHandshakeTimeout)
		err := dial(ctx)
		cancel()
		if err == nil {
			b.subConnects.Add(1)
			return true
		}
		if b.isClosing() {
			return false
		}
		b.errs.Add(1)
	}
}

// resubscribe installs sc as the connection and subscribes it to every
// wanted channel; Ready turns true when Redis has confirmed them all. It
// reports false, installing nothing, when the bridge is closing.
func (b *Bridge) resubscribe(sc *subConn) bool {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.isClosing() {
		return false
	}
	b.mu.Lock()
	var channels []string
	for ch := range b.wanted {
		channels = append(channels, ch)
		if _, ok := b.pendingSub[ch]; !ok {
			b.pendingSub[ch] = make(chan struct{}) // released by confirm
		}
	}
	b.down = false
	b.recovering = len(channels) > 0
	b.mu.Unlock()
	sort.Strings(channels)
	if len(channels) > 0 {
		// A failed write shows as a failed read in the loop, next.
		_ = sc.send("SUBSCRIBE", channels)
	} else {
		b.tell(SubscriberResubscribed, nil) // nothing to wait for
	}
	b.sconn = sc
	return true
}

// tell calls OnSubscriberChange, if set, never under a lock of the
// bridge's: in classic mode only the receive goroutine calls it; in
// sharded mode it takes the lock that keeps it in order with the handler.
func (b *Bridge) tell(state SubscriberState, err error) {
	if b.sh != nil {
		b.sh.dmu.Lock()
		defer b.sh.dmu.Unlock()
	}
	b.tellLocked(state, err)
}

// tellLocked is tell for a caller that holds the sharded dmu already.
func (b *Bridge) tellLocked(state SubscriberState, err error) {
	if f := b.opts.OnSubscriberChange; f != nil {
		f(SubscriberChange{State: state, At: time.Now(), Err: err})
	}
}

// closedOr returns err, wrapping ErrClosed when Close has begun: a call cut
// off by a concurrent Close says so, whatever the connection reported.
func (b *Bridge) closedOr(err error) error {
	if b.isClosing() && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// isClosing reports whether Close has begun.
func (b *Bridge) isClosing() bool {
	select {
	case <-b.closing:
		return true
	default:
		return false
	}
}

// dispatch decodes one message and hands it to its handler. payload
// aliases the read buffer; the string made of it is the one allocation of
// the receive path, because the Event's strings may be kept. now is when
// the socket read that completed the message returned.
func (b *Bridge) dispatch(channel string, payload []byte, ev *Event, now int64) {
	var text string
	if b.opts.LoadTest.BorrowPayload && len(payload) > 0 {
		// Valid until the handler returns: the next read reuses the buffer.
		text = unsafe.String(&payload[0], len(payload))
	} else {
		text = string(payload)
	}
	b.dispatchText(channel, text, ev, now)
}

// dispatchText is dispatch of a message already a string (a stream
// entry's field, as the client read it).
func (b *Bridge) dispatchText(channel, text string, ev *Event, now int64) {
	decode := decodeEnvelope
	if b.opts.LoadTest.SkipData {
		decode = decodeEnvelopeUnscanned
	}
	if err := decode(text, ev); err != nil {
		b.malformed.Add(1)
		return
	}
	// An echo of its own is dropped only when it verifies as its own: a
	// message forged with this bridge's ID goes to the handler, which can
	// tell it from a genuine one.
	// An external instance's own echoes were its adapter's to drop: one
	// it passed on goes to the handler, which counts it self-received.
	if ev.Source == b.opts.InstanceID && !b.opts.LoadTest.DeliverOwn && b.ext == nil && (b.opts.LoadTest.TagKey.IsZero() || b.tagKey.Verify(ev)) {
		b.selfFiltered.Add(1)
		return
	}
	ev.Channel = channel
	ev.ReceivedNs = now
	b.received.Add(1)
	if b.lastNs.Load() != now { // once per socket read, not per message: a plain load is cheaper than a store
		b.lastNs.Store(now)
	}
	h := (*b.handlers.Load())[ev.Type]
	if h == nil {
		h = b.opts.Handler
	}
	if h != nil {
		h(ev)
	}
}

// confirm records a subscribe or unsubscribe reply and releases its waiter.
func (b *Bridge) confirm(subscribed bool, channel string) {
	b.mu.Lock()
	if subscribed {
		b.active[channel] = true
		if w, ok := b.pendingSub[channel]; ok {
			close(w)
			delete(b.pendingSub, channel)
		}
		// Refused channels are not back: the outage is not over.
		done := b.recovering && len(b.pendingSub) == 0 && len(b.refusals) == 0
		if done {
			b.recovering = false
		}
		b.mu.Unlock()
		if done {
			b.tell(SubscriberResubscribed, nil)
		}
		return
	}
	defer b.mu.Unlock()
	delete(b.active, channel)
	if w, ok := b.pendingUnsub[channel]; ok {
		close(w)
		delete(b.pendingUnsub, channel)
	}
}
