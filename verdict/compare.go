package verdict

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/units"
)

// metric is one headline number two runs can be compared on.
type metric struct {
	name        string // what --max-regression calls it
	label       string
	unit        string // "us" (shown in ms), "pct", "rate" (per second), "cpu" (µs per message), "bytes" or "" (a count)
	higherWorse bool
	get         func(*harness.Result) (float64, bool) // false: not measured
}

// latencyMetric is a latency statistic: not measured when nothing was
// delivered, so that an empty run never compares as "0 ms, faster".
func latencyMetric(name, label string, f func(harness.LatencyStats) float64) metric {
	return metric{name, label, "us", true, func(r *harness.Result) (float64, bool) {
		return f(r.Latency), r.Latency.Count > 0
	}}
}

// countMetric is a count, always measured: more is worse.
func countMetric(name, label string, f func(harness.Totals) uint64) metric {
	return metric{name, label, "", true, func(r *harness.Result) (float64, bool) { return float64(f(r.Totals)), true }}
}

// metrics are the numbers `compare` shows and --max-regression can bound,
// in the order shown.
var metrics = []metric{
	{"throughput", "Delivered/s", "rate", false, func(r *harness.Result) (float64, bool) {
		return r.Totals.DeliveryThroughput, true
	}},
	{"publish_rate", "Published/s", "rate", false, func(r *harness.Result) (float64, bool) { return r.Totals.PublishRate, true }},
	{"delivery", "Delivery rate", "pct", false, func(r *harness.Result) (float64, bool) {
		if r.Totals.DeliveryRate == nil {
			return 0, false
		}
		return *r.Totals.DeliveryRate, true
	}},
	countMetric("missing", "Missing", func(t harness.Totals) uint64 { return t.Missing }),
	countMetric("duplicates", "Duplicates", func(t harness.Totals) uint64 { return t.Duplicates }),
	countMetric("errors", "Errors", func(t harness.Totals) uint64 { return t.Errors }),
	countMetric("reconnects", "Reconnects", func(t harness.Totals) uint64 { return t.Reconnects }),
	latencyMetric("min", "Latency min", func(l harness.LatencyStats) float64 { return float64(l.Min) }),
	latencyMetric("avg", "Latency avg", func(l harness.LatencyStats) float64 { return l.Mean }),
	latencyMetric("p50", "Latency p50", func(l harness.LatencyStats) float64 { return float64(l.P50) }),
	latencyMetric("p90", "Latency p90", func(l harness.LatencyStats) float64 { return float64(l.P90) }),
	latencyMetric("p99", "Latency p99", func(l harness.LatencyStats) float64 { return float64(l.P99) }),
	latencyMetric("p999", "Latency p99.9", func(l harness.LatencyStats) float64 { return float64(l.P999) }),
	latencyMetric("max", "Latency max", func(l harness.LatencyStats) float64 { return float64(l.Max) }),
	{"send_p99", "Send delay p99", "us", true, func(r *harness.Result) (float64, bool) {
		return float64(r.SendDelay.P99), r.SendDelay.Count > 0
	}},
	// What a delivery costs, on each side: pub/sub and streams compared
	// at the same traffic differ here more than in latency.
	{"client_cpu", "Client CPU/msg", "cpu", true, func(r *harness.Result) (float64, bool) {
		d := r.Totals.Delivered
		return r.ClientCPUSeconds * 1e6 / float64(max(d, 1)), r.ClientCPUSeconds > 0 && d > 0
	}},
	{"redis_cpu", "Redis CPU/msg", "cpu", true, func(r *harness.Result) (float64, bool) {
		b, a, d := r.Server.CountersBefore, r.Server.CountersAfter, r.Totals.Delivered
		// A cluster's work is spread over its nodes: their CPU together,
		// when every node was read before and after.
		if cl := r.Server.Cluster; cl != nil && len(cl.Nodes) > 0 && d > 0 {
			var sum float64
			for _, n := range cl.Nodes {
				if n.Stats == nil {
					return 0, false
				}
				sum += n.Stats.CPUSeconds
			}
			return sum * 1e6 / float64(d), true
		}
		// A server restarted during the run started its count again.
		if b == nil || a == nil || d == 0 || a.CPUSeconds < b.CPUSeconds {
			return 0, false
		}
		return (a.CPUSeconds - b.CPUSeconds) * 1e6 / float64(d), true
	}},
	// Memory held at the end of the drain: over streams, what they keep.
	{"redis_memory", "Redis memory growth", "bytes", true, func(r *harness.Result) (float64, bool) {
		b, a := r.Server.CountersBefore, r.Server.CountersAfter
		if b == nil || a == nil {
			return 0, false
		}
		return float64(a.UsedMemoryBytes - b.UsedMemoryBytes), true
	}},
}

