package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/verdict"
)

// The HTML report's plots, drawn as inline SVG. What they must not do is
// mislead: an empty second is a gap, not 0 ms; a fault or an outage is
// shaded where it happened, on every plot over time; a bar's colour
// comes from the verdict's threshold, not from an absolute; and every
// point says its value on hover (an SVG <title>: no script).

// Plot colours, one per series by position; the browser test looks for
// them.
var plotColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b"}

// Fixed colours: shades are drawn under the lines in light tints far
// from every line colour (and from white), so that the browser test can
// count them apart.
const (
	faultFill  = "#fde0b6" // light orange: a fault the script applied
	outageFill = "#d9d9f3" // lavender: some instance could not receive
	baseColor  = "#7f7f7f" // the baseline, dashed
	warnColor  = "#ff7f0e" // loss, within the threshold
)

// line is one series of a plot.
type line struct {
	name string
	x, y []float64
	// color is the line's; "" takes the plot's next colour.
	color  string
	dashed bool
	// unit follows the value in a hover title ("ms", "/s").
	unit string
}

// shade is a stretch of the x axis to tint: a fault, an outage.
type shade struct {
	from, to    float64
	fill, title string
}

// plot is a line chart drawn as SVG.
type plot struct {
	title, xLabel, yLabel string
	lines                 []line
	shades                []shade
	// xTicks, when set, label the x axis at these values with these
	// names (the percentile axis); else five even ticks.
	xTicks []float64
	xNames []string
	// xText writes an x value in a hover title; nil writes seconds.
	xText func(float64) string
}

