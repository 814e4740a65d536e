package report_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/redisload/redisload/capacity"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/report"
)

func TestParseRegressions(t *testing.T) {
	got, err := report.ParseRegressions("p99=20%, avg=5ms,delivery=0.1,errors=0,throughput=10%")
	if err != nil {
		t.Fatal(err)
	}
	want := []report.RegressionLimit{{"p99", true, 0.2}, {"avg", false, 5000}, {"delivery", false, 0.1},
		{"errors", false, 0}, {"throughput", true, 0.1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for in, msg := range map[string]string{
		"p98=1%":       "metric one of throughput, publish_rate, delivery",
		"p99":          "want metric=limit",
		"p99=abc":      "a duration such as 5ms",
		"delivery=-1":  "percentage points",
		"errors=lots":  "a number",
		"":             "no limit given",
		"p99=NaN%":     "want a limit like 20%",
		"missing=1e99": "",
	} {
		_, err := report.ParseRegressions(in)
		if msg == "" {
			if err != nil {
				t.Errorf("%q: %v", in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", in, err, msg)
		}
	}
}

// withLatency returns a result with the given p99, mean, delivery rate and
// throughput, the rest zero.
func sample(p99 int64, mean, delivery, throughput float64) *harness.Result {
	r := &harness.Result{Latency: harness.LatencyStats{Count: 100, P99: p99, Mean: mean}}
	r.Totals.DeliveryRate = &delivery
	r.Totals.DeliveryThroughput = throughput
	return r
}

// Each limit passes exactly at its bound and fails just past it, in the
// metric's bad direction only.
func TestRegressionBoundaries(t *testing.T) {
	base := sample(1000, 500, 99.9, 1000)
	limits, _ := report.ParseRegressions("p99=20%,avg=100us,delivery=0.1,throughput=10%")
	for _, tc := range []struct {
		name string
		cur  *harness.Result
		want string
	}{
		{"at every bound", sample(1200, 600, 99.8, 900), "PASS PASS PASS PASS"},
		{"just past each", sample(1201, 601, 99.79, 899), "FAIL FAIL FAIL FAIL"},
		{"better everywhere", sample(10, 1, 100, 5000), "PASS PASS PASS PASS"},
		{"not measured", &harness.Result{}, "SKIP SKIP SKIP FAIL"}, // throughput 0 is measured
	} {
		var got []string
		for _, c := range report.RegressionChecks(base, tc.cur, limits) {
			got = append(got, string(c.Status))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
	c := report.RegressionChecks(base, sample(1500, 500, 99.9, 1000), limits[:1])[0]
	if c.ID != "regression_p99" || c.Threshold != "+20% at most (baseline 1.000 ms)" || c.Measured != "1.500 ms, +50.0% (worse)" {
		t.Errorf("%+v", c)
	}
	v := report.Verdict{Status: report.Pass}.With(c)
	if v.Status != report.Fail || len(v.Checks) != 1 {
		t.Errorf("With: %+v", v)
	}
}

// compare's output, golden: the restart run against the healthy one.
func TestGoldenCompare(t *testing.T) {
	limits, _ := report.ParseRegressions(report.DefaultRegressions + ",errors=0")
	c := report.Compare(load(t, "pass-5"), load(t, "restart"), limits)
	if !c.Failed() || len(c.Rows) == 0 {
		t.Fatalf("restart vs pass-5: failed %v", c.Failed())
	}
	for _, md := range []bool{false, true} {
		var buf bytes.Buffer
		if err := report.NewCompareReporter(c, "pass-5.json", "restart.json", md)(&buf); err != nil {
			t.Fatal(err)
		}
		name := "compare.txt"
		if md {
			name = "compare.md"
		}
		golden(t, name, buf.Bytes())
	}
}

// The capacity table, golden, from a fixed search: two passing steps and
// the knee.
func TestGoldenCapacity(t *testing.T) {
	res := &capacity.Result{Vary: capacity.VaryRate, Sustainable: 1, MinDelivery: 99.9, MaxP99us: 100_000, MinAchieved: 0.95,
		Redis: "redis://127.0.0.1:6379", Server: "7.0.15", Steps: []capacity.Step{
			{Instances: 5, TargetRate: 80000, AchievedRate: 79961, DeliveriesPerS: 319589, DeliveryPct: 100, P50us: 1328, P99us: 3401,
				RedisCPUPct: 15, RedisMemoryPeak: "1.87M", ClientCPUPct: 46, Passed: true},
			{Instances: 5, TargetRate: 160000, AchievedRate: 159722, DeliveriesPerS: 638885, DeliveryPct: 100, P50us: 1766, P99us: 6239,
				RedisCPUPct: 29, RedisMemoryPeak: "2.10M", ClientCPUPct: 99, Passed: true},
			{Instances: 5, TargetRate: 320000, AchievedRate: 308765, DeliveriesPerS: 1235059, DeliveryPct: 100, P50us: 72511, P99us: 180607,
				RedisCPUPct: 46, RedisMemoryPeak: "2.76M", ClientCPUPct: 125, Failed: "p99 180.607 ms > 100ms"},
		}}
	for format, name := range map[string]string{"table": "capacity.txt", "markdown": "capacity.md"} {
		var buf bytes.Buffer
		if err := report.NewCapacityReporter(res, format)(&buf); err != nil {
			t.Fatal(err)
		}
		golden(t, name, buf.Bytes())
		if !strings.Contains(buf.String(), "Sustainable capacity: 5 instances at 160000 events/s (638885 deliveries/s, p99 6.239 ms). Knee at step 3: p99 180.607 ms > 100ms.") {
			t.Errorf("%s: no capacity line:\n%s", format, buf.String())
		}
	}
}
