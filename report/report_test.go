package report_test

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/scenarios"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/golden")

// fixtures are Results recorded from real runs, in ../testdata/results.
// Two kinds of hand edits, each consistent with the rest of its file:
// fail-loss is a real run with losses, duplicates, a disconnect and a
// buffer peak written in (totals summed again), and fixtures recorded
// before a field existed (server, output_buffers, matrix.subscribed,
// config.publishers) had it added with the values such a run has.
// restart is the restart scenario as shipped, judged by its thresholds.
// series collected its per-second series (a run with --html).
var fixtures = []string{"pass-5", "fail-self-received", "single-instance", "fail-loss", "embedded", "restart", "series"}

// thresholds returns the verdict a fixture is judged by: its scenario's,
// if it ran one, else the default.
func thresholds(t *testing.T, name string) report.Thresholds {
	if sc, err := scenarios.Lookup(name); err == nil && sc.Thresholds != nil {
		return *sc.Thresholds
	}
	return report.DefaultThresholds()
}

func load(t *testing.T, name string) *harness.Result {
	t.Helper()
	doc, err := report.ReadFile(filepath.Join("..", "testdata", "results", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return doc.Result
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "<end of file>"
		}
		t.Errorf("%s differs from the golden file at line %d (go test ./report -update rewrites it):\n got: %s\nwant: %s",
			name, i+1, line(gl), line(wl))
	}
}

// render loads fixture name, evaluates it with the default thresholds and
// renders it with the reporter newRep makes.
func render(t *testing.T, name string, newRep func(*harness.Result, report.Verdict) report.Reporter) (*harness.Result, report.Verdict, *bytes.Buffer) {
	t.Helper()
	res := load(t, name)
	v := report.Evaluate(res, thresholds(t, name))
	var buf bytes.Buffer
	if err := newRep(res, v)(&buf); err != nil {
		t.Fatal(err)
	}
	return res, v, &buf
}

func TestGoldenTable(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			// pass-5 shows what --verbose adds: the server counters.
			opts := report.Options{Matrix: true, ServerStats: name == "pass-5"}
			_, _, buf := render(t, name, func(res *harness.Result, v report.Verdict) report.Reporter {
				return report.NewTableReporter(res, v, opts)
			})
			if !isASCII(buf.String()) {
				t.Error("table output is not plain ASCII")
			}
			golden(t, name+".txt", buf.Bytes())
		})
	}
}

func TestGoldenJSON(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			res, v, buf := render(t, name, func(res *harness.Result, v report.Verdict) report.Reporter {
				return report.NewJSONReporter(res, v, "test")
			})
			golden(t, name+".json", buf.Bytes())
			// What the JSON reporter writes, ReadDocument reads back whole.
			doc, err := report.ReadDocument(buf)
			if err != nil {
				t.Fatal(err)
			}
			if doc.Totals != res.Totals && !sameTotals(doc.Totals, res.Totals) {
				t.Errorf("round trip changed totals: %+v vs %+v", doc.Totals, res.Totals)
			}
			if doc.Verdict.Status != v.Status || len(doc.Verdict.Checks) != len(v.Checks) {
				t.Errorf("round trip verdict %+v", doc.Verdict)
			}
		})
	}
}

