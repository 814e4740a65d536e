package report_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/verdict"
)

// The HTML report, golden like the others, is one self-contained file:
// nothing is fetched and nothing runs.
func TestGoldenHTML(t *testing.T) {
	html := func(res *harness.Result, v verdict.Verdict) report.Reporter {
		return report.NewHTMLReporter(res, v, nil)
	}
	eachGolden(t, ".html", html, func(t *testing.T, v verdict.Verdict, buf *bytes.Buffer) {
		out := buf.String()
		for _, banned := range []string{"<script", "http://", "https://", "<link", "@import", "src="} {
			if strings.Contains(strings.ReplaceAll(out, `xmlns="http://www.w3.org/2000/svg"`, ""), banned) {
				t.Errorf("contains %q: not self-contained", banned)
			}
		}
		if !strings.Contains(out, `<span class="status `+strings.ToLower(string(v.Status))+`">`) || strings.Count(out, "<svg") < 2 {
			t.Errorf("no status badge or plots")
		}
	})
}

// chromium finds a headless-capable Chromium, or skips the test saying why
// (CI installs one and requires it).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium on PATH, and CI requires the browser test (.ci/run installs the chromium package)")
	}
	t.Skip("no Chromium on PATH (apt-get install chromium): the HTML report is not rendered")
	return ""
}

// The HTML report, rendered by headless Chromium, draws its plots: each
// series colour covers a stretch of pixels no legend swatch alone could.
// A run with nothing to plot (one instance, no series) stays under that,
// so the check can fail.
func TestHTMLRendersPlots(t *testing.T) {
	bin := chromium(t)
	full := screenshot(t, bin, "series")
	for _, c := range plotColours {
		if n := countNear(full, c.r, c.g, c.b); n < 500 {
			t.Errorf("%s: %d pixels drawn, want at least 500: a plot is empty", c.name, n)
		}
	}
	empty := screenshot(t, bin, "single-instance")
	if n := countNear(empty, plotColours[0].r, plotColours[0].g, plotColours[0].b); n >= 500 {
		t.Errorf("nothing to plot, yet %d blue pixels", n)
	}
	// A fault run shows its fault and its outages on the four plots over
	// time; the run without faults shows neither tint.
	restart := screenshot(t, bin, "restart")
	for _, c := range shadeColours {
		if n, none := countWithin(restart, c.r, c.g, c.b, 6), countWithin(full, c.r, c.g, c.b, 6); n < 4*1000 || none > 0 {
			t.Errorf("%s shade: %d pixels in the restart's report (want 1000 a plot), %d in a run without faults", c.name, n, none)
		}
	}
}

// The shades: a fault (light orange), an outage (lavender).
var shadeColours = []struct {
	name    string
	r, g, b int
}{{"fault", 0xfd, 0xe0, 0xb6}, {"outage", 0xd9, 0xd9, 0xf3}}

// Blue: the percentile curve, p50, published/s; red: p99, delivered/s;
// green: max and the delivery bars.
var plotColours = []struct {
	name    string
	r, g, b int
}{{"blue", 0x1f, 0x77, 0xb4}, {"red", 0xd6, 0x27, 0x28}, {"green", 0x2c, 0xa0, 0x2c}}

// screenshot renders fixture name's HTML report in headless Chromium.
func screenshot(t *testing.T, bin, name string) image.Image {
	t.Helper()
	_, _, buf := render(t, name, func(res *harness.Result, v verdict.Verdict) report.Reporter {
		return report.NewHTMLReporter(res, v, nil)
	})
	dir := t.TempDir()
	page, shot := filepath.Join(dir, "report.html"), filepath.Join(dir, "shot.png")
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--hide-scrollbars", "--window-size=1200,2600", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--screenshot="+shot, "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// countNear counts pixels within a small distance of a colour.
func countNear(img image.Image, r, g, b int) int { return countWithin(img, r, g, b, 40) }

// countWithin counts pixels within distance tol of a colour: a solid fill
// renders exactly, so its tolerance can be tight.
func countWithin(img image.Image, r, g, b, tol int) int {
	n := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			dr, dg, db := int(pr>>8)-r, int(pg>>8)-g, int(pb>>8)-b
			if dr*dr+dg*dg+db*db < tol*tol {
				n++
			}
		}
	}
	return n
}

