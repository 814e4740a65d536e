package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A Batch's Flush writes its pipeline and waits for the replies: events
// that come due meanwhile wait a whole round trip for the next write,
// which at a few thousand events a second per instance was most of a load
// test's send delay (p50 0.24 ms of 0.60 under --batch-window=-1). A Pipe
// writes each batch at once and reads the replies on a goroutine of its
// own, as rueidis's auto-pipelining does: a batch waits only for the write
// before it. go-redis cannot: a pipeline's Exec holds its connection until
// the last reply, and two connections would reorder an instance's events
// on the server. The Pipe therefore speaks RESP itself, as the subscriber
// connection does, on one connection of its own.

// ErrPipeUnsupported is returned by NewPipe for a bridge whose publishes
// take another path than one server's PUBLISH: a cluster (each channel's
// node), Sentinel (the master can move under the connection), streams,
// sharded channels, or an external instance.
var ErrPipeUnsupported = errors.New("bridge: a pipe publishes to one server's PUBLISH only")

// maxPipeInFlight bounds the batches written and not yet answered: past
// it Send waits, so that a server that stops answering holds a bounded
// amount of the publisher's memory.
const maxPipeInFlight = 1024

// Pipe publishes batches without waiting for their replies; see NewPipe.
// Send is for one goroutine; the callback runs on the pipe's own.
type Pipe struct {
	b    *Bridge
	done func(*PipeBatch)

	queue    chan *PipeBatch // written (or failed) batches, in order
	inFlight atomic.Int32    // sent and not yet settled
	free     chan *PipeBatch // settled ones, for reuse
	wg       sync.WaitGroup  // the reader

	mu     sync.Mutex // guards conn against interrupt
	conn   *pipeConn  // redialled by the Send after it died
	closed bool
	wbuf   []byte // the write being built, reused
	stop   func() bool
}

// pipeConn is one connection of a Pipe; dead once a read or write on it
// failed, after which it is closed and never written again.
type pipeConn struct {
	sc   *subConn
	dead atomic.Bool
	err  atomic.Pointer[error] // why it died
}

// kill marks pc dead with err (the first cause wins) and closes it, which
// fails a read or write in progress on it at once.
func (pc *pipeConn) kill(err error) {
	pc.err.CompareAndSwap(nil, &err)
	pc.dead.Store(true)
	_ = pc.sc.conn.Close()
}

// cause is why pc died.
func (pc *pipeConn) cause() error {
	if e := pc.err.Load(); e != nil {
		return *e
	}
	return errPipeClosed
}

// errPipeClosed is the cause of a connection the pipe closed itself.
var errPipeClosed = errors.New("bridge: pipe closed")

// PipeBatch is one batch a Pipe sent: its Outcome, its round trip, and
// the caller's Cookie. Valid during the callback only.
type PipeBatch struct {
	Outcome
	// Cookie is what Send was given with the batch.
	Cookie int64
	// Seqs are the batch's sequence numbers, in order.
	Seqs []uint64
	// WrittenNs is when its write began, and RepliedNs when its last
	// reply was read (0 when it was not written, or got no reply), on
	// this process's clock.
	WrittenNs, RepliedNs int64
	// Err describes its first failure; nil when every publish was accepted.
	Err error

	conn   *pipeConn // written on; nil when it failed before its write
	errs   []error   // each publish's, while settling
	preset bool      // errs were set without a reply to read (see fail)
}

// Accepted is how many of the batch's publishes Redis accepted.
func (pb *PipeBatch) Accepted() int { return len(pb.Seqs) - len(pb.failed) }

