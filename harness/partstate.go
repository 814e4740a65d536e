package harness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/redisload/redisload/bridge"
)

// A run's accounting as data: what each publisher and receiver counted, in
// a form that survives a trip between processes, and the Result assembled
// from any number of such parts. A run split over worker processes ships
// one part per worker, and the coordinator merges them with assemble, the
// code a single process uses, so that the merged numbers are the ones one
// process would have computed: per-source trackers are kept whole (not
// summarised), and latency travels as HDR histograms, which merge exactly
// (percentiles do not).

// PartState is the accounting of some of a run's instances: the
// publishers and receivers one process ran.
type PartState struct {
	Publishers []PublisherState `json:"publishers"`
	Receivers  []ReceiverState  `json:"receivers"`
	// Series is the part's intervals, when the run collects a series.
	Series []SeriesRaw `json:"series,omitempty"`
}

// PublisherState is what one instance's publisher counted.
type PublisherState struct {
	Index     int    `json:"index"`
	Published uint64 `json:"published"`
	Errors    uint64 `json:"errors"`
	Unknown   uint64 `json:"unknown"`
	// FailedSeqs are the sequence numbers not accepted, as [lo, hi] ranges.
	FailedSeqs [][2]uint64  `json:"failed_seqs,omitempty"`
	Bursts     []ErrorBurst `json:"bursts,omitempty"`
	SendDelay  []byte       `json:"send_delay"` // HDR histogram, compressed encoding
	// PublishRTT is its publishes' round trips (compressed; absent when
	// nothing was accepted).
	PublishRTT []byte `json:"publish_rtt,omitempty"`
	// WarmPublished and WarmNotAccepted are the warm-up's outcomes.
	WarmPublished   uint64 `json:"warm_published,omitempty"`
	WarmNotAccepted uint64 `json:"warm_not_accepted,omitempty"`
	// Failures are the publishes not accepted, by reason.
	Failures map[string]uint64 `json:"failures,omitempty"`
}

// ReceiverState is what one instance's receiver counted.
type ReceiverState struct {
	Index        int            `json:"index"`
	Metrics      bridge.Metrics `json:"metrics"`
	Node         string         `json:"node,omitempty"`
	NotConnected string         `json:"not_connected,omitempty"`
	SelfReceived uint64         `json:"self_received"`
	Foreign      uint64         `json:"foreign"`
	Forged       uint64         `json:"forged"`
	Overflow     uint64         `json:"overflow"`
	Negative     uint64         `json:"negative_latency,omitempty"`
	// LastNs is when its last genuine delivery arrived (Unix ns; 0 for
	// none): a subscriber that went quiet must show so after a merge too.
	LastNs    int64  `json:"last_ns,omitempty"`
	Histogram []byte `json:"histogram"` // HDR histogram, compressed encoding
	// Transit is its deliveries' transits (compressed; absent when none
	// was stamped).
	Transit []byte `json:"transit,omitempty"`
	// WarmArrived and WarmHistogram are the warm-up's arrivals and their
	// latencies (compressed; absent when none arrived).
	WarmArrived   uint64 `json:"warm_arrived,omitempty"`
	WarmHistogram []byte `json:"warm_histogram,omitempty"`
	// Trackers are its tracker of each source, by source index, packed
	// (EncodeTrackers): a part holds n of them per receiver, which as
	// JSON objects made a 9 900-instance run ship about 5 GB per worker.
	Trackers []byte        `json:"trackers"`
	Outages  []OutageState `json:"outages,omitempty"`
	// Attrib is, per source, the outage (from 1) whose range that
	// source's next message would have closed; nil without outages.
	Attrib []int32 `json:"attrib,omitempty"`
}

// TrackerState is one receiver's tracking of one source's sequence
// numbers (see seqTracker), as EncodeTrackers packs it.
type TrackerState struct {
	Highest    uint64      `json:"highest,omitempty"`
	Unique     uint64      `json:"unique,omitempty"`
	Duplicates uint64      `json:"duplicates,omitempty"`
	OutOfOrder uint64      `json:"out_of_order,omitempty"`
	Untracked  uint64      `json:"untracked,omitempty"`
	Forgotten  uint64      `json:"forgotten,omitempty"`
	Floor      uint64      `json:"floor,omitempty"`
	Gaps       [][2]uint64 `json:"gaps,omitempty"`
}

