package harness

import (
	"sync"
	"testing"
)

func TestRingOrderAndCapacity(t *testing.T) {
	r := newRing(0)
	if len(r.buf) != 256 {
		t.Fatalf("size %d", len(r.buf))
	}
	for k := uint64(0); k < 256; k++ {
		if !r.push(k) {
			t.Fatalf("push %d refused below capacity", k)
		}
	}
	if r.push(256) {
		t.Fatal("push accepted past capacity")
	}
	out := make([]uint64, 100)
	if n := r.popInto(out); n != 100 || out[0] != 0 || out[99] != 99 {
		t.Fatalf("pop %d: %v", n, out[:3])
	}
	if !r.push(256) {
		t.Fatal("push refused after pop")
	}
	if got := newRing(1e6); len(got.buf) != 1<<16 {
		t.Fatalf("large ring %d", len(got.buf))
	}
	if got := newRing(4000); len(got.buf) != 1024 {
		t.Fatalf("ring for 4000/s: %d", len(got.buf))
	}
}

// One producer and one consumer move a million numbers through a small
// ring: each arrives once, in order (run with -race).
func TestRingConcurrent(t *testing.T) {
	r := newRing(0)
	const total = 1_000_000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := uint64(0); k < total; {
			if r.push(k) {
				k++
			}
		}
	}()
	buf := make([]uint64, 64)
	var next uint64
	for next < total {
		n := r.popInto(buf)
		for _, k := range buf[:n] {
			if k != next {
				t.Fatalf("got %d, want %d", k, next)
			}
			next++
		}
	}
	wg.Wait()
}