// NewPipe connects a pipe publishing through b, which must be connected,
// and calls done with each batch Send was given, in the order sent, once
// that batch's replies came (or its connection failed), on a goroutine of
// the pipe's that Close ends: close the pipe before the bridge. done may
// Send, as long as fewer than maxPipeInFlight batches are in flight. ctx
// bounds the pipe's life: when it ends, the connection is closed, and the
// batches waiting for replies end with an unknown outcome.
func (b *Bridge) NewPipe(ctx context.Context, done func(*PipeBatch)) (*Pipe, error) {
	switch {
	case b.opts.Cluster, b.sentinel, b.streamsEnabled(), b.routed(), b.ext != nil:
		return nil, ErrPipeUnsupported
	}
	if _, err := b.publisher(); err != nil {
		return nil, err
	}
	// Connected now, not at the first Send: a server that refuses the
	// connection (at its maxclients, say) says so before anything is
	// measured, and the caller can publish another way.
	sc, err := b.dialRESP(ctx, "", RolePublisher, 0)
	if err != nil {
		return nil, b.connectError("pipe", err)
	}
	// The pipe is the publisher's connection from now on: the go-redis
	// client, and its idle connection, are replaced by one that dials at
	// its first command (Publish, Flush or Ping), so that an instance
	// holds two connections while it pipes (a server's maxclients counts
	// them). A publish through the old client at this moment fails as
	// closed: make the pipe before publishing otherwise.
	if old := b.pub.Swap(b.newPublisherClient()); old != nil {
		_ = old.Close()
	}
	p := &Pipe{b: b, done: done, queue: make(chan *PipeBatch, maxPipeInFlight), free: make(chan *PipeBatch, maxPipeInFlight+1),
		conn: &pipeConn{sc: sc}}
	p.stop = context.AfterFunc(ctx, p.interrupt)
	p.wg.Add(1)
	go p.read()
	return p, nil
}

// interrupt closes the pipe's connection: the batches awaiting replies
// end unknown, and the next Send dials again.
func (p *Pipe) interrupt() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.kill(context.Canceled)
	}
}

// Send writes bt's events as PUBLISH commands in one write and empties bt,
// without waiting for the replies: they are settled on the pipe's
// goroutine, which hands the batch to the callback with cookie. A batch
// that could not be written (no connection, ctx ended, an invalid Add)
// fails whole, as a known failure, through the callback too, in its turn.
// Send returns the error of its write, if any.
func (p *Pipe) Send(ctx context.Context, bt *Batch, cookie int64) error {
	pb := p.take()
	pb.Cookie = cookie
	pb.Seqs = append(pb.Seqs, bt.seqs...)
	defer bt.reset()
	var err error
	switch {
	case bt.err != nil:
		err, bt.err = bt.err, nil
	case len(bt.ends) == 0:
		p.recycle(pb)
		return nil
	default:
		err = ctx.Err()
	}
	if err == nil {
		err = p.write(ctx, bt, pb)
	}
	if err != nil && !pb.preset {
		pb.fail(err, false)
	}
	p.inFlight.Add(1)
	select {
	case p.queue <- pb: // full: maxPipeInFlight batches await replies
	case <-ctx.Done():
		// Killing the connection makes the reader settle what is queued
		// at once; this batch is left to read its replies, if any came.
		p.interrupt()
		p.queue <- pb
	}
	return err
}

// write writes the batch on the pipe's connection, dialling one first if
// it has none or its last one died.
func (p *Pipe) write(ctx context.Context, bt *Batch, pb *PipeBatch) error {
	p.mu.Lock()
	pc := p.conn
	if p.closed {
		p.mu.Unlock()
		return errPipeClosed
	}
	p.mu.Unlock()
	if pc == nil || pc.dead.Load() {
		sc, err := p.b.dialRESP(ctx, "", RolePublisher, 0)
		if err != nil {
			return &dialError{err}
		}
		pc = &pipeConn{sc: sc}
		p.mu.Lock()
		p.conn = pc
		p.mu.Unlock()
		if ctx.Err() != nil { // interrupt may have missed it
			pc.kill(ctx.Err())
		}
	}
	w := p.wbuf[:0]
	start := 0
	for i, end := range bt.ends {
		w = appendPublish(w, bt.chans[i], bt.buf[start:end])
		start = end
	}
	p.wbuf = w
	if t := p.b.opts.PublishTimeout; t > 0 {
		_ = pc.sc.conn.SetWriteDeadline(time.Now().Add(t))
	}
	writeNs := time.Now().UnixNano()
	n, err := pc.sc.conn.Write(w)
	if err != nil {
		pc.kill(err)
		if n == 0 {
			return &dialError{err} // nothing of it left this process
		}
		pb.fail(err, true)
		return err
	}
	pb.conn, pb.WrittenNs = pc, writeNs
	return nil
}

