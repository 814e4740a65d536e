package bridge

import (
	"context"
	"fmt"
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
	// failed holds the sequence numbers the last Flush failed to publish.
	failed []uint64
}

// NewBatch returns an empty batch publishing through b.
func (b *Bridge) NewBatch() *Batch {
	return &Batch{b: b, buf: make([]byte, 0, 64<<10)}
}

// Len is the number of events waiting in the batch.
func (bt *Batch) Len() int { return len(bt.ends) }

// Add appends one event and returns the sequence number it carries.
// sentNs is the time the event's latency counts from: a load test passes
// the event's intended send time, so that a publisher running late shows
// as latency instead of hiding it (coordinated omission). eventType must be
// valid (see Subscribe) and data one JSON value.
func (bt *Batch) Add(eventType string, data []byte, sentNs int64) uint64 {
	seq := bt.b.seq.Add(1)
	bt.buf = AppendEnvelope(bt.buf, bt.b.opts.InstanceID, seq, sentNs, eventType, data)
	bt.ends = append(bt.ends, len(bt.buf))
	bt.chans = append(bt.chans, bt.b.Channel(eventType))
	bt.seqs = append(bt.seqs, seq)
	return seq
}

// Flush publishes the batch in one pipeline, never retried, and empties
// it. It returns how many publishes failed; err describes the first
// failure. The bridge's Published, PublishErrors and Errors count each
// event.
func (bt *Batch) Flush(ctx context.Context) (failed int, err error) {
	n := len(bt.ends)
	bt.failed = bt.failed[:0]
	if n == 0 {
		return 0, nil
	}
	defer bt.reset()
	if bt.b.opts.DisablePublishing {
		bt.failed = append(bt.failed, bt.seqs...)
		return n, ErrPublishingDisabled
	}
	if bt.b.pub == nil {
		bt.failed = append(bt.failed, bt.seqs...)
		return n, ErrNotConnected
	}
	pipe := bt.b.pub.Pipeline()
	start := 0
	for i, end := range bt.ends {
		// The slices stay valid: buf is not appended to until reset.
		pipe.Publish(ctx, bt.chans[i], bt.buf[start:end])
		start = end
	}
	cmds, perr := pipe.Exec(ctx)
	for i, c := range cmds {
		if c.Err() != nil {
			failed++
			bt.failed = append(bt.failed, bt.seqs[i])
		}
	}
	if perr != nil && failed == 0 {
		failed = n // the pipeline failed before any reply
		bt.failed = append(bt.failed, bt.seqs...)
	}
	bt.b.published.Add(uint64(n - failed))
	if failed > 0 {
		bt.b.publishErrors.Add(uint64(failed))
		bt.b.errs.Add(uint64(failed))
		err = fmt.Errorf("publish: %d of %d failed: %w", failed, n, perr)
	}
	return failed, err
}

// Failed returns the sequence numbers of the events the last Flush failed
// to publish, in order; valid until the next Flush. A load test uses them
// to tell a message lost in transit from one that was never accepted.
func (bt *Batch) Failed() []uint64 { return bt.failed }

func (bt *Batch) reset() {
	bt.buf = bt.buf[:0]
	bt.ends = bt.ends[:0]
	bt.chans = bt.chans[:0]
	bt.seqs = bt.seqs[:0]
}
