package report

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/units"
	"github.com/redisload/redisload/verdict"
)

// Reporter writes one rendering of a report, as vegeta's reporters do.
type Reporter func(io.Writer) error

// Options tune the table rendering.
type Options struct {
	// Matrix adds the per-source delivery matrix (the seed's "Event
	// Distribution Verification") when there are at most MatrixLimit
	// instances.
	// default: false
	Matrix bool
	// MatrixLimit caps the instances for which the matrix is drawn; wider
	// matrices do not read in a terminal (the JSON always has them).
	// default: 20
	MatrixLimit int
	// ServerStats adds the server's INFO counters before and after the run.
	// default: false
	ServerStats bool
}

// rule frames the report as the seed's tool did, so that it is easy to find
// in a long CI log.
const rule = "============================================================"

// NewTableReporter renders res and v as the human report: overall,
// latency and per-instance statistics, warnings, the verdict table and the
// overall status line.
func NewTableReporter(res *harness.Result, v verdict.Verdict, opts Options) Reporter {
	if opts.MatrixLimit == 0 {
		opts.MatrixLimit = 20
	}
	return func(w io.Writer) error {
		ew := &errWriter{w: w}
		c := res.Config
		ew.printf("%s\nTest Results - Multi-Instance Redis Pub/Sub (redisload)\n%s\n", rule, rule)
		// The header says what was measured before any number: a run on
		// the wrong server, or on the stand-in, is caught here.
		if res.Server.Embedded {
			ew.printf("!!! EMBEDDED SERVER: these numbers describe miniredis, an in-process Go stand-in, NOT Redis !!!\n")
		}
		ew.printf("Run %s against %s, channels %s*, seed %d\n", res.RunID, res.Redis, res.KeyPrefix, res.Seed)
		ew.printf("Server: %s\n", serverLine(res.Server))
		if cl := res.Server.Cluster; cl != nil {
			ew.printf("Cluster: %s\n", cl)
		}
		if res.Server.Reason != "" {
			ew.printf("Chosen by --redis=auto: %s\n", res.Server.Reason)
		}
		// A closed loop has no target rate; saying "0 events/s" would read
		// as a run that published nothing.
		rate := fmt.Sprintf("%g events/s", c.Rate)
		if len(c.Stages) > 0 {
			rate = fmt.Sprintf("stages %s (peak %g events/s)", c.StagesText(), c.Rate)
		}
		if c.MaxRate {
			rate = fmt.Sprintf("the highest lossless rate (closed loop, at most %d in flight per instance)", c.MaxInFlight)
		}
		events := strings.Join(c.EventTypes, ", ")
		if c.ChannelsPerType > 1 {
			events += fmt.Sprintf(", %d channels each", c.ChannelsPerType)
		}
		if c.SpreadOver > 0 {
			events += fmt.Sprintf("; instances spread over %d nodes", c.SpreadOver)
		}
		if c.PubSub == "sharded" {
			// Said, because a source's messages then arrive over one
			// connection per shard, and out-of-order counts are expected.
			events += "; sharded pub/sub"
		}
		if c.Transport == "streams" {
			// Said for the same reason: each stream keeps its order, not
			// the event types relative to each other.
			events += "; over streams"
		}
		ew.printf("Started %s: %s, %s at %s, events %s\n",
			res.StartedAt.Format("2006-01-02 15:04:05 UTC"), units.Count(c.Instances, "instance"), seconds(c.DurationSeconds), rate, events)
		if line := externalLine(res); line != "" {
			ew.printf("%s\n", line)
		}

		// The warm-up's figures are its own: said once, apart, so that no
		// one looks for them in the sections below.
		if w := res.Warmup; w != nil {
			ew.printf("Warm-up: %s before the measured run, not in any figure below: %d of %d events published, %d of %d arrived, p99 %s\n",
				seconds(w.Seconds), w.Published, w.TargetEvents, w.Arrived, w.Expected, ms(float64(w.Latency.P99)))
		}
		// A repeated run says so first: the sections below are one of its
		// repetitions.
		if h, rows := repeatRows(res); rows != nil {
			ew.section(fmt.Sprintf("Repetitions (%d runs; the sections below are repetition %d, the median by p99)",
				len(res.Repetitions), res.RepeatBody))
			ew.table(h, rows, 1)
		}
		// The seed's sections, in its order, so that its users find their
		// numbers where they expect them.
		ew.section("Overall Statistics")
		ew.table(nil, overallRows(res), 2)
		ew.section("Latency Statistics (intended send time to receipt; send delay: intended to actual publish" + rttLegend(res) + ")")
		ew.table(latencyHeader, latencyRows(res), 1)
		ew.section("Per-Instance Statistics")
		ew.table(instanceHeader, instanceRows(res), 2)
		// Only when something happened: a healthy run stays short.
		timelineSections(ew, res.Timeline)
		for _, td := range deploymentTables(res) {
			ew.section(td.title)
			ew.table(td.header, td.rows, td.textCols)
		}
		// The matrix is n² cells: on a terminal only when asked for and
		// small enough to read; the JSON always has it.
		if opts.Matrix {
			if n := len(res.Instances); n <= opts.MatrixLimit && n > 1 {
				ew.section("Event Distribution (delivered/sent, receiver by row, publisher by column)")
				h, rows := matrixRows(res)
				ew.table(h, rows, 0)
			} else if n > opts.MatrixLimit {
				ew.printf("\n(delivery matrix omitted: %d instances, over %d; it is in the JSON output)\n", n, opts.MatrixLimit)
			}
		}
		if opts.ServerStats && (res.Server.StatsBefore != nil || res.Server.StatsAfter != nil) {
			ew.section("Server Counters (INFO, before publishing and after closing)")
			ew.table([]string{"Field", "Before", "After"}, statsRows(res.Server), 1)
		}
		// Warnings before the verdict: they are what a PASS may hide.
		if len(res.Warnings) > 0 {
			ew.section("Warnings")
			for _, wn := range res.Warnings {
				ew.printf("  ! %s\n", wn)
			}
		}
		ew.section("Test Verdict")
		ew.table([]string{"Check", "Threshold", "Measured", "Result"}, verdictRows(v), 4)
		// An interrupted run's status says so, in every format: partial
		// numbers must not read as a result.
		status := string(v.Status)
		if res.Interrupted {
			status += " (interrupted: partial run)"
		}
		ew.printf("\nOverall Status: %s\n%s\n", status, rule)
		return ew.err
	}
}

