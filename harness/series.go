package harness

import (
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
	// P50, P99 and Max are the interval's latencies (µs); 0 when nothing
	// arrived in it.
	P50 int64 `json:"p50_us"`
	P99 int64 `json:"p99_us"`
	Max int64 `json:"max_us"`
	// P99SoFar is the p99 of every delivery from the start (µs).
	P99SoFar int64 `json:"p99_so_far_us"`
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

	total  *hdrhistogram.Histogram // every delivery so far, for P99SoFar
	last   SeriesPoint
	points []SeriesPoint
}

// run samples until stop is closed, then once more, and returns the
// series. Each point also goes to cfg.Progress.
func (s *seriesSampler) run(stop <-chan struct{}) []SeriesPoint {
	s.total = hdrhistogram.New(histMinUs, histMaxUs, intervalSigFigs)
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
	p := SeriesPoint{Seconds: time.Since(s.start).Seconds()}
	iv := hdrhistogram.New(histMinUs, histMaxUs, intervalSigFigs)
	var ownPublished uint64 // published by subscribing instances, which do not expect their own
	subscribers := uint64(0)
	for i, ip := range s.pub.insts {
		n := ip.sent.Load()
		p.Published += n
		if s.cfg.subscribes(i) {
			ownPublished += n
			subscribers++
		}
	}
	for i, r := range s.recvs {
		r.iv.drainInto(iv)
		p.Delivered += r.progress.Load()
		p.Errors += s.bridges[i].Metrics().Errors
	}
	if expected := p.Published*subscribers - ownPublished; expected > p.Delivered {
		p.Pending = expected - p.Delivered
	}
	if dt := p.Seconds - s.last.Seconds; dt > 0 {
		p.PublishRate = float64(p.Published-s.last.Published) / dt
		p.DeliveryRate = float64(p.Delivered-s.last.Delivered) / dt
	}
	if iv.TotalCount() > 0 {
		p.P50, p.P99, p.Max = iv.ValueAtQuantile(50), iv.ValueAtQuantile(99), iv.Max()
	}
	s.total.Merge(iv)
	p.P99SoFar = s.total.ValueAtQuantile(99)
	s.points = append(s.points, p)
	s.last = p
	if s.cfg.Progress != nil {
		s.cfg.Progress(p)
	}
}