// OutageState is one subscriber outage as its receiver recorded it.
type OutageState struct {
	Lost         time.Time   `json:"lost"`
	Reconnected  time.Time   `json:"reconnected"`
	Resubscribed time.Time   `json:"resubscribed"`
	Cause        string      `json:"cause,omitempty"`
	From         []uint64    `json:"from"`
	Gaps         [][3]uint64 `json:"gaps,omitempty"` // source, lo, hi
	DupAt        uint64      `json:"dup_at"`
	Recovered    uint64      `json:"recovered,omitempty"`
}

// partState captures the accounting of a finished run's instances.
func partState(pub *publisher, recvs []*receiver, metrics []bridge.Metrics) (PartState, error) {
	var ps PartState
	for i, ip := range pub.insts {
		if ip == nil {
			continue // another process's
		}
		enc, err := ip.delay.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err != nil {
			return PartState{}, fmt.Errorf("instance %d: send delay histogram: %w", i, err)
		}
		var rtt []byte
		if ip.rtt.TotalCount() > 0 {
			if rtt, err = ip.rtt.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err != nil {
				return PartState{}, fmt.Errorf("instance %d: publish round trip histogram: %w", i, err)
			}
		}
		s := PublisherState{Index: ip.index, Published: pub.published[i], Errors: pub.errors[i], Unknown: pub.unknown[i], PublishRTT: rtt,
			Bursts: ip.bursts, SendDelay: enc, WarmPublished: pub.warmPublished[i], WarmNotAccepted: pub.warmNotPublic[i],
			Failures: ip.failures}
		for _, f := range ip.failedSeqs {
			s.FailedSeqs = append(s.FailedSeqs, [2]uint64{f.lo, f.hi})
		}
		ps.Publishers = append(ps.Publishers, s)
	}
	for i, r := range recvs {
		if r == nil {
			continue
		}
		enc, err := r.hist.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err != nil {
			return PartState{}, fmt.Errorf("instance %d: latency histogram: %w", i, err)
		}
		s := ReceiverState{Index: r.index, Metrics: metrics[i], Node: r.node, NotConnected: r.notConnected,
			SelfReceived: r.selfReceived, Foreign: r.foreign, Forged: r.forged, Overflow: r.overflow,
			Negative: r.negative, LastNs: r.lastNs, Histogram: enc, Attrib: r.attrib, WarmArrived: r.warmArrived}
		if r.warmHist != nil {
			if s.WarmHistogram, err = r.warmHist.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err != nil {
				return PartState{}, fmt.Errorf("instance %d: warm-up histogram: %w", i, err)
			}
		}
		if r.transit != nil && r.transit.TotalCount() > 0 {
			if s.Transit, err = r.transit.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err != nil {
				return PartState{}, fmt.Errorf("instance %d: transit histogram: %w", i, err)
			}
		}
		s.Trackers = make([]byte, 0, 4*len(r.sources))
		for _, t := range r.sources {
			x := t.r()
			ts := TrackerState{Highest: t.highest, Unique: t.unique(), Duplicates: x.duplicates, OutOfOrder: x.outOfOrder,
				Untracked: x.untracked, Forgotten: x.forgotten, Floor: x.floor}
			for _, g := range x.gaps {
				ts.Gaps = append(ts.Gaps, [2]uint64{g.lo, g.hi})
			}
			s.Trackers = appendTracker(s.Trackers, ts)
		}
		for _, o := range r.outages {
			os := OutageState{Lost: o.lost, Reconnected: o.reconnected, Resubscribed: o.resubscribed, Cause: o.cause, Recovered: o.recovered,
				From: o.from, DupAt: o.dupAt}
			for _, g := range o.gaps {
				os.Gaps = append(os.Gaps, [3]uint64{uint64(g.src), g.lo, g.hi})
			}
			s.Outages = append(s.Outages, os)
		}
		ps.Receivers = append(ps.Receivers, s)
	}
	return ps, nil
}

// errPart wraps every reason a part is refused.
var errPart = errors.New("harness: bad part state")

