// Package live serves a run in progress as Prometheus metrics, with the
// official client library: what a dashboard or an alert watches during a
// long soak, where the report comes only at the end.
//
// The exporter is fed the run's per-second points (harness.Config.Progress,
// in one process or merged over workers) and, at the end, its Result; a
// scrape reads what it was last fed. Totals always; counters labelled by
// instance too in a run of at most harness.SeriesInstanceLimit (100)
// instances, where the points carry each instance's counts: above it,
// a series per instance would cost a monitoring system more than it tells.
package live

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redisload/redisload/harness"
)

// Phases a run goes through, as the phase metric names them.
const (
	PhaseConnecting = "connecting"
	PhasePublishing = "publishing"
	PhaseDone       = "done"
)

// latencyBuckets are the classic histogram's upper bounds, in seconds:
// from loopback (100 µs) to a run that has fallen far behind (60 s).
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Exporter is a prometheus.Collector of one run's live figures. Its
// methods may be called from any goroutine.
type Exporter struct {
	mu    sync.Mutex
	info  map[string]string
	phase string
	last  harness.SeriesPoint
	lat   *hdrhistogram.Histogram // every delivery so far, merged from the points
	send  *hdrhistogram.Histogram // every publish's send delay so far, likewise
	final *harness.Result         // set by Finish

	descs map[string]*prometheus.Desc
}

// NewExporter returns an exporter for a run of cfg; info labels the run
// (its ID, the tool's version...) on the info metric, beside cfg's shape.
func NewExporter(cfg harness.Config, info map[string]string) *Exporter {
	cfg = cfg.WithDefaults()
	labels := map[string]string{
		"instances": strconv.Itoa(cfg.Instances),
		"rate":      strconv.FormatFloat(cfg.Rate, 'g', -1, 64),
		"duration":  cfg.Duration.String(),
	}
	if cfg.MaxRate {
		labels["rate"] = "max"
	}
	maps.Copy(labels, info)
	e := &Exporter{info: labels, phase: PhaseConnecting, lat: hdrhistogram.New(1, 60_000_000, 2),
		send: hdrhistogram.New(1, 60_000_000, 2), descs: map[string]*prometheus.Desc{}}
	desc := func(name, help string, labels ...string) {
		e.descs[name] = prometheus.NewDesc("redisload_"+name, help, labels, nil)
	}
	desc("run_info", "The run's configuration, as labels; always 1.", slices.Sorted(maps.Keys(labels))...)
	desc("phase", "1 for the phase the run is in, 0 for the others.", "phase")
	desc("published_total", "Events the publishers had accepted by Redis (warm-up included).")
	desc("delivered_total", "Messages the subscribers received from the run's other instances (warm-up included).")
	desc("errors_total", "Errors the instances counted: publishes not accepted, broken connections.")
	desc("pending_messages", "Messages the subscribers should have received by now and have not: in flight, or lost.")
	desc("target_rate", "Events per second the schedule asked for over the last second (0 for the closed loop).")
	desc("publish_rate", "Events per second published over the last second.")
	desc("delivery_rate", "Messages per second delivered over the last second.")
	desc("latency_seconds", "Latency from each event's intended send time to its receipt, every delivery so far.")
	desc("send_delay_seconds", "How late each event left its intended send time, every publish so far: the generator's lag, apart from the server's.")
	desc("reconnects_total", "Subscriber reconnections.")
	desc("instance_published_total", "Events the instance's publisher had accepted by Redis; in runs of at most 100 instances.", "instance")
	desc("instance_delivered_total", "Messages the instance's subscriber received from the others; in runs of at most 100 instances.", "instance")
	desc("instance_errors_total", "Errors the instance counted; in runs of at most 100 instances.", "instance")
	desc("instance_reconnects_total", "The instance's subscriber reconnections; in runs of at most 100 instances.", "instance")
	desc("missing_total", "Expected messages that never arrived; known when the run has drained (absent before).")
	desc("duplicates_total", "Messages delivered more than once; known at the end (absent before).")
	desc("forged_total", "Messages claiming to be the run's that failed its checks; known at the end (absent before).")
	return e
}

