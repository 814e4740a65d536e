// Package verdict judges a harness.Result: thresholds in, a list of checks
// with PASS, FAIL or SKIP and an overall status out, and the comparison of
// two results against regression limits. It renders nothing: the report
// package prints what it decides, in every format alike, and the scenarios
// and capacity packages use its checks rather than logic of their own.
package verdict

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/redisload/redisload/harness"
)

// Thresholds are the limits the verdict checks. Use DefaultThresholds: its
// values are the seed tool's checks (the default: lines below). Unlike
// harness.Config, a zero field here means a limit of zero, not "the
// default": "no error allowed" and "no duplicate allowed" are limits a CI
// gate needs, and a zero that meant "default" could not say them.
//
// One rule says "no check" for every limit: NoCheck (-1; for a duration,
// -1 ns). Validate refuses any other negative value, NaN and infinities,
// so that a typo cannot turn a gate off. A fault scenario expects errors
// and loss, so it switches those checks off and bounds the loss by its
// outages instead.
type Thresholds struct {
	// MinDeliveryRate is the lowest passing delivery rate, a percentage
	// from 0 to 100, or NoCheck.
	// default: 95
	MinDeliveryRate float64
	// MaxErrors is the most errors (publish and connection) that pass, or
	// NoCheck.
	// default: 0
	MaxErrors int64
	// MaxAvgLatency is the average latency the run must stay below
	// (positive), or NoCheck.
	// default: 100ms
	MaxAvgLatency time.Duration
	// MaxP99Latency is the p99 latency the run must stay below
	// (positive), or NoCheck.
	// default: NoCheck
	MaxP99Latency time.Duration
	// MaxDuplicates is the most duplicated deliveries that pass, or
	// NoCheck.
	// default: NoCheck
	MaxDuplicates int64
	// MaxRecovery is the longest a subscriber may take from losing its
	// connection to being subscribed again, for every outage (positive;
	// an outage that never recovers fails it), or NoCheck.
	// default: NoCheck
	MaxRecovery time.Duration
	// LossOnlyInOutages fails the run when messages are missing that no
	// subscriber outage explains (Timeline.LossOutsideOutages).
	// default: false
	LossOnlyInOutages bool
}

// DefaultThresholds returns the seed tool's verdict: delivery ≥ 95 %, no
// errors, average latency < 100 ms; no p99 or duplicate check.
func DefaultThresholds() Thresholds {
	return Thresholds{
		MinDeliveryRate: 95,
		MaxErrors:       0,
		MaxAvgLatency:   100 * time.Millisecond,
		MaxP99Latency:   NoCheck,
		MaxDuplicates:   NoCheck,
		MaxRecovery:     NoCheck,
	}
}

// NoCheck, as a limit, switches its check off.
const NoCheck = -1

// ThresholdError is a threshold that Validate refused. Field is the
// Thresholds field's name, so that a caller can name its own spelling of
// it (a flag, a file's key).
type ThresholdError struct {
	Field  string
	Value  string
	Reason string
}

// Error names the field, so that a library caller sees which limit it
// set wrong; the command line maps the field to its flag instead.
func (e *ThresholdError) Error() string {
	return fmt.Sprintf("report: %s %s: %s", e.Field, e.Value, e.Reason)
}

// Validate checks every limit: NoCheck, or a value in range; never NaN,
// infinite or another negative number.
func (th Thresholds) Validate() error {
	bad := func(field string, v any, reason string) error {
		return &ThresholdError{Field: field, Value: fmt.Sprint(v), Reason: reason}
	}
	switch d := th.MinDeliveryRate; {
	case d == NoCheck:
	case math.IsNaN(d) || d < 0 || d > 100:
		return bad("MinDeliveryRate", d, "must be a percentage from 0 to 100, or -1 for no check")
	}
	for _, c := range []struct {
		field string
		v     int64
	}{{"MaxErrors", th.MaxErrors}, {"MaxDuplicates", th.MaxDuplicates}} {
		if c.v < 0 && c.v != NoCheck {
			return bad(c.field, c.v, "must be 0 or more, or -1 for no check")
		}
	}
	for _, c := range []struct {
		field string
		v     time.Duration
	}{{"MaxAvgLatency", th.MaxAvgLatency}, {"MaxP99Latency", th.MaxP99Latency}, {"MaxRecovery", th.MaxRecovery}} {
		if c.v <= 0 && c.v != NoCheck {
			return bad(c.field, c.v, "must be a positive duration, or -1 for no check")
		}
	}
	return nil
}

