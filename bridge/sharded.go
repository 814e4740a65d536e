package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sharded pub/sub. A channel belongs to the master that owns its slot:
// SPUBLISH goes there, and SSUBSCRIBE must be sent there, one command per
// slot. So the sharded subscriber is one connection per master owning any
// wanted channel (a "link"), each with its own reading goroutine, and one
// shard loop that decides which link carries which channel. The loop
// reads the slot map again whenever something says it moved: a link
// broken (a master killed), a SUNSUBSCRIBE the server pushed (the slot was
// migrated, or its master became a replica in a failover), a MOVED reply
// to SSUBSCRIBE. Each of these is a SubscriberLost for the application,
// and SubscriberResubscribed follows once every wanted channel is
// confirmed again on its owner: the outage timeline covers it.
//
// go-redis's own sharded subscriber has known bugs exactly there (#3133:
// only the first channel's shard is read; #3099: a later SSubscribe gets
// MOVED and then receives nothing; #3806: it re-subscribes to a random
// node after a reconnect), hence this one. The publisher does not use
// go-redis's ClusterClient either: it retries a command after a read
// timeout or a broken connection (osscluster.go, shouldRetry), which
// would deliver a message twice and count it once. Here only MOVED and
// ASK, which say the command was not executed, are followed, once.

// ErrSlotMoved is the cause of a SubscriberLost in sharded mode when the
// server unsubscribed channels itself: their slot moved to another
// master (a migration, a failover).
var ErrSlotMoved = errors.New("bridge: the server unsubscribed sharded channels: their slot moved")

// sharded is the sharded subscriber's state.
type sharded struct {
	// links are the connections by master address; guarded by the
	// bridge's wmu, which also serialises writes to them.
	links map[string]*shardLink
	// on maps each channel to the link its SSUBSCRIBE was sent on, until
	// that link is lost or the server unsubscribes it; guarded by mu.
	on map[string]*shardLink
	// kick wakes the shard loop; failed makes it back off first (a
	// subscription was refused).
	kick   chan struct{}
	failed atomic.Bool
	// stale says the slot map must be read again before the next resync;
	// guarded by mu.
	stale bool
	// dmu serialises the handler and OnSubscriberChange across links,
	// which the Handler's contract promises.
	dmu sync.Mutex
	wg  sync.WaitGroup // the shard loop and the links' readers
}

// shardLink is one sharded subscriber connection.
type shardLink struct {
	addr  string
	sc    *subConn
	pongs pongQueue // guarded by the bridge's mu
	// retired: closed by the shard loop because it carries nothing.
	retired atomic.Bool
}

func newSharded() *sharded {
	return &sharded{links: map[string]*shardLink{}, on: map[string]*shardLink{}, kick: make(chan struct{}, 1)}
}

// wake asks the shard loop to look again; it never blocks.
func (s *sharded) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// dialTo dials addr, or, for "", the bridge's server: the master the
// sentinels name, or the configured node, or, in a cluster whose
// configured node is down, any other node of the slot map (classic pub/sub
// and the map are served by every node).
func (b *Bridge) dialTo(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != "" {
		return b.baseDial(ctx, network, addr)
	}
	conn, err := b.baseDial(ctx, network, b.redisOpt.Addr)
	if err == nil || !b.opts.Cluster || ctx.Err() != nil {
		return conn, err
	}
	if m := b.smap.Load(); m != nil {
		for _, a := range m.nodes {
			if a == b.redisOpt.Addr || a == "" {
				continue
			}
			if c, aerr := b.baseDial(ctx, network, a); aerr == nil {
				return c, nil
			}
		}
	}
	return nil, err
}

// newNodeClient is the publisher's client of the node at addr ("": the
// bridge's server): never retried, named as the publisher, and
// interruptible like the publisher's own connections.
func (b *Bridge) newNodeClient(addr string) *redis.Client {
	o := *b.redisOpt
	if addr != "" {
		o.Addr = addr
	}
	o.MaxRetries = -1
	o.ClientName = ClientName(b.opts.InstanceID, RolePublisher)
	o.Dialer = b.pconns.dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
		return b.dialTo(ctx, network, addr)
	})
	return redis.NewClient(&o)
}

