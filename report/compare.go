package report

import (
	"io"

	"github.com/redisload/redisload/verdict"
)

// NewCompareReporter renders a comparison as an ASCII table or Markdown.
func NewCompareReporter(c verdict.Comparison, oldName, newName string, markdown bool) Reporter {
	return func(w io.Writer) error {
		ew := &errWriter{w: w}
		// The rows and checks are the verdict package's, already worded;
		// this only lays them out, so the table and the Markdown agree.
		rows := make([][]string, 0, len(c.Rows))
		for _, r := range c.Rows {
			rows = append(rows, []string{r.Metric, r.Old, r.New, r.Change})
		}
		header := []string{"Metric", oldName, newName, "Change"}
		var checks [][]string
		for _, ch := range c.Checks {
			checks = append(checks, []string{ch.Name, ch.Threshold, ch.Measured, string(ch.Status)})
		}
		// A comparison without limits has no status to give: it shows the
		// numbers only, and the status line appears with the checks.
		status := string(verdict.Pass)
		if c.Failed() {
			status = string(verdict.Fail)
		}
		// Markdown leads with the status: it is a pull-request comment,
		// read from the top.
		if markdown {
			ew.printf("## redisload compare: %s\n\n", status)
			if len(c.Mismatches) > 0 {
				ew.printf("**Set up differently**: the numbers below compare two experiments.\n\n")
				for _, m := range c.Mismatches {
					ew.printf("- %s\n", m.Text(oldName, newName))
				}
				ew.printf("\n")
			}
			mdTable(ew, header, rows, 1)
			if len(checks) > 0 {
				ew.printf("\n")
				mdTable(ew, []string{"Check", "Limit", "Measured", "Result"}, checks, 3)
			}
			return ew.err
		}
		// A difference of setup comes first: it says what the numbers
		// below are worth.
		if len(c.Mismatches) > 0 {
			ew.printf("Set up differently (the numbers below compare two experiments):\n")
			for _, m := range c.Mismatches {
				ew.printf("  %s\n", m.Text(oldName, newName))
			}
			ew.printf("\n")
		}
		// The arrow names the direction every change is measured in.
		ew.printf("Comparison (%s → %s):\n", oldName, newName)
		ew.table(header, rows, 1)
		if len(checks) > 0 {
			ew.section("Regression Checks")
			ew.table([]string{"Check", "Limit", "Measured", "Result"}, checks, 3)
			ew.printf("\nOverall Status: %s\n", status)
		}
		return ew.err
	}
}
