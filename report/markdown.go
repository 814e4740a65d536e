package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/units"
	"github.com/redisload/redisload/verdict"
)

// NewMarkdownReporter renders res and v as GitHub-flavoured Markdown, for a
// pull-request comment or a CI job summary: the verdict first (what a
// reviewer needs), the headline numbers, then the details folded away.
func NewMarkdownReporter(res *harness.Result, v verdict.Verdict) Reporter {
	return func(w io.Writer) error {
		ew := &errWriter{w: w}
		c := res.Config
		status := string(v.Status)
		if res.Interrupted {
			status += " (interrupted: partial run)"
		}
		// One heading with the status: the line a CI summary shows when
		// the rest is collapsed.
		ew.printf("## redisload: %s\n\n", status)
		rate := fmt.Sprintf("%g events/s", c.Rate)
		if c.MaxRate {
			rate = "the highest lossless rate"
		}
		ew.printf("%s, %s at %s (%s) against `%s`: %s. Run `%s`, seed %d.\n\n",
			units.Count(c.Instances, "instance"), seconds(c.DurationSeconds), rate, strings.Join(c.EventTypes, ", "), res.Redis,
			serverLine(res.Server), res.RunID, res.Seed)
		// Loud, as in every format: numbers from the stand-in must never
		// pass for Redis's in a review.
		if line := externalLine(res); line != "" {
			ew.printf("%s.\n\n", mdEscape(line))
		}
		if cl := res.Server.Cluster; cl != nil {
			ew.printf("Cluster: %s.\n\n", mdEscape(cl.String()))
		}
		if res.Server.Embedded {
			ew.printf("> **Embedded server:** these numbers describe miniredis, an in-process Go stand-in, not Redis.\n\n")
		}
		// The verdict first: a pull-request comment is read from the top,
		// and most readers stop after it.
		mdTable(ew, []string{"Check", "Threshold", "Measured", "Result"}, verdictRows(v), 3)
		ew.printf("\n")
		if h, rows := repeatRows(res); rows != nil {
			ew.printf("**%d repetitions**: median and spread; the tables below are repetition %d, the median by p99.\n\n",
				len(res.Repetitions), res.RepeatBody)
			mdTable(ew, h, rows, 1)
			ew.printf("\n")
		}
		mdTable(ew, []string{"", ""}, overallRows(res), 1)
		ew.printf("\n")
		mdTable(ew, latencyHeader, latencyRows(res), 1)
		if len(res.Warnings) > 0 {
			ew.printf("\n**Warnings**\n\n")
			for _, wn := range res.Warnings {
				ew.printf("- %s\n", mdEscape(wn))
			}
		}
		// Faults and outages are the story of a fault run; unfolded.
		for _, td := range timelineTables(res.Timeline) {
			ew.printf("\n**%s**\n\n", td.title)
			mdTable(ew, td.header, td.rows, 0)
			if td.footer != "" {
				ew.printf("\n%s\n", td.footer)
			}
		}
		// Folded: per instance is for the one reader who investigates, and
		// at a thousand instances it would bury the rest.
		for _, td := range deploymentTables(res) {
			ew.printf("\n**%s**\n\n", td.title)
			mdTable(ew, td.header, td.rows, td.textCols)
		}
		ew.printf("\n<details><summary>Per-instance statistics</summary>\n\n")
		mdTable(ew, instanceHeader, instanceRows(res), 2)
		ew.printf("\n</details>\n")
		return ew.err
	}
}

// mdTable writes one Markdown table; the first textCols columns are
// left-aligned, the rest right-aligned as numbers. A FAIL cell is bold so
// that it stands out in a rendered comment.
func mdTable(ew *errWriter, header []string, rows [][]string, textCols int) {
	line := func(cells []string) {
		out := make([]string, len(cells))
		for i, c := range cells {
			out[i] = mdEscape(c)
			if c == string(verdict.Fail) {
				out[i] = "**FAIL**"
			}
		}
		ew.printf("| %s |\n", strings.Join(out, " | "))
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = "---:"
		if i < textCols {
			sep[i] = ":---"
		}
	}
	ew.printf("|%s|\n", strings.Join(sep, "|"))
	for _, r := range rows {
		line(r)
	}
}

// mdEscape keeps a cell from breaking the table or turning into markup;
// "<=" stays readable, "<tag" is defused.
func mdEscape(s string) string {
	s = strings.NewReplacer("|", `\|`, "\n", " ", "*", `\*`, "_", `\_`).Replace(s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '<' && i+1 < len(s) && (s[i+1] == '/' || s[i+1] >= 'a' && s[i+1] <= 'z' || s[i+1] >= 'A' && s[i+1] <= 'Z') {
			b.WriteString("&lt;")
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