// rehydrate turns the parts back into one run's publisher and receivers,
// checking that every instance index from 0 to n-1 appears exactly once
// among the publishers and among the receivers, and that every tracker is
// one a receiver could have built: a part comes from another process, and
// a malformed one must be refused, never merged into a report.
func rehydrate(n int, parts []PartState) (*publisher, []*receiver, []bridge.Metrics, error) {
	pub := &publisher{published: make([]uint64, n), errors: make([]uint64, n), unknown: make([]uint64, n),
		warmPublished: make([]uint64, n), warmNotPublic: make([]uint64, n),
		insts: make([]*instancePublisher, n), sendDelay: newHistogram(), publishRTT: newHistogram()}
	recvs := make([]*receiver, n)
	metrics := make([]bridge.Metrics, n)
	bad := func(format string, a ...any) error { return fmt.Errorf("%w: "+format, append([]any{errPart}, a...)...) }
	for _, p := range parts {
		for _, s := range p.Publishers {
			if s.Index < 0 || s.Index >= n || pub.insts[s.Index] != nil {
				return nil, nil, nil, bad("publisher %d: out of range or twice", s.Index)
			}
			h, err := decodeHistogram(s.SendDelay, sendDelaySigFigs)
			if err != nil {
				return nil, nil, nil, bad("publisher %d: send delay: %v", s.Index, err)
			}
			rtt := newDelayHistogram()
			if len(s.PublishRTT) > 0 {
				if rtt, err = decodeHistogram(s.PublishRTT, sendDelaySigFigs); err != nil {
					return nil, nil, nil, bad("publisher %d: publish round trip: %v", s.Index, err)
				}
			}
			ip := &instancePublisher{index: s.Index, bursts: s.Bursts, delay: h, rtt: rtt}
			var failures uint64
			for r, c := range s.Failures {
				ip.failures.add(r, c)
				failures += c
			}
			if failures > s.Errors+s.Unknown {
				return nil, nil, nil, bad("publisher %d: %d failures by reason, %d not accepted", s.Index, failures, s.Errors+s.Unknown)
			}
			for _, f := range s.FailedSeqs {
				if f[0] > f[1] {
					return nil, nil, nil, bad("publisher %d: failed range %v", s.Index, f)
				}
				ip.failedSeqs = append(ip.failedSeqs, seqRange{f[0], f[1]})
			}
			pub.insts[s.Index] = ip
			pub.published[s.Index], pub.errors[s.Index], pub.unknown[s.Index] = s.Published, s.Errors, s.Unknown
			pub.warmPublished[s.Index], pub.warmNotPublic[s.Index] = s.WarmPublished, s.WarmNotAccepted
			if dropped := pub.sendDelay.Merge(h); dropped > 0 {
				return nil, nil, nil, bad("publisher %d: %d send delays outside the histogram's range", s.Index, dropped)
			}
			if dropped := pub.publishRTT.Merge(rtt); dropped > 0 {
				return nil, nil, nil, bad("publisher %d: %d publish round trips outside the histogram's range", s.Index, dropped)
			}
		}
		for _, s := range p.Receivers {
			if s.Index < 0 || s.Index >= n || recvs[s.Index] != nil {
				return nil, nil, nil, bad("receiver %d: out of range or twice", s.Index)
			}
			r, err := s.receiver(n)
			if err != nil {
				return nil, nil, nil, bad("receiver %d: %v", s.Index, err)
			}
			recvs[s.Index], metrics[s.Index] = r, s.Metrics
		}
	}
	for i := range n {
		if pub.insts[i] == nil || recvs[i] == nil {
			return nil, nil, nil, bad("instance %d: no part has it", i)
		}
	}
	return pub, recvs, metrics, nil
}