// Column headers. Latencies are in milliseconds with three decimals:
// microsecond precision in one unit, so columns compare at a glance.
var (
	latencyHeader  = []string{"", "min", "avg", "p50", "p90", "p95", "p99", "p99.9", "max", "stddev", "samples"}
	instanceHeader = []string{"#", "Instance ID", "Conn", "Published", "Received", "Expected", "Delivered",
		"Delivery", "Self-filtered", "Self-received", "Dup", "Avg ms", "p99 ms", "Errors"}
)

// overallRows follows the seed's "Overall Statistics" order and wording,
// adding the lines its accounting lacked (delivered, missing, duplicates,
// out of order, self-filtered, forged, foreign). Late-confirmed deliveries
// get a line only when there are some: they need publishes that timed out.
func overallRows(res *harness.Result) [][]string {
	t := res.Totals
	rows := [][]string{
		{"Total Instances", fmt.Sprintf("%d (%d connected)", t.Instances, t.Connected)},
		{"Test Duration", fmt.Sprintf("%s (+%s drain; connecting took %s)", seconds(res.ElapsedSeconds), seconds(res.DrainSeconds), seconds(res.ConnectSeconds))},
		{"Total Events Published", published(res)},
		{"Publish Errors", publishErrors(t.Counts)},
		{"Total Events Received", fmt.Sprint(t.Received)},
		{"Expected Received", fmt.Sprint(t.Expected)},
		{"Delivered (unique)", fmt.Sprintf("%d (%.1f/s)", t.Delivered, t.DeliveryThroughput)},
		{"Missing", fmt.Sprint(t.Missing)},
		{"Late-Confirmed", fmt.Sprint(t.LateConfirmed)},
		{"Duplicates", fmt.Sprint(t.Duplicates)},
		{"Out of Order", fmt.Sprint(t.OutOfOrder)},
		{"Delivery Rate", rate(t.DeliveryRate)},
		{"Self-Received Events", fmt.Sprint(t.SelfReceived)},
		{"Self-Filtered Events", fmt.Sprint(t.SelfFiltered)},
		{"Forged / Foreign / Malformed", fmt.Sprintf("%d / %d / %d", t.Forged, t.Foreign, t.Malformed)},
		{"Reconnects", fmt.Sprint(t.Reconnects)},
		{"Peak Subscriber Buffer", outputBuffers(res.OutputBuffers)},
		{"Server Traffic", traffic(res.Server)},
		{"Total Errors", fmt.Sprint(t.Errors)},
	}
	if t.LateConfirmed == 0 {
		rows = slices.DeleteFunc(rows, func(r []string) bool { return r[0] == "Late-Confirmed" })
	}
	if res.Server.TrafficSeconds == 0 {
		rows = slices.DeleteFunc(rows, func(r []string) bool { return r[0] == "Server Traffic" })
	}
	return append(rows, streamsRows(res)...)
}

