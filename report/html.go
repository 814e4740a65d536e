package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/units"
	"github.com/redisload/redisload/verdict"
)

// The HTML report is one self-contained file: inline CSS and plots drawn
// here as inline SVG, no script and nothing fetched, so that it opens from
// a CI artifact on a machine without network, and renders the same in any
// browser. Like every reporter, it is a pure function of the result.

// Plot colours, one per series; the browser test looks for them.
var plotColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}

// NewHTMLReporter renders res and v as a self-contained HTML page: the
// verdict, the tables, the latency percentile distribution, latency and
// throughput over time (when the run collected its series), and delivery
// per instance.
func NewHTMLReporter(res *harness.Result, v verdict.Verdict) Reporter {
	return func(w io.Writer) error {
		ew := &errWriter{w: w}
		c := res.Config
		ew.printf("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>redisload %s: %s</title>\n",
			esc(res.RunID), v.Status)
		ew.printf("<style>%s</style></head><body>\n", htmlCSS)
		ew.printf("<h1>redisload <span class=\"status %s\">%s</span></h1>\n", strings.ToLower(string(v.Status)), v.Status)
		ew.printf("<p>Run <code>%s</code> against <code>%s</code>, channels <code>%s*</code>, seed %d.<br>Server: %s.<br>%s, %s at %s, events %s.</p>\n",
			esc(res.RunID), esc(res.Redis), esc(res.KeyPrefix), res.Seed, esc(serverLine(res.Server)),
			units.Count(c.Instances, "instance"), seconds(c.DurationSeconds), esc(rateLabel(c)), esc(strings.Join(c.EventTypes, ", ")))
		if cl := res.Server.Cluster; cl != nil {
			ew.printf("<p>Cluster: %s.</p>\n", esc(cl.String()))
		}
		if res.Server.Embedded {
			ew.printf("<p class=\"warn\">Embedded server: these numbers describe miniredis, an in-process Go stand-in, not Redis.</p>\n")
		}
		// The verdict first, as in the Markdown: an artifact is opened to
		// learn whether the run passed.
		htmlTable(ew, "Test Verdict", []string{"Check", "Threshold", "Measured", "Result"}, verdictRows(v))
		if len(res.Warnings) > 0 {
			ew.printf("<h2>Warnings</h2><ul>\n")
			for _, wn := range res.Warnings {
				ew.printf("<li>%s</li>\n", esc(wn))
			}
			ew.printf("</ul>\n")
		}

		// Plots are inline SVG, no script and nothing fetched: the page
		// opens offline from a CI artifact, and a test renders it headless.
		ew.printf("<h2>Latency</h2>\n")
		ew.printf("%s\n", percentilePlot(res))
		// Plots over time need the per-second series, which every run of
		// the command collects; a result without it (a library run
		// without Config.Series) says so rather than drawing nothing.
		if len(res.Series) > 0 {
			ew.printf("%s\n", latencyOverTime(res.Series))
			ew.printf("%s\n", throughputOverTime(res.Series))
		} else {
			ew.printf("<p class=\"note\">No per-second series in this result (a run made without one: the library's Config.Series).</p>\n")
		}
		ew.printf("%s\n", deliveryBars(res))

		// The same rows as the table and the Markdown: one source, so the
		// formats cannot disagree on a number.
		if h, rows := repeatRows(res); rows != nil {
			htmlTable(ew, fmt.Sprintf("Repetitions (%d runs; the sections below are repetition %d, the median by p99)",
				len(res.Repetitions), res.RepeatBody), h, rows)
		}
		htmlTable(ew, "Overall Statistics", nil, overallRows(res))
		htmlTable(ew, "Latency Statistics", latencyHeader,
			[][]string{latencyRow("latency", res.Latency), latencyRow("send delay", res.SendDelay)})
		htmlTable(ew, "Per-Instance Statistics", instanceHeader, instanceRows(res))
		for _, td := range deploymentTables(res) {
			htmlTable(ew, td.title, td.header, td.rows)
		}
		for _, td := range timelineTables(res.Timeline) {
			htmlTable(ew, td.title, td.header, td.rows)
			if td.footer != "" {
				ew.printf("<p>%s</p>\n", esc(td.footer))
			}
		}
		ew.printf("</body></html>\n")
		return ew.err
	}
}

const htmlCSS = `body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}.status{padding:2px 10px;border-radius:4px;color:#fff}
.pass{background:#2a8a2a}.fail{background:#c62828}.skip{background:#888}.warn{color:#c62828;font-weight:bold}
.note{color:#666}svg{display:block;margin:1em 0;background:#fff}svg text{font:11px sans-serif;fill:#333}
td.FAIL{color:#c62828;font-weight:bold}td.PASS{color:#2a8a2a}`

// esc escapes text for HTML: every string in the page comes from the
// result, and a key prefix or a warning must not become markup.
func esc(s string) string { return html.EscapeString(s) }