// A second in which nothing arrived is a gap in the latency plot, not a
// fall to 0 ms: each line stops before it and starts again after.
func TestLatencyPlotGaps(t *testing.T) {
	res := load(t, "series")
	series := append([]harness.SeriesPoint(nil), res.Series...)
	series[2].P50, series[2].P99, series[2].Max = 0, 0, 0 // an empty second
	gapped := *res
	gapped.Series = series
	svg := func(r *harness.Result) string {
		var buf bytes.Buffer
		rep, err := report.New("html", report.Run, report.Input{Result: r, Verdict: verdict.Evaluate(r, verdict.DefaultThresholds())})
		if err != nil {
			t.Fatal(err)
		}
		if err := rep(&buf); err != nil {
			t.Fatal(err)
		}
		page := buf.String()
		i := strings.Index(page, `aria-label="Latency over time (per second)"`)
		if i < 0 {
			t.Fatal("no latency plot")
		}
		return page[i : i+strings.Index(page[i:], "</svg>")]
	}
	if n := strings.Count(svg(res), `class="series"`); n != 3 {
		t.Fatalf("without a gap: %d series elements, want 3 lines", n)
	}
	// Points 0-1 and 3-4 of five: two lines of two points each, per line.
	if n := strings.Count(svg(&gapped), "<polyline"); n != 6 {
		t.Errorf("with a gap at second 3: %d polylines, want each of the 3 lines in 2 pieces", n)
	}
	// No point sits on the zero line (y 255 px): the idle second is not
	// drawn as 0 ms.
	if strings.Contains(svg(&gapped), ",255.0") {
		t.Error("a point at 0 ms")
	}
}