// streamsRows are what a run over streams adds to the overall figures:
// how the events travelled, what the streams kept and lost, and the
// memory Redis held for them; none for pub/sub.
func streamsRows(res *harness.Result) [][]string {
	st := res.Streams
	if st == nil {
		return nil
	}
	maxLen := fmt.Sprintf("MAXLEN ~%d", st.MaxLen)
	if st.MaxLen < 0 {
		maxLen = "no MAXLEN"
	}
	rows := [][]string{
		{"Transport", fmt.Sprintf("streams: %d, XADD %s, a consumer group per instance", len(st.Streams), maxLen)},
		{"Stream Entries", fmt.Sprintf("%d added, %d trimmed by MAXLEN, %d lost with the server, %d read again from pending lists",
			st.Added, st.Trimmed, st.Lost, st.Redelivered)},
	}
	if b, a := res.Server.CountersBefore, res.Server.CountersAfter; b != nil && a != nil {
		rows = append(rows, []string{"Redis Memory", fmt.Sprintf("%s before, %s at the end (%+.1f MiB), before the streams were deleted",
			units.Bytes(b.UsedMemoryBytes), units.Bytes(a.UsedMemoryBytes), float64(a.UsedMemoryBytes-b.UsedMemoryBytes)/(1<<20))})
	}
	removed := fmt.Sprintf("%d streams deleted, %d groups removed", st.Deleted, st.GroupsRemoved)
	if st.CleanupError != "" {
		removed += "; not all: " + st.CleanupError
	}
	return append(rows, []string{"Cleanup", removed})
}

// traffic shows what the server read and wrote, per second and in all:
// the payload size's effect, every fanned-out copy included.
func traffic(s harness.ServerInfo) string {
	per := func(n int64) string { return units.Bytes(int64(float64(n)/s.TrafficSeconds)) + "/s" }
	return fmt.Sprintf("in %s, out %s (%s and %s over %s)", per(s.NetInBytes), per(s.NetOutBytes),
		units.Bytes(s.NetInBytes), units.Bytes(s.NetOutBytes), seconds(s.TrafficSeconds))
}

// publishErrors shows the publishes Redis did not accept: known failures,
// and those whose outcome is unknown when there are any.
func publishErrors(c harness.Counts) string {
	if c.PublishUnknown == 0 {
		return fmt.Sprint(c.PublishErrors)
	}
	return fmt.Sprintf("%d (+%d with an unknown outcome)", c.PublishErrors, c.PublishUnknown)
}

