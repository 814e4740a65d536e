package bridge

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// go-redis bounds a command by ctx's deadline only: a cancelled ctx without
// one leaves a pipeline waiting out its 3 s read timeout, and a frozen
// server turned Ctrl-C into minutes of waiting. The publisher's connections
// are therefore dialled through pubConns, which remembers them, so that a
// publish can interrupt its round trip when its ctx ends: every connection
// is closed, which wakes a read or write in progress at once (a deadline
// would not do: go-redis sets its own before every read). A closed
// connection is never used again: an idle one fails go-redis's health
// check and is replaced, and a write to one returns errNotSent before
// anything is written, which is a known failure rather than an unknown
// outcome. The cost is that one cancelled publish cuts off the bridge's
// other publishes in flight at that moment too.

// pubConns is the set of the publisher's open connections.
type pubConns struct {
	mu    sync.Mutex
	conns map[net.Conn]*trackedConn
}

// dialer wraps dial so that every connection it makes is remembered until
// closed, and marks its errors as dial errors: a publish that failed to
// dial was never sent.
func (s *pubConns) dialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, &dialError{err}
		}
		t := &trackedConn{Conn: c, set: s}
		s.mu.Lock()
		if s.conns == nil {
			s.conns = map[net.Conn]*trackedConn{}
		}
		s.conns[c] = t
		s.mu.Unlock()
		// go-redis checks a pooled connection's health through
		// syscall.Conn before reusing it (a server restart is noticed
		// there, not by a failed publish); keep that visible.
		if sc, ok := c.(syscall.Conn); ok {
			return &trackedSysConn{trackedConn: t, sc: sc}, nil
		}
		return t, nil
	}
}

// interrupt closes every connection, failing the reads and writes in
// progress on them now.
func (s *pubConns) interrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, t := range s.conns {
		t.cut.Store(true)
		_ = c.Close()
		delete(s.conns, c)
	}
}

// trackedConn removes itself from its set when closed.
type trackedConn struct {
	net.Conn
	set *pubConns
	cut atomic.Bool // closed by interrupt
}

// errNotSent fails a write to a connection that interrupt closed: nothing
// of the command left this process.
var errNotSent = errors.New("bridge: publish interrupted before it was sent")

func (t *trackedConn) Write(p []byte) (int, error) {
	if t.cut.Load() {
		return 0, &dialError{errNotSent}
	}
	return t.Conn.Write(p)
}

func (t *trackedConn) Close() error {
	t.set.mu.Lock()
	delete(t.set.conns, t.Conn)
	t.set.mu.Unlock()
	return t.Conn.Close()
}

// trackedSysConn is a trackedConn over a connection with a file descriptor.
type trackedSysConn struct {
	*trackedConn
	sc syscall.Conn
}

// SyscallConn fails once the connection is cut, so that go-redis's health
// check discards it instead of using it.
func (t *trackedSysConn) SyscallConn() (syscall.RawConn, error) {
	if t.cut.Load() {
		return nil, errNotSent
	}
	return t.sc.SyscallConn()
}

// dialError marks a command that was never sent: its connection was never
// made, or was cut before the write.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// outcomeUnknown reports whether a publish that failed with err may still
// have been applied by the server: its command may have been written, and
// no reply said what became of it (a timeout, a connection reset). A dial
// error, a closed client, an exhausted pool, a ctx that had ended before
// anything was sent, and an error reply from the server are known failures.
func outcomeUnknown(err error) bool {
	var de *dialError
	var re redis.Error
	var ae *AdapterError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ae): // an adapter says which it was
		return ae.Unknown
	case errors.Is(err, ErrOutcomeUnknown):
		return true
	case errors.As(err, &de), errors.As(err, &re),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted):
		return false
	}
	return true
}