// Observe takes one per-second point: a harness Progress callback.
func (e *Exporter) Observe(p harness.SeriesPoint) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last = p
	if e.phase == PhaseConnecting {
		e.phase = PhasePublishing
	}
	// Same range: nothing is dropped.
	if p.Latencies != nil {
		e.lat.Merge(p.Latencies)
	}
	if p.SendDelays != nil {
		e.send.Merge(p.SendDelays)
	}
}

// Phase sets the phase the run is in.
func (e *Exporter) Phase(phase string) {
	e.mu.Lock()
	e.phase = phase
	e.mu.Unlock()
}

// Finish takes the run's result: the figures known only at its end.
func (e *Exporter) Finish(res *harness.Result) {
	e.mu.Lock()
	e.final, e.phase = res, PhaseDone
	e.mu.Unlock()
}

// Handler serves the exporter's metrics, and nothing else, in the
// exposition formats Prometheus negotiates.
func (e *Exporter) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(e)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range e.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	defer e.mu.Unlock()
	keys := slices.Sorted(maps.Keys(e.info))
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = e.info[k]
	}
	ch <- prometheus.MustNewConstMetric(e.descs["run_info"], prometheus.GaugeValue, 1, values...)
	for _, ph := range []string{PhaseConnecting, PhasePublishing, PhaseDone} {
		v := 0.0
		if ph == e.phase {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(e.descs["phase"], prometheus.GaugeValue, v, ph)
	}
	p := e.last
	counter := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(e.descs[name], prometheus.CounterValue, v)
	}
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(e.descs[name], prometheus.GaugeValue, v)
	}
	counter("published_total", float64(p.Published))
	counter("delivered_total", float64(p.Delivered))
	counter("errors_total", float64(p.Errors))
	gauge("pending_messages", float64(p.Pending))
	gauge("target_rate", p.TargetRate)
	gauge("publish_rate", p.PublishRate)
	gauge("delivery_rate", p.DeliveryRate)
	for _, h := range []struct {
		name string
		h    *hdrhistogram.Histogram
	}{{"latency_seconds", e.lat}, {"send_delay_seconds", e.send}} {
		count, sum, buckets := classicBuckets(h.h)
		ch <- prometheus.MustNewConstHistogram(e.descs[h.name], count, sum, buckets)
	}
	reconnects := p.Reconnects
	for _, ip := range p.Instances {
		id := strconv.Itoa(ip.Index)
		for name, v := range map[string]uint64{"instance_published_total": ip.Published, "instance_delivered_total": ip.Delivered,
			"instance_errors_total": ip.Errors, "instance_reconnects_total": ip.Reconnects} {
			ch <- prometheus.MustNewConstMetric(e.descs[name], prometheus.CounterValue, float64(v), id)
		}
	}
	if r := e.final; r != nil {
		t := r.Totals
		counter("missing_total", float64(t.Missing))
		counter("duplicates_total", float64(t.Duplicates))
		counter("forged_total", float64(t.Forged))
		reconnects = max(reconnects, t.Reconnects) // the end's count, should the last point predate one
	}
	counter("reconnects_total", float64(reconnects))
}

// classicBuckets turns an HDR histogram of microseconds into a classic
// histogram in seconds: the count, the sum, and for each bound the count
// of values at or under it.
func classicBuckets(h *hdrhistogram.Histogram) (uint64, float64, map[float64]uint64) {
	buckets := make(map[float64]uint64, len(latencyBuckets))
	count := uint64(h.TotalCount())
	var sum float64
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		// A bar holds the values it stands for: counted at its top, so
		// that a bucket never claims a value above its bound.
		sum += float64(bar.Count) * float64(bar.To) / 1e6
		top := float64(bar.To) / 1e6
		for _, b := range latencyBuckets {
			if top <= b {
				buckets[b] += uint64(bar.Count)
			}
		}
	}
	for _, b := range latencyBuckets {
		if _, ok := buckets[b]; !ok {
			buckets[b] = 0
		}
	}
	return count, sum, buckets
}