// mapRefreshGap spaces readings of the slot map that publish errors ask
// for: in a failover every publish to the lost master fails, and one
// reading serves them all.
const mapRefreshGap = 100 * time.Millisecond

// refreshMap reads the slot map again, unless it has changed since seen
// (another caller read it meanwhile; nil: read it anyway). It asks the
// configured node first, then every node of the last map.
func (b *Bridge) refreshMap(ctx context.Context, seen *shardMap) (*shardMap, error) {
	b.mapMu.Lock()
	defer b.mapMu.Unlock()
	cur := b.smap.Load()
	if seen != nil && cur != seen {
		return cur, nil
	}
	if !b.opts.Cluster {
		m := singleShard("")
		b.smap.Store(m)
		return m, nil
	}
	asked := []string{""}
	if cur != nil {
		asked = append(asked, cur.nodes...)
	}
	var errs []error
	for _, addr := range asked {
		c := b.pub.Load() // the configured node's, when publishing: one connection fewer
		if addr != "" || c == nil {
			c = b.nodes.get(addr)
		}
		m, err := readShardMap(ctx, c, addr)
		if err == nil {
			m.read = time.Now()
			b.smap.Store(m)
			return m, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", orConfigured(addr, b.redisOpt.Addr), err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("bridge: read the slot map: %w", errors.Join(errs...))
}

// orConfigured names addr, "" being the configured address.
func orConfigured(addr, configured string) string {
	if addr == "" {
		return configured
	}
	return addr
}

// refreshSoon reads the map again after a publish failed on a connection
// (a master may be gone), at most once per mapRefreshGap; a failure is
// left for the next publish.
func (b *Bridge) refreshSoon(ctx context.Context, seen *shardMap) {
	if seen != nil && time.Since(seen.read) >= mapRefreshGap {
		_, _ = b.refreshMap(ctx, seen)
	}
}

// errNoOwner fails a sharded publish whose slot no master serves (a
// cluster mid-failover): nothing was sent.
var errNoOwner = errors.New("bridge: no master serves the channel's slot")

// route returns the client that publishes on channel under map m.
func (b *Bridge) route(m *shardMap, channel string) (*redis.Client, error) {
	addr, ok := m.ownerOf(Slot(channel))
	switch {
	case !ok:
		return nil, &dialError{errNoOwner}
	case addr == "":
		return b.pub.Load(), nil
	}
	return b.nodes.get(addr), nil
}

// redirect reads a MOVED or ASK error: the command was not executed, and
// may be sent where it says. ask is true for ASK, whose command must
// follow ASKING on the node named.
func redirect(err error) (addr string, ask, ok bool) {
	var re redis.Error
	if !errors.As(err, &re) {
		return "", false, false
	}
	f := strings.Fields(re.Error())
	if _, isSlot := movedSlot(re.Error()); !isSlot {
		return "", false, false
	}
	return f[2], f[0] == "ASK", true
}

// spublish is one sharded publish: SPUBLISH to the channel's master,
// following one MOVED or ASK (the command was not executed, so sending it
// again cannot deliver it twice).
func (b *Bridge) spublish(ctx context.Context, channel string, payload []byte) error {
	errs := b.spublishAll(ctx, []string{channel}, [][]byte{payload})
	return errs[0]
}

// spublishAll publishes payloads[i] on channels[i], one pipeline per
// master, the masters in parallel, and returns each publish's error: by
// SPUBLISH, or in a cluster under the streams transport by XADD to the
// stream's master.
// Redirected publishes are sent once more, where the redirection says.
func (b *Bridge) spublishAll(ctx context.Context, channels []string, payloads [][]byte) []error {
	errs := make([]error, len(channels))
	todo := make([]int, len(channels))
	for i := range todo {
		todo[i] = i
	}
	var ask map[int]string // index -> node, for ASK redirections
	for attempt := 0; attempt < 2 && len(todo) > 0; attempt++ {
		m := b.smap.Load()
		type group struct {
			c   *redis.Client
			idx []int
		}
		var groups []*group
		byClient := map[*redis.Client]*group{}
		for _, i := range todo {
			var c *redis.Client
			if a, ok := ask[i]; ok {
				c = b.nodes.get(a)
			} else if c, errs[i] = b.route(m, channels[i]); errs[i] != nil {
				continue
			}
			g := byClient[c]
			if g == nil {
				g = &group{c: c}
				byClient[c] = g
				groups = append(groups, g)
			}
			g.idx = append(g.idx, i)
		}
		send := func(g *group) {
			pipe := g.c.Pipeline()
			cmds := make([]redis.Cmder, len(g.idx))
			for k, i := range g.idx {
				if _, ok := ask[i]; ok {
					pipe.Do(ctx, "ASKING")
				}
				// A stream is a key of the same slot as its channel would
				// be: XADD goes where SPUBLISH would.
				if b.streamsEnabled() {
					cmds[k] = b.xadd(ctx, pipe, channels[i], payloads[i])
				} else {
					cmds[k] = pipe.SPublish(ctx, channels[i], payloads[i])
				}
			}
			_, perr := pipe.Exec(ctx)
			for k, i := range g.idx {
				if errs[i] = cmds[k].Err(); errs[i] == nil && perr != nil && len(g.idx) == 1 {
					errs[i] = perr
				}
			}
		}
		if len(groups) == 1 {
			send(groups[0]) // the common case: no goroutine
		} else {
			var wg sync.WaitGroup
			for _, g := range groups {
				wg.Go(func() { send(g) })
			}
			wg.Wait()
		}
		todo = todo[:0]
		moved, broken := false, false
		for _, g := range groups {
			for _, i := range g.idx {
				addr, isAsk, ok := redirect(errs[i])
				switch {
				case ok && attempt == 0:
					todo = append(todo, i)
					if isAsk {
						if ask == nil {
							ask = map[int]string{}
						}
						ask[i] = addr
					} else {
						moved = true
					}
				case errs[i] != nil && !ok && ctx.Err() == nil && !isServerReply(errs[i]):
					broken = true
				}
			}
		}
		switch {
		case moved:
			_, _ = b.refreshMap(ctx, m)
		case broken:
			b.refreshSoon(ctx, m)
		}
	}
	return errs
}

// isServerReply reports whether err is an error reply of the server.
func isServerReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// changeSharded sends the subscription changes of channels: an
// unsubscription to the link carrying each channel, a subscription by
// waking the shard loop, which owns where channels go.
func (b *Bridge) changeSharded(subscribe bool, channels []string) {
	if subscribe {
		b.sh.wake()
		return
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	byLink := map[*shardLink][]string{}
	b.mu.Lock()
	for _, ch := range channels {
		if l := b.sh.on[ch]; l != nil && b.sh.links[l.addr] == l {
			byLink[l] = append(byLink[l], ch)
		} else if w, ok := b.pendingUnsub[ch]; ok { // on no live link: done
			delete(b.active, ch)
			close(w)
			delete(b.pendingUnsub, ch)
		}
	}
	b.mu.Unlock()
	for l, chs := range byLink {
		_ = l.sc.send("SUNSUBSCRIBE", chs) // a failed write shows as a lost link
	}
}

// shardLoop keeps every wanted channel subscribed on the master owning its
// slot, until Close. It backs off as the reconnection policy says while it
// cannot, and gives up after its MaxRetries consecutive failures.
func (b *Bridge) shardLoop() {
	defer b.sh.wg.Done()
	failures := 0
	var since time.Time // the first failure of the current streak
	var retry <-chan time.Time
	for {
		select {
		case <-b.closing:
			return
		case <-b.sh.kick:
		case <-retry:
		}
		retry = nil
		if b.sh.failed.Swap(false) {
			failures++ // refused: wait before asking again
		} else if b.resync() {
			failures = 0
			continue
		} else {
			failures++
		}
		if failures == 1 {
			since = time.Now()
		}
		if b.outOfRetries(failures, since) {
			b.gaveUp.Store(true)
			return
		}
		retry = time.After(b.retryDelay(failures))
	}
}

// resync reads the slot map if it is stale, dials the links the wanted
// channels need, and sends SSUBSCRIBE (one per slot) for every wanted
// channel that is neither subscribed nor pending on its owner. It reports
// false when something could not be done: a map unread, a slot without
// a master, a link that could not be dialled.
func (b *Bridge) resync() bool {
	ctx, cancel := context.WithTimeout(b.dialCtx, b.opts.DialTimeout+tlsHandshakeTimeout)
	defer cancel()
	b.mu.Lock()
	stale := b.sh.stale
	b.sh.stale = false
	b.mu.Unlock()
	m := b.smap.Load()
	if stale || m == nil {
		var err error
		if m, err = b.refreshMap(ctx, nil); err != nil {
			b.errs.Add(1)
			b.markStale()
			return false
		}
	}
	complete := true
	// What each owner must be sent, by slot.
	need := map[string]map[int][]string{}
	moved := map[*shardLink][]string{}
	lost := false
	b.mu.Lock()
	for ch := range b.wanted {
		slot := Slot(ch)
		owner, ok := m.ownerOf(slot)
		if !ok {
			complete = false
			continue
		}
		if l := b.sh.on[ch]; l != nil {
			if l.addr == owner {
				continue // subscribed there, or its reply is on the way
			}
			// The map says it moved, the old master has not said so:
			// leave it, and subscribe where it is now.
			moved[l] = append(moved[l], ch)
			delete(b.sh.on, ch)
			lost = lost || b.active[ch]
			delete(b.active, ch)
		}
		if need[owner] == nil {
			need[owner] = map[int][]string{}
		}
		need[owner][slot] = append(need[owner][slot], ch)
		if _, ok := b.pendingSub[ch]; !ok {
			b.pendingSub[ch] = make(chan struct{}) // released by confirm
		}
	}
	tellLost := lost && !b.down && !b.recovering
	if lost {
		b.down = true
	}
	redial := b.down // a link dialled now replaces a lost one
	b.mu.Unlock()
	if tellLost {
		b.tell(SubscriberLost, ErrSlotMoved)
	}

	// Dial what is missing, without holding locks: a dial takes time.
	b.wmu.Lock()
	var dial []string
	for addr := range need {
		if b.sh.links[addr] == nil {
			dial = append(dial, addr)
		}
	}
	b.wmu.Unlock()
	sort.Strings(dial)
	dialled := map[string]*subConn{}
	for _, addr := range dial {
		sc, err := b.dialSubscriber(ctx, addr)
		if err != nil {
			b.errs.Add(1)
			b.markStale() // the master may be gone: ask where the slots are
			complete = false
			delete(need, addr)
			continue
		}
		if redial {
			b.subConnects.Add(1)
		}
		dialled[addr] = sc
	}

	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.isClosing() {
		for _, sc := range dialled {
			_ = sc.conn.Close()
		}
		return true
	}
	for addr, sc := range dialled {
		l := &shardLink{addr: addr, sc: sc}
		b.sh.links[addr] = l
		b.sh.wg.Add(1)
		go b.readLink(l)
	}
	for l, chs := range moved {
		if b.sh.links[l.addr] == l {
			sort.Strings(chs)
			_ = l.sc.send("SUNSUBSCRIBE", chs)
		}
	}
	b.mu.Lock()
	for addr, slots := range need {
		l := b.sh.links[addr]
		keys := make([]int, 0, len(slots))
		for s := range slots {
			keys = append(keys, s)
		}
		sort.Ints(keys)
		for _, s := range keys {
			chs := slots[s]
			sort.Strings(chs)
			for _, ch := range chs {
				b.sh.on[ch] = l
			}
			l.sc.appendCommand(append([]string{"SSUBSCRIBE"}, chs...)...)
		}
		// A failed write shows as a failed read on the link.
		_ = l.sc.flush()
	}
	// Links that carry nothing any more are closed.
	carried := map[*shardLink]bool{}
	for _, l := range b.sh.on {
		carried[l] = true
	}
	for addr, l := range b.sh.links {
		if !carried[l] {
			l.retired.Store(true)
			_ = l.sc.conn.Close()
			delete(b.sh.links, addr)
		}
	}
	b.mu.Unlock()
	if !complete {
		return false
	}
	// Out of an outage: told under dmu, taken before mu, so that no
	// confirmation's SubscriberResubscribed comes before it.
	b.sh.dmu.Lock()
	defer b.sh.dmu.Unlock()
	b.mu.Lock()
	back := b.down
	if back {
		b.down = false
		b.recovering = len(b.pendingSub) > 0
	}
	recovered := back && !b.recovering
	b.mu.Unlock()
	if back {
		b.tellLocked(SubscriberReconnected, nil)
	}
	if recovered {
		b.tellLocked(SubscriberResubscribed, nil)
	}
	return true
}

// topologyRetryCap caps the wait between attempts to subscribe again in a
// cluster or behind sentinels: an attempt asks a live node or sentinel
// where the master is now, which is cheap, and a failover completes at a
// moment the backoff would otherwise overshoot by seconds.
const topologyRetryCap = 500 * time.Millisecond

// retryDelay is the wait before attempt number failures+1 to subscribe
// again: the reconnection policy's, capped in a cluster or with Sentinel.
func (b *Bridge) retryDelay(failures int) time.Duration {
	d := b.opts.Reconnect.Delay(failures)
	if b.opts.Cluster || b.sentinel {
		d = min(d, topologyRetryCap)
	}
	return d
}

// outOfRetries reports whether the subscriber gives up after failures
// consecutive failed attempts, the first at since: past MaxRetries, and,
// where waits are capped (retryDelay), not before the uncapped policy
// would have given up, so that the cap speeds recovery without shortening
// how long a failover may take.
func (b *Bridge) outOfRetries(failures int, since time.Time) bool {
	r := b.opts.Reconnect
	if r.MaxRetries < 0 || failures <= r.MaxRetries {
		return false
	}
	if b.opts.Cluster || b.sentinel {
		var budget time.Duration
		for k := 1; k <= r.MaxRetries; k++ {
			budget += r.Delay(k)
		}
		return time.Since(since) >= budget
	}
	return true
}

// markStale has the next resync read the slot map first.
func (b *Bridge) markStale() {
	b.mu.Lock()
	b.sh.stale = true
	b.mu.Unlock()
}

// readLink reads one link until it breaks or Close, handing messages to
// the handler (one link at a time) and telling the shard loop about
// anything that moves channels.
func (b *Bridge) readLink(l *shardLink) {
	defer b.sh.wg.Done()
	ev := new(Event)
	for {
		p, err := l.sc.readKnown(b.known)
		if err != nil {
			b.linkLost(l, err)
			return
		}
		switch p.kind {
		case pushMessage:
			b.sh.dmu.Lock()
			b.dispatch(p.channel, p.payload, ev, l.sc.stamp.at)
			b.sh.dmu.Unlock()
		case pushSubscribe:
			b.mu.Lock()
			mine := b.sh.on[p.channel] == l
			b.mu.Unlock()
			if mine {
				b.confirm(true, p.channel)
			}
		case pushUnsubscribe:
			b.unsubscribed(l, p.channel)
		case pushPong:
			b.pong(&l.pongs, nil)
		case pushError:
			b.refused(l, string(p.payload))
		}
	}
}

// unsubscribed handles a SUNSUBSCRIBE reply on l: the answer to
// Unsubscribe, or, for a channel still wanted, the server saying that
// the channel's slot is no longer this master's.
func (b *Bridge) unsubscribed(l *shardLink, ch string) {
	b.mu.Lock()
	if w, ok := b.pendingUnsub[ch]; ok && !b.wanted[ch] {
		delete(b.active, ch)
		delete(b.sh.on, ch)
		close(w)
		delete(b.pendingUnsub, ch)
		b.mu.Unlock()
		return
	}
	if b.sh.on[ch] != l || !b.wanted[ch] {
		b.mu.Unlock()
		return // the reply to resync's own SUNSUBSCRIBE of a moved channel
	}
	delete(b.sh.on, ch)
	delete(b.active, ch)
	b.sh.stale = true
	tellLost := !b.down && !b.recovering
	b.down = true
	b.mu.Unlock()
	if tellLost {
		b.tell(SubscriberLost, ErrSlotMoved)
	}
	b.sh.wake()
}

// refused handles an error reply on l: a SSUBSCRIBE refused, by MOVED
// (the map is stale) or CLUSTERDOWN (mid-failover). The channels sent on
// l and not yet confirmed are sent again, after a back-off.
func (b *Bridge) refused(l *shardLink, msg string) {
	b.errs.Add(1)
	slot, isMoved := movedSlot(msg)
	// A refusal by the ACL is permanent: asking again is refused again,
	// so the channels waiting on this link are refused, and Subscribe
	// says so at once instead of retrying until its deadline.
	permanent := strings.HasPrefix(msg, "NOPERM")
	b.mu.Lock()
	var refused []string
	for ch, on := range b.sh.on {
		if on == l && !b.active[ch] && (!isMoved || Slot(ch) == slot) {
			delete(b.sh.on, ch)
			if permanent {
				refused = append(refused, ch)
			}
		}
	}
	if permanent {
		b.refuse("SSUBSCRIBE", msg, refused)
		for _, ch := range refused {
			delete(b.wanted, ch) // not asked for again by the shard loop
		}
		b.mu.Unlock()
		return
	}
	b.sh.stale = true
	b.mu.Unlock()
	b.sh.failed.Store(true)
	b.sh.wake()
}

// linkLost removes a broken link: its channels are lost until the shard
// loop has subscribed them again on their owners.
func (b *Bridge) linkLost(l *shardLink, cause error) {
	b.wmu.Lock()
	_ = l.sc.conn.Close()
	if b.sh.links[l.addr] == l {
		delete(b.sh.links, l.addr)
	}
	b.wmu.Unlock()
	if b.isClosing() || l.retired.Load() {
		return
	}
	b.errs.Add(1)
	b.mu.Lock()
	lost := false
	for ch, on := range b.sh.on {
		if on != l {
			continue
		}
		delete(b.sh.on, ch)
		lost = lost || b.active[ch]
		delete(b.active, ch)
		if w, ok := b.pendingUnsub[ch]; ok { // complete: the connection is gone
			close(w)
			delete(b.pendingUnsub, ch)
		}
	}
	l.pongs.failAll(ErrSubscriberDown)
	b.sh.stale = true
	tellLost := lost && !b.down && !b.recovering
	if lost {
		b.down = true
	}
	b.mu.Unlock()
	if errors.Is(cause, io.EOF) {
		cause = ErrClosedByServer
	}
	if tellLost {
		b.tell(SubscriberLost, cause)
	}
	b.sh.wake()
}

// pingShards pings every link, all at once, and waits for every answer.
func (b *Bridge) pingShards(ctx context.Context) error {
	b.wmu.Lock()
	waits := make([]chan error, 0, len(b.sh.links))
	for _, l := range b.sh.links {
		w := make(chan error, 1)
		b.mu.Lock()
		l.pongs.push(w)
		b.mu.Unlock()
		l.sc.appendCommand("PING")
		_ = l.sc.flush() // a failed write shows as a lost link
		waits = append(waits, w)
	}
	b.wmu.Unlock()
	for _, w := range waits {
		select {
		case err := <-w:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("bridge: ping subscriber: %w", ctx.Err())
		}
	}
	b.mu.Lock()
	down := b.down
	b.mu.Unlock()
	if down {
		return ErrSubscriberDown
	}
	return nil
}