// Status is the outcome of one check, or of the whole verdict.
type Status string

// The outcomes. A skipped check was not applied (its limit is off, or it
// had nothing to judge: no outage to recover from) and does not fail the
// verdict by itself; the "measured" check fails a verdict whose every
// measurement check was skipped, or whose run measured nothing.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Check is one verdict line.
type Check struct {
	// ID is a stable machine name, e.g. "delivery_rate".
	ID string `json:"id"`
	// Name is the human one, as the seed printed it.
	Name string `json:"name"`
	// Threshold and Measured are for display ("< 100.000 ms");
	// ThresholdValue and MeasuredValue are the same as numbers in Unit,
	// for machines. A value is absent when there is none (a check not
	// applied, nothing measured).
	Threshold      string   `json:"threshold"`
	Measured       string   `json:"measured"`
	ThresholdValue *float64 `json:"threshold_value,omitempty"`
	MeasuredValue  *float64 `json:"measured_value,omitempty"`
	Unit           string   `json:"unit,omitempty"`
	Status         Status   `json:"status"`
	// Reason says why a check was skipped; empty otherwise.
	Reason string `json:"reason,omitempty"`

	// basis is what the measured check judges, kept so that With can
	// judge it again over the checks added later (a baseline's).
	basis *measuredBasis
}

// skip marks the check skipped, for reason.
func (c Check) skip(reason string) Check {
	c.Status, c.Reason = Skip, reason
	return c
}

// limitOff is the reason of a check whose limit is NoCheck.
const limitOff = "limit off (-1)"

// values sets the check's numbers: the limit, the measurement, their unit.
func (c Check) values(threshold, measured float64, unit string) Check {
	c.ThresholdValue, c.MeasuredValue, c.Unit = &threshold, &measured, unit
	return c
}

// Verdict is the list of checks and the overall status: FAIL if any check
// failed, PASS otherwise.
type Verdict struct {
	Status Status  `json:"status"`
	Checks []Check `json:"checks"`
}

// Passed reports whether no check failed.
func (v Verdict) Passed() bool { return v.Status == Pass }

// Evaluate applies th to res.
func Evaluate(res *harness.Result, th Thresholds) Verdict {
	if len(res.Repetitions) > 0 {
		return evaluateRepeated(res.Repetitions, th)
	}
	t := res.Totals
	lat := res.Latency
	// The seed's five checks always, in its order; the optional ones
	// follow only when set, so a default run reads like the seed's.
	checks := []Check{
		Check{
			ID: "connected", Name: "All instances connected",
			Threshold: fmt.Sprintf("%d of %d", t.Instances, t.Instances),
			Measured:  fmt.Sprintf("%d of %d", t.Connected, t.Instances),
			Status:    status(t.Connected == t.Instances),
		}.values(float64(t.Instances), float64(t.Connected), "instances"),
		Check{
			ID: "self_received", Name: "No self-received events",
			Threshold: "= 0",
			Measured:  fmt.Sprint(t.SelfReceived),
			Status:    status(t.SelfReceived == 0),
		}.values(0, float64(t.SelfReceived), "events"),
		deliveryCheck(t, th),
		errorsCheck(t, th.MaxErrors, len(res.Timeline.Faults) > 0),
		latencyCheck("avg_latency", "Average latency", lat, lat.Mean, th.MaxAvgLatency),
	}
	if th.MaxP99Latency != NoCheck {
		checks = append(checks, latencyCheck("p99_latency", "p99 latency", lat, float64(lat.P99), th.MaxP99Latency))
	}
	if th.MaxDuplicates != NoCheck {
		checks = append(checks, Check{
			ID: "duplicates", Name: "Duplicates",
			Threshold: fmt.Sprintf("<= %d", th.MaxDuplicates),
			Measured:  fmt.Sprint(t.Duplicates),
			Status:    status(t.Duplicates <= uint64(th.MaxDuplicates)),
		}.values(float64(th.MaxDuplicates), float64(t.Duplicates), "messages"))
	}
	if th.MaxRecovery != NoCheck {
		checks = append(checks, recoveryCheck(res.Timeline, th.MaxRecovery))
	}
	if th.LossOnlyInOutages {
		checks = append(checks, Check{
			ID: "loss_in_outages", Name: "Loss only inside outages",
			Threshold: "0 missing outside",
			Measured:  fmt.Sprintf("%d missing outside", res.Timeline.LossOutsideOutages),
			Status:    status(res.Timeline.LossOutsideOutages == 0),
		}.values(0, float64(res.Timeline.LossOutsideOutages), "messages"))
	}
	if len(res.Timeline.Faults) > 0 {
		checks = append(checks, faultsCheck(res.Timeline.Faults))
	}
	if c := res.Server.Counts; c != nil {
		checks = append(checks, serverCountsCheck(c, exclusive(res.Server.Mode)))
	}
	checks = append(checks, Check{ID: measuredID, basis: &measuredBasis{
		published: t.Published, notAccepted: t.PublishErrors + t.PublishUnknown, expected: t.Expected, delivered: t.Delivered,
		instances: t.Instances}})
	return Verdict{}.With(checks...)
}