// receiver rebuilds the receiver s describes, for a run of n instances.
func (s ReceiverState) receiver(n int) (*receiver, error) {
	h, err := decodeHistogram(s.Histogram, latencySigFigs(n))
	if err != nil {
		return nil, fmt.Errorf("latency: %v", err)
	}
	r := &receiver{index: s.Index, n: n, sources: make([]seqTracker, n), hist: h, node: s.Node,
		notConnected: s.NotConnected, selfReceived: s.SelfReceived, foreign: s.Foreign, forged: s.Forged,
		overflow: s.Overflow, negative: s.Negative, lastNs: s.LastNs, gapLimit: maxGapsSharded, warmArrived: s.WarmArrived}
	if len(s.WarmHistogram) > 0 {
		if r.warmHist, err = decodeHistogram(s.WarmHistogram, sendDelaySigFigs); err != nil {
			return nil, fmt.Errorf("warm-up latency: %v", err)
		}
	}
	if len(s.Transit) > 0 {
		if r.transit, err = decodeHistogram(s.Transit, sendDelaySigFigs); err != nil {
			return nil, fmt.Errorf("transit: %v", err)
		}
		if r.transit.TotalCount() > h.TotalCount() {
			return nil, fmt.Errorf("transit: %d samples, more than its %d latencies", r.transit.TotalCount(), h.TotalCount())
		}
	}
	rest := s.Trackers
	for j := range n {
		var ts TrackerState
		var err error
		if ts, rest, err = nextTracker(rest); err != nil {
			return nil, fmt.Errorf("%d trackers, want one per instance (%d): %v", j, n, err)
		}
		t := seqTracker{highest: ts.Highest}
		if ts.Duplicates|ts.OutOfOrder|ts.Untracked|ts.Forgotten|ts.Floor != 0 || len(ts.Gaps) > 0 {
			t.x = &trackerRare{duplicates: ts.Duplicates, outOfOrder: ts.OutOfOrder, untracked: ts.Untracked,
				forgotten: ts.Forgotten, floor: ts.Floor}
		}
		var missing uint64
		prev := uint64(0)
		for _, g := range ts.Gaps {
			// Ascending, disjoint, below highest, above what was forgotten.
			if g[0] > g[1] || g[0] <= prev || g[1] >= ts.Highest || g[0] < ts.Floor {
				return nil, fmt.Errorf("source %d: gap %v out of order or out of range", j, g)
			}
			prev = g[1]
			missing += g[1] - g[0] + 1
			t.x.gaps = append(t.x.gaps, seqRange{g[0], g[1]})
		}
		if ts.Unique+missing+ts.Forgotten != ts.Highest {
			return nil, fmt.Errorf("source %d: %d received + %d in gaps + %d forgotten is not the highest, %d",
				j, ts.Unique, missing, ts.Forgotten, ts.Highest)
		}
		r.sources[j] = t
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%d bytes after the last of %d trackers", len(rest), n)
	}
	if s.Attrib != nil && len(s.Attrib) != n {
		return nil, fmt.Errorf("%d outage attributions, want %d", len(s.Attrib), n)
	}
	r.attrib = s.Attrib
	for k, o := range s.Outages {
		if len(o.From) != n {
			return nil, fmt.Errorf("outage %d: %d sources, want %d", k, len(o.From), n)
		}
		ou := outage{lost: o.Lost, reconnected: o.Reconnected, resubscribed: o.Resubscribed, cause: o.Cause, from: o.From, dupAt: o.DupAt,
			recovered: o.Recovered}
		for _, g := range o.Gaps {
			if g[0] >= uint64(n) || g[1] > g[2] {
				return nil, fmt.Errorf("outage %d: range %v", k, g)
			}
			ou.gaps = append(ou.gaps, sourceGap{int(g[0]), seqRange{g[1], g[2]}})
		}
		r.outages = append(r.outages, ou)
	}
	for _, k := range r.attrib {
		if k < 0 || int(k) > len(r.outages) {
			return nil, fmt.Errorf("attribution to outage %d of %d", k, len(r.outages))
		}
	}
	return r, nil
}

// decodeHistogram reads a histogram in the compressed encoding, and
// refuses one whose range or precision is not what the harness keeps
// there.
// sigFigs 0 takes either precision the harness keeps.
func decodeHistogram(b []byte, sigFigs int) (*hdrhistogram.Histogram, error) {
	h, err := hdrhistogram.Decode(b)
	if err != nil {
		return nil, err
	}
	figs := h.SignificantFigures()
	if h.LowestTrackableValue() != histMinUs || h.HighestTrackableValue() != histMaxUs ||
		(sigFigs != 0 && figs != int64(sigFigs)) || (sigFigs == 0 && figs != 2 && figs != 3) {
		return nil, errors.New("a histogram of another range or precision")
	}
	return h, nil
}

// MergeParts assembles the Result of a run split into parts: res holds
// what the coordinator knows (run ID, server, configuration echo, timings,
// faults in its Timeline), cfg the run's configuration. The counts,
// matrix, latency and timeline are computed as a single process computes
// them. A malformed part, or an instance no part or two parts hold, is an
// error wrapping errPart.
func MergeParts(res *Result, cfg Config, start time.Time, parts []PartState) error {
	cfg = cfg.WithDefaults()
	pub, recvs, metrics, err := rehydrate(cfg.Instances, parts)
	if err != nil {
		return err
	}
	assemble(res, cfg, start, pub, recvs, metrics, res.Timeline.Faults)
	if cfg.Series {
		if res.Series, err = mergeSeries(cfg, parts); err != nil {
			return err
		}
	}
	// Every latency sample is a genuine arrival from another instance:
	// a merged count that does not match says a part lost samples.
	var want int64
	for _, ir := range res.Instances {
		want += int64(ir.Delivered + ir.LateConfirmed + ir.Duplicates + ir.Untracked)
	}
	if got := res.Histogram.TotalCount(); got != want {
		return fmt.Errorf("%w: %d latency samples merged, %d arrivals counted", errPart, got, want)
	}
	return nil
}

