package live

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/redisload/redisload/harness"
)

// The exporter serves what it was last fed: the counters of the last
// point, the latencies of every point merged into a classic histogram
// whose buckets count the values at or under their bounds, the phase, and
// the end's figures only once the run has ended.
func TestExporter(t *testing.T) {
	e := NewExporter(harness.Config{Instances: 4, Rate: 200, Duration: 3 * time.Second}, map[string]string{"version": "v1"})
	scrape := func() string {
		rec := httptest.NewRecorder()
		e.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(rec.Body)
		return string(b)
	}
	if out := scrape(); !strings.Contains(out, `redisload_phase{phase="connecting"} 1`) ||
		!strings.Contains(out, `redisload_run_info{duration="3s",instances="4",rate="200",version="v1"} 1`) ||
		strings.Contains(out, "redisload_missing_total") || strings.Contains(out, "redisload_instance_") {
		t.Fatalf("before the first point:\n%s", out)
	}
	iv := func(us ...int64) *hdrhistogram.Histogram {
		h := hdrhistogram.New(1, 60_000_000, 2)
		for _, v := range us {
			_ = h.RecordValue(v)
		}
		return h
	}
	e.Observe(harness.SeriesPoint{Seconds: 1, Published: 200, Delivered: 590, Pending: 10, Errors: 1, TargetRate: 200,
		PublishRate: 199, DeliveryRate: 590, Latencies: iv(50, 700)})
	e.Observe(harness.SeriesPoint{Seconds: 2, Published: 400, Delivered: 1195, Pending: 5, Errors: 1, TargetRate: 200,
		PublishRate: 200, DeliveryRate: 605, Reconnects: 1, Latencies: iv(3000), SendDelays: iv(20, 40, 90_000),
		Instances: []harness.InstancePoint{{Index: 0, Published: 150, Delivered: 300, Errors: 1, Reconnects: 1}, {Index: 1, Published: 250, Delivered: 895}}})
	out := scrape()
	for _, want := range []string{
		`redisload_phase{phase="publishing"} 1`, "redisload_published_total 400", "redisload_delivered_total 1195",
		"redisload_pending_messages 5", "redisload_errors_total 1", "redisload_target_rate 200",
		`redisload_latency_seconds_bucket{le="0.0001"} 1`, `redisload_latency_seconds_bucket{le="0.001"} 2`,
		`redisload_latency_seconds_bucket{le="0.0025"} 2`, `redisload_latency_seconds_bucket{le="0.005"} 3`,
		"redisload_latency_seconds_count 3", `redisload_send_delay_seconds_bucket{le="0.0001"} 2`,
		`redisload_send_delay_seconds_bucket{le="0.1"} 3`, "redisload_send_delay_seconds_count 3", "redisload_reconnects_total 1",
		`redisload_instance_published_total{instance="0"} 150`, `redisload_instance_delivered_total{instance="1"} 895`,
		`redisload_instance_errors_total{instance="0"} 1`, `redisload_instance_reconnects_total{instance="1"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	res := &harness.Result{}
	res.Totals.Missing, res.Totals.Duplicates, res.Totals.Forged, res.Totals.Reconnects = 7, 2, 3, 2
	e.Finish(res)
	out = scrape()
	for _, want := range []string{`redisload_phase{phase="done"} 1`, "redisload_missing_total 7", "redisload_duplicates_total 2",
		"redisload_forged_total 3", "redisload_reconnects_total 2"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("after the end, no %q", want)
		}
	}
}
