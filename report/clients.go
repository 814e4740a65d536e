package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/redisload/redisload/clients"
	"github.com/redisload/redisload/verdict"
)

// NewClientsReporter renders the client matrix in format (table, json,
// markdown, html); a cell that regressed against the baseline (Input's
// ClientsBaseline) says what it was.
func NewClientsReporter(m *clients.Matrix, base *clients.Matrix, format, version string) Reporter {
	return func(w io.Writer) error {
		regs := clients.Regressions(base, m)
		status := clientsStatus(m, regs)
		if format == "json" {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				Tool        string               `json:"tool"`
				Version     string               `json:"version"`
				Matrix      *clients.Matrix      `json:"matrix"`
				Regressions []clients.Regression `json:"regressions,omitempty"`
				Status      verdict.Status       `json:"status"`
			}{"redisload", version, m, regs, status})
		}
		header, rows := clientsRows(m, regs)
		title := fmt.Sprintf("Client matrix (%s; Redis %s; %d instances × %.0fs at %.0f events/s a cell, the fault a third in)",
			m.Date.Format("2006-01-02"), m.RedisVersion, m.Instances, m.DurationSeconds, m.Rate)
		ew := &errWriter{w: w}
		switch format {
		case "markdown":
			ew.printf("## %s\n\n", title)
			mdTable(ew, header, rows, 3)
			ew.printf("\n%s\n\n**%s**\n", clientsLegend, status)
		case "html":
			return htmlPage(w, "redisload clients", status, func(ew *errWriter) {
				htmlTable(ew, title, header, rows)
				ew.printf("<p>%s</p>\n", esc(clientsLegend))
			})
		default:
			ew.printf("%s:\n", title)
			ew.table(header, rows, 3)
			ew.printf("%s\n\nOverall: %s\n", clientsLegend, status)
		}
		return ew.err
	}
}

// clientsLegend says what the columns mean, under every rendering.
const clientsLegend = "Missing in/out: lost inside an outage the client told of / outside any (the loss a client hides). " +
	"Resubscribed: every outage ended in a resubscription (time: the longest). " +
	"Silent: subscribers connected at the end, by their client's word, with messages missing, that received nothing for a second while publishes were still accepted or others received."

// clientsStatus is FAIL when a cell failed, could not run, or regressed.
func clientsStatus(m *clients.Matrix, regs []clients.Regression) verdict.Status {
	if m.Failed() || len(regs) > 0 {
		return verdict.Fail
	}
	return verdict.Pass
}

// clientsRows are the cells, one row each.
func clientsRows(m *clients.Matrix, regs []clients.Regression) ([]string, [][]string) {
	header := []string{"Client", "Version", "Scenario", "Delivered", "Missing in/out", "Dup", "Self", "Resubscribed",
		"Silent", "Pub err/unknown", "Result"}
	was := map[string]string{}
	for _, r := range regs {
		was[r.Client+"/"+r.Scenario] = r.Was
	}
	var rows [][]string
	for _, c := range m.Cells {
		result := string(c.Verdict)
		switch {
		case c.Skipped != "":
			result += ": " + c.Skipped
		case c.Error != "":
			result += ": " + oneLineText(c.Error, 120)
		case len(c.Failed) > 0:
			result += ": " + strings.Join(c.Failed, ", ")
		}
		if w, ok := was[c.Client+"/"+c.Scenario]; ok {
			result += " (was " + w + ")"
		}
		if c.Skipped != "" || c.Error != "" {
			rows = append(rows, []string{c.Client, c.ClientVersion, c.Scenario, "", "", "", "", "", "", "", result})
			continue
		}
		delivered := fmt.Sprintf("%d/%d", c.Delivered, c.Expected)
		if c.DeliveredPct != nil {
			delivered = fmt.Sprintf("%.2f%% (%s)", *c.DeliveredPct, delivered)
		}
		resub := "-"
		if c.Resubscribed != "" {
			resub = c.Resubscribed
			if c.MaxRecoverySeconds != nil {
				resub += fmt.Sprintf(" (%.3f s)", *c.MaxRecoverySeconds)
			}
		}
		rows = append(rows, []string{c.Client, c.ClientVersion, c.Scenario, delivered,
			fmt.Sprintf("%d / %d", c.MissingInOutages, c.MissingOutside), fmt.Sprint(c.Duplicates), fmt.Sprint(c.SelfReceived),
			resub, fmt.Sprintf("%d of %d", c.SilentDeaths, c.Instances), fmt.Sprintf("%d / %d", c.PublishErrors, c.PublishUnknown), result})
	}
	return header, rows
}

// oneLineText is s on one line, at most n bytes.
func oneLineText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