// published is the published line: against the target in open loop, as
// the rate found in closed loop.
func published(res *harness.Result) string {
	t := res.Totals
	if res.Config.MaxRate {
		return fmt.Sprintf("%d (max lossless rate: %.1f/s)", t.Published, t.PublishRate)
	}
	return fmt.Sprintf("%d of %d target (%.1f/s)", t.Published, t.TargetEvents, t.PublishRate)
}

// serverLine names what was measured: mode, version and platform from
// INFO server, and the pub/sub output buffer limit that decides when Redis
// cuts off a slow subscriber.
func serverLine(s harness.ServerInfo) string {
	var b strings.Builder
	switch {
	case s.Embedded:
		b.WriteString("embedded in-process server (miniredis), not Redis")
	case s.Version != "":
		fmt.Fprintf(&b, "Redis %s", s.Version)
		var details []string
		for _, d := range []string{s.RedisMode, s.OS} {
			if d != "" {
				details = append(details, d)
			}
		}
		if s.ArchBits != "" {
			details = append(details, s.ArchBits+"-bit")
		}
		if len(details) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(details, ", "))
		}
	default:
		b.WriteString("version unknown")
	}
	if s.Mode != "" {
		fmt.Fprintf(&b, ", mode %s", s.Mode)
	}
	if s.PubsubLimit != "" && !s.Embedded {
		fmt.Fprintf(&b, "; pubsub output buffer limit: %s", s.PubsubLimit)
	}
	return b.String()
}

// outputBuffers describes the peak subscriber output buffer on the server:
// a sampled figure says how it was sampled, since a buffer that filled
// and was cut off between two samples is not in it, and the server's own
// count of such disconnections, where it keeps one, comes first.
func outputBuffers(ob harness.OutputBuffers) string {
	var cut string
	if d := ob.LimitDisconnections; d != nil {
		cut = fmt.Sprintf("; Redis cut off %s for the output buffer limit", units.Count(int(*d), "client"))
	}
	every := ""
	if ob.IntervalMs > 0 {
		every = fmt.Sprintf(", one every %d ms", ob.IntervalMs)
	}
	switch {
	case ob.Samples == 0:
		return "not sampled (CLIENT LIST unavailable)" + cut
	case ob.PeakInstance < 0:
		return fmt.Sprintf("none seen in %d samples%s (a buffer filled and cut off between two is not seen)%s", ob.Samples, every, cut)
	case ob.LimitBytes > 0:
		return fmt.Sprintf("%s (instance %d), %.0f%% of the hard limit; sampled%s%s", units.Bytes(ob.PeakBytes), ob.PeakInstance,
			float64(ob.PeakBytes)/float64(ob.LimitBytes)*100, every, cut)
	}
	return fmt.Sprintf("%s (instance %d); sampled%s%s", units.Bytes(ob.PeakBytes), ob.PeakInstance, every, cut)
}

// statsRows lists the INFO counters in a fixed order.
func statsRows(s harness.ServerInfo) [][]string {
	var rows [][]string
	for _, k := range []string{"connected_clients", "pubsub_channels", "total_commands_processed", "used_memory_human"} {
		b, a := s.StatsBefore[k], s.StatsAfter[k]
		if b == "" && a == "" {
			continue
		}
		rows = append(rows, []string{k, b, a})
	}
	return rows
}

// latencyRow prints dashes rather than zeros when nothing was delivered:
// a 0 ms latency would read as a measurement.
// latencyRows are the latency table's rows: the latency, and its parts:
// the send delay (the generator's), the transit (write to receipt: the
// network's, Redis's and the subscriber's) and, of that, the publish round
// trip the publisher saw. A run from before the transit or the round trip
// was measured has none, and shows none.
func latencyRows(res *harness.Result) [][]string {
	rows := [][]string{latencyRow("latency", res.Latency), latencyRow("send delay", res.SendDelay)}
	if res.Transit.Count > 0 {
		rows = append(rows, latencyRow("transit", res.Transit))
	}
	if res.PublishRTT.Count > 0 {
		rows = append(rows, latencyRow("publish round trip", res.PublishRTT))
	}
	return rows
}

