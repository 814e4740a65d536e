package harness

import "testing"

func track(seqs ...uint64) *seqTracker {
	var t seqTracker
	for _, s := range seqs {
		t.observe(s)
	}
	return &t
}

func TestSeqTrackerInOrder(t *testing.T) {
	tr := track(1, 2, 3, 4, 5)
	if tr.unique() != 5 || tr.r().duplicates != 0 || tr.r().outOfOrder != 0 || tr.missing(5) != 0 || len(tr.r().gaps) != 0 {
		t.Fatalf("%+v", tr)
	}
	if got := tr.missing(8); got != 3 {
		t.Fatalf("tail loss: missing(8) = %d, want 3", got)
	}
}

func TestSeqTrackerGapsDuplicatesLateArrivals(t *testing.T) {
	tr := track(1, 2, 5, 6, 2, 4, 9, 3, 3, 10)
	// unique: 1 2 5 6 4 9 3 10 = 8; duplicates: 2, 3; late: 4, 3; gaps left: 7-8.
	if tr.unique() != 8 || tr.r().duplicates != 2 || tr.r().outOfOrder != 2 {
		t.Fatalf("unique %d dup %d ooo %d", tr.unique(), tr.r().duplicates, tr.r().outOfOrder)
	}
	if got := tr.missing(10); got != 2 {
		t.Fatalf("missing(10) = %d, want 2 (7 and 8)", got)
	}
	if len(tr.r().gaps) != 1 || tr.r().gaps[0] != (seqRange{7, 8}) {
		t.Fatalf("gaps %v", tr.r().gaps)
	}
}

func TestSeqTrackerSplitsGap(t *testing.T) {
	tr := track(1, 10, 5)
	if len(tr.r().gaps) != 2 || tr.r().gaps[0] != (seqRange{2, 4}) || tr.r().gaps[1] != (seqRange{6, 9}) {
		t.Fatalf("gaps %v", tr.r().gaps)
	}
	if tr.missing(10) != 7 || tr.unique() != 3 || tr.r().outOfOrder != 1 {
		t.Fatalf("%+v", tr)
	}
}

// Memory is bounded: past maxGaps the oldest gap is forgotten but still
// counted as missing.
func TestSeqTrackerBoundsGaps(t *testing.T) {
	var tr seqTracker
	seq := uint64(0)
	for i := 0; i < maxGaps+10; i++ {
		seq += 2 // every other message lost
		tr.observe(seq)
	}
	if len(tr.r().gaps) != maxGaps {
		t.Fatalf("%d gaps kept, want %d", len(tr.r().gaps), maxGaps)
	}
	if got, want := tr.missing(seq), uint64(maxGaps+10); got != want {
		t.Fatalf("missing %d, want %d", got, want)
	}
	// A late arrival from a forgotten gap cannot be told from a duplicate:
	// it is neither delivered nor duplicate, and the loss stays counted.
	tr.observe(1)
	if tr.missing(seq) != maxGaps+10 || tr.r().untracked != 1 || tr.r().outOfOrder != 0 || tr.r().duplicates != 0 || tr.unique() != maxGaps+10 {
		t.Fatalf("after late arrival: %+v missing %d", tr, tr.missing(seq))
	}
}

// receivedIn counts the sequence numbers of a range that arrived: all but
// the gaps and what lies beyond the highest seen.
func TestSeqTrackerReceivedIn(t *testing.T) {
	tr := track(1, 2, 5, 6, 9) // gaps 3-4, 7-8
	for _, c := range []struct{ lo, hi, want uint64 }{
		{1, 9, 5}, {3, 4, 0}, {2, 5, 2}, {6, 12, 2}, {10, 12, 0}, {1, 1, 1}, {4, 3, 0},
	} {
		if got := tr.receivedIn(c.lo, c.hi); got != c.want {
			t.Errorf("receivedIn(%d, %d) = %d, want %d", c.lo, c.hi, got, c.want)
		}
	}
}

// Sharded delivery interleaves one source's messages from several
// connections: thousands of ranges open at once, all filled a moment
// later. Within its limit the tracker forgets none, finds each by binary
// search, and ends exact.
func TestTrackerManyOpenGaps(t *testing.T) {
	var tr seqTracker
	const n = 6000
	limit := gapLimit(10, true)
	// Odd numbers first (3000 single-number gaps open), then the evens.
	for s := uint64(1); s <= n; s += 2 {
		tr.observeWithin(s, limit)
	}
	if len(tr.r().gaps) != n/2-1 || tr.r().forgotten != 0 {
		t.Fatalf("%d gaps open, %d forgotten: want %d and none", len(tr.r().gaps), tr.r().forgotten, n/2-1)
	}
	for s := uint64(n); s >= 2; s -= 2 {
		tr.observeWithin(s, limit)
	}
	if tr.missing(n) != 0 || tr.unique() != n || tr.r().outOfOrder != n/2-1 || tr.r().duplicates != 0 || len(tr.r().gaps) != 0 {
		t.Fatalf("missing %d unique %d out of order %d duplicates %d gaps %d", tr.missing(n), tr.unique(), tr.r().outOfOrder, tr.r().duplicates, len(tr.r().gaps))
	}
	tr.observeWithin(4, limit)
	if tr.r().duplicates != 1 {
		t.Fatalf("a repeat after every gap closed: %d duplicates", tr.r().duplicates)
	}
}

// The sharded bound spends a fixed budget over n×n trackers: large for a
// few instances, never below the classic bound for many.
func TestGapLimit(t *testing.T) {
	for _, c := range []struct {
		n       int
		sharded bool
		want    int
	}{{10, false, maxGaps}, {10, true, maxGapsSharded}, {100, true, gapBudget / (16 * 100 * 100)}, {1000, true, maxGaps}} {
		if got := gapLimit(c.n, c.sharded); got != c.want {
			t.Errorf("gapLimit(%d, %v) = %d, want %d", c.n, c.sharded, got, c.want)
		}
	}
}