// exclusive reports whether a run had its server to itself: one that
// redisload started (provision's modes server, cluster and sentinel),
// which nobody else knows the address of.
func exclusive(mode string) bool {
	return mode == "server" || mode == "cluster" || mode == "sentinel"
}

// serverCountsCheck holds the run's accounting against the server's own
// counts, which do not depend on it: the server ran the publishing
// command at least as often as the run says Redis accepted it, and each
// channel had at least the run's confirmed subscribers. Foreign traffic
// only adds to the server's numbers, so either falling short is a fault
// in the accounting (or a server that lost its counts). On a server the
// run had to itself, more than it sent is not explained either.
func serverCountsCheck(c *harness.ServerCounts, exclusive bool) Check {
	ck := Check{ID: "server_counts", Name: "Server's counts agree", Threshold: ">= the run's"}
	if exclusive {
		ck.Threshold = "= the run's (server to itself)"
	}
	var bad []string
	if c.Skipped == "" {
		switch most := c.Accepted + c.Unknown + c.Foreign; {
		case c.Calls < c.Accepted:
			bad = append(bad, fmt.Sprintf("%d %s on the server, %d accepted", c.Calls, c.Command, c.Accepted))
		case exclusive && c.Calls > most:
			bad = append(bad, fmt.Sprintf("%d %s on the server, at most %d sent", c.Calls, c.Command, most))
		}
	}
	for _, s := range c.Subscribers {
		if s.Server < int64(s.Run) || exclusive && s.Server > int64(s.Run) {
			bad = append(bad, fmt.Sprintf("%s: %d subscribers on the server, %d confirmed", s.Channel, s.Server, s.Run))
		}
	}
	if len(bad) > 0 {
		if len(bad) > 3 {
			bad = append(bad[:3], fmt.Sprintf("%d more", len(bad)-3))
		}
		ck.Measured, ck.Status = strings.Join(bad, "; "), Fail
		return ck
	}
	var parts []string
	if c.Skipped == "" {
		parts = append(parts, fmt.Sprintf("%d %s for %d accepted", c.Calls, c.Command, c.Accepted))
	}
	if len(c.Subscribers) > 0 {
		parts = append(parts, fmt.Sprintf("%d subscribers on each of %d channels", c.Subscribers[0].Run, len(c.Subscribers)))
		if c.Skipped != "" {
			parts = append(parts, c.Command+" not compared")
		}
	}
	if len(parts) == 0 {
		ck.Measured = "n/a"
		return ck.skip(c.Skipped)
	}
	ck.Measured, ck.Status = strings.Join(parts, ", "), Pass
	return ck
}

// measuredID is the ID of the check that a run measured something.
const measuredID = "measured"

// measuredBasis is what the measured check needs of a run.
type measuredBasis struct {
	published, notAccepted, expected, delivered uint64
	instances                                   int
}

// measurementChecks are the checks that judge what a run measured; a
// verdict in which none was applied judged nothing. Regression checks
// (regression_*) are measurement checks too.
var measurementChecks = map[string]bool{
	"delivery_rate": true, "avg_latency": true, "p99_latency": true, "duplicates": true,
	"recovery": true, "loss_in_outages": true, "achieved": true,
}