// rttLegend explains the transit's and the round trip's rows, when there
// are.
func rttLegend(res *harness.Result) string {
	var s string
	if res.Transit.Count > 0 {
		s += "; transit: actual publish to receipt"
	}
	if res.PublishRTT.Count > 0 {
		s += "; publish round trip: the pipeline's write to its replies"
	}
	return s
}

func latencyRow(name string, l harness.LatencyStats) []string {
	// Dashes, not zeros: nothing was measured.
	if l.Count == 0 {
		return []string{name, "-", "-", "-", "-", "-", "-", "-", "-", "-", "0"}
	}
	return []string{
		name, ms(float64(l.Min)), ms(l.Mean), ms(float64(l.P50)), ms(float64(l.P90)), ms(float64(l.P95)),
		ms(float64(l.P99)), ms(float64(l.P999)), ms(float64(l.Max)), ms(l.StdDev), fmt.Sprint(l.Count),
	}
}

// tableData is one titled table of a report, rendered as ASCII by the
// table reporter and as Markdown by the Markdown reporter.
type tableData struct {
	title    string
	header   []string
	rows     [][]string
	textCols int    // left-aligned columns (ASCII tables)
	footer   string // a line under the table, if any
}

// timelineSections shows what the faults did, when: the script, each
// subscriber outage with its recovery, and the bursts of failed publishes.
// A run without faults or outages shows nothing.
func timelineSections(ew *errWriter, tl harness.Timeline) {
	for _, td := range timelineTables(tl) {
		ew.section(td.title)
		ew.table(td.header, td.rows, td.textCols)
		if td.footer != "" {
			ew.printf("%s\n", td.footer)
		}
	}
}

// timelineTables are the timeline's tables, empty ones left out.
func timelineTables(tl harness.Timeline) []tableData {
	var out []tableData
	if len(tl.Faults) > 0 {
		td := tableData{title: "Faults (seconds from the start of publishing)",
			header: []string{"At", "Until", "Fault", "Target", "Detail"}}
		for _, f := range tl.Faults {
			// A fault that failed to apply is said first in its row: a run
			// whose fault never happened proves nothing about recovery.
			detail := f.Detail
			if f.Error != "" {
				detail = "FAILED: " + f.Error + "; " + detail
			}
			td.rows = append(td.rows, []string{fmt.Sprintf("%.3f", f.AtSeconds), fmt.Sprintf("%.3f", f.EndSeconds),
				string(f.Action), target(f.Instance, f.Action), detail})
		}
		out = append(out, td)
	}
	if len(tl.Outages) > 0 {
		// One row per outage, with what it skipped; the footer is the loss
		// no outage explains, the number --loss-only-in-outages checks.
		td := tableData{title: "Subscriber Outages (lost, connected again, subscribed again; missed: sequence numbers skipped, of which failed publishes; recovered: sent during it, received after)",
			header: []string{"#", "Lost", "Reconnected", "Resubscribed", "Recovery", "Missed", "Recovered", "Failed pub", "Dup", "Cause"},
			footer: fmt.Sprintf("Missing messages no outage explains: %d", tl.LossOutsideOutages)}
		if tl.Recovered > 0 {
			td.footer += fmt.Sprintf(". Sent during an outage and received after it all the same: %d", tl.Recovered)
		}
		for _, o := range tl.Outages {
			td.rows = append(td.rows, []string{fmt.Sprint(o.Instance), fmt.Sprintf("%.3f", o.LostAtSeconds),
				optSeconds(o.ReconnectedAtSeconds), optSeconds(o.ResubscribedAtSeconds), recovery(o.RecoverySeconds),
				fmt.Sprint(o.Missed), fmt.Sprint(o.Recovered), fmt.Sprint(o.FailedPublishes), fmt.Sprint(o.Duplicates), o.Cause})
		}
		out = append(out, td)
	}
	if len(tl.PublishErrors) > 0 {
		// Bursts, not one row per failure: memory and lines grow with the
		// number of outages, not their length.
		td := tableData{title: "Failed Publishes (bursts)", header: []string{"#", "From", "To", "Failed"}}
		for _, b := range tl.PublishErrors {
			td.rows = append(td.rows, []string{fmt.Sprint(b.Instance), fmt.Sprintf("%.3f", b.FromSeconds),
				fmt.Sprintf("%.3f", b.ToSeconds), fmt.Sprint(b.Count)})
		}
		out = append(out, td)
	}
	return out
}

