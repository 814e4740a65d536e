package bridge

import (
	"context"
	"fmt"
	"time"
)

// Batch collects events to publish in one pipelined round trip. Synchronous
// PUBLISH tops out at a few tens of thousands per second on a loopback
// Redis whatever the number of goroutines; one pipeline per batch is what
// reaches hundreds of thousands. A Batch belongs to one goroutine and is
// reused: Flush empties it.
type Batch struct {
	b     *Bridge
	buf   []byte   // every envelope of the batch, back to back
	ends  []int    // end offset in buf of each envelope
	chans []string // channel of each envelope
	seqs  []uint64 // sequence number of each envelope
	// payloads are the envelopes as slices of buf, for sharded publishing;
	// errs each publish's outcome, reused from flush to flush.
	payloads [][]byte
	errs     []error
	err      error // the first invalid Add, returned by Flush
	// Outcome is the last Flush's.
	Outcome
}

// Outcome is what became of a batch's publishes, for a load test's
// accounting: which were not accepted, why, and which of those may still
// have been delivered. A Batch holds its last Flush's; a Pipe hands each
// batch's to its callback once its replies came.
type Outcome struct {
	// failed holds the sequence numbers not accepted, unknown the part of
	// them whose outcome is unknown, and failErrs each one's error.
	failed   []uint64
	failErrs []error
	unknown  int
}

// reset empties o for the next batch, keeping its buffers.
func (o *Outcome) reset() {
	o.failed, o.failErrs, o.unknown = o.failed[:0], o.failErrs[:0], 0
}

// NewBatch returns an empty batch publishing through b.
func (b *Bridge) NewBatch() *Batch {
	// It grows to the largest batch it holds: a bridge that publishes
	// little keeps a small one.
	return &Batch{b: b, buf: make([]byte, 0, 4<<10)}
}

// SkipSequence makes the bridge's next sequence number base+1, for a load
// test that tells two phases apart by sequence number alone (a warm-up's
// events below base, the measured ones above; no clock involved). It
// must not lower the sequence: base is at least the last one taken.
// Not for applications: receivers that track sequence numbers see a gap.
func (b *Bridge) SkipSequence(base uint64) error {
	for {
		cur := b.seq.Load()
		if base < cur {
			return fmt.Errorf("bridge: sequence %d is past %d already", cur, base)
		}
		if b.seq.CompareAndSwap(cur, base) {
			return nil
		}
	}
}

// Len is the number of events waiting in the batch.
func (bt *Batch) Len() int { return len(bt.ends) }

// Add appends one event, sent now, and returns the sequence number it
// carries. data must be one JSON value. An invalid eventType (see
// Subscribe) takes no sequence number: Add returns 0 and the next Flush
// fails with the reason.
func (bt *Batch) Add(eventType string, data []byte) uint64 {
	return bt.AddAt(eventType, data, time.Now().UnixNano())
}

// AddAt is Add with the send time the event's latency counts from, for
// load tests: they pass the event's intended send time, so that a
// publisher running late shows as latency instead of hiding it
// (coordinated omission).
func (bt *Batch) AddAt(eventType string, data []byte, sentNs int64) uint64 {
	return bt.AddTimed(eventType, data, sentNs, 0)
}

// AddTimed is AddAt with the time the event is handed to the connection,
// pubNs, written in its envelope as pub_ns: a receiver then splits the
// event's latency into the publisher's delay (pubNs - sentNs) and the
// transit (its receipt - pubNs), which is the network's, Redis's and the
// subscriber's. A load test adds a batch just before flushing it, so the
// time it reads once for the batch is its write to within the envelopes'
// building. 0 writes none, as AddAt.
func (bt *Batch) AddTimed(eventType string, data []byte, sentNs, pubNs int64) uint64 {
	if !validName(eventType) {
		if bt.err == nil {
			bt.err = fmt.Errorf("bridge: invalid event type %q", eventType)
		}
		return 0
	}
	seq := bt.b.seq.Add(1)
	bt.buf = appendEnvelope(bt.buf, bt.b.opts.InstanceID, seq, sentNs, pubNs, bt.b.tag(seq, sentNs, pubNs), eventType, data)
	bt.ends = append(bt.ends, len(bt.buf))
	bt.chans = append(bt.chans, bt.b.channelFor(eventType, seq))
	bt.seqs = append(bt.seqs, seq)
	return seq
}

