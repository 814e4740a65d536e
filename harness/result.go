package harness

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/units"
)

// Result is everything a run measured. It is plain data, encoded as JSON by
// the report package: every field has a JSON name and a unit in it where it
// has one. Durations are seconds, latencies microseconds.
type Result struct {
	// Workers are the processes of a run split over several; empty for a
	// run in one process.
	Workers []WorkerReport `json:"workers,omitempty"`
	// RunID is random per run; instance i is "redisload-<RunID>-<i>".
	RunID string `json:"run_id"`
	// Scenario is the preset or scenario file the run started from, as
	// its caller names it; empty for a run from flags alone.
	Scenario string `json:"scenario,omitempty"`
	// Warmup is the warm-up's own figures, when the run had one
	// (Config.Warmup): none of its events is in any other figure.
	Warmup *WarmupStats `json:"warmup,omitempty"`
	// Repetitions are the runs of a repeated run (see Repeated), whole
	// and in order; the other fields are then RepeatBody's.
	Repetitions []*Result `json:"repetitions,omitempty"`
	// RepeatBody is which repetition, from 1, the other fields are: the
	// median by p99 latency.
	RepeatBody int `json:"repeat_body,omitempty"`
	// Redis is the server's address or URL, password redacted.
	Redis string `json:"redis"`
	// KeyPrefix is the channel prefix used.
	KeyPrefix string `json:"key_prefix"`
	// Seed reproduces the run's events.
	Seed uint64 `json:"seed"`
	// Server says what was measured.
	Server ServerInfo `json:"server"`
	// StartedAt is when publishing began.
	StartedAt time.Time `json:"started_at"`
	// Config echoes what was asked for.
	Config ResultConfig `json:"config"`
	// ConnectSeconds is how long connecting every instance and confirming
	// every subscription took.
	ConnectSeconds float64 `json:"connect_s"`
	// ElapsedSeconds is the measured publishing phase.
	ElapsedSeconds float64 `json:"elapsed_s"`
	// DrainSeconds is how long the drain took.
	DrainSeconds float64 `json:"drain_s"`
	// Drained is true when every expected message arrived before the drain
	// timeout.
	Drained bool `json:"drained"`
	// Interrupted is true when the run was cancelled before its end; the
	// numbers are those of the part that ran.
	Interrupted bool `json:"interrupted"`
	// Totals sums the instances.
	Totals Totals `json:"totals"`
	// Latency is over every delivered message, all instances merged, from
	// the event's intended send time to its receipt.
	Latency LatencyStats `json:"latency"`
	// SendDelay is, for every event published, how late the publisher sent
	// it after its intended time: the load generator's own lag.
	SendDelay LatencyStats `json:"send_delay"`
	// PublishRTT is, for every event accepted, its publish round trip: from
	// the write of its pipeline to the pipeline's last reply, network and
	// server together (for an external instance, its adapter's too). Each
	// event's latency is its send delay, then the time from its write to
	// its receipt, of which this is the publisher's view.
	PublishRTT LatencyStats `json:"publish_rtt,omitzero"`
	// Transit is, for every delivery of an event its publisher stamped
	// with the time it wrote it, from that write to the receipt: the
	// latency without the send delay, i.e. the network's, Redis's fan-out
	// and the subscriber's read. Each event's latency is exactly its send
	// delay plus its transit.
	Transit LatencyStats `json:"transit,omitzero"`
	// Instances has one entry per instance, in index order.
	Instances []InstanceResult `json:"instances"`
	// OutputBuffers is the peak of the subscribers' server-side output
	// buffers during the run.
	OutputBuffers OutputBuffers `json:"output_buffers"`
	// Matrix is the per-source delivery matrix.
	Matrix Matrix `json:"matrix"`
	// Series is the run second by second, when Config.Series asked for it.
	Series []SeriesPoint `json:"series,omitempty"`
	// Timeline is the fault script as it ran, each instance's outages and
	// the bursts of failed publishes; absent when nothing happened.
	Timeline Timeline `json:"timeline,omitzero"`
	// ClientCPUSeconds is the CPU this process used from the first publish
	// to the end of the drain (user and system; 0 where the OS does not
	// say, and for a run over workers, whose reports have their own):
	// beside the server's, the load generator's cost.
	ClientCPUSeconds float64 `json:"client_cpu_s,omitempty"`
	// Streams is what a run over streams added to Redis, lost to MAXLEN,
	// and took out again; nil for pub/sub.
	Streams *StreamsStats `json:"streams,omitempty"`
	// PublishFailures are the publishes not accepted (failed or with an
	// unknown outcome), by reason, most frequent first; absent when every
	// publish was accepted.
	PublishFailures []FailureReason `json:"publish_failures,omitempty"`
	// Warnings are facts about the run a reader should not miss.
	Warnings []string `json:"warnings,omitempty"`

	// Histogram is the merged latency histogram in microseconds, for
	// renderers that plot it; in the JSON as HistogramData.
	Histogram *hdrhistogram.Histogram `json:"-"`
	// HistogramData is Histogram in HDR's compressed encoding, so that a
	// saved report renders again whole (its percentile plot too): see
	// LoadHistogram.
	HistogramData []byte `json:"latency_histogram,omitempty"`
	// InstanceHistograms are the instances' own latency histograms, in
	// index order; not part of the JSON either.
	InstanceHistograms []*hdrhistogram.Histogram `json:"-"`
}

