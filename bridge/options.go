package bridge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Event types published by the market-data platform. The bridge accepts any
// valid name; these are the ones SubscribeAll subscribes to.
const (
	TypeTicker               = "ticker"
	TypeTrade                = "trade"
	TypeOrderbook            = "orderbook"
	TypeCandle               = "candle"
	TypeExchangeConnected    = "exchange:connected"
	TypeExchangeDisconnected = "exchange:disconnected"
	TypeExchangeReconnecting = "exchange:reconnecting"
	TypeExchangeError        = "exchange:error"
)

// EventTypes lists every known event type, in the TypeScript bridge's order.
var EventTypes = []string{
	TypeTicker, TypeTrade, TypeOrderbook, TypeCandle,
	TypeExchangeConnected, TypeExchangeDisconnected,
	TypeExchangeReconnecting, TypeExchangeError,
}

// DefaultAddr is the Redis address used when neither URL nor Addr is set.
const DefaultAddr = "127.0.0.1:6379"

// MaxChannelsPerType bounds Options.ChannelsPerType: every channel is a
// subscription on every subscriber.
const MaxChannelsPerType = 1024

// DefaultKeyPrefix is the channel prefix of the TypeScript bridge.
const DefaultKeyPrefix = "ws:"

// Options configures a Bridge. The zero value is usable: it connects to
// 127.0.0.1:6379, publishes and subscribes under "ws:", and names itself
// after the host and process.
type Options struct {
	// URL is a redis:// or rediss:// URL; it takes precedence over Addr, and
	// Username, Password and DB, when set, override what it says.
	// default: "" (use Addr)
	URL string
	// Addr is host:port of the Redis server.
	// default: "127.0.0.1:6379"
	Addr string
	// Username is the ACL user name.
	// default: "" (the default user)
	Username string
	// Password authenticates the connections. It never appears in errors
	// or metrics.
	// default: ""
	Password string
	// DB is the database number selected after connecting. Pub/sub channels
	// are global in Redis, so this only matters to AUTH/SELECT semantics.
	// default: 0
	DB int
	// KeyPrefix is prepended to the event type to form the channel name.
	// default: "ws:"
	KeyPrefix string
	// ChannelsPerType spreads each event type over this many channels,
	// "<prefix><type>:<k>" for k from 0, so that in a Redis Cluster the
	// types' traffic spreads over slots and shards instead of 8 channels.
	// Subscribe takes every channel of a type, and each publish goes to
	// the next channel of its type in turn (by its sequence number). 1
	// keeps the TypeScript bridge's channel names, "<prefix><type>".
	// default: 1
	ChannelsPerType int
	// PubSub is classic pub/sub (PUBLISH/SUBSCRIBE) or sharded
	// (SPUBLISH/SSUBSCRIBE, Redis 7.0 and later). Sharded publishes each
	// message to the master owning its channel's slot, and subscribes on
	// one connection per such master, following the slots when they move
	// (MOVED, or a SUNSUBSCRIBE the server pushes on a migration or a
	// failover). On a server that is not a cluster it is one shard.
	// default: PubSubClassic
	PubSub PubSubMode
	// Transport is pub/sub (fire and forget: a subscriber that is away
	// misses what is published meanwhile) or streams: a Redis stream per
	// channel, XADD to publish, and per bridge a consumer group of its own
	// (XREADGROUP, XACK once the handler has returned), so that a
	// subscriber that reconnects, or a bridge started again with the same
	// StreamGroup, resumes where its group left off. See TransportStreams.
	// Streams need Redis 5.0, and replace pub/sub: not with PubSub
	// sharded. In a Cluster each stream is read from its slot's master.
	// default: TransportPubSub
	Transport Transport
	// StreamMaxLen caps each stream at about this many entries (XADD
	// MAXLEN ~): a reader further behind than that loses what was trimmed.
	// -1: no cap, the streams grow until deleted.
	// default: DefaultStreamMaxLen (100 000)
	StreamMaxLen int64
	// StreamGroup is the consumer group this bridge reads with. Each
	// bridge needs its own to get every event: bridges sharing a group
	// share its entries between them.
	// default: the InstanceID
	StreamGroup string
	// Cluster says that URL or Addr is a node of a Redis Cluster: the
	// bridge reads the slot map from it (CLUSTER SHARDS), and when that
	// node is down it connects to another node of the map instead, so
	// that classic pub/sub survives a failover too.
	// default: false
	Cluster bool
	// Sentinel finds the master through Redis Sentinel, asking at every
	// (re)connection, so that the bridge follows a failover; a
	// redis+sentinel:// URL sets it too.
	// default: none
	Sentinel SentinelOptions
	// InstanceID identifies this bridge in every message it publishes; a
	// bridge drops messages carrying its own ID. It must be unique among the
	// bridges on one Redis, and contain no spaces, quotes or backslashes.
	// default: "<hostname>-<pid>"
	InstanceID string
	// DisablePublishing makes this a subscribe-only instance.
	// default: false (publishing on)
	DisablePublishing bool
	// DisableSubscription makes this a publish-only instance: no subscriber
	// connection is opened.
	// default: false (subscription on)
	DisableSubscription bool
	// DialTimeout bounds each connection attempt.
	// default: 5s
	DialTimeout time.Duration
	// PublishTimeout bounds each publish's round trip, or a pipeline's,
	// on the publisher connection: past it the publish fails with an
	// unknown outcome (it may still be delivered). -1 means no bound but
	// the ctx's.
	// default: 5s (go-redis's read timeout)
	PublishTimeout time.Duration
	// Reconnect governs how the subscriber connection is re-established
	// after it breaks.
	Reconnect ReconnectOptions
	// Handler receives every event of a type that has no handler of its own
	// (see Bridge.Handle). It runs on the subscriber's receive goroutine:
	// while it runs, no further message is read.
	// default: nil (events are counted and dropped)
	Handler Handler

	// OnSubscriberChange, when set, is told when the subscriber connection
	// is lost, dialled again, and subscribed again to every wanted channel
	// (see SubscriberChange). It runs on the receive goroutine, in order
	// with the Handler's calls, and must return quickly.
	// default: nil
	OnSubscriberChange func(SubscriberChange)

	// TLSConfig, when set, makes the connections use TLS with it; a
	// rediss:// URL sets a default one.
	// default: nil (TLS only for rediss://)
	TLSConfig *tls.Config

	// External makes the bridge an external instance: an adapter process
	// (another language, another client library, a team's own bridge)
	// does its Redis I/O over the instance protocol, while the bridge
	// builds every message and counts every outcome (see ExternalOptions).
	// Not with the streams transport.
	// default: nil (the bridge's own connections)
	External *ExternalOptions

	// LoadTest holds what exists for load tests, not applications: an
	// application leaves it zero.
	LoadTest LoadTestOptions
}

