package bridge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// An external instance is a bridge whose Redis I/O another process does:
// an adapter, in any language, on the client library and bridge logic a
// team actually runs, spoken to over the instance protocol
// (docs/instance-protocol.md): one JSON object a line, the bridge's on
// the adapter's standard input, the adapter's on its standard output.
//
// Nothing is trusted to the adapter. The bridge builds every envelope,
// sequence number and authentication tag as for its own connections, and
// counts each publish's outcome as the adapter reports it; what the
// adapter says its client delivered goes through the same decoding and
// the same handler (so a payload it invents fails the tag, one it reports
// twice is a duplicate), and its own echoes, which its bridge logic must
// drop, reach the handler when it does not, as self-received. Its
// connection events become the bridge's SubscriberChange calls, so that
// outages are accounted for as the bridge's own are.

// ProtocolVersion is the instance protocol's version, in every hello: an
// adapter answers with the version it speaks, and a bridge refuses any
// other.
const ProtocolVersion = 1

// ExternalOptions makes a Bridge an external instance (Options.External).
type ExternalOptions struct {
	// Conn is the adapter's end of the protocol: what is written reaches
	// its standard input, what is read is its standard output. The
	// bridge closes it.
	Conn io.ReadWriteCloser
	// Name names the adapter in errors and reports (its command, say).
	Name string
}

// ExternalInfo is what an external instance's adapter said of itself, and
// how it kept to the protocol.
type ExternalInfo struct {
	// Client and ClientVersion are the client library the adapter uses,
	// as its hello names them ("ioredis", "5.4.1").
	Client        string `json:"client"`
	ClientVersion string `json:"client_version"`
	// ProtocolErrors counts the adapter's lines that were not the
	// protocol's (not JSON, an unknown type, an answer to nothing), and
	// FirstProtocolError quotes the first.
	ProtocolErrors     uint64 `json:"protocol_errors,omitempty"`
	FirstProtocolError string `json:"first_protocol_error,omitempty"`
	// NotOwnFiltered counts messages the adapter said it dropped as its
	// own that were not: its self-filter dropped another's message.
	NotOwnFiltered uint64 `json:"not_own_filtered,omitempty"`
	// FutureStamps counts messages stamped later than their line
	// arrived: a clock that is not this machine's wall clock. Their
	// receipt is taken as the line's arrival.
	FutureStamps uint64 `json:"future_stamps,omitempty"`
	// Exited says why the adapter's output ended before Close, when it
	// did: it crashed, or closed its standard output.
	Exited string `json:"exited,omitempty"`
}

