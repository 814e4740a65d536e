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
	eachGolden(t, ".html", report.NewHTMLReporter, func(t *testing.T, v verdict.Verdict, buf *bytes.Buffer) {
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
}

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
		return report.NewHTMLReporter(res, v)
	})
	dir := t.TempDir()
	page, shot := filepath.Join(dir, "report.html"), filepath.Join(dir, "shot.png")
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--hide-scrollbars", "--window-size=1200,2000", "--user-data-dir="+filepath.Join(dir, "profile"),
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
func countNear(img image.Image, r, g, b int) int {
	n := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			dr, dg, db := int(pr>>8)-r, int(pg>>8)-g, int(pb>>8)-b
			if dr*dr+dg*dg+db*db < 40*40 {
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
}
