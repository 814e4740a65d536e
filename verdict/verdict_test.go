package verdict_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/verdict"
)

func summary(v verdict.Verdict) string {
	var b strings.Builder
	for _, c := range v.Checks {
		b.WriteString(c.ID + "=" + string(c.Status) + " ")
	}
	return b.String() + ":" + string(v.Status)
}

func ptr(f float64) *float64 { return &f }

// result builds the smallest Result the verdict reads.
func result(connected, instances int, rate *float64, selfRecv, errs, dups uint64, lat harness.LatencyStats) *harness.Result {
	r := &harness.Result{Latency: lat}
	r.Totals.Instances, r.Totals.Connected = instances, connected
	r.Totals.DeliveryRate = rate
	// The counts behind the rate: 100 events published, each expected at
	// the other instances, delivered at the rate.
	r.Totals.Published = 100
	if rate != nil {
		r.Totals.Expected = 100 * uint64(instances-1)
		r.Totals.Delivered = uint64(float64(r.Totals.Expected) * *rate / 100)
	}
	r.Totals.SelfReceived, r.Totals.Errors, r.Totals.Duplicates = selfRecv, errs, dups
	return r
}

func TestEvaluateBoundaries(t *testing.T) {
	lat := harness.LatencyStats{Count: 10, Mean: 99_999, P99: 20_000}
	def := verdict.DefaultThresholds()
	for _, tc := range []struct {
		name string
		res  *harness.Result
		th   verdict.Thresholds
		want string
	}{
		{"all pass at the edges", result(3, 3, ptr(95), 0, 0, 0, lat), def,
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS measured=PASS :PASS"},
		{"delivery just under", result(3, 3, ptr(94.999), 0, 0, 0, lat), def,
			"connected=PASS self_received=PASS delivery_rate=FAIL errors=PASS avg_latency=PASS measured=PASS :FAIL"},
		{"avg latency equal to the limit fails", result(3, 3, ptr(100), 0, 0, 0, harness.LatencyStats{Count: 1, Mean: 100_000}), def,
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=FAIL measured=PASS :FAIL"},
		{"one error", result(3, 3, ptr(100), 0, 1, 0, lat), def,
			"connected=PASS self_received=PASS delivery_rate=PASS errors=FAIL avg_latency=PASS measured=PASS :FAIL"},
		{"errors allowed", result(3, 3, ptr(100), 0, 1, 0, lat), verdict.Thresholds{MinDeliveryRate: 95, MaxErrors: 1, MaxAvgLatency: time.Second, MaxP99Latency: -1, MaxDuplicates: -1, MaxRecovery: -1},
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS measured=PASS :PASS"},
		{"p99 and duplicates checks", result(3, 3, ptr(100), 0, 0, 2, lat),
			verdict.Thresholds{MinDeliveryRate: 95, MaxAvgLatency: time.Second, MaxP99Latency: 20 * time.Millisecond, MaxDuplicates: 1, MaxRecovery: -1},
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS p99_latency=FAIL duplicates=FAIL measured=PASS :FAIL"},
		{"p99 under the limit", result(3, 3, ptr(100), 0, 0, 0, lat),
			verdict.Thresholds{MinDeliveryRate: 95, MaxAvgLatency: time.Second, MaxP99Latency: 21 * time.Millisecond, MaxDuplicates: 0, MaxRecovery: -1},
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS p99_latency=PASS duplicates=PASS measured=PASS :PASS"},
		{"one disconnected", result(2, 3, ptr(100), 0, 0, 0, lat), def,
			"connected=FAIL self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS measured=PASS :FAIL"},
		// Nothing measured never passes.
		{"nothing expected, no latency", result(1, 1, nil, 0, 0, 0, harness.LatencyStats{}), def,
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=PASS avg_latency=SKIP measured=FAIL :FAIL"},
	} {
		if got := summary(verdict.Evaluate(tc.res, tc.th)); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// One rule for "no check": -1. NaN, infinities, other negatives and zero
// durations are refused, naming the field.
func TestThresholdsValidate(t *testing.T) {
	if err := verdict.DefaultThresholds().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	off := verdict.Thresholds{MinDeliveryRate: -1, MaxErrors: -1, MaxAvgLatency: -1, MaxP99Latency: -1, MaxDuplicates: -1, MaxRecovery: -1}
	if err := off.Validate(); err != nil {
		t.Fatalf("every check off: %v", err)
	}
	for _, tc := range []struct {
		change func(*verdict.Thresholds)
		field  string
	}{
		{func(th *verdict.Thresholds) { th.MinDeliveryRate = math.NaN() }, "MinDeliveryRate"},
		{func(th *verdict.Thresholds) { th.MinDeliveryRate = math.Inf(1) }, "MinDeliveryRate"},
		{func(th *verdict.Thresholds) { th.MinDeliveryRate = -7 }, "MinDeliveryRate"},
		{func(th *verdict.Thresholds) { th.MinDeliveryRate = 100.5 }, "MinDeliveryRate"},
		{func(th *verdict.Thresholds) { th.MaxErrors = -7 }, "MaxErrors"},
		{func(th *verdict.Thresholds) { th.MaxDuplicates = -2 }, "MaxDuplicates"},
		{func(th *verdict.Thresholds) { th.MaxAvgLatency = 0 }, "MaxAvgLatency"},
		{func(th *verdict.Thresholds) { th.MaxP99Latency = -time.Second }, "MaxP99Latency"},
		{func(th *verdict.Thresholds) { th.MaxRecovery = 0 }, "MaxRecovery"},
	} {
		th := verdict.DefaultThresholds()
		tc.change(&th)
		var te *verdict.ThresholdError
		if err := th.Validate(); !errors.As(err, &te) || te.Field != tc.field {
			t.Errorf("%+v: %v, want a verdict.ThresholdError on %s", th, err, tc.field)
		}
	}
}

func TestEvaluateDisplaysValues(t *testing.T) {
	v := verdict.Evaluate(result(2, 3, ptr(97.126), 4, 0, 0, harness.LatencyStats{Count: 5, Mean: 1062.4}), verdict.DefaultThresholds())
	got := map[string][2]string{}
	for _, c := range v.Checks {
		got[c.ID] = [2]string{c.Threshold, c.Measured}
	}
	want := map[string][2]string{
		"connected":     {"3 of 3", "2 of 3"},
		"self_received": {"= 0", "4"},
		"delivery_rate": {">= 95.00%", "97.13%"},
		"errors":        {"<= 0", "0"},
		"avg_latency":   {"< 100.000 ms", "1.062 ms"},
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %v, want %v", id, got[id], w)
		}
	}
}

// The fault checks: recovery within the limit for every outage (an
// unrecovered one fails, none skips), no loss outside outages, and the
// checks a fault scenario turns off shown as skipped.
func TestEvaluateFaultChecks(t *testing.T) {
	lat := harness.LatencyStats{Count: 10, Mean: 1000}
	th := verdict.DefaultThresholds()
	th.MinDeliveryRate, th.MaxErrors, th.MaxAvgLatency = -1, -1, -1
	th.MaxRecovery, th.LossOnlyInOutages = 2*time.Second, true
	outages := func(rec ...*float64) harness.Timeline {
		var tl harness.Timeline
		worst := 0.0
		for _, r := range rec {
			tl.Outages = append(tl.Outages, harness.Outage{RecoverySeconds: r})
			if r == nil {
				tl.Unrecovered++
			} else {
				worst = max(worst, *r)
			}
		}
		if tl.Unrecovered == 0 && len(rec) > 0 {
			tl.MaxRecoverySeconds = &worst
		}
		return tl
	}
	for _, tc := range []struct {
		name string
		tl   harness.Timeline
		loss uint64
		want string
	}{
		{"recovered in time", outages(ptr(1.5), ptr(2.0)), 0,
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=SKIP recovery=PASS loss_in_outages=PASS measured=PASS :PASS"},
		{"too slow", outages(ptr(1.5), ptr(2.001)), 0,
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=SKIP recovery=FAIL loss_in_outages=PASS measured=PASS :FAIL"},
		{"never recovered", outages(ptr(0.1), nil), 0,
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=SKIP recovery=FAIL loss_in_outages=PASS measured=PASS :FAIL"},
		{"no outage", outages(), 0,
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=SKIP recovery=SKIP loss_in_outages=PASS measured=PASS :PASS"},
		{"loss outside", outages(ptr(1.0)), 1,
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=SKIP recovery=PASS loss_in_outages=FAIL measured=PASS :FAIL"},
	} {
		res := result(3, 3, ptr(50), 0, 7, 0, lat)
		res.Timeline = tc.tl
		res.Timeline.LossOutsideOutages = tc.loss
		v := verdict.Evaluate(res, th)
		if got := summary(v); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
		if c := v.Checks[len(v.Checks)-3]; tc.name == "never recovered" && c.Measured != "1 of 2 never recovered" {
			t.Errorf("%s: measured %q", tc.name, c.Measured)
		}
	}
}

func TestParseRegressions(t *testing.T) {
	got, err := verdict.ParseRegressions("p99=20%, avg=5ms,delivery=0.1,errors=0,throughput=10%")
	if err != nil {
		t.Fatal(err)
	}
	want := []verdict.RegressionLimit{{Metric: "p99", Relative: true, Value: 0.2}, {Metric: "avg", Relative: false, Value: 5000}, {Metric: "delivery", Relative: false, Value: 0.1},
		{Metric: "errors", Relative: false, Value: 0}, {Metric: "throughput", Relative: true, Value: 0.1}}
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
		_, err := verdict.ParseRegressions(in)
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
	limits, _ := verdict.ParseRegressions("p99=20%,avg=100us,delivery=0.1,throughput=10%")
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
		for _, c := range verdict.RegressionChecks(base, tc.cur, limits) {
			got = append(got, string(c.Status))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
	c := verdict.RegressionChecks(base, sample(1500, 500, 99.9, 1000), limits[:1])[0]
	if c.ID != "regression_p99" || c.Threshold != "+20% at most (baseline 1.000 ms)" || c.Measured != "1.500 ms, +50.0% (worse)" {
		t.Errorf("%+v", c)
	}
	v := verdict.Verdict{Status: verdict.Pass}.With(c)
	if v.Status != verdict.Fail || len(v.Checks) != 1 {
		t.Errorf("With: %+v", v)
	}
}

// compare's output, golden: the restart run against the healthy one.

// Every check that measured something carries its limit and its
// measurement as numbers in a unit, beside the text; one that measured
// nothing carries none.
func TestCheckValues(t *testing.T) {
	rate := 97.5
	res := result(3, 4, &rate, 0, 2, 0, harness.LatencyStats{Count: 10, Mean: 1500, P99: 4200})
	v := verdict.Evaluate(res, verdict.Thresholds{MinDeliveryRate: 95, MaxErrors: 5, MaxAvgLatency: 100 * time.Millisecond,
		MaxP99Latency: 3 * time.Millisecond, MaxDuplicates: verdict.NoCheck, MaxRecovery: verdict.NoCheck})
	want := map[string][3]any{
		"connected": {4.0, 3.0, "instances"}, "self_received": {0.0, 0.0, "events"}, "delivery_rate": {95.0, 97.5, "%"},
		"errors": {5.0, 2.0, "errors"}, "avg_latency": {100.0, 1.5, "ms"}, "p99_latency": {3.0, 4.2, "ms"},
	}
	for _, c := range v.Checks {
		w, ok := want[c.ID]
		if c.ID == "measured" {
			continue // several counts in one text: no one number
		}
		if !ok {
			t.Errorf("unexpected check %s", c.ID)
			continue
		}
		if c.ThresholdValue == nil || c.MeasuredValue == nil || *c.ThresholdValue != w[0] || *c.MeasuredValue != w[1] || c.Unit != w[2] {
			t.Errorf("%s: %v %v %q, want %v", c.ID, c.ThresholdValue, c.MeasuredValue, c.Unit, w)
		}
	}
	none := verdict.Evaluate(result(1, 1, nil, 0, 0, 0, harness.LatencyStats{}), verdict.DefaultThresholds())
	for _, c := range none.Checks {
		if (c.ID == "delivery_rate" || c.ID == "avg_latency") && (c.MeasuredValue != nil || c.Status != verdict.Skip) {
			t.Errorf("%s measured nothing, yet %v (%s)", c.ID, c.MeasuredValue, c.Status)
		}
	}
}

// A repeated run is judged on its repetitions: a latency at their median
// (one noisy repetition neither passes nor fails the run), the accounting
// in every one (one lossy repetition fails it, saying which).
func TestEvaluateRepeated(t *testing.T) {
	lat := func(p99, mean float64) harness.LatencyStats {
		return harness.LatencyStats{Count: 10, P99: int64(p99), Mean: mean}
	}
	th := verdict.DefaultThresholds()
	th.MaxP99Latency = 10 * time.Millisecond
	// Average 100 ms is the default limit: the middle one passes.
	quiet := result(3, 3, ptr(100), 0, 0, 0, lat(2000, 1000))
	noisy := result(3, 3, ptr(100), 0, 0, 0, lat(50_000, 150_000)) // fails both latencies alone
	lossy := result(3, 3, ptr(90), 0, 0, 0, lat(3000, 2000))
	for _, tc := range []struct {
		name string
		reps []*harness.Result
		want string
		meas map[string]string // check ID → its measured text
	}{
		{"one noisy of three", []*harness.Result{quiet, noisy, quiet},
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS p99_latency=PASS measured=PASS :PASS",
			map[string]string{"p99_latency": "2.000 ms (median of 3)", "delivery_rate": "100.00% (each of 3)"}},
		{"two noisy of three", []*harness.Result{noisy, quiet, noisy},
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=FAIL p99_latency=FAIL measured=PASS :FAIL",
			map[string]string{"p99_latency": "50.000 ms (median of 3)"}},
		{"one lossy of three", []*harness.Result{quiet, quiet, lossy},
			"connected=PASS self_received=PASS delivery_rate=FAIL errors=PASS avg_latency=PASS p99_latency=PASS measured=PASS :FAIL",
			map[string]string{"delivery_rate": "90.00% (in repetition 3 of 3)"}},
	} {
		v := verdict.Evaluate(harness.Repeated(tc.reps), th)
		if got := summary(v); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
		for _, c := range v.Checks {
			if want, ok := tc.meas[c.ID]; ok && c.Measured != want {
				t.Errorf("%s: %s measured %q, want %q", tc.name, c.ID, c.Measured, want)
			}
		}
	}
}

// A repeated run's body is its median repetition by p99, and its headline
// numbers are its repetitions' medians, with their range and spread; the
// regression checks compare those medians.
func TestRepeatedMedians(t *testing.T) {
	reps := []*harness.Result{sample(3000, 1000, 100, 900), sample(1000, 1000, 100, 1000), sample(2000, 1000, 100, 1200),
		sample(9000, 1000, 100, 1100)}
	r := harness.Repeated(reps)
	if r.RepeatBody != 3 || r.Latency.P99 != 2000 || len(r.Repetitions) != 4 {
		t.Fatalf("body %d (p99 %d), %d repetitions: want the median by p99, #3 of 4 (the lower middle)", r.RepeatBody, r.Latency.P99, len(r.Repetitions))
	}
	rows := map[string]verdict.RepeatRow{}
	for _, row := range verdict.RepeatRows(r) {
		rows[row.Metric] = row
	}
	if p := rows["Latency p99"]; p.Median != "2.500 ms" || p.Min != "1.000 ms" || p.Max != "9.000 ms" || p.Spread != "320.0%" ||
		strings.Join(p.Values, " ") != "3.000 ms 1.000 ms 2.000 ms 9.000 ms" {
		t.Errorf("p99 row %+v", p)
	}
	if d := rows["Delivery rate"]; d.Spread != "0%" {
		t.Errorf("delivery row %+v", d)
	}
	// Against a baseline whose p99 median is 2.0 ms, 2.5 ms is +25 %: a
	// 20 % limit fails, 30 % passes, whatever the 9 ms outlier.
	base := harness.Repeated([]*harness.Result{sample(2000, 1000, 100, 1000), sample(1900, 1000, 100, 1000), sample(2100, 1000, 100, 1000)})
	for limit, want := range map[string]verdict.Status{"p99=20%": verdict.Fail, "p99=30%": verdict.Pass} {
		ls, err := verdict.ParseRegressions(limit)
		if err != nil {
			t.Fatal(err)
		}
		if c := verdict.RegressionChecks(base, r, ls); len(c) != 1 || c[0].Status != want {
			t.Errorf("%s: %+v, want %s", limit, c, want)
		}
	}
	if verdict.RepeatRows(reps[0]) != nil {
		t.Error("a run made once has repeat rows")
	}
}

// What a delivery costs: the client's CPU and the server's per delivered
// message, a cluster's nodes together, and memory growth that may be
// negative; none of them where it was not measured, or across a restart.
func TestCostMetrics(t *testing.T) {
	row := func(r *harness.Result, metric string) string {
		for _, rw := range verdict.Compare(r, r, nil).Rows {
			if rw.Metric == metric {
				return rw.Old
			}
		}
		t.Fatalf("no %s row", metric)
		return ""
	}
	r := &harness.Result{ClientCPUSeconds: 0.5}
	r.Totals.Delivered = 250_000
	r.Server.CountersBefore = &harness.ServerCounters{CPUSeconds: 10, UsedMemoryBytes: 3 << 20}
	r.Server.CountersAfter = &harness.ServerCounters{CPUSeconds: 10.25, UsedMemoryBytes: 2 << 20}
	if c, s, m := row(r, "Client CPU/msg"), row(r, "Redis CPU/msg"), row(r, "Redis memory growth"); c != "2.00 µs" || s != "1.00 µs" || m != "-1 MiB" {
		t.Errorf("client %s, redis %s, memory %s: want 2.00 µs, 1.00 µs, -1 MiB", c, s, m)
	}
	r.Server.Cluster = &harness.ClusterTopology{Nodes: []harness.ClusterNode{{Stats: &harness.NodeStats{CPUSeconds: 0.5}}, {Stats: &harness.NodeStats{CPUSeconds: 0.25}}}}
	if s := row(r, "Redis CPU/msg"); s != "3.00 µs" {
		t.Errorf("cluster: redis %s, want the nodes' 0.75 s over 250 000 messages, 3.00 µs", s)
	}
	r.Server.Cluster = nil
	r.Server.CountersAfter.CPUSeconds = 1 // restarted: its count began again
	r.ClientCPUSeconds = 0
	if c, s := row(r, "Client CPU/msg"), row(r, "Redis CPU/msg"); c != "n/a" || s != "n/a" {
		t.Errorf("unmeasured: client %s, redis %s", c, s)
	}
	if err := verdict.CheckHeadline(r); err != nil {
		t.Errorf("a shrinking memory is a sound report: %v", err)
	}
}

// Nothing measured never passes: every way a run can have measured
// nothing fails the measured check, however many other checks are off,
// and says which measurement is missing. A baseline's regression check,
// added after Evaluate, is a measurement the verdict applies.
func TestNothingMeasuredNeverPasses(t *testing.T) {
	off := verdict.Thresholds{MinDeliveryRate: -1, MaxErrors: -1, MaxAvgLatency: -1, MaxP99Latency: -1, MaxDuplicates: -1, MaxRecovery: -1}
	lat := harness.LatencyStats{Count: 10, Mean: 900, P99: 2000}
	counts := func(published, notAccepted, expected, delivered uint64) *harness.Result {
		r := result(3, 3, nil, 0, notAccepted, 0, lat)
		r.Totals.Published, r.Totals.PublishErrors, r.Totals.Expected, r.Totals.Delivered = published, notAccepted, expected, delivered
		if expected > 0 {
			r.Totals.DeliveryRate = ptr(float64(delivered) / float64(expected) * 100)
		}
		if delivered == 0 {
			r.Latency = harness.LatencyStats{}
		}
		return r
	}
	def := verdict.DefaultThresholds()
	def.MaxErrors = -1
	for _, tc := range []struct {
		name     string
		res      *harness.Result
		th       verdict.Thresholds
		measured string // the check's text; "" when it passes
	}{
		{"every publish refused", counts(0, 150, 0, 0), def, "nothing published (150 not accepted)"},
		{"nothing published at all", counts(0, 0, 0, 0), off, "nothing published"},
		{"one instance", func() *harness.Result { r := counts(5, 0, 0, 0); r.Totals.Instances = 1; return r }(), def,
			"nothing expected (one instance)"},
		{"no subscriber", counts(5, 0, 0, 0), def, "nothing expected (no subscriber)"},
		{"nothing delivered, delivery off", counts(100, 0, 200, 0), verdict.Thresholds{MinDeliveryRate: -1, MaxErrors: -1,
			MaxAvgLatency: time.Second, MaxP99Latency: -1, MaxDuplicates: -1, MaxRecovery: -1}, "nothing delivered (200 expected)"},
		{"every measurement check off", counts(100, 0, 200, 200), off,
			"every delivery, latency and loss check off"},
		{"a loss check alone is a judgement", counts(100, 0, 200, 200), func() verdict.Thresholds { th := off; th.LossOnlyInOutages = true; return th }(), ""},
		{"healthy", counts(100, 0, 200, 200), verdict.DefaultThresholds(), ""},
	} {
		v := verdict.Evaluate(tc.res, tc.th)
		c := v.Checks[len(v.Checks)-1]
		if c.ID != "measured" {
			t.Fatalf("%s: the last check is %s", tc.name, c.ID)
		}
		switch {
		case tc.measured == "" && (c.Status != verdict.Pass || !v.Passed()):
			t.Errorf("%s: %s %q, verdict %s", tc.name, c.Status, c.Measured, v.Status)
		case tc.measured != "" && (c.Status != verdict.Fail || v.Passed() || c.Measured != tc.measured):
			t.Errorf("%s: %s %q, verdict %s; want FAIL %q", tc.name, c.Status, c.Measured, v.Status, tc.measured)
		}
	}

	// Every limit off, then a baseline's check: With judges the measured
	// check again, and keeps it last.
	res := counts(100, 0, 200, 200)
	v := verdict.Evaluate(res, off)
	if v.Passed() {
		t.Fatal("every check off passed")
	}
	limits, err := verdict.ParseRegressions("delivery=1")
	if err != nil {
		t.Fatal(err)
	}
	v = v.With(verdict.RegressionChecks(res, res, limits)...)
	if last := v.Checks[len(v.Checks)-1]; last.ID != "measured" || last.Status != verdict.Pass || !v.Passed() ||
		last.Measured != "100 published, 200/200 delivered, 1 check on" {
		t.Fatalf("with a regression check: %s %q, verdict %s", last.ID, last.Measured, v.Status)
	}
	if n := strings.Count(summary(v), "measured="); n != 1 {
		t.Fatalf("%d measured checks: %s", n, summary(v))
	}
}

// A skipped check says why, and the reason names what switched it off.
func TestSkippedChecksSayWhy(t *testing.T) {
	res := result(3, 3, ptr(100), 0, 0, 0, harness.LatencyStats{})
	res.Totals.Delivered = 0
	th := verdict.Thresholds{MinDeliveryRate: -1, MaxErrors: -1, MaxAvgLatency: time.Second, MaxP99Latency: -1, MaxDuplicates: -1,
		MaxRecovery: time.Second, LossOnlyInOutages: true}
	res.Timeline.Faults = []harness.FaultRecord{{Action: harness.FaultRestart}}
	want := map[string]string{
		"delivery_rate": "limit off (-1); outages judge loss",
		"errors":        "limit off (-1); faults cause errors",
		"avg_latency":   "nothing delivered",
		"recovery":      "no outage",
	}
	for _, c := range verdict.Evaluate(res, th).Checks {
		if w, ok := want[c.ID]; ok {
			if c.Status != verdict.Skip || c.Reason != w {
				t.Errorf("%s: %s %q, want SKIP %q", c.ID, c.Status, c.Reason, w)
			}
			delete(want, c.ID)
		} else if c.Status == verdict.Skip || c.Reason != "" {
			t.Errorf("%s: %s %q", c.ID, c.Status, c.Reason)
		}
	}
	if len(want) > 0 {
		t.Errorf("checks missing: %v", want)
	}
}

// The server's own counts judge the run's: the server running fewer
// publishes than the run says it accepted, or having fewer subscribers
// than it confirmed, fails whoever else used the server; more than the
// run sent fails only where the run had the server to itself.
func TestServerCountsCheck(t *testing.T) {
	subs := func(server int64) []harness.ChannelSubscribers {
		return []harness.ChannelSubscribers{{Channel: "ws:ticker", Server: 3, Run: 3}, {Channel: "ws:trade", Server: server, Run: 3}}
	}
	for _, tc := range []struct {
		name     string
		counts   harness.ServerCounts
		mode     string
		status   verdict.Status
		measured string
	}{
		{"agree", harness.ServerCounts{Command: "PUBLISH", Calls: 100, Accepted: 100, Subscribers: subs(3)}, "server", verdict.Pass,
			"100 PUBLISH for 100 accepted, 3 subscribers on each of 2 channels"},
		{"fewer calls than accepted", harness.ServerCounts{Command: "PUBLISH", Calls: 99, Accepted: 100, Subscribers: subs(3)}, "url", verdict.Fail,
			"99 PUBLISH on the server, 100 accepted"},
		{"more calls, server shared", harness.ServerCounts{Command: "PUBLISH", Calls: 150, Accepted: 100, Subscribers: subs(3)}, "url", verdict.Pass,
			"150 PUBLISH for 100 accepted, 3 subscribers on each of 2 channels"},
		{"more calls, server to itself", harness.ServerCounts{Command: "PUBLISH", Calls: 150, Accepted: 100, Unknown: 20, Foreign: 10, Subscribers: subs(3)},
			"server", verdict.Fail, "150 PUBLISH on the server, at most 130 sent"},
		{"unknowns and foreign explain more", harness.ServerCounts{Command: "PUBLISH", Calls: 130, Accepted: 100, Unknown: 20, Foreign: 10, Subscribers: subs(3)},
			"server", verdict.Pass, "130 PUBLISH for 100 accepted, 3 subscribers on each of 2 channels"},
		{"a subscriber short", harness.ServerCounts{Command: "PUBLISH", Calls: 100, Accepted: 100, Subscribers: subs(2)}, "url", verdict.Fail,
			"ws:trade: 2 subscribers on the server, 3 confirmed"},
		{"skipped", harness.ServerCounts{Command: "XADD", Skipped: "the restart fault restarts or replaces a server, whose counts start again",
			SubscribersSkipped: "streams"}, "server", verdict.Skip, "n/a"},
	} {
		res := result(3, 3, ptr(100), 0, 0, 0, harness.LatencyStats{Count: 10, Mean: 1000})
		res.Server.Mode, res.Server.Counts = tc.mode, &tc.counts
		var c verdict.Check
		for _, ck := range verdict.Evaluate(res, verdict.DefaultThresholds()).Checks {
			if ck.ID == "server_counts" {
				c = ck
			}
		}
		if c.Status != tc.status || c.Measured != tc.measured || (tc.status == verdict.Skip) != (c.Reason != "") {
			t.Errorf("%s: %s %q (%q), want %s %q", tc.name, c.Status, c.Measured, c.Reason, tc.status, tc.measured)
		}
	}
}
