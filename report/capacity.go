package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/redisload/redisload/capacity"
	"github.com/redisload/redisload/verdict"
)

// NewCapacityReporter renders a capacity search as an ASCII table,
// Markdown, or JSON (format "table", "markdown" or "json"), ending with
// the sustainable capacity and the knee.
func NewCapacityReporter(res *capacity.Result, format string) Reporter {
	return func(w io.Writer) error {
		// JSON is the search as the library returned it, for a pipeline
		// to read; the tables are for people.
		if format == "json" {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		}
		ew := &errWriter{w: w}
		header, rows := capacityRows(res)
		// The limits are printed above the table: a knee means nothing
		// without the limits that defined it.
		limits := fmt.Sprintf("a step passes with delivery >= %.2f%%, p99 < %s, and at least %.0f%% of its target rate published",
			res.MinDelivery, ms(float64(res.MaxP99us)), res.MinAchievedPct)
		if format == "markdown" {
			ew.printf("## redisload capacity (varying %s)\n\n%s; CPU in %% of one core.\n\n", res.Vary, limits)
			mdTable(ew, header, rows, 0)
			ew.printf("\n**%s**\n", capacityVerdict(res))
			return ew.err
		}
		ew.printf("Capacity (varying %s against %s, Redis %s): %s; CPU in %% of one core.\n", res.Vary, res.Redis, res.Server, limits)
		ew.table(header, rows, 0)
		ew.printf("\n%s\n", capacityVerdict(res))
		return ew.err
	}
}

// capacityRows are the steps as a table, one row each.
func capacityRows(res *capacity.Result) ([]string, [][]string) {
	header := []string{"Step", "Search", "Instances", "Target/s", "Achieved/s", "Delivered/s", "Delivery", "p50 ms", "p99 ms",
		"Redis CPU", "Redis mem peak", "Client CPU", "Result"}
	var rows [][]string
	for i, s := range res.Steps {
		result := string(verdict.Pass)
		if !s.Passed {
			result = string(verdict.Fail) + ": " + s.Failed
		}
		if s.GeneratorBound {
			result += fmt.Sprintf(" [load generator saturated: %.0f%% CPU on %d cores]", s.ClientCPUPct, s.ClientCores)
		}
		search := "step"
		if s.Bisect {
			search = "bisect"
		}
		rows = append(rows, []string{fmt.Sprint(i + 1), search, fmt.Sprint(s.Instances), fmt.Sprintf("%.0f", s.TargetRate),
			fmt.Sprintf("%.0f", s.AchievedRate), fmt.Sprintf("%.0f", s.DeliveriesPerS), fmt.Sprintf("%.2f%%", s.DeliveryPct),
			fmt.Sprintf("%.3f", float64(s.P50us)/1000), fmt.Sprintf("%.3f", float64(s.P99us)/1000),
			fmt.Sprintf("%.0f%%", s.RedisCPUPct), s.RedisMemoryPeak, fmt.Sprintf("%.0f%%", s.ClientCPUPct), result})
	}
	return header, rows
}

// capacityVerdict names the sustainable capacity and where the knee was.
func capacityVerdict(res *capacity.Result) string {
	if res.Sustainable < 0 {
		if len(res.Steps) == 0 {
			return "No step ran."
		}
		// Even the first step failed: say why, since the start was too high
		// or the setup broken, and the table alone does not say which.
		return "No sustainable capacity: the first step already failed (" + res.Steps[0].Failed + ")."
	}
	// The sustainable step is the passing one of highest load, and the knee
	// the failing one of lowest load above it: the true limit lies between
	// the two.
	s := res.Steps[res.Sustainable]
	out := fmt.Sprintf("Sustainable capacity: %d instances at %.0f events/s (%.0f deliveries/s, p99 %s).",
		s.Instances, s.TargetRate, s.DeliveriesPerS, ms(float64(s.P99us)))
	if res.Knee < 0 {
		return out + " Every step passed: the knee is beyond --max."
	}
	k := res.Steps[res.Knee]
	out += fmt.Sprintf(" Knee at step %d: %s.", res.Knee+1, k.Failed)
	lo, hi, unit := s.TargetRate, k.TargetRate, "events/s"
	if res.Vary == capacity.VaryInstances {
		lo, hi, unit = float64(s.Instances), float64(k.Instances), "instances"
	}
	switch {
	case res.Resolution > 0:
		out += fmt.Sprintf(" The knee lies between %.0f and %.0f %s (%.1f%% apart; resolution %g%%).", lo, hi, unit, (hi-lo)/lo*100, res.Resolution)
	default:
		out += fmt.Sprintf(" The knee lies between %.0f and %.0f %s (no bisection).", lo, hi, unit)
	}
	if k.GeneratorBound {
		out += fmt.Sprintf(" At the knee redisload itself used %.0f%% CPU on %d cores (Redis %.0f%%): the knee is the load generator's, "+
			"not the server's. Spread the load over more processes or hosts (--spawn-workers, redisload worker) and measure again.",
			k.ClientCPUPct, k.ClientCores, k.RedisCPUPct)
	}
	return out
}
