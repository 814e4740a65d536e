package report_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/scenarios"
	"github.com/redisload/redisload/verdict"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/golden")

// fixtures are Results recorded from real runs, in ../testdata/results.
// Two kinds of hand edits, each consistent with the rest of its file:
// fail-loss is a real run with losses, duplicates, a disconnect and a
// buffer peak written in (totals summed again), and fixtures recorded
// before a field existed (server, output_buffers, matrix.subscribed,
// config.publishers) had it added with the values such a run has.
// restart is the restart scenario as shipped, judged by its thresholds,
// with its series (the faults and outages shaded on the plots over time).
// series collected its per-second series (a run with --html).
var fixtures = []string{"pass-5", "fail-self-received", "single-instance", "fail-loss", "embedded", "restart", "series"}

// thresholds returns the verdict a fixture is judged by: its scenario's,
// if it ran one, else the default.
func thresholds(t *testing.T, name string) verdict.Thresholds {
	if sc, err := scenarios.Lookup(name); err == nil && sc.Thresholds != nil {
		return *sc.Thresholds
	}
	return verdict.DefaultThresholds()
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
func render(t *testing.T, name string, newRep func(*harness.Result, verdict.Verdict) report.Reporter) (*harness.Result, verdict.Verdict, *bytes.Buffer) {
	t.Helper()
	res := load(t, name)
	v := verdict.Evaluate(res, thresholds(t, name))
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
			_, _, buf := render(t, name, func(res *harness.Result, v verdict.Verdict) report.Reporter {
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
			res, v, buf := render(t, name, func(res *harness.Result, v verdict.Verdict) report.Reporter {
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
		"pass-5":             "connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS measured=PASS :PASS",
		"fail-self-received": "connected=PASS self_received=FAIL delivery_rate=PASS errors=PASS avg_latency=PASS measured=PASS :FAIL",
		"single-instance":    "connected=PASS self_received=PASS delivery_rate=SKIP errors=PASS avg_latency=SKIP measured=FAIL :FAIL",
		"fail-loss":          "connected=FAIL self_received=PASS delivery_rate=FAIL errors=FAIL avg_latency=PASS measured=PASS :FAIL",
		"embedded":           "connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS measured=PASS :PASS",
		"restart": "connected=PASS self_received=PASS delivery_rate=SKIP errors=SKIP avg_latency=PASS " +
			"recovery=PASS loss_in_outages=PASS faults_applied=PASS measured=PASS :PASS",
		"series": "connected=PASS self_received=PASS delivery_rate=PASS errors=PASS avg_latency=PASS measured=PASS :PASS",
	}
	for _, name := range fixtures {
		v := verdict.Evaluate(load(t, name), thresholds(t, name))
		if got := summary(v); got != want[name] {
			t.Errorf("%s: %s, want %s", name, got, want[name])
		}
	}
}

func summary(v verdict.Verdict) string {
	var b strings.Builder
	for _, c := range v.Checks {
		b.WriteString(c.ID + "=" + string(c.Status) + " ")
	}
	return b.String() + ":" + string(v.Status)
}

// The matrix is written a row a line inside the indented document, and
// reads back as it was: indented number by number, a 9 900-instance run
// wrote 1.1 GB.
func TestJSONMatrixRowPerLine(t *testing.T) {
	const n = 300
	m := harness.Matrix{Sent: make([]uint64, n), Subscribed: make([]bool, n),
		Duplicates: []harness.MatrixEntry{{1, 2, 3}}, OutOfOrder: []harness.MatrixEntry{}}
	for i := range n {
		m.Sent[i], m.Subscribed[i] = uint64(1000+i), true
		row := make([]uint64, n)
		for j := range row {
			if j != i {
				row[j] = uint64(1000 + j - i%2)
			}
		}
		m.Delivered = append(m.Delivered, row)
	}
	var buf bytes.Buffer
	if err := report.NewJSONReporter(&harness.Result{Matrix: m}, verdict.Verdict{}, "test")(&buf); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(buf.String(), "\n"); lines > 200+n {
		t.Errorf("%d lines for %d rows: the matrix is not a row a line", lines, n)
	}
	var back struct {
		Matrix harness.Matrix `json:"matrix"`
	}
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Matrix, m) {
		t.Error("the matrix read back differs from the one written")
	}
}

// The histogram a report carries is checked on the way back in: one whose
// count is not the report's latency count is refused, never plotted.
func TestReadDocumentChecksHistogram(t *testing.T) {
	res := load(t, "pass-5")
	h := hdrhistogram.New(1, 60_000_000, 3)
	for range res.Latency.Count {
		_ = h.RecordValue(1000)
	}
	for _, tc := range []struct {
		extra int
		want  string
	}{{0, ""}, {1, "latency_histogram: 201 samples, the report's latency 200"}} {
		hh := hdrhistogram.Import(h.Export())
		for range tc.extra {
			_ = hh.RecordValue(1000)
		}
		enc, err := hh.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err != nil {
			t.Fatal(err)
		}
		r := *res
		r.HistogramData = enc
		var buf bytes.Buffer
		if err := report.NewJSONReporter(&r, verdict.Verdict{}, "test")(&buf); err != nil {
			t.Fatal(err)
		}
		doc, err := report.ReadDocument(&buf)
		switch {
		case tc.want == "" && (err != nil || doc.Histogram == nil || doc.Histogram.TotalCount() != res.Latency.Count):
			t.Errorf("a sound histogram: %v", err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}

// A repeated report used as a baseline is checked repetition by
// repetition: one unsound repetition refuses the whole file, since the
// medians the regression checks use come from them.
func TestReadDocumentChecksRepetitions(t *testing.T) {
	good, bad := load(t, "pass-5"), load(t, "pass-5")
	over := 150.0
	bad.Totals.DeliveryRate = &over
	var buf bytes.Buffer
	if err := report.NewJSONReporter(harness.Repeated([]*harness.Result{good, bad, good}), verdict.Verdict{}, "test")(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := report.ReadDocument(&buf); err == nil || !strings.Contains(err.Error(), "repetition 2: delivery is 150%") {
		t.Errorf("%v, want repetition 2 refused", err)
	}
}

// A run over streams adds its rows to the overall figures, and outages
// that recovered messages say how many: each number as the result holds
// it, in the table and the Markdown alike.
func TestStreamsRowsAndRecovered(t *testing.T) {
	res := load(t, "restart")
	res.Config.Transport = "streams"
	res.Streams = &harness.StreamsStats{Streams: []string{"ws:ticker", "ws:trade"}, MaxLen: 100000, Added: 841, Trimmed: 3,
		Lost: 2, Redelivered: 5, Deleted: 2, GroupsRemoved: 1}
	res.Server.CountersBefore = &harness.ServerCounters{UsedMemoryBytes: 1 << 20}
	res.Server.CountersAfter = &harness.ServerCounters{UsedMemoryBytes: 3 << 20}
	res.Timeline.Outages[0].Recovered, res.Timeline.Recovered = 7, 7
	v := verdict.Evaluate(res, thresholds(t, "restart"))
	for _, format := range []string{"table", "markdown"} {
		out := renderAs(t, format, res, v)
		for _, want := range []string{
			"streams: 2, XADD MAXLEN ~100000, a consumer group per instance",
			"841 added, 3 trimmed by MAXLEN, 2 lost with the server, 5 read again from pending lists",
			"1 MiB before, 3 MiB at the end (+2.0 MiB), before the streams were deleted",
			"2 streams deleted, 1 groups removed",
			"Sent during an outage and received after it all the same: 7",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q in\n%s", format, want, out)
			}
		}
		if format == "table" && !strings.Contains(out, "; over streams") {
			t.Errorf("table: the header does not say the run was over streams")
		}
	}
}

// The transit and the publish round trip, when the run measured them, are
// rows of the latency table in every format (transit first: the round trip
// is the publisher's view of part of it), lines of the HTML's percentile
// plot beside the send delay, and fields of the JSON; a run without them
// (a report from before) shows none.
func TestPublishRoundTripRows(t *testing.T) {
	res := load(t, "pass-5")
	res.PublishRTT = harness.LatencyStats{Count: 1234, Min: 41, Mean: 150.5, P50: 120, P90: 250, P95: 300, P99: 900, P999: 1500, Max: 2100, StdDev: 80.25}
	res.Transit = harness.LatencyStats{Count: 4936, Min: 52, Mean: 210.5, P50: 190, P90: 310, P95: 400, P99: 1100, P999: 1700, Max: 2500, StdDev: 90.25}
	v := verdict.Evaluate(res, thresholds(t, "pass-5"))
	for format, want := range map[string][]string{
		"table": {"| transit            | 0.052 ms | 0.210 ms | 0.190 ms | 0.310 ms | 0.400 ms | 1.100 ms | 1.700 ms | 2.500 ms | 0.090 ms |    4936 |\n| publish round trip | 0.041 ms | 0.150 ms | 0.120 ms | 0.250 ms | 0.300 ms | 0.900 ms | 1.500 ms | 2.100 ms | 0.080 ms |    1234 |",
			"; transit: actual publish to receipt; publish round trip: the pipeline's write to its replies)"},
		"markdown": {"| transit | 0.052 ms | 0.210 ms | 0.190 ms | 0.310 ms | 0.400 ms | 1.100 ms | 1.700 ms | 2.500 ms | 0.090 ms | 4936 |\n| publish round trip | 0.041 ms | 0.150 ms | 0.120 ms | 0.250 ms | 0.300 ms | 0.900 ms | 1.500 ms | 2.100 ms | 0.080 ms | 1234 |"},
		"html":     {"<td>transit</td>", "<title>transit</title>", "<td>publish round trip</td>", "<title>publish round trip</title>", "<title>send delay</title>"},
		"json":     {`"publish_rtt": {`, `"p99_us": 900,`, `"transit": {`, `"p99_us": 1100,`},
	} {
		out := renderAs(t, format, res, v)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in\n%s", format, w, out)
			}
		}
	}
	_, _, out := render(t, "pass-5", func(res *harness.Result, v verdict.Verdict) report.Reporter {
		return report.NewTableReporter(res, v, report.Options{})
	})
	if strings.Contains(out.String(), "publish round trip") || strings.Contains(out.String(), "transit") {
		t.Errorf("a report without round trips or transits shows a row of them:\n%s", out)
	}
}

// renderAs renders res in format.
func renderAs(t *testing.T, format string, res *harness.Result, v verdict.Verdict) string {
	t.Helper()
	var buf bytes.Buffer
	rep, err := report.New(format, report.Run, report.Input{Result: res, Verdict: v})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