// LoadTestOptions are the knobs a load test sets on its bridges: forged
// traffic detection, a subscriber made slow on purpose, a receive path
// without copies, and a self-filter switched off to prove its check can
// fail. The zero value is what an application wants.
type LoadTestOptions struct {
	// SubscriberReadBuffer, when positive, sets the kernel receive buffer
	// (SO_RCVBUF) of the subscriber's TCP socket in bytes, which also stops
	// the kernel from growing it. The kernel's buffers on both ends hold a
	// slow subscriber's backlog before the server's output buffer does;
	// a small one makes a slow handler meet the server's limit as it would
	// on a loaded host. Load tests of slow consumers set it; applications
	// leave it alone.
	// default: 0 (the system's, auto-tuned)
	SubscriberReadBuffer int

	// TagKey, when not zero, makes every message carry an authentication
	// tag (see TagKey), so that receivers holding the key can tell the
	// bridge's messages from forged ones. Load tests set it to a key of the
	// run's own; it must never be published.
	// default: zero (no tag)
	TagKey TagKey

	// BorrowPayload hands the Handler an Event whose strings (Data, Type,
	// Source, Channel excepted) point into the connection's read buffer
	// and are valid only until the Handler returns, saving the one
	// allocation per message of the receive path. A load test's handler,
	// which keeps nothing, sets it; an application that keeps any string
	// of an Event must not.
	// default: false (every string may be kept)
	BorrowPayload bool

	// BufferSize sizes the subscriber's read buffer and the publisher's
	// pipeline write buffer: what arrives between two reads, and what one
	// flush of a Batch writes, at the rate the test runs. Larger messages
	// still pass, through a scratch buffer or in several writes. A test of
	// a thousand instances at a modest rate needs a few KiB each, one at
	// the highest rate tens.
	// default: 32 KiB
	BufferSize int

	// SkipData leaves the data of a message in redisload's own layout
	// unscanned: the Event's Data is whatever lies between "data": and
	// the envelope's closing brace, not checked to be one JSON value. A
	// load test's handler, which never reads Data, sets it: scanning the
	// data was 18 % of a loaded client's CPU. A message in that layout
	// whose data is broken is then delivered, not counted as malformed;
	// its tag, not its data, decides whether it is genuine.
	// default: false (the data is scanned, and broken data is malformed)
	SkipData bool

	// DeliverOwn hands messages published by this bridge to the handler
	// instead of dropping them. It exists so that tests can prove that a
	// failed self-filter is detected; an application never wants it.
	// default: false
	DeliverOwn bool
}