// InFlight is how many batches were sent and not yet handed to the
// callback: the callback sees the count without its own batch, so that a
// caller holding writes while one is unanswered can send the next from it.
func (p *Pipe) InFlight() int { return int(p.inFlight.Load()) }

// appendPublish appends PUBLISH channel payload in RESP.
func appendPublish(w []byte, channel string, payload []byte) []byte {
	w = append(w, "*3\r\n$7\r\nPUBLISH\r\n$"...)
	w = strconv.AppendInt(w, int64(len(channel)), 10)
	w = append(w, '\r', '\n')
	w = append(w, channel...)
	w = append(w, "\r\n$"...)
	w = strconv.AppendInt(w, int64(len(payload)), 10)
	w = append(w, '\r', '\n')
	w = append(w, payload...)
	return append(w, '\r', '\n')
}

// fail presets every publish of pb to err, unknown or not.
func (pb *PipeBatch) fail(err error, unknown bool) {
	if unknown {
		err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	pb.preset = true
	pb.errs = pb.errs[:0]
	for range pb.Seqs {
		pb.errs = append(pb.errs, err)
	}
}

// take returns an empty PipeBatch.
func (p *Pipe) take() *PipeBatch {
	select {
	case pb := <-p.free:
		return pb
	default:
		return &PipeBatch{}
	}
}

// recycle empties pb for reuse.
func (p *Pipe) recycle(pb *PipeBatch) {
	pb.Outcome.reset()
	pb.Seqs, pb.errs, pb.preset = pb.Seqs[:0], pb.errs[:0], false
	pb.conn, pb.Err, pb.WrittenNs, pb.RepliedNs = nil, nil, 0, 0
	select {
	case p.free <- pb:
	default:
	}
}

// read settles each queued batch in order: its replies read from the
// connection it was written on, or its preset failure.
func (p *Pipe) read() {
	defer p.wg.Done()
	for pb := range p.queue {
		if !pb.preset {
			p.readReplies(pb)
		}
		_, pb.Err = pb.settle(p.b, pb.Seqs, pb.errs)
		p.inFlight.Add(-1) // before done, which may Send the next
		p.done(pb)
		p.recycle(pb)
	}
}

// readReplies reads one reply per publish of pb; when its connection dies
// first, the publishes without a reply end unknown. Replies already read
// into the buffer still count: a connection killed for a later batch's
// failed write answered this one.
func (p *Pipe) readReplies(pb *PipeBatch) {
	pc := pb.conn
	pb.errs = pb.errs[:0]
	if t := p.b.opts.PublishTimeout; t > 0 {
		_ = pc.sc.conn.SetReadDeadline(time.Unix(0, pb.WrittenNs).Add(t))
	}
	for range pb.Seqs {
		line, err := pc.sc.line()
		switch {
		case err != nil:
			pc.kill(err)
			pb.errs = append(pb.errs, fmt.Errorf("%w: %w", ErrOutcomeUnknown, pc.cause()))
		case line[0] == ':':
			pb.errs = append(pb.errs, nil)
		case line[0] == '-':
			pb.errs = append(pb.errs, replyError(string(line[1:])))
		default:
			pc.kill(errProtocol)
			pb.errs = append(pb.errs, fmt.Errorf("%w: %w", ErrOutcomeUnknown, errProtocol))
		}
	}
	if !pc.dead.Load() {
		pb.RepliedNs = time.Now().UnixNano()
	}
}

// replyError is an error reply of the server's: a known failure (see
// outcomeUnknown), classified by its text as go-redis's are.
type replyError string

func (e replyError) Error() string { return string(e) }

// RedisError makes replyError a redis.Error.
func (replyError) RedisError() {}

// Close waits for the replies of every batch sent, settles them, ends the
// pipe's goroutine and closes its connection. When ctx ends first, the
// connection is closed and what still awaited a reply ends unknown.
func (p *Pipe) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.queue)
	stop := context.AfterFunc(ctx, p.interrupt)
	p.wg.Wait()
	stop()
	p.stop()
	p.mu.Lock()
	if p.conn != nil {
		p.conn.kill(errPipeClosed)
		p.conn = nil
	}
	p.mu.Unlock()
	return ctx.Err()
}