// target names what a fault hit.
func target(instance int, a harness.FaultAction) string {
	switch {
	case a == harness.FaultRestart || a == harness.FaultHang:
		return "server"
	case a.NeedsDeployment():
		return "busiest channel's master"
	case instance == harness.AllInstances:
		return "all"
	}
	return fmt.Sprint("instance ", instance)
}

// optSeconds is a time that may not have happened.
func optSeconds(s *float64) string {
	if s == nil {
		return "never"
	}
	return fmt.Sprintf("%.3f", *s)
}

// recovery is an outage's length, or that it did not end.
func recovery(s *float64) string {
	if s == nil {
		return "NOT RECOVERED"
	}
	return fmt.Sprintf("%.3f s", *s)
}

// instanceRows is one row per instance, in index order, the same columns
// for every run so that two reports line up. The IDs are the run's, so a
// row can be found in the server's CLIENT LIST by name.
func instanceRows(res *harness.Result) [][]string {
	rows := make([][]string, 0, len(res.Instances))
	for _, ir := range res.Instances {
		// An instance that received nothing (publish-only, or cut off) has
		// no latency: dashes, not a 0 ms that would look fast.
		avg, p99 := "-", "-"
		if ir.Latency.Count > 0 {
			avg, p99 = fmt.Sprintf("%.3f", ir.Latency.Mean/1000), fmt.Sprintf("%.3f", float64(ir.Latency.P99)/1000)
		}
		rows = append(rows, []string{
			fmt.Sprint(ir.Index), ir.ID + role(res, ir.Index), yesNo(ir.Connected),
			fmt.Sprint(ir.Published), fmt.Sprint(ir.Received), fmt.Sprint(ir.Expected), fmt.Sprint(ir.Delivered),
			rate(ir.DeliveryRate), fmt.Sprint(ir.SelfFiltered), fmt.Sprint(ir.SelfReceived),
			fmt.Sprint(ir.Duplicates), avg, p99, fmt.Sprint(ir.Errors),
		})
	}
	return rows
}

// matrixRows draws the delivery matrix; a cell that lost messages is
// marked with "!" so that it stands out without colour.
// Cells are delivered/sent, a duplicate or a loss marked with "!", so
// that a pair of instances that lost messages stands out in a grid of
// equal numbers.
func matrixRows(res *harness.Result) ([]string, [][]string) {
	n := len(res.Instances)
	header := make([]string, 0, n+1)
	header = append(header, "recv \\ pub")
	for j := range n {
		header = append(header, fmt.Sprint(j))
	}
	rows := make([][]string, 0, n)
	for _, ir := range res.Instances {
		row := make([]string, n+1)
		row[0] = fmt.Sprint(ir.Index)
		row[ir.Index+1] = "-"
		for j := range res.Instances {
			if j == ir.Index {
				continue
			}
			s := res.Matrix.Cell(ir.Index, j)
			cell := fmt.Sprintf("%d/%d", s.Delivered, s.Sent)
			if s.Missing > 0 || s.Duplicates > 0 {
				cell += " !"
			}
			row[s.Source+1] = cell
		}
		rows = append(rows, row)
	}
	return header, rows
}

