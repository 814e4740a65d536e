package harness

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/redisload/redisload/bridge"
)

// SeriesPoint is one interval of the run as it went: cumulative counts at
// its end, rates and latency within it. Times are seconds from the start
// of publishing; the drain's intervals come after the duration.
type SeriesPoint struct {
	Seconds   float64 `json:"t_s"`
	Published uint64  `json:"published"`
	Delivered uint64  `json:"delivered"`
	Errors    uint64  `json:"errors"`
	// Pending is what the subscribers should have received by now and
	// have not: in flight, or lost.
	Pending uint64 `json:"pending"`
	// PublishRate and DeliveryRate are per second, over the interval.
	PublishRate  float64 `json:"publish_rate"`
	DeliveryRate float64 `json:"delivery_rate"`
	// TargetRate is what the schedule asked for over the interval, per
	// second (0 for a closed loop, which has none): beside PublishRate,
	// it shows a load shape followed, or a generator falling behind.
	TargetRate float64 `json:"target_rate"`
	// P50, P99 and Max are the interval's latencies (µs); 0 when nothing
	// arrived in it.
	P50 int64 `json:"p50_us"`
	P99 int64 `json:"p99_us"`
	Max int64 `json:"max_us"`
	// P99SoFar is the p99 of every delivery from the start (µs).
	P99SoFar int64 `json:"p99_so_far_us"`
	// SendP50 and SendP99 are the interval's send delays (µs): how late
	// the events published in it left their intended times. Beside P99,
	// they tell a slow generator from a slow server. 0 when nothing was
	// published in it.
	SendP50 int64 `json:"send_p50_us"`
	SendP99 int64 `json:"send_p99_us"`
	// Reconnects counts the subscribers' reconnections so far.
	Reconnects uint64 `json:"reconnects"`
	// Latencies is the interval's latency histogram (µs), for a live
	// consumer that keeps distributions (a Prometheus exporter); the
	// callee may keep it, the sampler does not touch it again. Not in the
	// JSON.
	Latencies *hdrhistogram.Histogram `json:"-"`
	// SendDelays is the interval's send-delay histogram (µs), as
	// Latencies: handed to the callee, not kept, not in the JSON.
	SendDelays *hdrhistogram.Histogram `json:"-"`
	// Instances is each instance's counts so far, by index, in a run of
	// at most SeriesInstanceLimit instances (nil above): for a live
	// consumer that labels by instance. Not kept, not in the JSON.
	Instances []InstancePoint `json:"-"`
}

// SeriesInstanceLimit is the most instances whose counts each point
// carries one by one (SeriesPoint.Instances): a metric labelled by
// instance has a series per instance, and a monitoring system pays for
// every one. Above it, totals only.
const SeriesInstanceLimit = 100

// InstancePoint is one instance's counts so far, in a SeriesPoint.
type InstancePoint struct {
	Index      int    `json:"index"`
	Published  uint64 `json:"published"`
	Delivered  uint64 `json:"delivered"`
	Errors     uint64 `json:"errors"`
	Reconnects uint64 `json:"reconnects"`
}

// SeriesInterval is the length of one SeriesPoint.
const SeriesInterval = time.Second

// intervalSigFigs: the interval histograms serve plots and a progress line,
// where 1 % precision is plenty, at a tenth of the memory of the run's own.
const intervalSigFigs = 2

// intervalHist is a receiver's latency histogram of the current interval.
// Unlike the receiver's own, it is read by another goroutine, so it has a
// lock; uncontended but for once per interval.
type intervalHist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newIntervalHist() *intervalHist {
	return &intervalHist{h: hdrhistogram.New(histMinUs, histMaxUs, intervalSigFigs)}
}

func (ih *intervalHist) record(us int64) {
	ih.mu.Lock()
	_ = ih.h.RecordValue(min(us, histMaxUs))
	ih.mu.Unlock()
}

// drainInto merges the interval into dst and starts a new one.
func (ih *intervalHist) drainInto(dst *hdrhistogram.Histogram) {
	ih.mu.Lock()
	dst.Merge(ih.h)
	ih.h.Reset()
	ih.mu.Unlock()
}

