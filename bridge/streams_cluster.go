package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Streams in a cluster. A stream is a key: it lives on its slot's master,
// and one XREADGROUP cannot name keys of two slots. So each subscribed
// stream has a reader of its own (readStream), on a connection to the
// stream's master, and the readers take turns at the handler (dmu), as
// the sharded links do. A reader that loses its master (killed, failed
// over: the old master answers MOVED, or nothing) reads the slot map
// again and goes on from its group's position on the new master, which
// the replica has: what was acknowledged there stays acknowledged; what a
// failover lost with the unreplicated tail of the old master is lost.

// clusterStreams is the reading side of a bridge over streams in a
// cluster; part of streams.
type clusterStreams struct {
	// dmu serialises the handler and OnSubscriberChange across readers,
	// and guards down.
	dmu sync.Mutex
	// down counts the readers without a connection: the bridge's
	// subscriber is lost from the first one down to the last one back.
	down int

	// rmu guards readers and clients.
	rmu     sync.Mutex
	readers map[string]context.CancelFunc // by stream
	clients map[string]*redis.Client      // by master address
	closed  bool                          // by Close: no client after
	wg      sync.WaitGroup
}

// readerClient is the reading client of the master at addr: connections
// named as the bridge's subscriber, one per stream read there.
func (b *Bridge) readerClient(addr string) (*redis.Client, error) {
	cs := b.st.cl
	cs.rmu.Lock()
	defer cs.rmu.Unlock()
	if cs.closed {
		return nil, ErrClosed
	}
	if c := cs.clients[addr]; c != nil {
		return c, nil
	}
	o := *b.redisOpt
	o.Addr = addr
	o.MaxRetries = -1
	o.ClientName = ClientName(b.opts.InstanceID, RoleSubscriber)
	o.PoolSize = 2 * MaxChannelsPerType * len(EventTypes) // a held connection per stream, and room to spare
	o.Dialer = func(ctx context.Context, network, _ string) (net.Conn, error) { return b.dialTo(ctx, network, addr) }
	c := redis.NewClient(&o)
	cs.clients[addr] = c
	return c, nil
}

// streamOwner is the client of the master of stream's slot, as the slot
// map last said.
func (b *Bridge) streamOwner(stream string) (*redis.Client, error) {
	addr, ok := b.smap.Load().ownerOf(Slot(stream))
	if !ok {
		return nil, &dialError{errNoOwner}
	}
	if addr == "" {
		addr = b.redisOpt.Addr
	}
	return b.readerClient(addr)
}

// createGroupRouted creates the bridge's group on stream at id on the
// stream's master, following the slot map once if the server says the
// slot moved.
func (b *Bridge) createGroupRouted(ctx context.Context, stream, id string) error {
	for attempt := 0; ; attempt++ {
		c, err := b.streamOwner(stream)
		if err == nil {
			err = existsOK(c.XGroupCreateMkStream(ctx, stream, b.st.group, id).Err())
		}
		if _, _, moved := redirect(err); !moved || attempt > 0 {
			return err
		}
		if _, err := b.refreshMap(ctx, nil); err != nil {
			return err
		}
	}
}

// startReader starts stream's reader unless it runs, or the bridge is
// closing (Close waits for the readers it started, and none after).
func (b *Bridge) startReader(stream string) {
	cs := b.st.cl
	cs.rmu.Lock()
	defer cs.rmu.Unlock()
	if cs.readers[stream] != nil || b.isClosing() {
		return
	}
	ctx, cancel := context.WithCancel(b.dialCtx)
	cs.readers[stream] = cancel
	cs.wg.Add(1)
	go b.readStream(ctx, stream)
}

// stopReader stops stream's reader (an unsubscription).
func (b *Bridge) stopReader(stream string) {
	cs := b.st.cl
	cs.rmu.Lock()
	defer cs.rmu.Unlock()
	if cancel := cs.readers[stream]; cancel != nil {
		cancel()
		delete(cs.readers, stream)
	}
}