func sameTotals(a, b harness.Totals) bool {
	ar, br := a.DeliveryRate, b.DeliveryRate
	a.DeliveryRate, b.DeliveryRate = nil, nil
	return a == b && ((ar == nil) == (br == nil)) && (ar == nil || *ar == *br)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestVerdictOfFixtures pins each fixture's checks, so a golden update
// cannot quietly change a verdict.
func TestVerdictOfFixtures(t *testing.T) {
	want := map[string]string{
		"pass-5":             "connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS :PASS",
		"fail-self-received": "connected=PASS self_received=FAIL delivery_rate=PASS errors=PASS avg_latency=PASS :FAIL",
		"single-instance":    "connected=PASS self_received=PASS delivery_rate=SKIP errors=PASS avg_latency=SKIP :PASS",
		"fail-loss":          "connected=FAIL self_received=PASS delivery_rate=FAIL errors=FAIL avg_latency=PASS :FAIL",
		"embedded":           "connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS :PASS",
		"restart": "connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=PASS " +
			"recovery=PASS loss_in_outages=PASS :PASS",
		"series": "connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS :PASS",
	}
	for _, name := range fixtures {
		v := report.Evaluate(load(t, name), thresholds(t, name))
		if got := summary(v); got != want[name] {
			t.Errorf("%s: %s, want %s", name, got, want[name])
		}
	}
}

func summary(v report.Verdict) string {
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
	r.Totals.SelfReceived, r.Totals.Errors, r.Totals.Duplicates = selfRecv, errs, dups
	return r
}

func TestEvaluateBoundaries(t *testing.T) {
	lat := harness.LatencyStats{Count: 10, Mean: 99_999, P99: 20_000}
	def := report.DefaultThresholds()
	for _, tc := range []struct {
		name string
		res  *harness.Result
		th   report.Thresholds
		want string
	}{
		{"all pass at the edges", result(3, 3, ptr(95), 0, 0, 0, lat), def,
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS :PASS"},
		{"delivery just under", result(3, 3, ptr(94.999), 0, 0, 0, lat), def,
			"connected=PASS self_received=PASS delivery_rate=FAIL errors=PASS avg_latency=PASS :FAIL"},
		{"avg latency equal to the limit fails", result(3, 3, ptr(100), 0, 0, 0, harness.LatencyStats{Count: 1, Mean: 100_000}), def,
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=FAIL :FAIL"},
		{"one error", result(3, 3, ptr(100), 0, 1, 0, lat), def,
			"connected=PASS self_received=PASS delivery_rate=PASS errors=FAIL avg_latency=PASS :FAIL"},
		{"errors allowed", result(3, 3, ptr(100), 0, 1, 0, lat), report.Thresholds{MinDeliveryRate: 95, MaxErrors: 1, MaxAvgLatency: time.Second, MaxP99Latency: -1, MaxDuplicates: -1, MaxRecovery: -1},
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS :PASS"},
		{"p99 and duplicates checks", result(3, 3, ptr(100), 0, 0, 2, lat),
			report.Thresholds{MinDeliveryRate: 95, MaxAvgLatency: time.Second, MaxP99Latency: 20 * time.Millisecond, MaxDuplicates: 1, MaxRecovery: -1},
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS p99_latency=FAIL duplicates=FAIL :FAIL"},
		{"p99 under the limit", result(3, 3, ptr(100), 0, 0, 0, lat),
			report.Thresholds{MinDeliveryRate: 95, MaxAvgLatency: time.Second, MaxP99Latency: 21 * time.Millisecond, MaxDuplicates: 0, MaxRecovery: -1},
			"connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS p99_latency=PASS duplicates=PASS :PASS"},
		{"one disconnected", result(2, 3, ptr(100), 0, 0, 0, lat), def,
			"connected=FAIL self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS :FAIL"},
		{"nothing expected, no latency", result(1, 1, nil, 0, 0, 0, harness.LatencyStats{}), def,
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=PASS avg_latency=SKIP :PASS"},
	} {
		if got := summary(report.Evaluate(tc.res, tc.th)); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// One rule for "no check": -1. NaN, infinities, other negatives and zero
// durations are refused, naming the field.
func TestThresholdsValidate(t *testing.T) {
	if err := report.DefaultThresholds().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	off := report.Thresholds{MinDeliveryRate: -1, MaxErrors: -1, MaxAvgLatency: -1, MaxP99Latency: -1, MaxDuplicates: -1, MaxRecovery: -1}
	if err := off.Validate(); err != nil {
		t.Fatalf("every check off: %v", err)
	}
	for _, tc := range []struct {
		change func(*report.Thresholds)
		field  string
	}{
		{func(th *report.Thresholds) { th.MinDeliveryRate = math.NaN() }, "MinDeliveryRate"},
		{func(th *report.Thresholds) { th.MinDeliveryRate = math.Inf(1) }, "MinDeliveryRate"},
		{func(th *report.Thresholds) { th.MinDeliveryRate = -7 }, "MinDeliveryRate"},
		{func(th *report.Thresholds) { th.MinDeliveryRate = 100.5 }, "MinDeliveryRate"},
		{func(th *report.Thresholds) { th.MaxErrors = -7 }, "MaxErrors"},
		{func(th *report.Thresholds) { th.MaxDuplicates = -2 }, "MaxDuplicates"},
		{func(th *report.Thresholds) { th.MaxAvgLatency = 0 }, "MaxAvgLatency"},
		{func(th *report.Thresholds) { th.MaxP99Latency = -time.Second }, "MaxP99Latency"},
		{func(th *report.Thresholds) { th.MaxRecovery = 0 }, "MaxRecovery"},
	} {
		th := report.DefaultThresholds()
		tc.change(&th)
		var te *report.ThresholdError
		if err := th.Validate(); !errors.As(err, &te) || te.Field != tc.field {
			t.Errorf("%+v: %v, want a ThresholdError on %s", th, err, tc.field)
		}
	}
}

func TestEvaluateDisplaysValues(t *testing.T) {
	v := report.Evaluate(result(2, 3, ptr(97.126), 4, 0, 0, harness.LatencyStats{Count: 5, Mean: 1062.4}), report.DefaultThresholds())
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
	th := report.DefaultThresholds()
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
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=SKIP recovery=PASS loss_in_outages=PASS :PASS"},
		{"too slow", outages(ptr(1.5), ptr(2.001)), 0,
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=SKIP recovery=FAIL loss_in_outages=PASS :FAIL"},
		{"never recovered", outages(ptr(0.1), nil), 0,
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=SKIP recovery=FAIL loss_in_outages=PASS :FAIL"},
		{"no outage", outages(), 0,
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=SKIP recovery=SKIP loss_in_outages=PASS :PASS"},
		{"loss outside", outages(ptr(1.0)), 1,
			"connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=SKIP recovery=PASS loss_in_outages=FAIL :FAIL"},
	} {
		res := result(3, 3, ptr(50), 0, 7, 0, lat)
		res.Timeline = tc.tl
		res.Timeline.LossOutsideOutages = tc.loss
		v := report.Evaluate(res, th)
		if got := summary(v); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
		if c := v.Checks[len(v.Checks)-2]; tc.name == "never recovered" && c.Measured != "1 of 2 never recovered" {
			t.Errorf("%s: measured %q", tc.name, c.Measured)
		}
	}
}