// seriesSampler builds the series once per interval from counters the
// publishers and receivers keep for it.
type seriesSampler struct {
	cfg     Config
	start   time.Time
	pub     *publisher
	recvs   []*receiver
	bridges []*bridge.Bridge

	total *hdrhistogram.Histogram // every delivery so far, for P99SoFar
	last  SeriesPoint
	// pacer and totalEvents are the run's schedule, for TargetRate.
	pacer       runPacer
	totalEvents uint64
	points      []SeriesPoint
	// keep, in a process of a split run, keeps each interval's raw counts
	// and latencies, for the coordinator to merge (raws).
	keep bool
	raws []SeriesRaw
	// onRaw, in a process of a split run, is given each interval as it is
	// taken: the coordinator's live progress.
	onRaw func(SeriesRaw)
}

// run samples until stop is closed, then once more, and returns the
// series. Each point also goes to cfg.Progress.
func (s *seriesSampler) run(stop <-chan struct{}) []SeriesPoint {
	t := time.NewTicker(SeriesInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			s.sample()
			return s.points
		case <-t.C:
			s.sample()
		}
	}
}

func (s *seriesSampler) sample() {
	raw := SeriesRaw{Seconds: time.Since(s.start).Seconds()}
	iv := hdrhistogram.New(histMinUs, histMaxUs, intervalSigFigs)
	sendIv := hdrhistogram.New(histMinUs, histMaxUs, intervalSigFigs)
	perInstance := s.cfg.Instances <= SeriesInstanceLimit
	for i, ip := range s.pub.insts {
		if ip == nil {
			continue // another process's (a split run)
		}
		c := InstancePoint{Index: i, Published: ip.sent.Load()}
		if ip.iv != nil {
			ip.iv.drainInto(sendIv)
		}
		if r := s.recvs[i]; r != nil {
			r.iv.drainInto(iv)
			m := s.bridges[i].Metrics()
			c.Delivered, c.Errors, c.Reconnects = r.progress.Load(), m.Errors, m.Reconnects
		}
		raw.Published += c.Published
		if s.cfg.subscribes(i) {
			raw.OwnPublished += c.Published
		}
		raw.Delivered += c.Delivered
		raw.Errors += c.Errors
		raw.Reconnects += c.Reconnects
		if perInstance {
			raw.Instances = append(raw.Instances, c)
		}
	}
	if s.keep || s.onRaw != nil {
		enc, err := iv.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		senc, serr := sendIv.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err == nil && serr == nil {
			raw.Hist, raw.SendHist = enc, senc
			if s.keep {
				s.raws = append(s.raws, raw)
			}
			if s.onRaw != nil {
				s.onRaw(raw)
			}
		}
	}
	p := s.point(raw, iv, sendIv)
	kept := p
	// A series of hours must not hold every second's histograms.
	kept.Latencies, kept.SendDelays, kept.Instances = nil, nil, nil
	s.points = append(s.points, kept)
	if s.cfg.Progress != nil {
		s.cfg.Progress(p)
	}
}

// SeriesRaw is one interval as one process of a split run saw it: its own
// instances' cumulative counts and the interval's latencies, merged with
// the other processes' interval of the same index into a SeriesPoint.
type SeriesRaw struct {
	Seconds      float64 `json:"t_s"`
	Published    uint64  `json:"published"`
	OwnPublished uint64  `json:"own_published"` // by subscribing instances, which do not expect their own
	Delivered    uint64  `json:"delivered"`
	Errors       uint64  `json:"errors"`
	Reconnects   uint64  `json:"reconnects"`
	Hist         []byte  `json:"hist"`                // interval latencies, compressed encoding
	SendHist     []byte  `json:"send_hist,omitempty"` // interval send delays, likewise
	// Instances is this process's instances' counts, in a run of at most
	// SeriesInstanceLimit instances.
	Instances []InstancePoint `json:"instances,omitempty"`
}