// extMsg is one line of the protocol, either way; each type uses some of
// the fields.
type extMsg struct {
	Type string `json:"type"`
	// hello
	Protocol      int               `json:"protocol,omitempty"`
	InstanceID    string            `json:"instance_id,omitempty"`
	ClientNames   map[string]string `json:"client_names,omitempty"`
	Redis         *extRedis         `json:"redis,omitempty"`
	Client        string            `json:"client,omitempty"`
	ClientVersion string            `json:"client_version,omitempty"`
	// subscribe, subscribed
	Channels []string `json:"channels,omitempty"`
	// publish, published, ping, pong
	ID      uint64 `json:"id,omitempty"`
	Channel string `json:"channel,omitempty"`
	Payload string `json:"payload,omitempty"`
	Error   string `json:"error,omitempty"`
	Unknown string `json:"unknown,omitempty"`
	// message
	ReceivedNs int64 `json:"received_ns,omitempty"`
	// event
	Event  string `json:"event,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// extRedis is where the adapter's client connects, in the hello.
type extRedis struct {
	URL            string   `json:"url"`
	Topology       string   `json:"topology"`
	PubSub         string   `json:"pubsub"`
	SentinelMaster string   `json:"sentinel_master,omitempty"`
	Sentinels      []string `json:"sentinels,omitempty"`
	// SentinelPassword authenticates to the sentinels, when they want it.
	SentinelUsername string `json:"sentinel_username,omitempty"`
	SentinelPassword string `json:"sentinel_password,omitempty"`
}

// AdapterError is a failure an adapter reported: its client's error
// text, in its words (a refusal such as NOPERM reads as the server put
// it). Unknown is set when the adapter said the outcome is unknown.
type AdapterError struct {
	Text    string
	Unknown bool
}

// Error is the adapter's text.
func (e *AdapterError) Error() string { return e.Text }

// extLink is the bridge's end of the protocol.
type extLink struct {
	b    *Bridge
	name string
	conn io.ReadWriteCloser

	wmu sync.Mutex // one line at a time
	w   *bufio.Writer

	mu      sync.Mutex
	nextID  uint64
	pubs    map[uint64]pubWaiter
	pings   map[uint64]chan error
	replies chan extMsg // hello, subscribed and error replies, in order
	info    ExternalInfo

	gone    chan struct{} // closed when the adapter's output has ended
	done    chan struct{} // closed when the read loop has returned
	exitErr error         // why the output ended, read after gone
}

// pubWaiter is where one publish's outcome goes: its Flush's results, at
// its index there.
type pubWaiter struct {
	results chan<- pubResult
	i       int
}

type pubResult struct {
	i   int
	err error
}

// newExtLink makes the link of b over o.
func newExtLink(b *Bridge, o *ExternalOptions) *extLink {
	return &extLink{b: b, name: o.Name, conn: o.Conn, w: bufio.NewWriterSize(o.Conn, 64<<10),
		pubs: map[uint64]pubWaiter{}, pings: map[uint64]chan error{}, replies: make(chan extMsg, 4), gone: make(chan struct{}), done: make(chan struct{})}
}

// errAdapterGone is why a call fails once the adapter's output has ended.
var errAdapterGone = errors.New("its output ended")

// send writes lines and flushes them.
func (x *extLink) send(ms ...extMsg) error {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	for _, m := range ms {
		line, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, _ = x.w.Write(line)
		if err := x.w.WriteByte('\n'); err != nil {
			return err
		}
	}
	return x.w.Flush()
}

// hello builds the hello: who the adapter is, and where its client goes.
func (x *extLink) hello() (extMsg, error) {
	b := x.b
	ro := b.redisOpt
	u := url.URL{Scheme: "redis", Host: ro.Addr}
	if ro.TLSConfig != nil {
		u.Scheme = "rediss"
	}
	switch {
	case ro.Username != "" || ro.Password != "":
		u.User = url.UserPassword(ro.Username, ro.Password)
	}
	if ro.DB != 0 {
		u.Path = "/" + strconv.Itoa(ro.DB)
	}
	r := &extRedis{URL: u.String(), Topology: "standalone", PubSub: string(PubSubClassic)}
	if b.sh != nil {
		r.PubSub = string(PubSubSharded)
	} else {
		r.PubSub = "classic"
	}
	so, err := b.opts.SentinelSet()
	if err != nil {
		return extMsg{}, err
	}
	switch {
	case so.Enabled():
		// The URL keeps the master's credentials and database; its host
		// is a sentinel, since the master is whoever they say it is.
		u.Host = so.Addrs[0]
		r.URL = u.String()
		r.Topology, r.SentinelMaster, r.Sentinels = "sentinel", so.MasterName, so.Addrs
		r.SentinelUsername, r.SentinelPassword = so.Username, so.Password
	case b.opts.Cluster:
		r.Topology = "cluster"
	}
	return extMsg{Type: "hello", Protocol: ProtocolVersion, InstanceID: b.opts.InstanceID, Redis: r,
		ClientNames: map[string]string{"publisher": ClientName(b.opts.InstanceID, RolePublisher),
			"subscriber": ClientName(b.opts.InstanceID, RoleSubscriber)}}, nil
}

// connect starts reading the adapter and greets it; it returns once the
// adapter has answered that its client is connected, or ctx ends.
func (x *extLink) connect(ctx context.Context) error {
	go x.readLoop()
	h, err := x.hello()
	if err != nil {
		return err
	}
	if err := x.send(h); err != nil {
		return x.failure("sending the hello", err)
	}
	m, err := x.reply(ctx, "hello")
	if err != nil {
		return err
	}
	if m.Protocol != ProtocolVersion {
		return fmt.Errorf("bridge: adapter %s speaks protocol %d, this redisload %d", x.name, m.Protocol, ProtocolVersion)
	}
	x.mu.Lock()
	x.info.Client, x.info.ClientVersion = m.Client, m.ClientVersion
	x.mu.Unlock()
	x.b.subConnects.Add(1)
	return nil
}

// reply waits for the adapter's answer of type want (or its error).
func (x *extLink) reply(ctx context.Context, want string) (extMsg, error) {
	select {
	case m := <-x.replies:
		if m.Type == "error" {
			return m, &AdapterError{Text: m.Error}
		}
		if m.Type != want {
			return m, fmt.Errorf("bridge: adapter %s answered %q, want %q", x.name, m.Type, want)
		}
		return m, nil
	case <-x.gone:
		return extMsg{}, x.failure("waiting for its "+want, x.exitErr)
	case <-ctx.Done():
		return extMsg{}, fmt.Errorf("bridge: adapter %s: no %s within the connect timeout: %w", x.name, want, ctx.Err())
	}
}

// failure names the adapter in an error of the link.
func (x *extLink) failure(doing string, err error) error {
	return fmt.Errorf("bridge: adapter %s: %s: %w", x.name, doing, err)
}

// subscribe asks the adapter to subscribe to channels and waits for its
// client's confirmation.
func (x *extLink) subscribe(ctx context.Context, channels []string) error {
	if err := x.send(extMsg{Type: "subscribe", Channels: channels}); err != nil {
		return x.failure("subscribing", err)
	}
	m, err := x.reply(ctx, "subscribed")
	var ae *AdapterError
	if errors.As(err, &ae) {
		// The server's refusal as the adapter's client reported it.
		return &RefusedError{Command: "SUBSCRIBE", Channels: channels, Reply: ae.Text}
	}
	if err != nil {
		return err
	}
	x.b.mu.Lock()
	for _, ch := range m.Channels {
		x.b.active[ch] = true
	}
	x.b.mu.Unlock()
	return nil
}

// publishAll has the adapter publish each payload on its channel, and
// returns each one's outcome: nil, the adapter's error, or one wrapping
// ErrOutcomeUnknown when no answer came within timeout (or ctx).
func (x *extLink) publishAll(ctx context.Context, timeout time.Duration, chans []string, payloads [][]byte) []error {
	n := len(chans)
	errs := make([]error, n)
	results := make(chan pubResult, n)
	lines := make([]extMsg, n)
	x.mu.Lock()
	for i := range chans {
		x.nextID++
		x.pubs[x.nextID] = pubWaiter{results, i}
		lines[i] = extMsg{Type: "publish", ID: x.nextID, Channel: chans[i], Payload: string(payloads[i])}
	}
	first := x.nextID - uint64(n) + 1
	x.mu.Unlock()
	forget := func(why error) {
		x.mu.Lock()
		for id := first; id < first+uint64(n); id++ {
			if w, ok := x.pubs[id]; ok {
				delete(x.pubs, id)
				errs[w.i] = why
			}
		}
		x.mu.Unlock()
	}
	if err := x.send(lines...); err != nil {
		// Whatever part reached the adapter may be published.
		forget(fmt.Errorf("%w: %w", ErrOutcomeUnknown, x.failure("writing", err)))
		return errs
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	for got := 0; got < n; got++ {
		select {
		case r := <-results:
			errs[r.i] = r.err
			continue
		case <-deadline:
			forget(&AdapterError{Text: "timeout (outcome unknown)", Unknown: true})
		case <-ctx.Done():
			forget(&AdapterError{Text: "interrupted (outcome unknown)", Unknown: true})
		case <-x.gone:
			forget(&AdapterError{Text: "the adapter's output ended (outcome unknown)", Unknown: true})
		}
		// What answered before the forgetting is in results still.
		for {
			select {
			case r := <-results:
				errs[r.i] = r.err
			default:
				return errs
			}
		}
	}
	return errs
}

// ping has the adapter check its client with a round trip to Redis.
func (x *extLink) ping(ctx context.Context) error {
	w := make(chan error, 1)
	x.mu.Lock()
	x.nextID++
	id := x.nextID
	x.pings[id] = w
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		delete(x.pings, id)
		x.mu.Unlock()
	}()
	if err := x.send(extMsg{Type: "ping", ID: id}); err != nil {
		return x.failure("ping", err)
	}
	select {
	case err := <-w:
		return err
	case <-x.gone:
		return x.failure("ping", x.exitErr)
	case <-ctx.Done():
		return fmt.Errorf("bridge: adapter %s: ping: %w", x.name, ctx.Err())
	}
}

// close asks the adapter to stop, gives it a moment to do so, and closes
// its connection; the process itself is its starter's to end.
func (x *extLink) close() error {
	_ = x.send(extMsg{Type: "stop"})
	select {
	case <-x.done:
	case <-time.After(2 * time.Second):
	}
	err := x.conn.Close()
	<-x.done
	return err
}

// maxLine bounds one line of the adapter's: a message's payload is at
// most MaxPayloadSize-ish; anything longer is not the protocol.
const maxLine = 4 << 20

// readLoop reads the adapter's lines until its output ends.
func (x *extLink) readLoop() {
	defer close(x.done)
	r := bufio.NewReaderSize(x.conn, 64<<10)
	ev := new(Event)
	var long []byte
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(line) <= maxLine {
				long = append(long, line...)
			}
			continue
		}
		if long != nil {
			line, long = append(long, line...), nil
			if len(line) > maxLine {
				x.protocolError(fmt.Sprintf("a line of over %d bytes", maxLine))
				continue
			}
		}
		if len(line) > 0 && err == nil {
			x.handle(line, ev)
		}
		if err != nil {
			x.exit(err)
			return
		}
	}
}

// exit records why the adapter's output ended and fails what waits.
func (x *extLink) exit(err error) {
	if errors.Is(err, io.EOF) {
		err = errAdapterGone
	}
	x.exitErr = err
	// Waiters go first: Connect waits for the hello holding the bridge's
	// lock, which the rest of this takes.
	close(x.gone)
	b := x.b
	if b.isClosing() {
		return
	}
	x.mu.Lock()
	x.info.Exited = err.Error()
	x.mu.Unlock()
	b.errs.Add(1)
	b.gaveUp.Store(true)
	b.mu.Lock()
	wasUp := b.state == stateConnected && !b.down
	b.down = true
	clear(b.active)
	b.mu.Unlock()
	if wasUp && !b.opts.DisableSubscription {
		b.tell(SubscriberLost, fmt.Errorf("adapter %s: %w", x.name, err))
	}
}

// handle acts on one line of the adapter's.
func (x *extLink) handle(line []byte, ev *Event) {
	var m extMsg
	if err := json.Unmarshal(line, &m); err != nil {
		x.protocolError(string(line))
		return
	}
	b := x.b
	// Its words may quote the URL it was given, password and all.
	m.Error, m.Unknown = b.Redact(m.Error), b.Redact(m.Unknown)
	switch m.Type {
	case "message":
		now, arrived := m.ReceivedNs, time.Now().UnixNano()
		switch {
		case now <= 0:
			now = arrived // an adapter that does not stamp: when it told
		case now > arrived:
			// Received after redisload read that it was: the adapter's
			// clock is off this process's, a little (another runtime's
			// clock) or a lot (not this machine's). Its latency would be
			// made up; more than a millisecond is counted.
			if now > arrived+int64(time.Millisecond) {
				x.mu.Lock()
				x.info.FutureStamps++
				x.mu.Unlock()
			}
			now = arrived
		}
		b.dispatchText(m.Channel, m.Payload, ev, now)
	case "filtered":
		// Its own echo, dropped by the adapter's self-filter: counted as
		// the bridge's own would be, once it proves to be its own.
		if decodeEnvelope(m.Payload, ev) == nil && ev.Source == b.opts.InstanceID && (b.opts.LoadTest.TagKey.IsZero() || b.tagKey.Verify(ev)) {
			b.selfFiltered.Add(1)
		} else {
			x.mu.Lock()
			x.info.NotOwnFiltered++
			x.mu.Unlock()
		}
	case "published":
		x.mu.Lock()
		w, ok := x.pubs[m.ID]
		delete(x.pubs, m.ID)
		x.mu.Unlock()
		if !ok {
			x.protocolError(string(line)) // an answer to no publish, or a late one
			return
		}
		var err error
		switch {
		case m.Unknown != "":
			err = &AdapterError{Text: m.Unknown, Unknown: true}
		case m.Error != "":
			err = &AdapterError{Text: m.Error}
		}
		w.results <- pubResult{w.i, err}
	case "pong":
		x.mu.Lock()
		w, ok := x.pings[m.ID]
		delete(x.pings, m.ID)
		x.mu.Unlock()
		if !ok {
			return // a ping given up on
		}
		if m.Error != "" {
			w <- &AdapterError{Text: m.Error}
		} else {
			w <- nil
		}
	case "hello", "subscribed", "error":
		select {
		case x.replies <- m:
		default:
			x.protocolError(string(line)) // nothing asked for it
		}
	case "event":
		x.event(m)
	default:
		x.protocolError(string(line))
	}
}

// event turns the adapter's connection events into the bridge's.
func (x *extLink) event(m extMsg) {
	b := x.b
	if b.isClosing() {
		return // told to stop, it closes its client: no outage of the run's
	}
	b.mu.Lock()
	// Clients tell as they like: one "disconnected" per failed reconnection
	// attempt, a "resubscribed" without a "reconnected". What repeats the
	// state the subscriber is in changes nothing; the outage is one.
	var states []SubscriberState
	switch m.Event {
	case "disconnected":
		if !b.down {
			states = append(states, SubscriberLost)
		}
		b.down, b.recovering = true, false
		clear(b.active)
	case "reconnected":
		if b.down {
			states = append(states, SubscriberReconnected)
		}
		b.down, b.recovering = false, true
	case "resubscribed":
		if b.down {
			states = append(states, SubscriberReconnected)
		}
		if b.down || b.recovering {
			states = append(states, SubscriberResubscribed)
		}
		b.down, b.recovering = false, false
		for ch := range b.wanted {
			b.active[ch] = true
		}
	default:
		b.mu.Unlock()
		x.protocolError(fmt.Sprintf("event %q", m.Event))
		return
	}
	b.mu.Unlock()
	for _, state := range states {
		var err error
		switch state {
		case SubscriberLost:
			b.errs.Add(1)
			detail := m.Detail
			if detail == "" {
				detail = "its client said disconnected"
			}
			err = fmt.Errorf("adapter: %s", detail)
		case SubscriberReconnected:
			b.subConnects.Add(1)
		}
		b.tell(state, err)
	}
}

// protocolError counts a line that was not the protocol's.
func (x *extLink) protocolError(line string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.info.ProtocolErrors++
	if x.info.FirstProtocolError == "" {
		x.info.FirstProtocolError = x.b.Redact(firstLine(strings.TrimSpace(line)))
	}
}

// External returns what an external instance's adapter said of itself and
// how it kept to the protocol; false for a bridge of its own connections.
func (b *Bridge) External() (ExternalInfo, bool) {
	if b.ext == nil {
		return ExternalInfo{}, false
	}
	b.ext.mu.Lock()
	defer b.ext.mu.Unlock()
	return b.ext.info, true
}

// extReady says why an external instance cannot publish now, if it
// cannot: nothing is sent then.
func (b *Bridge) extReady(ctx context.Context) error {
	b.mu.Lock()
	state := b.state
	b.mu.Unlock()
	switch {
	case b.opts.DisablePublishing:
		return ErrPublishingDisabled
	case b.isClosing() || state == stateClosed:
		return ErrClosed
	case state != stateConnected:
		return ErrNotConnected
	}
	select {
	case <-b.ext.gone:
		return b.ext.failure("publishing", b.ext.exitErr)
	default:
	}
	return ctx.Err()
}