// verdictRows lays the checks out as the seed printed them: name,
// threshold, measured, result; every format shows these rows, so PASS and
// FAIL read the same in all of them.
func verdictRows(v verdict.Verdict) [][]string {
	rows := make([][]string, 0, len(v.Checks))
	for _, c := range v.Checks {
		rows = append(rows, []string{c.Name, c.Threshold, c.Measured, statusText(c)})
	}
	return rows
}

// statusText is a check's result as every format prints it: a skipped
// check says why ("SKIP: its limit is off (-1)").
func statusText(c verdict.Check) string {
	if c.Status == verdict.Skip && c.Reason != "" {
		return string(c.Status) + ": " + c.Reason
	}
	return string(c.Status)
}

// role marks instances that only publish or only subscribe, when the run
// has such a topology; in the default one every instance does both.
func role(res *harness.Result, i int) string {
	c := res.Config
	switch {
	case c.Publishers == 0 || (c.Publishers == c.Instances && !c.DedicatedPublishers):
		return ""
	case i >= c.Publishers:
		return " (sub-only)"
	case c.DedicatedPublishers:
		return " (pub-only)"
	}
	return " (pub+sub)"
}

// rate prints a percentage, or n/a where nothing was expected.
func rate(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%%", *p)
}

// yesNo writes a disconnected instance in capitals: the table has no
// colour, and this is the cell that explains a failed connection check.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// seconds is the one duration format of the tables: two decimals, enough
// for runs of seconds and no false precision.
func seconds(s float64) string { return fmt.Sprintf("%.2fs", s) }

// errWriter keeps the first write or render error, so the renderer reads
// as a sequence of sections rather than a ladder of error checks.
type errWriter struct {
	w   io.Writer
	err error
}

// printf writes unless an earlier write failed: a renderer checks one
// error at the end instead of one per line, and stops writing after the
// first failure.
func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// section starts a titled block, as the seed's report did.
func (e *errWriter) section(title string) { e.printf("\n%s:\n", title) }

// table renders one ASCII table: plain +-| borders that read in any CI log,
// headers as written (the default would turn "p99" into "P 99"), the first
// textCols columns left-aligned as text and the rest right-aligned as
// numbers.
func (e *errWriter) table(header []string, rows [][]string, textCols int) {
	if e.err != nil {
		return
	}
	width := len(header)
	if width == 0 && len(rows) > 0 {
		width = len(rows[0])
	}
	align := make([]tw.Align, width)
	for i := range align {
		align[i] = tw.AlignRight
		if i < textCols {
			align[i] = tw.AlignLeft
		}
	}
	t := tablewriter.NewTable(e.w,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleASCII)})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
	)
	if len(header) > 0 {
		t.Header(header)
	}
	for _, r := range rows {
		if err := t.Append(r); err != nil {
			e.err = err
			return
		}
	}
	e.err = t.Render()
}

// ms formats microseconds as milliseconds with microsecond precision, the
// one latency unit of every report.
func ms(us float64) string { return fmt.Sprintf("%.3f ms", us/1000) }

// clusterTable is the per-node table of a run on a cluster: each node's
// role, slots and share of the run's channels, and what it did during the
// run (PUBLISH and SPUBLISH calls, messages over the cluster bus, CPU,
// network); nil on a standalone server.
func clusterTable(res *harness.Result) *tableData {
	if res.Server.Cluster == nil {
		return nil
	}
	return clusterNodesTable(res.Server.Cluster)
}

