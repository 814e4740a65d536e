package harness

// maxGaps bounds the missing ranges one tracker remembers. Past it the
// oldest range is forgotten: its messages stay counted as lost, and an
// arrival below the forgotten range's end is counted as untracked, neither
// delivered nor duplicate, since which it is can no longer be told. Loss is
// then overstated, never understated.
// Sixty-four ranges are far more than a healthy run produces, and keep a
// 1000×1000 matrix of trackers small.
const maxGaps = 64

// In sharded pub/sub a source's messages reach a receiver over one
// connection per shard, and cross each other in flight: at thousands of
// messages per second per source, hundreds of ranges are open at once, all
// filled a moment later. Sixty-four would forget them and count received
// messages as lost (measured: 4.4 M of 16 M at the highest rate over 3
// shards). So a sharded run's trackers keep as many ranges as a budget
// for all n×n of them allows, up to maxGapsSharded.
const (
	maxGapsSharded = 16384
	gapBudget      = 256 << 20 // bytes, for every tracker of a run together
)

// gapLimit is one tracker's bound on its ranges for a run of n instances.
func gapLimit(n int, sharded bool) int {
	if !sharded || n < 1 {
		return maxGaps
	}
	per := gapBudget / (16 * n * n) // a seqRange is 16 bytes
	return max(maxGaps, min(per, maxGapsSharded))
}

// seqRange is an inclusive range of sequence numbers not yet received.
type seqRange struct{ lo, hi uint64 }

// seqTracker follows one source's sequence numbers as one receiver sees
// them. Publishers number from 1 and a healthy pub/sub connection delivers
// in order, so the common case is one comparison and one store; only
// irregularities cost memory, and that memory is bounded by maxGaps.
// Nothing grows with the number of messages. A run keeps n×n of them, so
// a tracker is 16 bytes until its source first arrives out of order: 80
// bytes each were 80 MB of a 1000-instance run.
type seqTracker struct {
	highest uint64       // highest sequence number seen
	x       *trackerRare // nil until the first gap, repeat or late arrival
}

// trackerRare is the rest of a tracker, made on its first irregularity.
type trackerRare struct {
	duplicates uint64
	outOfOrder uint64     // arrived below highest, filling a gap
	untracked  uint64     // arrived below floor: late or duplicate, undecidable
	forgotten  uint64     // messages in ranges evicted from gaps
	floor      uint64     // sequence numbers below it are no longer tracked
	gaps       []seqRange // ascending, disjoint, all below highest
}

// none is the rare part of a tracker that has none: all zero.
var none trackerRare

// r is the tracker's rare part, for reading: never nil.
func (t *seqTracker) r() *trackerRare {
	if t.x == nil {
		return &none
	}
	return t.x
}

// rare is the tracker's rare part, made if need be, for writing.
func (t *seqTracker) rare() *trackerRare {
	if t.x == nil {
		t.x = new(trackerRare)
	}
	return t.x
}

// unique is how many distinct sequence numbers were seen: all up to the
// highest but those in gaps and those forgotten with evicted gaps.
func (t *seqTracker) unique() uint64 {
	x := t.r()
	n := t.highest - x.forgotten
	for _, g := range x.gaps {
		n -= g.hi - g.lo + 1
	}
	return n
}

// observe records one arrival, remembering at most maxGaps ranges.
func (t *seqTracker) observe(seq uint64) { t.observeWithin(seq, maxGaps) }

// observeWithin records one arrival, remembering at most limit ranges.
func (t *seqTracker) observeWithin(seq uint64, limit int) {
	switch {
	case seq == t.highest+1:
		t.highest = seq
	case seq > t.highest+1:
		t.rare().addGap(seqRange{t.highest + 1, seq - 1}, limit)
		t.highest = seq
	default:
		x := t.rare()
		switch {
		case seq < x.floor:
			// Below what is tracked: late or duplicate, undecidable.
			// Counting it as delivered could count one message twice and
			// push delivery past what was sent; it stays missing instead.
			x.untracked++
		case x.fill(seq):
			x.outOfOrder++
		default:
			x.duplicates++
		}
	}
}

func (t *trackerRare) addGap(r seqRange, limit int) {
	if len(t.gaps) >= limit {
		old := t.gaps[0]
		t.forgotten += old.hi - old.lo + 1
		t.floor = old.hi + 1
		copy(t.gaps, t.gaps[1:])
		t.gaps = t.gaps[:len(t.gaps)-1]
	}
	t.gaps = append(t.gaps, r)
}

// fill removes seq from the gap holding it and reports whether one did.
// The gaps are sorted, so it finds it by binary search: a sharded tracker
// may hold thousands.
func (t *trackerRare) fill(seq uint64) bool {
	lo, hi := 0, len(t.gaps)
	for lo < hi { // the first gap whose hi is at least seq
		m := int(uint(lo+hi) >> 1)
		if t.gaps[m].hi < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if i := lo; i < len(t.gaps) && seq >= t.gaps[i].lo {
		g := t.gaps[i]
		switch {
		case g.lo == g.hi:
			t.gaps = append(t.gaps[:i], t.gaps[i+1:]...)
		case seq == g.lo:
			t.gaps[i].lo++
		case seq == g.hi:
			t.gaps[i].hi--
		default: // split; may exceed maxGaps by one until the next addGap
			t.gaps = append(t.gaps, seqRange{})
			copy(t.gaps[i+2:], t.gaps[i+1:])
			t.gaps[i] = seqRange{g.lo, seq - 1}
			t.gaps[i+1] = seqRange{seq + 1, g.hi}
		}
		return true
	}
	return false
}

// missing returns the sequence numbers not received out of 1..last, where
// last is the source's final sequence number: the gaps plus the tail.
func (t *seqTracker) missing(last uint64) uint64 {
	x := t.r()
	n := x.forgotten
	for _, g := range x.gaps {
		n += g.hi - g.lo + 1
	}
	if last > t.highest {
		n += last - t.highest
	}
	return n
}

// receivedIn returns how many sequence numbers of lo..hi are counted in
// unique. Below floor, where the forgotten ranges are not known any more,
// it assumes all of them: the caller subtracts this from unique, and an
// overstatement there can only understate delivery.
func (t *seqTracker) receivedIn(lo, hi uint64) uint64 {
	if lo > hi || lo > t.highest {
		return 0
	}
	hi = min(hi, t.highest)
	n := hi - lo + 1
	for _, g := range t.r().gaps {
		if a, b := max(g.lo, lo), min(g.hi, hi); a <= b {
			n -= b - a + 1
		}
	}
	return n
}