// Flush publishes the batch in one pipeline, never retried, and empties
// it. It returns how many publishes were not accepted, whether they failed
// or their outcome is unknown (see Unknown); err describes the first
// failure. The bridge's Published, PublishErrors, PublishUnknown and
// Errors count each event.
//
// When ctx ends during the round trip, the round trip is interrupted at
// once (see PublishRaw); when it has ended before, nothing is sent.
func (bt *Batch) Flush(ctx context.Context) (failed int, err error) {
	n := len(bt.ends)
	bt.Outcome.reset()
	if bt.err != nil {
		err, bt.err = bt.err, nil
		defer bt.reset()
		return bt.failAll(bt.b, bt.seqs, err, false)
	}
	if n == 0 {
		return 0, nil
	}
	defer bt.reset()
	if x := bt.b.ext; x != nil {
		if err := bt.b.extReady(ctx); err != nil {
			return bt.failAll(bt.b, bt.seqs, err, false) // nothing was sent
		}
		return bt.settle(bt.b, bt.seqs, x.publishAll(ctx, bt.b.opts.PublishTimeout, bt.chans, bt.split()))
	}
	pub, err := bt.b.publisher()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return bt.failAll(bt.b, bt.seqs, err, false) // nothing was sent
	}
	stop := context.AfterFunc(ctx, bt.b.pconns.interrupt)
	var errs []error
	if bt.b.routed() {
		errs = bt.b.spublishAll(ctx, bt.chans, bt.split())
	} else {
		pipe := pub.Pipeline()
		start := 0
		for i, end := range bt.ends {
			// The slices stay valid: buf is not appended to until reset.
			if bt.b.streamsEnabled() {
				bt.b.xadd(ctx, pipe, bt.chans[i], bt.buf[start:end])
			} else {
				pipe.Publish(ctx, bt.chans[i], bt.buf[start:end])
			}
			start = end
		}
		cmds, perr := pipe.Exec(ctx)
		bt.errs = bt.errs[:0]
		failed := 0
		for _, c := range cmds {
			bt.errs = append(bt.errs, c.Err())
			if c.Err() != nil {
				failed++
			}
		}
		errs = bt.errs
		if perr != nil && failed == 0 {
			stop()
			return bt.failAll(bt.b, bt.seqs, perr, outcomeUnknown(perr)) // failed with no reply at all
		}
	}
	stop()
	return bt.settle(bt.b, bt.seqs, errs)
}

// split returns the batch's envelopes as slices of its buffer.
func (bt *Batch) split() [][]byte {
	bt.payloads = bt.payloads[:0]
	start := 0
	for _, end := range bt.ends {
		bt.payloads = append(bt.payloads, bt.buf[start:end])
		start = end
	}
	return bt.payloads
}

// settle counts each publish's outcome, errs[i] that of seqs[i] (nil:
// accepted), into o and b's counters, and returns how many were not
// accepted and the first error.
func (o *Outcome) settle(b *Bridge, seqs []uint64, errs []error) (failed int, err error) {
	var first error
	for i, cerr := range errs {
		if cerr != nil {
			failed++
			o.failed = append(o.failed, seqs[i])
			o.failErrs = append(o.failErrs, cerr)
			if outcomeUnknown(cerr) {
				o.unknown++
			}
			if first == nil {
				first = cerr
			}
		}
	}
	o.count(b, len(seqs), failed)
	if failed > 0 {
		err = b.closedOr(fmt.Errorf("bridge: publish: %d of %d not accepted (%d with an unknown outcome): %w", failed, len(seqs), o.unknown, first))
	}
	return failed, err
}

// failAll fails every publish of seqs with err; unknown says whether they
// may have been sent.
func (o *Outcome) failAll(b *Bridge, seqs []uint64, err error, unknown bool) (int, error) {
	n := len(seqs)
	o.failed = append(o.failed, seqs...)
	for range n {
		o.failErrs = append(o.failErrs, err)
	}
	if unknown {
		o.unknown = n
	}
	o.count(b, n, n)
	if n == 0 {
		return 0, err
	}
	return n, fmt.Errorf("bridge: publish: %d of %d not accepted: %w", n, n, err)
}

// count adds a batch's outcome to the bridge's counters.
func (o *Outcome) count(b *Bridge, n, failed int) {
	b.published.Add(uint64(n - failed))
	b.publishUnknown.Add(uint64(o.unknown))
	b.publishErrors.Add(uint64(failed - o.unknown))
	b.errs.Add(uint64(failed))
}

// Failed returns the sequence numbers of the events not accepted, in
// order: a Batch's are valid until its next Flush, a PipeBatch's during
// its callback. A load test uses them to tell a message lost in transit
// from one that was never accepted.
func (o *Outcome) Failed() []uint64 { return o.failed }

// FailedErrors returns why each of Failed was not accepted, in the same
// order: the server's error reply (a refusal such as NOPERM), or the
// connection's error.
func (o *Outcome) FailedErrors() []error { return o.failErrs }

// Unknown is how many of Failed have an unknown outcome: sent, with no
// reply, so possibly delivered.
func (o *Outcome) Unknown() int { return o.unknown }

func (bt *Batch) reset() {
	bt.buf = bt.buf[:0]
	bt.ends = bt.ends[:0]
	bt.chans = bt.chans[:0]
	bt.seqs = bt.seqs[:0]
}