// ReconnectOptions is the subscriber's reconnection policy: exponential
// backoff from BaseDelay, doubling per failed attempt, capped at MaxDelay,
// and at 500 ms in a cluster or with Sentinel, where an attempt asks a
// live node or a sentinel where the master is now; there the subscriber
// gives up no sooner than the uncapped policy would (26 s by default), so
// a failover has the time it needs.
type ReconnectOptions struct {
	// MaxRetries is how many consecutive failed attempts are made before the
	// subscriber gives up and the bridge reports itself disconnected; -1
	// retries for ever.
	// default: 10
	MaxRetries int
	// BaseDelay is the wait before the first retry.
	// default: 100ms
	BaseDelay time.Duration
	// MaxDelay caps the wait between retries.
	// default: 5s
	MaxDelay time.Duration
}

// Delay returns the wait before retry number attempt (counting from 1).
func (r ReconnectOptions) Delay(attempt int) time.Duration {
	d := r.BaseDelay
	for i := 1; i < attempt && d < r.MaxDelay; i++ {
		d *= 2
	}
	return min(d, r.MaxDelay)
}

// withDefaults returns o with every zero field replaced by its default.
func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.ChannelsPerType == 0 {
		o.ChannelsPerType = 1
	}
	if o.InstanceID == "" {
		o.InstanceID = DefaultInstanceID()
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.Transport == "" {
		o.Transport = TransportPubSub
	}
	if o.StreamMaxLen == 0 {
		o.StreamMaxLen = DefaultStreamMaxLen
	}
	if o.StreamGroup == "" {
		o.StreamGroup = o.InstanceID
	}
	if o.Reconnect.MaxRetries == 0 {
		o.Reconnect.MaxRetries = 10
	}
	if o.Reconnect.BaseDelay == 0 {
		o.Reconnect.BaseDelay = 100 * time.Millisecond
	}
	if o.Reconnect.MaxDelay == 0 {
		o.Reconnect.MaxDelay = 5 * time.Second
	}
	return o
}