// deploymentTables are the tables of where the run ran: the cluster's
// nodes, and the worker processes of a run split over several.
func deploymentTables(res *harness.Result) []*tableData {
	var out []*tableData
	if td := clusterTable(res); td != nil {
		out = append(out, td)
	}
	if len(res.Workers) > 0 {
		td := &tableData{title: "Workers (processes of the run; clock offset to the Redis server ± half the round trip)",
			header:   []string{"Worker", "Host", "Instances", "Published", "Delivered", "CPU s", "Peak RSS", "Clock offset", "Lost"},
			textCols: 3}
		for _, w := range res.Workers {
			td.rows = append(td.rows, []string{w.ID, w.Host, fmt.Sprintf("%d-%d", w.Lo, w.Hi-1), fmt.Sprint(w.Published),
				fmt.Sprint(w.Delivered), fmt.Sprintf("%.2f", w.CPUSeconds), units.Bytes(w.RSSBytes),
				fmt.Sprintf("%+.3f ms ± %.3f", float64(w.ClockOffsetUs)/1000, float64(w.ClockUncertaintyUs)/1000), w.Lost})
		}
		out = append(out, td)
	}
	return out
}

// clusterNodesTable is clusterTable's body.
func clusterNodesTable(cl *harness.ClusterTopology) *tableData {
	td := &tableData{title: "Cluster Nodes (the run's subscriber/publisher connections at the end of publishing; during the run: commands, cluster-bus pub/sub messages sent/received, CPU, network)",
		header:   []string{"Node", "Role", "Slots", "Channels", "Conns sub/pub", "PUBLISH", "SPUBLISH", "Bus pub", "Bus shard pub", "CPU s", "Net in", "Net out"},
		textCols: 3}
	for _, n := range cl.Nodes {
		role := n.Role
		if n.Failed {
			role += " (failed)"
		}
		row := []string{n.Addr, role, strings.Join(n.Slots, ","), fmt.Sprint(n.Channels)}
		if s := n.Stats; s != nil {
			row = append(row, fmt.Sprintf("%d/%d", s.SubscriberConns, s.PublisherConns), fmt.Sprint(s.PublishCalls), fmt.Sprint(s.SPublishCalls),
				fmt.Sprintf("%d/%d", s.BusPublishSent, s.BusPublishReceived),
				fmt.Sprintf("%d/%d", s.BusPublishShardSent, s.BusPublishShardReceived),
				fmt.Sprintf("%.2f", s.CPUSeconds), units.Bytes(int64(s.NetInBytes)), units.Bytes(int64(s.NetOutBytes)))
		} else {
			row = append(row, "-", "-", "-", "-", "-", "-", "-", "-")
		}
		td.rows = append(td.rows, row)
	}
	return td
}

// repeatRows are a repeated run's headline numbers: median, range, spread
// and each repetition's value; nil rows for a run made once.
func repeatRows(res *harness.Result) ([]string, [][]string) {
	rr := verdict.RepeatRows(res)
	if rr == nil {
		return nil, nil
	}
	header := []string{"Metric", "Median", "Min", "Max", "Spread"}
	for k := range res.Repetitions {
		header = append(header, fmt.Sprintf("#%d", k+1))
	}
	var rows [][]string
	for _, r := range rr {
		rows = append(rows, append([]string{r.Metric, r.Median, r.Min, r.Max, r.Spread}, r.Values...))
	}
	return header, rows
}

// externalLine says which instances were external and on which client,
// as their adapters' hellos named it; "" for a run of the tool's own.
func externalLine(res *harness.Result) string {
	c := res.Config
	if c.InstanceCmd == "" {
		return ""
	}
	clients := map[string]bool{}
	var names []string
	for _, ir := range res.Instances {
		if a := ir.Adapter; a != nil && a.Client != "" {
			n := strings.TrimSpace(a.Client + " " + a.ClientVersion)
			if !clients[n] {
				clients[n] = true
				names = append(names, n)
			}
		}
	}
	on := "no adapter said hello"
	if len(names) > 0 {
		on = strings.Join(names, ", ")
	}
	return fmt.Sprintf("External instances: %d of %d run %q, on %s", c.ExternalInstances, c.Instances, c.InstanceCmd, on)
}