// page renders a result's HTML report, with a baseline or none.
func page(t *testing.T, res *harness.Result, v verdict.Verdict, base *harness.Result) string {
	t.Helper()
	var buf bytes.Buffer
	if err := report.NewHTMLReporter(res, v, base)(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// svgOf is the plot of that title in a page, or "" when there is none.
func svgOf(page, title string) string {
	i := strings.Index(page, `aria-label="`+title+`"`)
	if i < 0 {
		return ""
	}
	return page[i : i+strings.Index(page[i:], "</svg>")]
}

var timePlots = []string{"Latency over time (per second)", "Throughput over time",
	"Backlog over time (expected by then, not yet received)", "Errors and reconnections (so far)"}

// A restart is shaded on every plot over time: one fault (the server's)
// and one outage stretch, the three instances' outages merged into it; a
// run without faults has no shade at all.
func TestHTMLShadesFaultsAndOutages(t *testing.T) {
	res, _, buf := render(t, "restart", func(r *harness.Result, v verdict.Verdict) report.Reporter { return report.NewHTMLReporter(r, v, nil) })
	if len(res.Timeline.Faults) != 1 || len(res.Timeline.Outages) != 3 {
		t.Fatalf("fixture: %d faults, %d outages; want the restart's 1 and 3", len(res.Timeline.Faults), len(res.Timeline.Outages))
	}
	for _, title := range timePlots {
		svg := svgOf(buf.String(), title)
		fault, outage := strings.Count(svg, `fill="#fde0b6"><title>fault: restart (the server)`), strings.Count(svg, `fill="#d9d9f3"><title>outage: 3 instance(s) not receiving`)
		if svg == "" || fault != 1 || outage != 1 || strings.Count(svg, `class="shade"`) != 2 {
			t.Errorf("%s: %d fault and %d outage shades (want 1 and 1) in\n%.400s", title, fault, outage, svg)
		}
	}
	if n := strings.Count(render2(t, "series"), `class="shade"`); n != 0 {
		t.Errorf("a run without faults has %d shades", n)
	}
}

func render2(t *testing.T, name string) string {
	t.Helper()
	_, _, buf := render(t, name, func(r *harness.Result, v verdict.Verdict) report.Reporter { return report.NewHTMLReporter(r, v, nil) })
	return buf.String()
}

// A baseline is drawn dashed grey beside the run on the percentile plot
// and on latency and throughput over time; without one, nothing grey.
func TestHTMLBaselineOverlay(t *testing.T) {
	res, base := load(t, "series"), load(t, "restart")
	v := verdict.Evaluate(res, verdict.DefaultThresholds())
	with := page(t, res, v, base)
	for title, name := range map[string]string{"Latency by percentile (intended send time to receipt)": "baseline",
		"Latency over time (per second)": "baseline p99", "Throughput over time": "baseline delivered/s"} {
		svg := svgOf(with, title)
		if !strings.Contains(svg, `stroke="#7f7f7f" stroke-width="2" stroke-dasharray="6 4"`) || !strings.Contains(svg, "<title>"+name+"</title>") {
			t.Errorf("%s: no dashed %q line", title, name)
		}
	}
	if !strings.Contains(with, "the baseline, run <code>"+base.RunID+"</code>") {
		t.Error("the page does not name the baseline's run")
	}
	if without := page(t, res, v, nil); strings.Contains(without, "#7f7f7f") {
		t.Error("a grey line without a baseline")
	}
}

// Every point of every line has a hover target saying its value: as many
// targets in a plot as points in its lines.
func TestHTMLHoverTitles(t *testing.T) {
	out := render2(t, "restart")
	for _, title := range append([]string{"Latency by percentile (intended send time to receipt)"}, timePlots...) {
		svg := svgOf(out, title)
		points := strings.Count(svg, `<circle class="series"`)
		for _, pl := range strings.Split(svg, `points="`)[1:] {
			points += len(strings.Fields(pl[:strings.Index(pl, `"`)]))
		}
		if hovers := strings.Count(svg, `class="hover"`); points == 0 || hovers != points {
			t.Errorf("%s: %d points, %d hover targets", title, points, hovers)
		}
	}
	if !strings.Contains(svgOf(out, "Throughput over time"), "<title>target/s at 1 s: 100/s</title>") {
		t.Error("no hover title for the first second's target")
	}
}

// Per instance, the colour is the verdict's: green at 100 %, orange for
// a loss the threshold allows, red below it, so that a passing run is not
// painted red; above 40 instances, the distribution and the worst 20.
func TestDeliveryView(t *testing.T) {
	tmpl := load(t, "pass-5")
	rate := func(v float64) *float64 { return &v }
	with := func(rates ...*float64) *harness.Result {
		r := *tmpl
		r.Instances = nil
		for i, dr := range rates {
			ir := tmpl.Instances[0]
			ir.Index, ir.DeliveryRate = i, dr
			r.Instances = append(r.Instances, ir)
		}
		return &r
	}
	v := verdict.Evaluate(tmpl, verdict.DefaultThresholds()) // delivery >= 95 %
	few := svgOf(page(t, with(rate(100), rate(97), rate(90)), v, nil), "Delivery per instance")
	for _, want := range []string{`fill="#2ca02c"><title>instance 0: 100.00%`, `fill="#ff7f0e"><title>instance 1: 97.00%`,
		`fill="#d62728"><title>instance 2: 90.00%`, "threshold 95%"} {
		if !strings.Contains(few, want) {
			t.Errorf("three instances: no %q in\n%s", want, few)
		}
	}
	var rates []*float64
	for i := range 60 {
		switch {
		case i < 50:
			rates = append(rates, rate(100))
		case i < 54:
			rates = append(rates, rate(99.95))
		case i < 57:
			rates = append(rates, rate(97))
		case i < 59:
			rates = append(rates, rate(90))
		default:
			rates = append(rates, nil) // publish-only
		}
	}
	out := page(t, with(rates...), v, nil)
	dist := svgOf(out, "delivery distribution")
	for _, want := range []string{"50 instance(s) at 100%", "4 instance(s) at 99.9–100%", "0 instance(s) at 99–99.9%",
		"3 instance(s) at 95–99%", "2 instance(s) at 0–95% (below)"} {
		if !strings.Contains(dist, "<title>"+want+"</title>") {
			t.Errorf("distribution: no %q in\n%s", want, dist)
		}
	}
	worst := svgOf(out, "The 20 instances with the lowest delivery")
	if strings.Count(worst, `class="bar"`) != 20 || strings.Count(worst, `fill="#d62728"`) != 2 ||
		strings.Count(worst, `fill="#ff7f0e"`) != 7 || !strings.Contains(worst, "<title>instance 57: 90.00%") {
		t.Errorf("worst 20:\n%s", worst)
	}
	if svgOf(out, "Delivery per instance") != "" {
		t.Error("60 bars drawn one by one")
	}
}