// DefaultInstanceID is "<hostname>-<pid>": unique per process on a host,
// which the TypeScript bridge's bare pid is not across hosts.
func DefaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || !validName(host) {
		host = "host"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// RedisOptions returns the go-redis options the bridge's connections use
// (address, credentials, TLS, timeouts), for a plain client that must talk
// to the same server the same way. Errors never quote the URL, which may
// hold a password.
func (o Options) RedisOptions() (*redis.Options, error) {
	return o.withDefaults().redisOptions()
}

// redisOptions is RedisOptions for options already defaulted. With
// Sentinel, its Dialer dials the master the sentinels name at each dial,
// and its Addr only names the master for messages.
func (o Options) redisOptions() (*redis.Options, error) {
	var ro *redis.Options
	so := o.Sentinel
	if strings.HasPrefix(o.URL, SentinelScheme+"://") {
		var err error
		if so, ro, err = parseSentinelURL(o.URL); err != nil {
			return nil, err
		}
		if o.Sentinel.Enabled() { // the options' own win, as for credentials
			so = o.Sentinel
		}
	} else if so.Enabled() {
		if len(so.Addrs) == 0 {
			return nil, errors.New("bridge: Sentinel needs the sentinels' addresses")
		}
		ro = &redis.Options{Addr: "sentinel:" + so.MasterName}
	} else if o.URL != "" {
		if _, err := ParseURL(o.URL); err != nil {
			return nil, err
		}
		var err error
		if ro, err = redis.ParseURL(o.URL); err != nil {
			return nil, fmt.Errorf("%w: %s", ErrInvalidURL, scrub(err.Error(), o.URL))
		}
	} else {
		ro = &redis.Options{Addr: o.Addr}
	}
	if o.Username != "" {
		ro.Username = o.Username
	}
	if o.Password != "" {
		ro.Password = o.Password
	}
	if o.DB != 0 {
		ro.DB = o.DB
	}
	ro.DialTimeout = o.DialTimeout
	// go-redis's "0 means default" and "-1 means none" are the bridge's.
	ro.ReadTimeout, ro.WriteTimeout = o.PublishTimeout, o.PublishTimeout
	// One dial attempt per connection: go-redis would retry a failed dial
	// five times, multiplying every connect error (a TLS mismatch took
	// 15 s). The subscriber has its own reconnection policy, and a
	// publisher that cannot connect counts a failed publish.
	ro.DialerRetries = 1
	// RESP2: pub/sub needs nothing from RESP3, and go-redis's RESP3 path
	// peeks the socket for push notifications before every read, a
	// syscall per message: a third of the CPU of a loaded run.
	ro.Protocol = 2
	if o.TLSConfig != nil {
		tc := o.TLSConfig.Clone()
		if tc.ServerName == "" {
			// Verify the certificate against the host dialled, as a
			// rediss:// URL does.
			if host, _, err := net.SplitHostPort(ro.Addr); err == nil {
				tc.ServerName = host
			}
		}
		ro.TLSConfig = tc
	}
	if ro.TLSConfig != nil {
		// Our dialer bounds the handshake and explains a silent server;
		// go-redis would otherwise wrap the connection in TLS itself.
		ro.Dialer = tlsDialer(ro.TLSConfig, o.DialTimeout)
	}
	if so.Enabled() {
		if o.Cluster {
			return nil, errors.New("bridge: Cluster and Sentinel exclude each other")
		}
		ro.Dialer = sentinelDialer(so, baseDialer(ro))
	}
	// Without it go-redis ignores ctx deadlines on reads, including the
	// connection handshake: a server that accepts and never answers held
	// Connect for 5 s whatever ctx said. Every blocking call of the bridge
	// takes a ctx and must be bounded by it.
	ro.ContextTimeoutEnabled = true
	return ro, nil
}

// ErrInvalidURL is wrapped by every error about a Redis URL.
var ErrInvalidURL = errors.New("bridge: invalid Redis URL")

// ParseURL checks that raw is a redis://, rediss:// or unix:// URL with a
// host, and returns it parsed. Its errors never contain the URL's password.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL, password included
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalidURL, scrub(err.Error(), raw))
	}
	switch u.Scheme {
	case "redis", "rediss", SentinelScheme:
		if u.Host == "" {
			return nil, fmt.Errorf("%w: no host (want redis://host:port)", ErrInvalidURL)
		}
	case "unix":
		if u.Path == "" {
			return nil, fmt.Errorf("%w: no socket path (want unix:///path)", ErrInvalidURL)
		}
	default:
		return nil, fmt.Errorf("%w: scheme %q (want redis, rediss, unix or redis+sentinel)", ErrInvalidURL, u.Scheme)
	}
	return u, nil
}

// RedactURL returns raw with its password replaced by "xxxxx", for display.
// A URL that does not parse is not shown at all.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	return u.Redacted()
}

// scrub removes the password of rawURL from msg, for the rare library error
// that quotes part of the URL.
func scrub(msg, rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

// Role is which of a bridge's two connections a client name belongs to.
type Role string

// The connections' roles.
const (
	RolePublisher  Role = "pub"
	RoleSubscriber Role = "sub"
)

// ClientName is the name a bridge gives its connection of role on the
// server (CLIENT SETNAME), "<instance ID>/<role>", so that CLIENT LIST maps
// connections to instances: the load test reads its subscribers' output
// buffers that way.
func ClientName(instanceID string, role Role) string {
	return instanceID + "/" + string(role)
}

// ParseClientName is ClientName's inverse: the instance ID and role of a
// connection name, and false for a name no bridge gives.
func ParseClientName(name string) (instanceID string, role Role, ok bool) {
	i := strings.LastIndexByte(name, '/')
	if i <= 0 {
		return "", "", false
	}
	role = Role(name[i+1:])
	if role != RolePublisher && role != RoleSubscriber {
		return "", "", false
	}
	return name[:i], role, true
}

// Redact removes from s every password the bridge was given (its server's,
// its sentinels'), as it is and URL-escaped: for text that did not come
// from redisload, such as what an external instance's adapter wrote.
func (b *Bridge) Redact(s string) string {
	secrets := []string{b.redisOpt.Password}
	if so, err := b.opts.SentinelSet(); err == nil {
		secrets = append(secrets, so.Password)
	}
	for _, p := range secrets {
		if p == "" {
			continue
		}
		s = strings.ReplaceAll(s, p, "xxxxx")
		if e := url.QueryEscape(p); e != p {
			s = strings.ReplaceAll(s, e, "xxxxx")
		}
		if e := url.PathEscape(p); e != p {
			s = strings.ReplaceAll(s, e, "xxxxx")
		}
	}
	return s
}