// ResultConfig is the run configuration as the report shows it.
// WorkerReport is one worker process of a run split over several.
type WorkerReport struct {
	ID   string `json:"id"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// Lo and Hi are its instances, [Lo, Hi).
	Lo int `json:"lo"`
	Hi int `json:"hi"`
	// Published and Delivered sum its instances' counts.
	Published uint64 `json:"published"`
	Delivered uint64 `json:"delivered"`
	// CPUSeconds and RSSBytes are the worker process's (getrusage).
	CPUSeconds float64 `json:"cpu_s"`
	RSSBytes   int64   `json:"rss_bytes"`
	// CPUs is how many its host has.
	CPUs int `json:"cpus,omitempty"`
	// ClockOffsetUs is the worker's clock minus the Redis server's, and
	// ClockUncertaintyUs half the round trip of the sample it came from:
	// latencies between workers on different hosts are off by the
	// difference of their offsets.
	ClockOffsetUs      int64 `json:"clock_offset_us"`
	ClockUncertaintyUs int64 `json:"clock_uncertainty_us"`
	// Lost says why the worker's instances are not counted, when it died
	// or stopped answering mid-run.
	Lost string `json:"lost,omitempty"`
}

type ResultConfig struct {
	Instances           int     `json:"instances"`
	DurationSeconds     float64 `json:"duration_s"`
	Rate                float64 `json:"rate"`
	Publishers          int     `json:"publishers"`
	DedicatedPublishers bool    `json:"dedicated_publishers,omitempty"`
	MaxRate             bool    `json:"max_rate,omitempty"`
	MaxInFlight         int     `json:"max_inflight,omitempty"`
	Pipeline            int     `json:"pipeline"`
	// PayloadSize and PayloadSizeMax are the padding of events' data, in
	// bytes (see Config.PayloadSize); 0: the events' own sizes.
	PayloadSize    int `json:"payload_size,omitempty"`
	PayloadSizeMax int `json:"payload_size_max,omitempty"`
	// Stages is the load shape, when the run had one (see Config.Stages);
	// Rate is then its peak.
	Stages []StageEcho `json:"stages,omitempty"`
	// WarmupSeconds is the warm-up before the measured duration (see
	// Config.Warmup); 0 for none.
	WarmupSeconds float64 `json:"warmup_s,omitempty"`
	// BatchWindowUs is the scheduler's batch window (-1: none).
	BatchWindowUs       int64    `json:"batch_window_us,omitempty"`
	EventTypes          []string `json:"event_types"`
	DrainTimeoutSeconds float64  `json:"drain_timeout_s"`
	SelfFilterDisabled  bool     `json:"self_filter_disabled,omitempty"`
	// SpreadOver is how many cluster nodes the instances were spread over
	// (Placement spread); 0 when they all used one address.
	SpreadOver int `json:"spread_over,omitempty"`
	// PubSub is "classic" (PUBLISH/SUBSCRIBE) or "sharded"
	// (SPUBLISH/SSUBSCRIBE).
	PubSub string `json:"pubsub,omitempty"`
	// Transport is "streams" for a run over Redis streams; absent for
	// pub/sub.
	Transport string `json:"transport,omitempty"`
	// ChannelsPerType is how many channels each event type is spread over.
	ChannelsPerType int `json:"channels_per_type,omitempty"`
	// InstanceCmd is the adapter of the run's external instances, and
	// ExternalInstances how many of them, from the first, ran it.
	InstanceCmd       string `json:"instance_cmd,omitempty"`
	ExternalInstances int    `json:"external_instances,omitempty"`
}

// Totals sums the per-instance counts.
type Totals struct {
	Instances int `json:"instances"`
	Connected int `json:"connected"`
	// TargetEvents is what the rate and duration ask for.
	TargetEvents uint64 `json:"target_events"`
	Counts
	// DeliveryRate is Delivered/Expected in percent; nil when nothing was
	// expected (a single instance), where a rate means nothing.
	DeliveryRate *float64 `json:"delivery_rate_pct"`
	// PublishRate is Published per second of the publishing phase.
	PublishRate float64 `json:"publish_rate"`
	// DeliveryThroughput is Delivered per second of publishing plus drain.
	DeliveryThroughput float64 `json:"delivery_throughput"`
}

// Counts are the message counts kept per instance and summed in Totals.
type Counts struct {
	// Published counts publishes Redis accepted.
	Published uint64 `json:"published"`
	// PublishErrors are publishes known to have failed (never sent, or
	// refused by the server); not expected anywhere.
	PublishErrors uint64 `json:"publish_errors"`
	// PublishUnknown are publishes sent with no reply (a timeout, a
	// broken connection): Redis may or may not have delivered them. Not
	// expected anywhere; their deliveries count as LateConfirmed.
	PublishUnknown uint64 `json:"publish_unknown"`
	// Received counts every event handed to the harness, of any origin.
	Received uint64 `json:"received"`
	// Expected is what the other instances published successfully on the
	// channels the receiver subscribes to.
	Expected uint64 `json:"expected"`
	// Delivered counts distinct expected messages that arrived; never more
	// than Expected, in any cell of the matrix.
	Delivered uint64 `json:"delivered"`
	// Missing is Expected minus Delivered, per source, exactly.
	Missing uint64 `json:"missing"`
	// LateConfirmed counts distinct messages that arrived although their
	// publish was not accepted (PublishUnknown, or a failure): outside
	// Expected, so outside Delivered.
	LateConfirmed uint64 `json:"late_confirmed"`
	Duplicates    uint64 `json:"duplicates"`
	OutOfOrder    uint64 `json:"out_of_order"`
	// SeqGaps counts sequence numbers never seen, failed publishes included.
	SeqGaps uint64 `json:"seq_gaps"`
	// SelfFiltered counts own messages echoed by Redis and dropped.
	SelfFiltered uint64 `json:"self_filtered"`
	// SelfReceived counts own messages that reached the handler: must be 0.
	SelfReceived uint64 `json:"self_received"`
	// Foreign counts valid events from publishers outside this run.
	Foreign uint64 `json:"foreign"`
	// Forged counts messages that claimed to come from this run's
	// instances and failed a check (instance index, sequence number, send
	// time, authentication tag): forged or corrupted, never counted as
	// delivered, duplicate, self-received or latency.
	Forged uint64 `json:"forged"`
	// Untracked counts arrivals from a source's sequence range no longer
	// tracked (past 64 separate gaps, more in a sharded run: see
	// gapLimit): late or duplicate, undecidable, and left missing.
	Untracked uint64 `json:"untracked,omitempty"`
	// NegativeLatency counts deliveries that, on the run's clock, arrived
	// before they were sent: only in a run split over hosts, within the
	// clocks' uncertainty; recorded as the minimum latency.
	NegativeLatency uint64 `json:"negative_latency,omitempty"`
	// Forgotten counts sequence numbers in the ranges so forgotten: all
	// counted missing, so Missing may overstate the loss by up to this.
	Forgotten uint64 `json:"forgotten,omitempty"`
	// Malformed counts messages that were not event envelopes.
	Malformed  uint64 `json:"malformed"`
	Errors     uint64 `json:"errors"`
	Reconnects uint64 `json:"reconnects"`
}

// add sums o into c.
func (c *Counts) add(o Counts) {
	c.Published += o.Published
	c.PublishErrors += o.PublishErrors
	c.PublishUnknown += o.PublishUnknown
	c.LateConfirmed += o.LateConfirmed
	c.Forged += o.Forged
	c.Untracked += o.Untracked
	c.Forgotten += o.Forgotten
	c.NegativeLatency += o.NegativeLatency
	c.Received += o.Received
	c.Expected += o.Expected
	c.Delivered += o.Delivered
	c.Missing += o.Missing
	c.Duplicates += o.Duplicates
	c.OutOfOrder += o.OutOfOrder
	c.SeqGaps += o.SeqGaps
	c.SelfFiltered += o.SelfFiltered
	c.SelfReceived += o.SelfReceived
	c.Foreign += o.Foreign
	c.Malformed += o.Malformed
	c.Errors += o.Errors
	c.Reconnects += o.Reconnects
}

// LatencyStats summarises a latency histogram, in microseconds. Count is 0
// when nothing was delivered, and then every other field is 0 too.
type LatencyStats struct {
	Count  int64   `json:"count"`
	Min    int64   `json:"min_us"`
	Mean   float64 `json:"mean_us"`
	StdDev float64 `json:"stddev_us"`
	P50    int64   `json:"p50_us"`
	P90    int64   `json:"p90_us"`
	P95    int64   `json:"p95_us"`
	P99    int64   `json:"p99_us"`
	P999   int64   `json:"p99_9_us"`
	Max    int64   `json:"max_us"`
}

// InstanceResult is one instance's view of the run.
type InstanceResult struct {
	Index int    `json:"index"`
	ID    string `json:"id"`
	// Connected is true when the instance was connected and subscribed at
	// the end of the run, answered a round trip on each connection then,
	// and had no outage it did not recover from.
	Connected bool `json:"connected"`
	// NotConnected says why Connected is false.
	NotConnected string `json:"not_connected,omitempty"`
	// Node is the cluster node the instance used, when spread.
	Node string `json:"node,omitempty"`
	Counts
	DeliveryRate *float64 `json:"delivery_rate_pct"`
	// LatencyOverflow counts latencies beyond the histogram's range
	// (60 s), recorded as its maximum.
	LatencyOverflow uint64       `json:"latency_overflow,omitempty"`
	Latency         LatencyStats `json:"latency"`
	// Adapter is an external instance's adapter: its client, how it kept
	// to the protocol, how it ended; absent for the run's own bridges.
	Adapter *AdapterReport `json:"adapter,omitempty"`
	// LastDeliverySeconds is when the instance's last delivery arrived,
	// in seconds since the start; nil when nothing arrived. A subscriber
	// that went quiet while others received shows here.
	LastDeliverySeconds *float64 `json:"last_delivery_s,omitempty"`
}

// Matrix is the delivery matrix: for each receiver, what it got from each
// source against what that source sent. Its JSON is compact, because it
// has n×(n−1) cells (a million at 1000 instances, which as objects made a
// 172 MB document): plain numbers for the dense part, and the rare
// duplicated or reordered cells as [receiver, source, count] triples.
type Matrix struct {
	// Sent[j] is what source j published successfully, which every other
	// instance expected from it.
	Sent []uint64 `json:"sent"`
	// Subscribed[i] is false for a publish-only instance, which expects
	// nothing: its row of cells is empty.
	Subscribed []bool `json:"subscribed"`
	// Delivered[i][j] is what receiver i got from source j, duplicates
	// not counted; Delivered[i][i] is 0. Missing is Sent[j] − Delivered[i][j].
	Delivered [][]uint64 `json:"delivered"`
	// Duplicates and OutOfOrder list the cells where they are not zero.
	Duplicates []MatrixEntry `json:"duplicates"`
	OutOfOrder []MatrixEntry `json:"out_of_order"`
}

// MatrixEntry is one sparse cell: receiver, source, count.
type MatrixEntry [3]uint64

// Cell returns the matrix cell of receiver i and source j.
func (m Matrix) Cell(i, j int) SourceStats {
	s := SourceStats{Source: j, Sent: m.Sent[j], Delivered: m.Delivered[i][j]}
	if len(m.Subscribed) > i && !m.Subscribed[i] {
		s.Sent = 0 // sent, but not to this receiver
	}
	// Delivered never exceeds Sent (see LateConfirmed); the guard keeps a
	// hand-edited document from producing a negative.
	if s.Sent > s.Delivered {
		s.Missing = s.Sent - s.Delivered
	}
	for _, e := range m.Duplicates {
		if e[0] == uint64(i) && e[1] == uint64(j) {
			s.Duplicates = e[2]
		}
	}
	for _, e := range m.OutOfOrder {
		if e[0] == uint64(i) && e[1] == uint64(j) {
			s.OutOfOrder = e[2]
		}
	}
	return s
}

// SourceStats is one cell of the delivery matrix.
type SourceStats struct {
	Source     int    `json:"source"`
	Sent       uint64 `json:"sent"`
	Delivered  uint64 `json:"delivered"`
	Missing    uint64 `json:"missing"`
	Duplicates uint64 `json:"duplicates"`
	OutOfOrder uint64 `json:"out_of_order"`
	// LateConfirmed is what arrived of the source's publishes that were
	// not accepted; not part of Delivered.
	LateConfirmed uint64 `json:"late_confirmed"`
}

// Histogram range: 1 µs to 60 s at 3 significant digits (0.1 % error).
const (
	histMinUs   = 1
	histMaxUs   = 60_000_000
	histSigFigs = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinUs, histMaxUs, histSigFigs)
}

// Above manyInstances, each instance's latency histogram, and so the run's
// merged from them, is at 2 significant digits (1 % error) instead of 3:
// at 3 each takes 139 KB, half the memory of a 1000-instance run, for
// precision that a run of that many, whose latencies are milliseconds,
// does not need. The report says which.
const manyInstances = 64

// latencySigFigs is the latency histograms' precision for n instances.
func latencySigFigs(n int) int {
	if n > manyInstances {
		return 2
	}
	return histSigFigs
}

// newLatencyHistogram is an instance's latency histogram in a run of n.
func newLatencyHistogram(n int) *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinUs, histMaxUs, latencySigFigs(n))
}

// sendDelaySigFigs is the send delay's precision per publisher: the
// generator's own lag, for which 1 % is plenty, at a seventh of the
// memory (20 KB instead of 139 KB an instance: 119 MB at 1000).
const sendDelaySigFigs = 2

func newDelayHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinUs, histMaxUs, sendDelaySigFigs)
}

// LoadHistogram restores Histogram from HistogramData, in a report read
// back; a report without one (older, or hand-made) keeps none. The
// histogram must be one the harness keeps, and agree with the report's
// own latency count: a saved report is input, and checked as such.
func (r *Result) LoadHistogram() error {
	if len(r.HistogramData) == 0 {
		return nil
	}
	h, err := decodeHistogram(r.HistogramData, 0) // its precision depends on the instance count
	if err != nil {
		return fmt.Errorf("latency_histogram: %v", err)
	}
	if h.TotalCount() != r.Latency.Count {
		return fmt.Errorf("latency_histogram: %d samples, the report's latency %d", h.TotalCount(), r.Latency.Count)
	}
	r.Histogram = h
	return nil
}

// WarmupStats is what the warm-up (Config.Warmup) published and what its
// subscribers received, kept out of every other figure of the run.
type WarmupStats struct {
	Seconds      float64 `json:"duration_s"`
	TargetEvents uint64  `json:"target_events"`
	Published    uint64  `json:"published"`
	NotAccepted  uint64  `json:"not_accepted"`
	// Expected is what the subscribers should have received of Published;
	// Arrived what they did, duplicates included (the warm-up's sequence
	// numbers are counted, not tracked).
	Expected uint64       `json:"expected"`
	Arrived  uint64       `json:"arrived"`
	Latency  LatencyStats `json:"latency"`
}

// warmupStats sums the warm-up's counts over the instances.
func warmupStats(cfg Config, pub *publisher, recvs []*receiver) *WarmupStats {
	w := &WarmupStats{Seconds: cfg.Warmup.Seconds(), TargetEvents: cfg.warmupEvents()}
	lat := newDelayHistogram()
	var all uint64
	for i := range recvs {
		w.Published += pub.warmPublished[i]
		w.NotAccepted += pub.warmNotPublic[i]
		all += pub.warmPublished[i]
	}
	for i, r := range recvs {
		w.Arrived += r.warmArrived
		if cfg.subscribes(i) {
			w.Expected += all - pub.warmPublished[i] // its own are filtered, as in the measured phase
		}
		if r.warmHist != nil {
			lat.Merge(r.warmHist) // same range: nothing is dropped
		}
	}
	w.Latency = Summarize(lat)
	return w
}

// Summarize reads the headline statistics out of h.
func Summarize(h *hdrhistogram.Histogram) LatencyStats {
	if h == nil || h.TotalCount() == 0 {
		return LatencyStats{}
	}
	// ValueAtQuantile takes a percentage, 0 to 100.
	return LatencyStats{
		Count:  h.TotalCount(),
		Min:    h.Min(),
		Mean:   h.Mean(),
		StdDev: h.StdDev(),
		P50:    h.ValueAtQuantile(50),
		P90:    h.ValueAtQuantile(90),
		P95:    h.ValueAtQuantile(95),
		P99:    h.ValueAtQuantile(99),
		P999:   h.ValueAtQuantile(99.9),
		Max:    h.Max(),
	}
}

// percent returns a/b×100, or nil when b is 0.
func percent(a, b uint64) *float64 {
	if b == 0 {
		return nil
	}
	p := float64(a) / float64(b) * 100
	return &p
}

// The Result is put together here, beside its definition: assemble reads
// the publishers' and receivers' state after the run, and warnings says
// what the numbers need said.

// assemble fills res from the publisher's and receivers' counts. It runs
// after every receive goroutine has ended.
func assemble(res *Result, cfg Config, start time.Time, pub *publisher, recvs []*receiver, metrics []bridge.Metrics, faults []FaultRecord) {
	n := len(recvs)
	t := &res.Totals
	t.Instances = n
	t.TargetEvents = cfg.TotalEvents()
	res.Matrix = Matrix{Sent: pub.published, Subscribed: make([]bool, n), Delivered: make([][]uint64, 0, n),
		Duplicates: []MatrixEntry{}, OutOfOrder: []MatrixEntry{}}
	total, transit := newHistogram(), newDelayHistogram()
	for i, r := range recvs {
		m := metrics[i]
		ir := InstanceResult{
			Index:     i,
			ID:        m.InstanceID,
			Connected: m.Connected && !r.unrecovered(),
			Node:      r.node,
			Counts: Counts{
				Published:      pub.published[i],
				PublishErrors:  pub.errors[i],
				PublishUnknown: pub.unknown[i],
				// The bridge counts the warm-up's arrivals, echoes and failed
				// publishes too; the measured figures leave them out.
				Received:        m.Received - min(r.warmArrived, m.Received),
				SelfFiltered:    m.SelfFiltered - min(pub.warmPublished[i], m.SelfFiltered),
				SelfReceived:    r.selfReceived,
				Foreign:         r.foreign,
				Forged:          r.forged,
				NegativeLatency: r.negative,
				Malformed:       m.Malformed,
				Errors:          m.Errors - min(pub.warmNotPublic[i], m.Errors),
				Reconnects:      m.Reconnects,
			},
			LatencyOverflow: r.overflow,
			Latency:         Summarize(r.hist),
		}
		row := make([]uint64, n)
		res.Matrix.Subscribed[i] = cfg.subscribes(i)
		for j := range recvs {
			if j == i || !cfg.subscribes(i) {
				continue // nothing is expected of a publish-only instance
			}
			tr := &r.sources[j]
			s := cell(j, tr, pub.published[j], pub.insts[j].failedSeqs)
			row[j] = s.Delivered
			if x := tr.r(); x.duplicates > 0 {
				res.Matrix.Duplicates = append(res.Matrix.Duplicates, MatrixEntry{uint64(i), uint64(j), x.duplicates})
			}
			if x := tr.r(); x.outOfOrder > 0 {
				res.Matrix.OutOfOrder = append(res.Matrix.OutOfOrder, MatrixEntry{uint64(i), uint64(j), x.outOfOrder})
			}
			ir.Expected += s.Sent
			ir.Delivered += s.Delivered
			ir.Missing += s.Missing
			ir.Duplicates += s.Duplicates
			ir.OutOfOrder += s.OutOfOrder
			ir.LateConfirmed += s.LateConfirmed
			ir.Untracked += tr.r().untracked
			ir.Forgotten += tr.r().forgotten
			// Every publish attempt takes a sequence number.
			ir.SeqGaps += tr.missing(pub.published[j] + pub.errors[j] + pub.unknown[j])
		}
		res.Matrix.Delivered = append(res.Matrix.Delivered, row)
		ir.DeliveryRate = percent(ir.Delivered, ir.Expected)
		if r.lastNs > 0 {
			s := float64(r.lastNs-start.UnixNano()) / 1e9
			ir.LastDeliverySeconds = &s
		}
		res.InstanceHistograms = append(res.InstanceHistograms, r.hist)
		if dropped := total.Merge(r.hist); dropped > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("instance %d: %d latency samples lost merging histograms", i, dropped))
		}
		if r.transit != nil {
			transit.Merge(r.transit) // same range: nothing is dropped
		}

		if !ir.Connected {
			ir.NotConnected = r.whyNotConnected()
		} else {
			t.Connected++
		}
		t.add(ir.Counts)
		res.Instances = append(res.Instances, ir)
	}
	t.DeliveryRate = percent(t.Delivered, t.Expected)
	if res.ElapsedSeconds > 0 {
		t.PublishRate = float64(t.Published) / res.ElapsedSeconds
	}
	if s := res.ElapsedSeconds + res.DrainSeconds; s > 0 {
		t.DeliveryThroughput = float64(t.Delivered) / s
	}
	res.Histogram = total
	if enc, err := total.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err == nil {
		res.HistogramData = enc
	}
	res.Latency = Summarize(total)
	res.SendDelay = Summarize(pub.sendDelay)
	res.PublishRTT = Summarize(pub.publishRTT)
	res.Transit = Summarize(transit)
	if cfg.Warmup > 0 {
		res.Warmup = warmupStats(cfg, pub, recvs)
	}

	sent := make([]uint64, n)
	missing := make([]uint64, n)
	var bursts [][]ErrorBurst
	var failed [][]seqRange
	var reasons reasonCounts
	for _, ip := range pub.insts {
		for r, c := range ip.failures {
			reasons.add(r, c)
		}
	}
	if len(reasons) > 0 {
		res.PublishFailures = reasons.sorted()
	}
	for i, ip := range pub.insts {
		sent[i] = pub.published[i] + pub.errors[i] + pub.unknown[i]
		missing[i] = res.Instances[i].Missing
		bursts = append(bursts, ip.bursts)
		failed = append(failed, ip.failedSeqs)
	}
	res.Timeline = timeline(start, faults, recvs, bursts, sent, failed, missing)
	res.Warnings = append(res.Warnings, warnings(res, cfg)...)
}

// cell accounts for what one receiver got from source j: tr is its
// tracker of j, published what j got accepted, failed the sequence numbers
// of j's publishes that were not accepted (failed or unknown outcome).
//
// Expected is what was accepted. A message whose publish was not accepted
// but arrived all the same (a timeout after Redis acted on it) is counted
// as late-confirmed, not delivered, so that Delivered + Missing = Expected
// holds exactly in every cell, and Delivered never exceeds Expected.
func cell(j int, tr *seqTracker, published uint64, failed []seqRange) SourceStats {
	s := SourceStats{Source: j, Sent: published, Duplicates: tr.r().duplicates, OutOfOrder: tr.r().outOfOrder}
	for _, f := range failed {
		s.LateConfirmed += tr.receivedIn(f.lo, f.hi)
	}
	if u := tr.unique(); u > s.LateConfirmed {
		s.Delivered = u - s.LateConfirmed
	}
	// receivedIn may overstate below a forgotten range (see seqTracker),
	// which can only understate Delivered; the bound below is a guard.
	s.Delivered = min(s.Delivered, s.Sent)
	s.Missing = s.Sent - s.Delivered
	return s
}

// warnings states what a reader of the numbers must know.
func warnings(res *Result, cfg Config) []string {
	t := res.Totals
	var w []string
	w = append(w, streamsWarnings(res, cfg)...)
	if cfg.DisableSelfFilter {
		w = append(w, "self-filtering was disabled (a test of the self-received check)")
	}
	if res.Interrupted {
		w = append(w, fmt.Sprintf("interrupted after %.1fs of %v: partial results", res.ElapsedSeconds, cfg.Duration))
	} else if attempts := t.Published + t.PublishErrors + t.PublishUnknown; !cfg.MaxRate && attempts < t.TargetEvents {
		w = append(w, fmt.Sprintf("publisher fell behind: %d of %d target events sent (%.1f/s of %g/s)",
			attempts, t.TargetEvents, t.PublishRate, cfg.Rate))
	}
	if notConnected := t.Instances - t.Connected; notConnected > 0 {
		for _, ir := range res.Instances {
			if !ir.Connected {
				w = append(w, fmt.Sprintf("instance %d was not connected at the end: %s", ir.Index, ir.NotConnected))
				break // the first; the table shows them all
			}
		}
		if notConnected > 1 {
			w = append(w, fmt.Sprintf("%d instances in all were not connected at the end: messages published while an instance was down are missing at it", notConnected))
		}
	}
	if notAccepted := t.PublishErrors + t.PublishUnknown; notAccepted > 0 {
		w = append(w, fmt.Sprintf("%d publishes were not accepted by Redis (%d failed, %d with an unknown outcome): delivery is measured over the %d accepted only",
			notAccepted, t.PublishErrors, t.PublishUnknown, t.Published))
		// Why, in the server's words where it refused: the first few
		// reasons each on a line of its own.
		for k, f := range res.PublishFailures {
			if k == 3 {
				w = append(w, fmt.Sprintf("publishes not accepted for %d more reasons (see publish_failures in the JSON)", len(res.PublishFailures)-k))
				break
			}
			w = append(w, fmt.Sprintf("%d publishes not accepted: %s", f.Count, f.Reason))
		}
	}
	if t.LateConfirmed > 0 {
		w = append(w, fmt.Sprintf("%d deliveries were of publishes not accepted (late-confirmed): Redis acted on them although no reply said so; counted apart from delivered", t.LateConfirmed))
	}
	if t.Forged > 0 {
		w = append(w, fmt.Sprintf("%d messages claimed to come from this run's instances but failed its checks (index, sequence, send time, tag): forged or corrupted, counted as forged and nothing else", t.Forged))
	}
	if t.NegativeLatency > 0 {
		w = append(w, fmt.Sprintf("%d deliveries arrived before they were sent, on the workers' clocks as corrected: within the clocks' uncertainty (see the Workers table); recorded as the minimum latency", t.NegativeLatency))
	}
	if t.Forgotten > 0 {
		w = append(w, fmt.Sprintf("%d sequence numbers were in gaps forgotten past %d open gaps from one source: counted as missing, so the loss may be overstated by up to that many",
			t.Forgotten, gapLimit(res.Config.Instances, res.Config.PubSub == "sharded")))
	}
	if t.Untracked > 0 {
		w = append(w, fmt.Sprintf("%d arrivals came from sequence ranges no longer tracked (over %d gaps from one source): left counted as missing", t.Untracked, gapLimit(res.Config.Instances, res.Config.PubSub == "sharded")))
	}
	if !res.Drained && res.Interrupted {
		w = append(w, fmt.Sprintf("interrupted: the drain was cut short, so %d of the missing messages may only be late", t.Missing))
	} else if !res.Drained {
		why := ""
		if len(res.Timeline.Outages) > 0 && res.Timeline.LossOutsideOutages == 0 {
			why = " (all of them inside subscriber outages: lost, not late)"
		}
		wait := fmt.Sprintf("drain timeout (%v)", cfg.DrainTimeout)
		if cfg.DrainTimeout == NoDrain {
			wait = "no drain"
		}
		w = append(w, fmt.Sprintf("%s: %d expected messages had not arrived%s", wait, t.Missing, why))
	}
	if t.Foreign > 0 {
		w = append(w, fmt.Sprintf("%d events from publishers outside this run arrived on %s* channels (not counted as delivered)", t.Foreign, res.KeyPrefix))
	}
	if t.Malformed > 0 {
		w = append(w, fmt.Sprintf("%d messages on %s* channels were not event envelopes (dropped)", t.Malformed, res.KeyPrefix))
	}
	if ob := res.OutputBuffers; ob.LimitBytes > 0 && ob.PeakBytes*2 >= ob.LimitBytes {
		w = append(w, fmt.Sprintf("instance %d's output buffer on the server reached %s, %.0f%% of the pubsub hard limit: Redis disconnects a subscriber at 100%%, and its messages are lost",
			ob.PeakInstance, units.Bytes(ob.PeakBytes), float64(ob.PeakBytes)/float64(ob.LimitBytes)*100))
	}
	for _, f := range res.Timeline.Faults {
		if f.Error != "" {
			w = append(w, fmt.Sprintf("fault %s at %.1fs failed: %s", f.Action, f.AtSeconds, f.Error))
		}
	}
	var overflow uint64
	for _, ir := range res.Instances {
		overflow += ir.LatencyOverflow
	}
	if overflow > 0 {
		w = append(w, fmt.Sprintf("%d latencies exceeded 60s and were recorded as 60s", overflow))
	}
	return w
}

// StageEcho is one stage of a load shape as a report repeats it.
type StageEcho struct {
	DurationSeconds float64 `json:"duration_s"`
	Rate            float64 `json:"rate"`
}

// StagesText is the run's load shape as --stages writes it; "" for none.
func (c ResultConfig) StagesText() string {
	parts := make([]string, len(c.Stages))
	for i, s := range c.Stages {
		parts[i] = fmt.Sprintf("%gs:%g", s.DurationSeconds, s.Rate)
	}
	return strings.Join(parts, ",")
}

// Repeated makes one Result of the runs of the same configuration run
// again and again (reps, in order), to see through a noisy machine: its
// fields are those of the median repetition by p99 latency (the number
// that moves most between identical runs), it holds every repetition,
// and it is interrupted when any was. Judging it (the verdict package)
// looks at each repetition: the accounting must hold in every one, the
// latencies are taken at their median.
func Repeated(reps []*Result) *Result {
	if len(reps) == 0 {
		return nil
	}
	order := make([]int, len(reps))
	for i := range order {
		order[i] = i
	}
	// Repetitions with nothing measured sort last: a p99 of 0 is not low.
	p99 := func(i int) int64 {
		if reps[i].Latency.Count == 0 {
			return math.MaxInt64
		}
		return reps[i].Latency.P99
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(p99(a), p99(b)) })
	body := order[(len(order)-1)/2]
	out := *reps[body]
	out.Repetitions, out.RepeatBody = reps, body+1
	for _, r := range reps {
		out.Interrupted = out.Interrupted || r.Interrupted
	}
	return &out
}

// streamsWarnings are the warnings of a run over streams: trimming and
// server loss as causes, what was read again, what was left in place.
func streamsWarnings(res *Result, cfg Config) []string {
	s := res.Streams
	if s == nil {
		return nil
	}
	t := res.Totals
	var w []string
	if s.Trimmed > 0 && t.Missing > 0 && s.MaxLen > 0 {
		w = append(w, fmt.Sprintf("streams: MAXLEN ~%d trimmed %d of the %d entries the run added; a reader further behind than the cap loses what was trimmed before it read it: the cause of missing messages when no server lost data",
			s.MaxLen, s.Trimmed, s.Added))
	}
	switch {
	case s.Lost > 0 && len(s.Vanished) > 0:
		w = append(w, fmt.Sprintf("streams: %s deleted from outside during the run (the key gone, or its entries-added down, with the server up): %d entries Redis acknowledged (XADD) are not in the streams at the end, read by then or not",
			strings.Join(s.Vanished, ", "), s.Lost))
	case len(s.Vanished) > 0:
		w = append(w, fmt.Sprintf("streams: %s deleted from outside during the run (the key gone, or its entries-added down, with the server up)", strings.Join(s.Vanished, ", ")))
	case s.Lost > 0:
		w = append(w, fmt.Sprintf("streams: %d entries Redis acknowledged (XADD) are not in the streams at the end: lost with the server's data (a restart without persistence, or the unsynced tail of its append-only file), read by then or not",
			s.Lost))
	}
	if s.Trimmed > 0 && s.MaxLen < 0 {
		w = append(w, fmt.Sprintf("streams: %d entries were removed from the streams from outside (XTRIM, XDEL): the run sets no MAXLEN", s.Trimmed))
	}
	if s.Redelivered > 0 {
		w = append(w, fmt.Sprintf("streams: %d entries read again from pending lists after reconnections (handed over before, never acknowledged): streams deliver at least once, and the %d duplicates are among them",
			s.Redelivered, t.Duplicates))
	}
	if len(s.Preexisting) > 0 {
		w = append(w, fmt.Sprintf("streams %s existed before the run: left in place, with the run's entries, without its groups; a --key-prefix of the run's own keeps runs apart",
			strings.Join(s.Preexisting, ", ")))
	}
	if s.CleanupError != "" {
		w = append(w, fmt.Sprintf("streams: not everything the run added was removed (%s): `redisload cleanup --key-prefix=%s` removes it",
			s.CleanupError, cmp.Or(cfg.Redis.KeyPrefix, bridge.DefaultKeyPrefix)))
	}
	return w
}