// rateLabel says how the load was set: a rate, or the closed loop that
// has none, so that a reader never takes a found rate for a target.
func rateLabel(c harness.ResultConfig) string {
	if c.MaxRate {
		return "the highest lossless rate"
	}
	return fmt.Sprintf("%g events/s", c.Rate)
}

// htmlTable writes one titled table; a PASS/FAIL/SKIP cell gets its class.
func htmlTable(ew *errWriter, title string, header []string, rows [][]string) {
	ew.printf("<h2>%s</h2>\n<table>\n", esc(title))
	if len(header) > 0 {
		ew.printf("<tr>")
		for _, h := range header {
			ew.printf("<th>%s</th>", esc(h))
		}
		ew.printf("</tr>\n")
	}
	for _, r := range rows {
		ew.printf("<tr>")
		for _, cell := range r {
			switch verdict.Status(cell) {
			case verdict.Pass, verdict.Fail, verdict.Skip:
				ew.printf("<td class=\"%s\">%s</td>", cell, cell)
			default:
				ew.printf("<td>%s</td>", esc(cell))
			}
		}
		ew.printf("</tr>\n")
	}
	ew.printf("</table>\n")
}

// line is one series of a plot.
type line struct {
	name string
	x, y []float64
}

// plot is a line chart drawn as SVG.
type plot struct {
	title, xLabel, yLabel string
	lines                 []line
	// xTicks, when set, label the x axis at these values with these
	// names (the percentile axis); else five even ticks.
	xTicks []float64
	xNames []string
}

const (
	plotW, plotH           = 760, 300
	padL, padR, padT, padB = 70, 150, 30, 45
)