// isMeasurement reports whether c judges a measurement.
func isMeasurement(c Check) bool {
	return measurementChecks[c.ID] || strings.HasPrefix(c.ID, "regression_")
}

// measuredCheck fails a run that measured nothing, whatever the other
// checks say: no event accepted by Redis, no delivery expected, nothing
// delivered, or no measurement check applied (every limit off). Each of
// these, with every limit that could catch it switched off (a fault
// scenario switches off errors and delivery), used to PASS: a user whose
// ACL refused every PUBLISH got exit 0.
func measuredCheck(b *measuredBasis, others []Check) Check {
	c := Check{ID: measuredID, Name: "Something measured", basis: b,
		Threshold: "> 0 published, expected, delivered; a check on"}
	judged := 0
	for _, o := range others {
		if isMeasurement(o) && o.Status != Skip {
			judged++
		}
	}
	switch {
	case b.published == 0 && b.notAccepted > 0:
		c.Measured = fmt.Sprintf("nothing published (%d not accepted)", b.notAccepted)
	case b.published == 0:
		c.Measured = "nothing published"
	case b.expected == 0 && b.instances < 2:
		c.Measured = "nothing expected (one instance)"
	case b.expected == 0:
		c.Measured = "nothing expected (no subscriber)"
	case b.delivered == 0:
		c.Measured = fmt.Sprintf("nothing delivered (%d expected)", b.expected)
	case judged == 0:
		c.Measured = "every delivery, latency and loss check off"
	default:
		c.Measured = fmt.Sprintf("%d published, %d/%d delivered, %s on", b.published, b.delivered, b.expected, plural(judged, "check"))
		c.Status = Pass
		return c
	}
	c.Status = Fail
	return c
}

// plural is n and its noun, as the verdict's texts count things.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// faultsCheck fails a run whose fault script did not happen as written: a
// failover that found no replica, a kill that killed nothing. Its
// recovery checks would otherwise pass on a run that never broke.
func faultsCheck(faults []harness.FaultRecord) Check {
	c := Check{ID: "faults_applied", Name: "Faults applied as scripted", Threshold: "all"}
	failed := 0
	for _, f := range faults {
		if f.Error != "" {
			failed++
		}
	}
	c.Measured = fmt.Sprintf("%d of %d", len(faults)-failed, len(faults))
	c.Status = status(failed == 0)
	return c.values(float64(len(faults)), float64(len(faults)-failed), "faults")
}

// errorsCheck counts every error, publish or connection: a load test that
// lost a connection has not measured what it meant to.
func errorsCheck(t harness.Totals, limit int64, faults bool) Check {
	c := Check{ID: "errors", Name: "No errors", Threshold: fmt.Sprintf("<= %d", limit), Measured: fmt.Sprint(t.Errors)}
	if limit == NoCheck {
		c.Threshold = "not checked"
		if faults {
			return c.skip(limitOff + "; faults cause errors")
		}
		return c.skip(limitOff)
	}
	c.Status = status(t.Errors <= uint64(limit))
	return c.values(float64(limit), float64(t.Errors), "errors")
}

// recoveryCheck passes when every outage recovered within limit; with no
// outage there is nothing to measure.
func recoveryCheck(tl harness.Timeline, limit time.Duration) Check {
	c := Check{ID: "recovery", Name: "Recovery after outages", Threshold: "<= " + limit.String() + " each"}
	switch {
	case len(tl.Outages) == 0:
		c.Measured = "n/a (no outage)"
		c = c.skip("no outage")
	case tl.Unrecovered > 0:
		c.Measured = fmt.Sprintf("%d of %d never recovered", tl.Unrecovered, len(tl.Outages))
		c.Status = Fail
	default:
		c.Measured = fmt.Sprintf("%.3f s max of %d", *tl.MaxRecoverySeconds, len(tl.Outages))
		c.Status = status(*tl.MaxRecoverySeconds <= limit.Seconds())
		c = c.values(limit.Seconds(), *tl.MaxRecoverySeconds, "s")
	}
	return c
}