// LostPart stands for the part of a worker that died or stopped answering
// mid-run: its instances [lo, hi) of n received nothing and are not
// connected (why says so), and their publishers accepted what the worker
// last reported (published, by instance; nil: nothing known). Merged, it
// makes the run FAIL with the reason instead of leaving instances out.
func LostPart(n, lo, hi int, published []uint64, prefix, why string) (PartState, error) {
	empty, err := newLatencyHistogram(n).Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return PartState{}, err
	}
	noDelay, err := newDelayHistogram().Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return PartState{}, err
	}
	var ps PartState
	for i := lo; i < hi; i++ {
		var p uint64
		if published != nil {
			p = published[i]
		}
		ps.Publishers = append(ps.Publishers, PublisherState{Index: i, Published: p, SendDelay: noDelay})
		ps.Receivers = append(ps.Receivers, ReceiverState{Index: i, NotConnected: why, Histogram: empty,
			Metrics: bridge.Metrics{InstanceID: prefix + strconv.Itoa(i)}, Trackers: EncodeTrackers(make([]TrackerState, n))})
	}
	return ps, nil
}

// The packed trackers are uvarints, one tracker after another: highest<<1
// with the low bit saying whether the rare fields follow, then unique as
// its distance below highest (zigzag: a malformed part may claim more),
// then, when rare, duplicates, out of order, untracked, forgotten, floor,
// the number of gaps and each gap's lo and hi. A source that arrived in
// order takes 4 bytes at 100 k messages; as JSON it took about 40.

// EncodeTrackers packs trackers as a ReceiverState carries them.
func EncodeTrackers(ts []TrackerState) []byte {
	b := make([]byte, 0, 4*len(ts))
	for _, t := range ts {
		b = appendTracker(b, t)
	}
	return b
}

// DecodeTrackers unpacks what EncodeTrackers packed.
func DecodeTrackers(b []byte) ([]TrackerState, error) {
	var out []TrackerState
	for len(b) > 0 {
		t, rest, err := nextTracker(b)
		if err != nil {
			return nil, fmt.Errorf("tracker %d: %w", len(out), err)
		}
		out, b = append(out, t), rest
	}
	return out, nil
}

func appendTracker(b []byte, t TrackerState) []byte {
	rare := t.Duplicates|t.OutOfOrder|t.Untracked|t.Forgotten|t.Floor != 0 || len(t.Gaps) > 0
	head := t.Highest << 1
	if rare {
		head |= 1
	}
	b = binary.AppendUvarint(b, head)
	b = binary.AppendVarint(b, int64(t.Highest-t.Unique))
	if !rare {
		return b
	}
	for _, v := range [...]uint64{t.Duplicates, t.OutOfOrder, t.Untracked, t.Forgotten, t.Floor, uint64(len(t.Gaps))} {
		b = binary.AppendUvarint(b, v)
	}
	for _, g := range t.Gaps {
		b = binary.AppendUvarint(binary.AppendUvarint(b, g[0]), g[1])
	}
	return b
}

// errTruncated is a packed tracker cut short or overlong.
var errTruncated = errors.New("truncated or malformed tracker")

// nextTracker unpacks the first tracker of b and returns the rest.
func nextTracker(b []byte) (TrackerState, []byte, error) {
	bad := false
	uv := func() uint64 {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			bad, b = true, nil
			return 0
		}
		b = b[k:]
		return v
	}
	head := uv()
	t := TrackerState{Highest: head >> 1}
	below, k := binary.Varint(b)
	if bad || k <= 0 {
		return TrackerState{}, nil, errTruncated
	}
	b = b[k:]
	t.Unique = t.Highest - uint64(below)
	if head&1 == 0 {
		return t, b, nil
	}
	var gaps uint64
	for _, f := range [...]*uint64{&t.Duplicates, &t.OutOfOrder, &t.Untracked, &t.Forgotten, &t.Floor, &gaps} {
		*f = uv()
	}
	if bad || gaps > uint64(len(b))/2 { // each gap takes two bytes at least
		return TrackerState{}, nil, errTruncated
	}
	t.Gaps = make([][2]uint64, gaps)
	for i := range t.Gaps {
		t.Gaps[i] = [2]uint64{uv(), uv()}
	}
	if bad {
		return TrackerState{}, nil, errTruncated
	}
	return t, b, nil
}