// svg draws p. Every series is a polyline of its own colour, with a
// legend; axes are linear from zero (or from the data's minimum on x).
func (p plot) svg() string {
	var b strings.Builder
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, l := range p.lines {
		for i := range l.x {
			xmin, xmax = math.Min(xmin, l.x[i]), math.Max(xmax, l.x[i])
			if !math.IsNaN(l.y[i]) {
				ymax = math.Max(ymax, l.y[i])
			}
		}
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax = 0, 1
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	if ymax <= 0 {
		ymax = 1
	}
	// Round axis ends, so that the gridlines fall on numbers a reader
	// can compare across plots.
	ymax = niceCeil(ymax)
	sx := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*(plotW-padL-padR) }
	sy := func(y float64) float64 { return plotH - padB - y/ymax*(plotH-padT-padB) }
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s">`, plotW, plotH, esc(p.title))
	fmt.Fprintf(&b, `<text x="%d" y="18" style="font-weight:bold;font-size:13px">%s</text>`, padL, esc(p.title))
	// Axes, grid and ticks.
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" stroke="#333" fill="none"/>`, padL, padT, plotH-padB, plotW-padR)
	for i := 0; i <= 4; i++ {
		y := ymax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/>`, padL, plotW-padR, sy(y), sy(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-5, sy(y)+4, trimNum(y))
	}
	ticks, names := p.xTicks, p.xNames
	if len(ticks) == 0 {
		// Round steps (1, 2 or 5 times a power of ten) from a round start.
		step := niceCeil((xmax - xmin) / 5)
		for x := math.Ceil(xmin/step) * step; x <= xmax+step/1e6; x += step {
			ticks, names = append(ticks, x), append(names, trimNum(x))
		}
	}
	for i, x := range ticks {
		if x < xmin || x > xmax {
			continue
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, sx(x), plotH-padB+15, esc(names[i]))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, (plotW-padR+padL)/2, plotH-8, esc(p.xLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %d) rotate(-90)" text-anchor="middle">%s</text>`, (plotH-padB+padT)/2, esc(p.yLabel))
	// One polyline per series, and a legend beside the plot rather than
	// over it: the tail of a latency plot is where the data is.
	for i, l := range p.lines {
		color := plotColors[i%len(plotColors)]
		// A NaN is a gap (a second with nothing to show): the line stops
		// there and starts again after, rather than dropping to zero.
		var pts []string
		flush := func() {
			switch len(pts) {
			case 0:
			case 1: // a lone point between gaps: a dot, or it would not show
				xy := strings.Split(pts[0], ",")
				fmt.Fprintf(&b, `<circle class="series" cx="%s" cy="%s" r="2.5" fill="%s"/>`, xy[0], xy[1], color)
			default:
				fmt.Fprintf(&b, `<polyline class="series" fill="none" stroke="%s" stroke-width="2" points="%s"/>`, color, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for j := range l.x {
			if math.IsNaN(l.y[j]) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(l.x[j]), sy(l.y[j])))
		}
		flush()
		ly := padT + 15 + i*18
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/><text x="%d" y="%d">%s</text>`,
			plotW-padR+10, plotW-padR+30, ly, ly, color, plotW-padR+35, ly+4, esc(l.name))
	}
	b.WriteString("</svg>")
	return b.String()
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten, for axis labels.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// trimNum writes an axis label without trailing zeros: axes read
// 0.5, 1, 2, not 0.500000.
func trimNum(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-0" {
		return "0"
	}
	return s
}

// percentilePlot is latency against percentile on HdrHistogram's axis,
// log10(1/(1−p)), so that the tail gets the room it deserves. A result read
// from JSON has no histogram: then the summary's percentiles are drawn.
func percentilePlot(res *harness.Result) string {
	var l line
	l.name = "latency"
	add := func(q, us float64) {
		if q >= 100 {
			q = 99.9999 // the axis ends somewhere: the max sits past the last tick
		}
		l.x = append(l.x, math.Log10(1/(1-q/100)))
		l.y = append(l.y, us/1000)
	}
	if h := res.Histogram; h != nil && h.TotalCount() > 0 {
		for _, b := range h.CumulativeDistributionWithTicks(5) {
			add(b.Quantile, float64(b.ValueAt))
		}
	} else if s := res.Latency; s.Count > 0 {
		for _, q := range []struct {
			q  float64
			us int64
		}{{0, s.Min}, {50, s.P50}, {90, s.P90}, {95, s.P95}, {99, s.P99}, {99.9, s.P999}, {100, s.Max}} {
			add(q.q, float64(q.us))
		}
	}
	p := plot{title: "Latency by percentile (intended send time to receipt)", xLabel: "percentile", yLabel: "ms",
		xTicks: []float64{0, 1, 2, 3, 4, 5, 6}, xNames: []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"}}
	if len(l.x) > 0 {
		p.lines = []line{l}
	}
	return p.svg()
}

// fullIntervals drops a last point that closes a fraction of an interval
// (the end of the drain): its rates, over a few milliseconds, would plunge
// the plot to zero for no reason.
func fullIntervals(series []harness.SeriesPoint) []harness.SeriesPoint {
	if n := len(series); n >= 2 && series[n-1].Seconds-series[n-2].Seconds < harness.SeriesInterval.Seconds()/2 {
		return series[:n-1]
	}
	return series
}

// latencyOverTime is each second's p50, p99 and max.
func latencyOverTime(series []harness.SeriesPoint) string {
	ls := []line{{name: "p50"}, {name: "p99"}, {name: "max"}}
	for _, s := range fullIntervals(series) {
		for i, us := range []int64{s.P50, s.P99, s.Max} {
			y := float64(us) / 1000
			if s.Max == 0 {
				y = math.NaN() // nothing arrived that second: a gap, not 0 ms
			}
			ls[i].x = append(ls[i].x, s.Seconds)
			ls[i].y = append(ls[i].y, y)
		}
	}
	return plot{title: "Latency over time (per second)", xLabel: "seconds from the start", yLabel: "ms", lines: ls}.svg()
}

// throughputOverTime is each second's target, publish and delivery rates:
// the target beside what was published shows a load shape followed, or a
// generator falling behind.
func throughputOverTime(series []harness.SeriesPoint) string {
	ls := []line{{name: "published/s"}, {name: "delivered/s"}, {name: "target/s"}}
	targeted := false // a closed loop has no target, nor a report from before targets were kept
	for _, s := range fullIntervals(series) {
		ls[0].x, ls[0].y = append(ls[0].x, s.Seconds), append(ls[0].y, s.PublishRate)
		ls[1].x, ls[1].y = append(ls[1].x, s.Seconds), append(ls[1].y, s.DeliveryRate)
		ls[2].x, ls[2].y = append(ls[2].x, s.Seconds), append(ls[2].y, s.TargetRate)
		targeted = targeted || s.TargetRate > 0
	}
	if !targeted {
		ls = ls[:2]
	}
	return plot{title: "Throughput over time", xLabel: "seconds from the start", yLabel: "messages/s", lines: ls}.svg()
}

// deliveryBars is one bar per instance: its delivery rate, red below 100 %.
func deliveryBars(res *harness.Result) string {
	var b strings.Builder
	n := len(res.Instances)
	h := 40 + 18*n
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="delivery per instance">`, plotW, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" style="font-weight:bold;font-size:13px">Delivery per instance</text>`, padL)
	for i, ir := range res.Instances {
		y := 30 + i*18
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%d</text>`, padL-5, y+12, ir.Index)
		// A publish-only instance expects nothing: an empty bar would
		// read as 0 % delivered.
		if ir.DeliveryRate == nil {
			fmt.Fprintf(&b, `<text x="%d" y="%d">n/a (expects nothing)</text>`, padL+5, y+12)
			continue
		}
		// Any loss turns a bar red: at 97 % and 100 % the bars look alike,
		// and the colour is what a reader sees first.
		color := plotColors[2]
		if *ir.DeliveryRate < 100 {
			color = plotColors[1]
		}
		width := *ir.DeliveryRate / 100 * (plotW - padL - padR)
		fmt.Fprintf(&b, `<rect class="bar" x="%d" y="%d" width="%.1f" height="14" fill="%s"/><text x="%.1f" y="%d">%.2f%%</text>`,
			padL, y, width, color, padL+width+5, y+12, *ir.DeliveryRate)
	}
	b.WriteString("</svg>")
	return b.String()
}