const (
	plotW, plotH           = 760, 300
	padL, padR, padT, padB = 70, 150, 30, 45
	// maxHoverPoints bounds the hover targets per line: a 48-hour soak
	// has 172 800 seconds, and one target per pixel is all a mouse needs.
	maxHoverPoints = 600
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
	xText := p.xText
	if xText == nil {
		xText = func(x float64) string { return trimNum(x) + " s" }
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s">`, plotW, plotH, esc(p.title))
	fmt.Fprintf(&b, `<text x="%d" y="18" style="font-weight:bold;font-size:13px">%s</text>`, padL, esc(p.title))
	// Shades first, under the grid and the lines; at least 3 px wide, so
	// that an instantaneous fault (a kill) still shows. Outages are drawn
	// before faults, and faults leave the top 12 px uncovered: where a
	// fault caused an outage, both show.
	for _, outage := range []bool{true, false} {
		for _, s := range p.shades {
			from, to := math.Max(s.from, xmin), math.Min(math.Max(s.to, s.from), xmax)
			if (s.fill == outageFill) != outage || from > xmax || to < xmin {
				continue
			}
			top := padT
			if !outage {
				top += 12
			}
			x0, x1 := sx(from), sx(to)
			fmt.Fprintf(&b, `<rect class="shade" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`,
				x0, top, math.Max(x1-x0, 3), plotH-padB-top, s.fill, esc(s.title))
		}
	}
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
	legend := 0
	swatch := func(name string, draw func(x, y int) string) {
		ly := padT + 15 + legend*18
		b.WriteString(draw(plotW-padR+10, ly))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, plotW-padR+35, ly+4, esc(name))
		legend++
	}
	for i, l := range p.lines {
		color := cmp.Or(l.color, plotColors[i%len(plotColors)])
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		// A NaN is a gap (a second with nothing to show): the line stops
		// there and starts again after, rather than dropping to zero.
		var pts []string
		flush := func() {
			switch len(pts) {
			case 0:
			case 1: // a lone point between gaps: a dot, or it would not show
				xy := strings.Split(pts[0], ",")
				fmt.Fprintf(&b, `<circle class="series" cx="%s" cy="%s" r="2.5" fill="%s"><title>%s</title></circle>`, xy[0], xy[1], color, esc(l.name))
			default:
				fmt.Fprintf(&b, `<polyline class="series" fill="none" stroke="%s" stroke-width="2"%s points="%s"><title>%s</title></polyline>`,
					color, dash, strings.Join(pts, " "), esc(l.name))
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
		// Hover targets: invisible, but painted, so that the pointer
		// finds them and the browser shows their title.
		step := max(1, (len(l.x)+maxHoverPoints-1)/maxHoverPoints)
		for j := 0; j < len(l.x); j += step {
			if math.IsNaN(l.y[j]) {
				continue
			}
			fmt.Fprintf(&b, `<circle class="hover" cx="%.1f" cy="%.1f" r="4" fill="transparent"><title>%s at %s: %s</title></circle>`,
				sx(l.x[j]), sy(l.y[j]), esc(l.name), esc(xText(l.x[j])), esc(valueText(l.y[j])+l.unit))
		}
		swatch(l.name, func(x, y int) string {
			return fmt.Sprintf(`<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"%s/>`, x, x+20, y, y, color, dash)
		})
	}
	// The shades' legend: one entry per kind shown.
	seen := map[string]bool{}
	for _, s := range p.shades {
		if seen[s.fill] {
			continue
		}
		seen[s.fill] = true
		name := "fault"
		if s.fill == outageFill {
			name = "outage"
		}
		swatch(name, func(x, y int) string {
			return fmt.Sprintf(`<rect x="%d" y="%d" width="20" height="10" fill="%s"/>`, x, y-5, s.fill)
		})
	}
	b.WriteString("</svg>")
	return b.String()
}

// valueText writes a value for a hover title: whole above 100, three
// significant digits below.
func valueText(v float64) string {
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// addPercentile adds the value us (µs) at percentile q to l on
// HdrHistogram's axis, log10(1/(1−p)).
func (l *line) addPercentile(q, us float64) {
	if q >= 100 {
		q = 99.9999 // the axis ends somewhere: the max sits past the last tick
	}
	l.x = append(l.x, math.Log10(1/(1-q/100)))
	l.y = append(l.y, us/1000)
}

// percentileLine is a result's latency against percentile. A result
// without its histogram (a report from before it was kept) gives the
// summary's percentiles.
func percentileLine(res *harness.Result, name string) line {
	if h := res.Histogram; h != nil && h.TotalCount() > 0 {
		l := line{name: name, unit: " ms"}
		for _, b := range h.CumulativeDistributionWithTicks(5) {
			l.addPercentile(b.Quantile, float64(b.ValueAt))
		}
		return l
	}
	return summaryLine(res.Latency, name)
}

// summaryLine is a summary's percentiles against percentile: what a
// result keeps of the distributions it keeps no histogram of.
func summaryLine(s harness.LatencyStats, name string) line {
	l := line{name: name, unit: " ms"}
	if s.Count == 0 {
		return l
	}
	for _, q := range []struct {
		q  float64
		us int64
	}{{0, s.Min}, {50, s.P50}, {90, s.P90}, {95, s.P95}, {99, s.P99}, {99.9, s.P999}, {100, s.Max}} {
		l.addPercentile(q.q, float64(q.us))
	}
	return l
}

// percentilePlot is latency against percentile, so that the tail gets
// the room it deserves; beside it its parts (the send delay, the transit
// and the publish round trip: what of the latency is the generator's, what
// the network's and the server's), and the baseline's latency, dashed,
// when there is one.
func percentilePlot(res, base *harness.Result) string {
	p := plot{title: "Latency by percentile (intended send time to receipt)", xLabel: "percentile", yLabel: "ms",
		xTicks: []float64{0, 1, 2, 3, 4, 5, 6}, xNames: []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"},
		xText: func(x float64) string { return strconv.FormatFloat(100*(1-math.Pow(10, -x)), 'f', -1, 64) + "%" }}
	send, rtt := summaryLine(res.SendDelay, "send delay"), summaryLine(res.PublishRTT, "publish round trip")
	transit := summaryLine(res.Transit, "transit")
	// Their own colours, never the latency's blue, whether or not the
	// latency has a line.
	send.color, rtt.color, transit.color = plotColors[3], plotColors[2], plotColors[4]
	for _, l := range []line{percentileLine(res, "latency"), send, transit, rtt, baseLine(base, func(b *harness.Result) line { return percentileLine(b, "baseline") })} {
		if len(l.x) > 0 {
			p.lines = append(p.lines, l)
		}
	}
	return p.svg()
}

// baseLine is the baseline's line, dashed grey, or none without one.
func baseLine(base *harness.Result, f func(*harness.Result) line) line {
	if base == nil {
		return line{}
	}
	l := f(base)
	l.color, l.dashed = baseColor, true
	return l
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

// seriesLine is one figure of each point of a series, NaN where the point
// has nothing to show.
func seriesLine(series []harness.SeriesPoint, name, unit string, y func(harness.SeriesPoint) float64) line {
	l := line{name: name, unit: unit}
	for _, s := range fullIntervals(series) {
		l.x, l.y = append(l.x, s.Seconds), append(l.y, y(s))
	}
	return l
}

// latencyOverTime is each second's p50, p99 and max, and its send delay's
// p99 beside them: a latency that rises with the send delay is the
// generator's, not the server's. The baseline's p99 is dashed.
func latencyOverTime(res, base *harness.Result, shades []shade) string {
	// Nothing arrived that second: a gap, not 0 ms.
	ms := func(f func(harness.SeriesPoint) int64) func(harness.SeriesPoint) float64 {
		return func(s harness.SeriesPoint) float64 {
			if s.Max == 0 {
				return math.NaN()
			}
			return float64(f(s)) / 1000
		}
	}
	ls := []line{
		seriesLine(res.Series, "p50", " ms", ms(func(s harness.SeriesPoint) int64 { return s.P50 })),
		seriesLine(res.Series, "p99", " ms", ms(func(s harness.SeriesPoint) int64 { return s.P99 })),
		seriesLine(res.Series, "max", " ms", ms(func(s harness.SeriesPoint) int64 { return s.Max })),
		seriesLine(res.Series, "send delay p99", " ms", func(s harness.SeriesPoint) float64 {
			if s.SendP99 == 0 {
				return math.NaN() // nothing published that second, or a report from before send delays were kept
			}
			return float64(s.SendP99) / 1000
		}),
	}
	ls[3].dashed = true
	if allNaN(ls[3].y) {
		ls = ls[:3]
	}
	if base != nil && len(base.Series) > 0 {
		ls = append(ls, baseLine(base, func(b *harness.Result) line {
			return seriesLine(b.Series, "baseline p99", " ms", ms(func(s harness.SeriesPoint) int64 { return s.P99 }))
		}))
	}
	return plot{title: "Latency over time (per second)", xLabel: "seconds from the start", yLabel: "ms", lines: ls, shades: shades}.svg()
}

func allNaN(ys []float64) bool {
	for _, y := range ys {
		if !math.IsNaN(y) {
			return false
		}
	}
	return true
}

// throughputOverTime is each second's target, publish and delivery rates:
// the target beside what was published shows a load shape followed, or a
// generator falling behind. The baseline's delivery rate is dashed.
func throughputOverTime(res, base *harness.Result, shades []shade) string {
	ls := []line{
		seriesLine(res.Series, "published/s", "/s", func(s harness.SeriesPoint) float64 { return s.PublishRate }),
		seriesLine(res.Series, "delivered/s", "/s", func(s harness.SeriesPoint) float64 { return s.DeliveryRate }),
		seriesLine(res.Series, "target/s", "/s", func(s harness.SeriesPoint) float64 { return s.TargetRate }),
	}
	// A closed loop has no target, nor a report from before targets were kept.
	if !slices.ContainsFunc(ls[2].y, func(y float64) bool { return y > 0 }) {
		ls = ls[:2]
	}
	if base != nil && len(base.Series) > 0 {
		ls = append(ls, baseLine(base, func(b *harness.Result) line {
			return seriesLine(b.Series, "baseline delivered/s", "/s", func(s harness.SeriesPoint) float64 { return s.DeliveryRate })
		}))
	}
	return plot{title: "Throughput over time", xLabel: "seconds from the start", yLabel: "messages/s", lines: ls, shades: shades}.svg()
}

// backlogOverTime is what the subscribers should have received by each
// second and had not: in flight, or lost. A backlog that grows is a
// subscriber falling behind, long before it is cut off.
func backlogOverTime(res *harness.Result, shades []shade) string {
	ls := []line{seriesLine(res.Series, "pending", "", func(s harness.SeriesPoint) float64 { return float64(s.Pending) })}
	return plot{title: "Backlog over time (expected by then, not yet received)", xLabel: "seconds from the start",
		yLabel: "messages", lines: ls, shades: shades}.svg()
}

// errorsOverTime is the errors and reconnections so far: flat at zero in
// a healthy run, a step at each fault.
func errorsOverTime(res *harness.Result, shades []shade) string {
	ls := []line{
		seriesLine(res.Series, "errors", "", func(s harness.SeriesPoint) float64 { return float64(s.Errors) }),
		seriesLine(res.Series, "reconnects", "", func(s harness.SeriesPoint) float64 { return float64(s.Reconnects) }),
	}
	ls[0].color, ls[1].color = plotColors[1], plotColors[3]
	return plot{title: "Errors and reconnections (so far)", xLabel: "seconds from the start", yLabel: "count",
		lines: ls, shades: shades}.svg()
}

// timeShades are the run's fault windows and its outages, for the plots
// over time. Outages are merged where they overlap (a restart takes every
// instance down at once): one shade per stretch in which any instance
// could not receive, titled with how many.
func timeShades(res *harness.Result) []shade {
	end := 0.0
	if n := len(res.Series); n > 0 {
		end = res.Series[n-1].Seconds
	}
	var out []shade
	type span struct {
		from, to float64
		inst     map[int]bool
	}
	var spans []span
	outages := slices.Clone(res.Timeline.Outages)
	slices.SortFunc(outages, func(a, b harness.Outage) int { return cmp.Compare(a.LostAtSeconds, b.LostAtSeconds) })
	for _, o := range outages {
		to := end // never recovered: down to the end
		if o.ResubscribedAtSeconds != nil {
			to = *o.ResubscribedAtSeconds
		}
		if k := len(spans) - 1; k >= 0 && o.LostAtSeconds <= spans[k].to {
			spans[k].to = math.Max(spans[k].to, to)
			spans[k].inst[o.Instance] = true
			continue
		}
		spans = append(spans, span{o.LostAtSeconds, to, map[int]bool{o.Instance: true}})
	}
	for _, s := range spans {
		out = append(out, shade{from: s.from, to: s.to, fill: outageFill,
			title: fmt.Sprintf("outage: %d instance(s) not receiving, %.2f–%.2f s", len(s.inst), s.from, s.to)})
	}
	for _, f := range res.Timeline.Faults {
		// Only these act on an instance; the others on the server, whatever
		// their record's instance field holds.
		who := "the server"
		switch f.Action {
		case harness.FaultClientKill, harness.FaultSlowConsumer, harness.FaultLatency, harness.FaultPartition:
			who = fmt.Sprintf("instance %d", f.Instance)
			if f.Instance < 0 {
				who = "every instance"
			}
		}
		title := fmt.Sprintf("fault: %s (%s), %.2f–%.2f s", f.Action, who, f.AtSeconds, f.EndSeconds)
		if f.Detail != "" {
			title += ": " + f.Detail
		}
		out = append(out, shade{from: f.AtSeconds, to: f.EndSeconds, fill: faultFill, title: title})
	}
	return out
}

// deliveryThreshold is the verdict's floor on the delivery rate, if it
// checked one.
func deliveryThreshold(v verdict.Verdict) (float64, bool) {
	for _, c := range v.Checks {
		if c.ID == "delivery_rate" && c.ThresholdValue != nil && c.Status != verdict.Skip {
			return *c.ThresholdValue, true
		}
	}
	return 0, false
}

// The per-instance view: every instance's bar up to maxBars instances;
// above, the distribution and the worst maxWorst.
const (
	maxBars  = 40
	maxWorst = 20
)

// deliveryView shows each instance's delivery rate, coloured by the
// verdict's threshold: green at 100 %, orange for a loss the threshold
// allows, red below it. The axis starts near the lowest rate, so that
// 97 % and 100 % do not look alike.
func deliveryView(res *harness.Result, v verdict.Verdict) string {
	th, hasTh := deliveryThreshold(v)
	color := func(rate float64) string {
		switch {
		case rate >= 100:
			return plotColors[2]
		case hasTh && rate < th:
			return plotColors[1]
		}
		return warnColor
	}
	var rated []harness.InstanceResult
	for _, ir := range res.Instances {
		if ir.DeliveryRate != nil {
			rated = append(rated, ir)
		}
	}
	var b strings.Builder
	if len(res.Instances) <= maxBars {
		deliveryBars(&b, "Delivery per instance", res.Instances, th, hasTh, color)
		return b.String()
	}
	// Many instances: how they are spread over the classes that matter,
	// then the worst of them by name.
	edges := []float64{100, 99.9, 99}
	if hasTh && th < 99 && th > 0 {
		edges = append(edges, th)
	}
	edges = append(edges, 0)
	counts := make([]int, len(edges))
	for _, ir := range rated {
		for i, e := range edges {
			if *ir.DeliveryRate >= e {
				counts[i]++
				break
			}
		}
	}
	h := 40 + 18*len(edges)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="delivery distribution">`, plotW, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" style="font-weight:bold;font-size:13px">Delivery per instance: %d instances by delivery rate</text>`, padL+60, len(res.Instances))
	top := slices.Max(counts)
	for i, e := range edges {
		label := "100%"
		if i > 0 {
			label = fmt.Sprintf("%s–%s%%", trimNum(e), trimNum(edges[i-1]))
		}
		if hasTh && e < th {
			label += " (below)"
		}
		y := 30 + i*18
		width := float64(counts[i]) / float64(max(top, 1)) * (plotW - padL - padR - 60)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, padL+55, y+12, esc(label))
		fmt.Fprintf(&b, `<rect class="bar" x="%d" y="%d" width="%.1f" height="14" fill="%s"><title>%d instance(s) at %s</title></rect><text x="%.1f" y="%d">%d</text>`,
			padL+60, y, width, color(e), counts[i], esc(label), float64(padL+60)+width+5, y+12, counts[i])
	}
	b.WriteString("</svg>")
	worst := slices.Clone(rated)
	slices.SortStableFunc(worst, func(a, c harness.InstanceResult) int { return cmp.Compare(*a.DeliveryRate, *c.DeliveryRate) })
	worst = worst[:min(maxWorst, len(worst))]
	deliveryBars(&b, fmt.Sprintf("The %d instances with the lowest delivery", len(worst)), worst, th, hasTh, color)
	return b.String()
}

// deliveryBars is one bar per instance, on an axis from just under the
// lowest rate (or the threshold) to 100 %, the threshold marked.
func deliveryBars(b *strings.Builder, title string, insts []harness.InstanceResult, th float64, hasTh bool, color func(float64) string) {
	lo := 100.0
	for _, ir := range insts {
		if ir.DeliveryRate != nil {
			lo = math.Min(lo, *ir.DeliveryRate)
		}
	}
	if hasTh {
		lo = math.Min(lo, th)
	}
	// Down to a multiple of 5 a little under it: 97 % on a 90–100 axis.
	lo = math.Max(0, math.Floor((lo-1)/5)*5)
	width := float64(plotW - padL - padR)
	sx := func(rate float64) float64 { return padL + (rate-lo)/(100-lo)*width }
	h := 60 + 18*len(insts)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s">`, plotW, h, esc(title))
	fmt.Fprintf(b, `<text x="%d" y="18" style="font-weight:bold;font-size:13px">%s</text>`, padL, esc(title))
	for _, x := range []float64{lo, (lo + 100) / 2, 100} {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s%%</text>`, sx(x), h-8, trimNum(x))
	}
	if hasTh && th > lo {
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="25" y2="%d" stroke="#333" stroke-dasharray="4 3"><title>the verdict's threshold: %s%%</title></line><text x="%.1f" y="%d">threshold %s%%</text>`,
			sx(th), sx(th), h-22, trimNum(th), sx(th)+4, h-22, trimNum(th))
	}
	for i, ir := range insts {
		y := 30 + i*18
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%d</text>`, padL-5, y+12, ir.Index)
		// A publish-only instance expects nothing: an empty bar would
		// read as 0 % delivered.
		if ir.DeliveryRate == nil {
			fmt.Fprintf(b, `<text x="%d" y="%d">n/a (expects nothing)</text>`, padL+5, y+12)
			continue
		}
		rate := *ir.DeliveryRate
		w := math.Max(sx(rate)-padL, 1)
		fmt.Fprintf(b, `<rect class="bar" x="%d" y="%d" width="%.1f" height="14" fill="%s"><title>instance %d: %.2f%% delivered (%d of %d)</title></rect><text x="%.1f" y="%d">%.2f%%</text>`,
			padL, y, w, color(rate), ir.Index, rate, ir.Delivered, ir.Expected, padL+w+5, y+12, rate)
	}
	b.WriteString("</svg>")
}