// point turns an interval's counts and latencies into the next point.
func (s *seriesSampler) point(raw SeriesRaw, iv, sendIv *hdrhistogram.Histogram) SeriesPoint {
	if s.total == nil {
		s.total = hdrhistogram.New(histMinUs, histMaxUs, intervalSigFigs)
	}
	p := SeriesPoint{Seconds: raw.Seconds, Published: raw.Published, Delivered: raw.Delivered, Errors: raw.Errors,
		Reconnects: raw.Reconnects, Instances: raw.Instances}
	subscribers := uint64(0)
	for i := range s.cfg.Instances {
		if s.cfg.subscribes(i) {
			subscribers++
		}
	}
	if expected := p.Published*subscribers - raw.OwnPublished; expected > p.Delivered {
		p.Pending = expected - p.Delivered
	}
	if dt := p.Seconds - s.last.Seconds; dt > 0 {
		p.PublishRate = float64(p.Published-s.last.Published) / dt
		p.DeliveryRate = float64(p.Delivered-s.last.Delivered) / dt
		if !s.cfg.MaxRate {
			if s.pacer == nil {
				s.pacer, s.totalEvents = s.cfg.pacer(), s.cfg.scheduledEvents() // the warm-up's too: the series shows it
			}
			due := func(sec float64) uint64 {
				return min(s.pacer.Due(time.Duration(sec*float64(time.Second))), s.totalEvents)
			}
			p.TargetRate = float64(due(p.Seconds)-due(s.last.Seconds)) / dt
		}
	}
	if iv.TotalCount() > 0 {
		p.P50, p.P99, p.Max = iv.ValueAtQuantile(50), iv.ValueAtQuantile(99), iv.Max()
	}
	if sendIv.TotalCount() > 0 {
		p.SendP50, p.SendP99 = sendIv.ValueAtQuantile(50), sendIv.ValueAtQuantile(99)
	}
	s.total.Merge(iv)
	p.P99SoFar = s.total.ValueAtQuantile(99)
	p.Latencies, p.SendDelays = iv, sendIv
	s.last = p
	return p
}

// mergeSeries merges the parts' intervals by index into the run's series:
// the processes sample on one schedule from the common start, so the k-th
// interval of each covers the same second. A part with fewer intervals
// (it finished its drain sooner) adds its last counts to the later ones.
func mergeSeries(cfg Config, parts []PartState) ([]SeriesPoint, error) {
	n := 0
	for _, p := range parts {
		n = max(n, len(p.Series))
	}
	if n == 0 {
		return nil, nil
	}
	m := NewSeriesMerger(cfg)
	var points []SeriesPoint
	raws := make([]SeriesRaw, 0, len(parts))
	for k := range n {
		raws = raws[:0]
		for _, p := range parts {
			if len(p.Series) == 0 {
				continue
			}
			r := p.Series[min(k, len(p.Series)-1)]
			if k >= len(p.Series) {
				r.Hist, r.SendHist = nil, nil // its latencies are counted once
			}
			raws = append(raws, r)
		}
		p, err := m.Add(raws)
		if err != nil {
			return nil, fmt.Errorf("%w: series interval %d: %v", errPart, k, err)
		}
		p.Latencies, p.SendDelays, p.Instances = nil, nil, nil
		points = append(points, p)
	}
	return points, nil
}

// SeriesMerger turns the processes' intervals of a split run, one index
// at a time, into the run's points: what the coordinator draws its live
// progress line from, and what the merged series is made of.
type SeriesMerger struct{ s seriesSampler }

// NewSeriesMerger returns a merger for the run cfg describes.
func NewSeriesMerger(cfg Config) *SeriesMerger {
	return &SeriesMerger{s: seriesSampler{cfg: cfg.WithDefaults()}}
}

// Add merges one interval, the same index from each process (a process
// that has finished repeats its last counts, with no latencies), into the
// next point.
func (m *SeriesMerger) Add(raws []SeriesRaw) (SeriesPoint, error) {
	var raw SeriesRaw
	iv := hdrhistogram.New(histMinUs, histMaxUs, intervalSigFigs)
	sendIv := hdrhistogram.New(histMinUs, histMaxUs, intervalSigFigs)
	merge := func(dst *hdrhistogram.Histogram, enc []byte) error {
		if len(enc) == 0 {
			return nil
		}
		h, err := hdrhistogram.Decode(enc)
		if err != nil {
			return err
		}
		if dropped := dst.Merge(h); dropped > 0 {
			return fmt.Errorf("%d values out of range", dropped)
		}
		return nil
	}
	for _, r := range raws {
		raw.Seconds = max(raw.Seconds, r.Seconds)
		raw.Published += r.Published
		raw.OwnPublished += r.OwnPublished
		raw.Delivered += r.Delivered
		raw.Errors += r.Errors
		raw.Reconnects += r.Reconnects
		raw.Instances = append(raw.Instances, r.Instances...)
		if err := merge(iv, r.Hist); err != nil {
			return SeriesPoint{}, err
		}
		if err := merge(sendIv, r.SendHist); err != nil {
			return SeriesPoint{}, err
		}
	}
	slices.SortFunc(raw.Instances, func(a, b InstancePoint) int { return a.Index - b.Index })
	return m.s.point(raw, iv, sendIv), nil
}