// value is m's measurement of r: for a repeated run, the median of its
// repetitions' (regression checks compare medians, so that one noisy
// repetition moves nothing).
func value(m metric, r *harness.Result) (float64, bool) {
	if len(r.Repetitions) == 0 {
		return m.get(r)
	}
	var vs []float64
	for _, rep := range r.Repetitions {
		if v, ok := m.get(rep); ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0, false
	}
	return median(vs), true
}

// median of vs (the mean of the middle two for an even count); sorts vs.
func median(vs []float64) float64 {
	slices.Sort(vs)
	k := len(vs) / 2
	if len(vs)%2 == 1 {
		return vs[k]
	}
	return (vs[k-1] + vs[k]) / 2
}

// RepeatRow is one headline number of a repeated run: its median, range
// and spread, and each repetition's value, as text for display.
type RepeatRow struct {
	Metric string   `json:"metric"`
	Median string   `json:"median"`
	Min    string   `json:"min"`
	Max    string   `json:"max"`
	Spread string   `json:"spread"` // (max − min) / median
	Values []string `json:"values"`
}

// RepeatRows are the headline numbers of a repeated run, one row each;
// nil for a run that was not repeated.
func RepeatRows(r *harness.Result) []RepeatRow {
	if len(r.Repetitions) == 0 {
		return nil
	}
	var out []RepeatRow
	for _, m := range metrics {
		row := RepeatRow{Metric: m.label}
		var vs []float64
		for _, rep := range r.Repetitions {
			v, ok := m.get(rep)
			row.Values = append(row.Values, show(m, v, ok))
			if ok {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 {
			row.Median, row.Min, row.Max, row.Spread = "n/a", "n/a", "n/a", "-"
			out = append(out, row)
			continue
		}
		lo, hi := slices.Min(vs), slices.Max(vs)
		med := median(vs)
		row.Median, row.Min, row.Max = show(m, med, true), show(m, lo, true), show(m, hi, true)
		switch {
		case hi == lo:
			row.Spread = "0%"
		case med == 0:
			row.Spread = "-"
		default:
			row.Spread = fmt.Sprintf("%.1f%%", (hi-lo)/med*100)
		}
		out = append(out, row)
	}
	return out
}

// lookupMetric finds a metric by the name --max-regression uses.
func lookupMetric(name string) (metric, bool) {
	for _, m := range metrics {
		if m.name == name {
			return m, true
		}
	}
	return metric{}, false
}

// RegressionLimit is how much one metric may worsen against a baseline:
// a fraction of the baseline (Relative, from "20%") or an amount in the
// metric's own unit (from "0.1" percentage points of delivery, "5ms" of
// latency, "3" errors).
type RegressionLimit struct {
	Metric   string
	Relative bool
	Value    float64 // a fraction when Relative; else µs for latencies, the unit otherwise
}

// DefaultRegressions is what --baseline checks when --max-regression is
// not given.
const DefaultRegressions = "p99=20%,avg=20%,delivery=0.1"

// ParseRegressions reads "p99=20%,avg=20%,delivery=0.1". Its errors name
// the part at fault and list the metrics.
func ParseRegressions(s string) ([]RegressionLimit, error) {
	var out []RegressionLimit
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		m, known := lookupMetric(strings.TrimSpace(name))
		if !ok || !known {
			return nil, fmt.Errorf("%q: want metric=limit, metric one of %s", part, metricNames())
		}
		l := RegressionLimit{Metric: m.name}
		val = strings.TrimSpace(val)
		var err error
		switch {
		case strings.HasSuffix(val, "%"):
			l.Relative = true
			l.Value, err = strconv.ParseFloat(strings.TrimSuffix(val, "%"), 64)
			l.Value /= 100
		case m.unit == "us":
			var d time.Duration
			if d, err = time.ParseDuration(val); err == nil {
				l.Value = float64(d.Microseconds())
			}
		default:
			l.Value, err = strconv.ParseFloat(val, 64)
		}
		if err != nil || l.Value < 0 || math.IsNaN(l.Value) || math.IsInf(l.Value, 0) {
			return nil, fmt.Errorf("%q: want a limit like 20%%, or an amount (%s)", part, unitHint(m))
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errors.New("no limit given")
	}
	return out, nil
}

// unitHint says, in an error, what an amount of this metric looks like.
func unitHint(m metric) string {
	switch m.unit {
	case "us":
		return "a duration such as 5ms"
	case "pct":
		return "percentage points such as 0.1"
	case "cpu":
		return "microseconds per message such as 0.5"
	case "bytes":
		return "a number of bytes"
	}
	return "a number"
}

// metricNames lists the names an error offers.
func metricNames() string {
	names := make([]string, len(metrics))
	for i, m := range metrics {
		names[i] = m.name
	}
	return strings.Join(names, ", ")
}

// CompareRow is one line of a comparison: a metric's value in each run
// and the change.
type CompareRow struct {
	Metric, Old, New, Change string
}

// Comparison is two runs side by side, and the regression checks.
type Comparison struct {
	Old, New *harness.Result
	// Mismatches are how the two runs were set up differently (see
	// Comparable); the caller fills them in, knowing the tools' versions.
	Mismatches []Mismatch
	Rows       []CompareRow
	Checks     []Check
}

// Failed reports whether a regression check failed.
func (c Comparison) Failed() bool {
	for _, ch := range c.Checks {
		if ch.Status == Fail {
			return true
		}
	}
	return false
}

// Compare sets cur beside base on every headline metric and checks limits.
func Compare(base, cur *harness.Result, limits []RegressionLimit) Comparison {
	c := Comparison{Old: base, New: cur}
	for _, m := range metrics {
		o, okO := value(m, base)
		n, okN := value(m, cur)
		row := CompareRow{Metric: m.label, Old: show(m, o, okO), New: show(m, n, okN), Change: "-"}
		if okO && okN {
			row.Change = change(m, o, n)
		}
		c.Rows = append(c.Rows, row)
	}
	c.Checks = RegressionChecks(base, cur, limits)
	return c
}

// RegressionChecks are the verdict checks of --baseline: one per limit,
// failing when cur is worse than base by more than the limit. A metric
// either run did not measure is skipped.
func RegressionChecks(base, cur *harness.Result, limits []RegressionLimit) []Check {
	var out []Check
	for _, l := range limits {
		m, _ := lookupMetric(l.Metric)
		c := Check{ID: "regression_" + m.name, Name: m.label + " vs baseline"}
		o, okO := value(m, base)
		n, okN := value(m, cur)
		allowed := l.Value
		if l.Relative {
			allowed = math.Abs(o) * l.Value
		}
		worse := "+"
		bound := o + allowed
		if !m.higherWorse {
			worse, bound = "-", o-allowed
		}
		limit := fmt.Sprintf("%s%s", worse, amount(m, l.Value, l.Relative))
		c.Threshold = fmt.Sprintf("%s at most (baseline %s)", limit, show(m, o, okO))
		if !okO || !okN {
			c.Measured = "n/a (not measured in both runs)"
			c = c.skip("not in both runs")
			out = append(out, c)
			continue
		}
		c.Measured = show(m, n, true) + ", " + change(m, o, n)
		// A tiny epsilon: a value exactly at the limit passes despite
		// floating-point rounding of the relative bound.
		const eps = 1e-9
		if m.higherWorse {
			c.Status = status(n <= bound+eps*math.Max(1, math.Abs(bound)))
		} else {
			c.Status = status(n >= bound-eps*math.Max(1, math.Abs(bound)))
		}
		// As numbers: the bound it was held to and what it measured.
		switch m.unit {
		case "us":
			c = c.values(bound/1000, n/1000, "ms")
		case "pct":
			c = c.values(bound, n, "%")
		case "rate":
			c = c.values(bound, n, "/s")
		case "cpu":
			c = c.values(bound, n, "µs")
		case "bytes":
			c = c.values(bound, n, "bytes")
		default:
			c = c.values(bound, n, "count")
		}
		out = append(out, c)
	}
	return out
}

// signedBytes writes a byte count that may be negative (memory that
// shrank) or zero, which units.Bytes reads as a limit's "none".
func signedBytes(v float64) string {
	switch {
	case v == 0:
		return "0 B"
	case v < 0:
		return "-" + units.Bytes(int64(-v))
	}
	return units.Bytes(int64(v))
}

// amount writes a limit in the metric's unit.
func amount(m metric, v float64, relative bool) string {
	if relative {
		return strconv.FormatFloat(v*100, 'f', -1, 64) + "%"
	}
	switch m.unit {
	case "us":
		return ms(v)
	case "pct":
		return strconv.FormatFloat(v, 'f', -1, 64) + " points"
	case "cpu":
		return strconv.FormatFloat(v, 'f', -1, 64) + " µs"
	case "bytes":
		return signedBytes(v)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// show writes one metric value.
func show(m metric, v float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	switch m.unit {
	case "us":
		return ms(v)
	case "pct":
		return fmt.Sprintf("%.2f%%", v)
	case "rate":
		return fmt.Sprintf("%.1f", v)
	case "cpu":
		return fmt.Sprintf("%.2f µs", v)
	case "bytes":
		return signedBytes(v)
	}
	return fmt.Sprintf("%.0f", v)
}

// change writes the difference new − old, relative where the old value is
// not zero, with "(worse)" where it moved the wrong way.
func change(m metric, o, n float64) string {
	d := n - o
	var s string
	switch {
	case m.unit == "pct":
		s = fmt.Sprintf("%+.2f points", d)
	case o != 0:
		s = fmt.Sprintf("%+.1f%%", d/math.Abs(o)*100)
	case d == 0:
		s = "0"
	default:
		s = "+" + show(m, d, true)
	}
	if (m.higherWorse && d > 0) || (!m.higherWorse && d < 0) {
		s += " (worse)"
	}
	return s
}

// With returns v with more checks, its status recomputed.
//
// The measured check, when there is one, is judged again over every
// check and kept last: a check added later (a baseline's regression
// check) may be the measurement a verdict applies.
func (v Verdict) With(checks ...Check) Verdict {
	all := append(append([]Check(nil), v.Checks...), checks...)
	v.Checks = all[:0]
	var measured *measuredBasis
	for _, c := range all {
		if c.ID == measuredID && c.basis != nil {
			measured = c.basis
			continue
		}
		v.Checks = append(v.Checks, c)
	}
	if measured != nil {
		v.Checks = append(v.Checks, measuredCheck(measured, v.Checks))
	}
	v.Status = Pass
	for _, c := range v.Checks {
		if c.Status == Fail {
			v.Status = Fail
		}
	}
	return v
}

// CheckHeadline checks the numbers a comparison reads out of res: every
// one finite and not negative (but memory growth, which a restart or a
// freed buffer makes negative), and a delivery rate no higher than 100 %.
// A result read back from a file is checked so: a gate must never be
// switched off by a file that only looks like a report.
func CheckHeadline(res *harness.Result) error {
	// A repeated run's repetitions are judged and compared too: each
	// must be as sound as the body.
	for k, rep := range res.Repetitions {
		if rep == nil || len(rep.Repetitions) > 0 {
			return fmt.Errorf("repetition %d: missing, or repeated itself", k+1)
		}
		if err := CheckHeadline(rep); err != nil {
			return fmt.Errorf("repetition %d: %w", k+1, err)
		}
	}
	for _, m := range metrics {
		v, ok := m.get(res)
		switch {
		case !ok:
		case math.IsNaN(v) || math.IsInf(v, 0) || v < 0 && m.unit != "bytes":
			return fmt.Errorf("%s is %v: want a finite number, not negative", m.name, v)
		case m.unit == "pct" && v > 100:
			return fmt.Errorf("%s is %v%%: a rate cannot exceed 100%%", m.name, v)
		}
	}
	return nil
}
