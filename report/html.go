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

// NewHTMLReporter renders res and v as a self-contained HTML page: the
// verdict, the tables, the latency percentile distribution, latency,
// throughput, backlog and errors over time (when the run collected its
// series) with its faults and outages shaded, and delivery per instance.
// A baseline (base, nil for none) is drawn dashed on the percentile plot
// and the latency and throughput over time.
func NewHTMLReporter(res *harness.Result, v verdict.Verdict, base *harness.Result) Reporter {
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
		if base != nil {
			ew.printf("<p class=\"note\">Dashed grey: the baseline, run <code>%s</code>.</p>\n", esc(base.RunID))
		}
		ew.printf("%s\n", percentilePlot(res, base))
		// Plots over time need the per-second series, which every run of
		// the command collects; a result without it (a library run
		// without Config.Series) says so rather than drawing nothing.
		if len(res.Series) > 0 {
			shades := timeShades(res)
			ew.printf("%s\n", latencyOverTime(res, base, shades))
			ew.printf("%s\n", throughputOverTime(res, base, shades))
			ew.printf("%s\n", backlogOverTime(res, shades))
			ew.printf("%s\n", errorsOverTime(res, shades))
		} else {
			ew.printf("<p class=\"note\">No per-second series in this result (a run made without one: the library's Config.Series).</p>\n")
		}
		ew.printf("%s\n", deliveryView(res, v))

		// The same rows as the table and the Markdown: one source, so the
		// formats cannot disagree on a number.
		if h, rows := repeatRows(res); rows != nil {
			htmlTable(ew, fmt.Sprintf("Repetitions (%d runs; the sections below are repetition %d, the median by p99)",
				len(res.Repetitions), res.RepeatBody), h, rows)
		}
		htmlTable(ew, "Overall Statistics", nil, overallRows(res))
		htmlTable(ew, "Latency Statistics", latencyHeader, latencyRows(res))
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
			// A result cell is a status, a skipped one with its reason.
			switch st, _, _ := strings.Cut(cell, ":"); verdict.Status(st) {
			case verdict.Pass, verdict.Fail, verdict.Skip:
				ew.printf("<td class=\"%s\">%s</td>", st, esc(cell))
			default:
				ew.printf("<td>%s</td>", esc(cell))
			}
		}
		ew.printf("</tr>\n")
	}
	ew.printf("</table>\n")
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