// readStream reads stream through the bridge's group until ctx ends or
// the bridge closes: its pending list first, then new entries, each
// acknowledged with the next read.
func (b *Bridge) readStream(ctx context.Context, stream string) {
	cs := b.st.cl
	defer cs.wg.Done()
	ev := new(Event)
	var acks []string
	var conn *redis.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	pending := true
	for ctx.Err() == nil && !b.isClosing() {
		if conn == nil {
			c, err := b.streamOwner(stream)
			if err == nil {
				conn = c.Conn()
				err = conn.Ping(ctx).Err()
			}
			if err != nil {
				if !b.readerLost(ctx, stream, err, &conn) {
					return
				}
				pending = true
				continue
			}
		}
		from := ">"
		args := &redis.XReadGroupArgs{Group: b.st.group, Consumer: b.opts.InstanceID, Count: streamCount, Block: streamBlock}
		if pending {
			from, args.Block = "0", -1
		}
		args.Streams = []string{stream, from}
		pipe := conn.Pipeline()
		if len(acks) > 0 {
			pipe.XAck(ctx, stream, b.st.group, acks...)
		}
		read := pipe.XReadGroup(ctx, args)
		_, err := pipe.Exec(ctx)
		if err == nil || errors.Is(err, redis.Nil) {
			acks = acks[:0]
		}
		switch {
		case errors.Is(err, redis.Nil):
			pending = false
			continue
		case err != nil && (ctx.Err() != nil || b.isClosing()):
			return
		case err != nil && strings.HasPrefix(err.Error(), "NOGROUP"):
			_ = b.createGroupRouted(ctx, stream, "$")
			continue
		case err != nil:
			// Broken, or MOVED: the slot is another master's now (a
			// failover). Either way the reader is down until it reads
			// again from the slot's master.
			if !b.readerLost(ctx, stream, err, &conn) {
				return
			}
			pending = true
			continue
		}
		cs.dmu.Lock()
		got := b.deliver(read.Val(), pending, ev, func(_, id string) { acks = append(acks, id) })
		cs.dmu.Unlock()
		if pending && got == 0 {
			pending = false
		}
	}
}

// readerLost closes the reader's connection *conn, if any, and marks it
// down (the bridge's subscriber lost, if it is the first); it dials the
// stream's master again with the reconnection backoff, reading the slot
// map before each attempt, and marks it back. It installs the new
// connection in *conn and reports false when ctx ended, the bridge is
// closing or out of retries.
func (b *Bridge) readerLost(ctx context.Context, stream string, cause error, conn **redis.Conn) bool {
	cs := b.st.cl
	if *conn != nil {
		_ = (*conn).Close()
		*conn = nil
	}
	b.errs.Add(1)
	if errors.Is(cause, io.EOF) {
		cause = ErrClosedByServer
	}
	cs.dmu.Lock()
	cs.down++
	if cs.down == 1 {
		b.mu.Lock()
		b.down = true
		b.mu.Unlock()
		b.tellLocked(SubscriberLost, fmt.Errorf("stream %s: %w", stream, cause))
	}
	cs.dmu.Unlock()
	ok := b.redial(func(dctx context.Context) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, err := b.refreshMap(dctx, nil); err != nil {
			return err
		}
		c, err := b.streamOwner(stream)
		if err != nil {
			return err
		}
		nc := c.Conn()
		if err := nc.Ping(dctx).Err(); err != nil {
			_ = nc.Close()
			return err
		}
		// A master that lost the stream (none with it survived) starts
		// it again; one that has it keeps the group's position.
		if err := b.createGroupRouted(dctx, stream, "0"); err != nil {
			_ = nc.Close()
			return err
		}
		*conn = nc
		return nil
	})
	cs.dmu.Lock()
	defer cs.dmu.Unlock()
	if !ok {
		return false
	}
	cs.down--
	if cs.down == 0 {
		b.mu.Lock()
		b.down = false
		b.mu.Unlock()
		b.tellLocked(SubscriberReconnected, nil)
		b.tellLocked(SubscriberResubscribed, nil)
	}
	return true
}

// pingClusterStreams is Ping's round trip to every master a reader reads
// from.
func (b *Bridge) pingClusterStreams(ctx context.Context) error {
	cs := b.st.cl
	cs.rmu.Lock()
	clients := make([]*redis.Client, 0, len(cs.clients))
	for _, c := range cs.clients {
		clients = append(clients, c)
	}
	cs.rmu.Unlock()
	for _, c := range clients {
		if err := c.Ping(ctx).Err(); err != nil {
			return b.closedOr(fmt.Errorf("bridge: ping stream reader: %w", err))
		}
	}
	return nil
}

// closeClusterStreams stops every reader and waits for them: closing the
// clients ends their blocking reads at once.
func (b *Bridge) closeClusterStreams() error {
	cs := b.st.cl
	cs.rmu.Lock()
	cs.closed = true
	for _, cancel := range cs.readers {
		cancel()
	}
	var err error
	for _, c := range cs.clients {
		err = errors.Join(err, c.Close())
	}
	cs.rmu.Unlock()
	cs.wg.Wait()
	return err
}