// deliveryCheck compares delivered/expected with the floor; it is SKIP
// when nothing was expected (one instance), never a division by zero.
func deliveryCheck(t harness.Totals, th Thresholds) Check {
	c := Check{ID: "delivery_rate", Name: "Delivery rate", Threshold: fmt.Sprintf(">= %.2f%%", th.MinDeliveryRate)}
	if th.MinDeliveryRate == NoCheck {
		c.Threshold, c.Measured = "not checked", rateText(t.DeliveryRate)
		if th.LossOnlyInOutages {
			return c.skip(limitOff + "; outages judge loss")
		}
		return c.skip(limitOff)
	}
	if t.DeliveryRate == nil {
		c.Measured = "n/a (nothing expected)"
		return c.skip("nothing expected")
	}
	c.Measured = fmt.Sprintf("%.2f%%", *t.DeliveryRate)
	c.Status = status(*t.DeliveryRate >= th.MinDeliveryRate)
	return c.values(th.MinDeliveryRate, *t.DeliveryRate, "%")
}

// latencyCheck compares a value in microseconds against a limit that the
// value must stay strictly below, as the seed's "< 100ms".
func latencyCheck(id, name string, lat harness.LatencyStats, us float64, limit time.Duration) Check {
	c := Check{ID: id, Name: name, Threshold: "< " + ms(float64(limit.Microseconds()))}
	if limit == NoCheck {
		c.Threshold = "not checked"
		c.Measured = "n/a (no deliveries)"
		if lat.Count > 0 {
			c.Measured = ms(us)
		}
		return c.skip(limitOff)
	}
	if lat.Count == 0 {
		c.Measured = "n/a (no deliveries)"
		return c.skip("nothing delivered")
	}
	c.Measured = ms(us)
	c.Status = status(us < float64(limit.Microseconds()))
	return c.values(float64(limit.Microseconds())/1000, us/1000, "ms")
}

// rateText is a delivery rate as the verdict shows it.
func rateText(r *float64) string {
	if r == nil {
		return "n/a (nothing expected)"
	}
	return fmt.Sprintf("%.2f%%", *r)
}

// status turns a comparison into PASS or FAIL.
func status(ok bool) Status {
	if ok {
		return Pass
	}
	return Fail
}

// ms formats microseconds as milliseconds with microsecond precision, the
// one latency unit of every report.
func ms(us float64) string { return fmt.Sprintf("%.3f ms", us/1000) }

// medianChecks are the checks a repeated run is judged on at the median
// of its repetitions: latencies, which a busy neighbour moves by
// multiples between identical runs. Every other check is accounting, and
// must hold in every repetition: one lossy run is never averaged away.
var medianChecks = map[string]bool{"avg_latency": true, "p99_latency": true}

// evaluateRepeated judges each repetition and makes one check of each:
// the median repetition's for a latency, else the first failing one's
// (or the first's, when all passed), its measurement saying which.
func evaluateRepeated(reps []*harness.Result, th Thresholds) Verdict {
	var ids []string
	byID := map[string][]Check{}
	for _, r := range reps {
		for _, c := range Evaluate(r, th).Checks {
			if _, seen := byID[c.ID]; !seen {
				ids = append(ids, c.ID)
			}
			byID[c.ID] = append(byID[c.ID], c)
		}
	}
	n := len(reps)
	var out []Check
	for _, id := range ids {
		cs := byID[id]
		if medianChecks[id] && len(cs) == n && measuredAll(cs) {
			sorted := slices.Clone(cs)
			slices.SortStableFunc(sorted, func(a, b Check) int { return cmp.Compare(*a.MeasuredValue, *b.MeasuredValue) })
			c := sorted[(n-1)/2]
			c.Measured += fmt.Sprintf(" (median of %d)", n)
			out = append(out, c)
			continue
		}
		pick, which := cs[0], 0
		for k, c := range cs {
			if c.Status == Fail {
				pick, which = c, k
				break
			}
		}
		if pick.Status == Fail {
			pick.Measured += fmt.Sprintf(" (in repetition %d of %d)", which+1, n)
		} else {
			pick.Measured += fmt.Sprintf(" (each of %d)", n)
		}
		out = append(out, pick)
	}
	return Verdict{}.With(out...)
}

// measuredAll reports whether every check has its measurement as a number.
func measuredAll(cs []Check) bool {
	for _, c := range cs {
		if c.MeasuredValue == nil {
			return false
		}
	}
	return true
}
