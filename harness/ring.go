package harness

import "sync/atomic"

// ring is a single-producer, single-consumer queue of event numbers: the
// scheduler pushes, one instance's publisher pops. Lock-free and without
// allocation, so handing an event to its publisher costs two atomic
// operations rather than a channel send.
type ring struct {
	head atomic.Uint64 // next slot to read; written by the consumer
	_    [56]byte      // keep head and tail on separate cache lines
	tail atomic.Uint64 // next slot to write; written by the producer
	_    [56]byte
	buf  []uint64 // length a power of two
	mask uint64
}

// newRing sizes a ring for a quarter second of one instance's share of the
// rate, between 256 and 65536 slots: large enough that the scheduler rarely
// waits for a publisher, small enough that 1000 instances cost little.
func newRing(perInstanceRate float64) *ring {
	size := uint64(256)
	for float64(size) < perInstanceRate/4 && size < 1<<16 {
		size <<= 1
	}
	return &ring{buf: make([]uint64, size), mask: size - 1}
}

// push adds k and reports false when the ring is full.
func (r *ring) push(k uint64) bool {
	t := r.tail.Load()
	if t-r.head.Load() == uint64(len(r.buf)) {
		return false
	}
	r.buf[t&r.mask] = k
	r.tail.Store(t + 1) // publishes the slot to the consumer
	return true
}

// popInto moves up to len(dst) items into dst and returns how many.
func (r *ring) popInto(dst []uint64) int {
	h := r.head.Load()
	n := int(min(r.tail.Load()-h, uint64(len(dst))))
	for i := 0; i < n; i++ {
		dst[i] = r.buf[(h+uint64(i))&r.mask]
	}
	r.head.Store(h + uint64(n)) // frees the slots for the producer
	return n
}
