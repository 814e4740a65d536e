package clients

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/provision"
	"github.com/redisload/redisload/scenarios"
	"github.com/redisload/redisload/verdict"
)

// Config is a matrix's setup; its zero value runs every client through
// every scenario.
type Config struct {
	// Clients are the rows.
	// default: All
	Clients []Client
	// Scenarios are the columns.
	// default: Scenarios
	Scenarios []Scenario
	// AdaptersDir is the repository's adapters/ directory.
	// default: "adapters"
	AdaptersDir string
	// Instances is each cell's number of instances, all of the client.
	// default: 3
	Instances int
	// Duration is each cell's publishing time; the fault comes a third in.
	// default: 6s
	Duration time.Duration
	// Rate is each cell's events per second over all instances.
	// default: 100
	Rate float64
	// Cell, when set, is told each cell as it is done (a progress line).
	Cell func(Cell)
}

// SilentAfter is how long before the others' last delivery a connected
// subscriber may have had its own: one quieter than that for longer is a
// silent subscription death.
const SilentAfter = time.Second

// Cell is one client through one scenario.
type Cell struct {
	Client        string `json:"client"`
	ClientVersion string `json:"client_version,omitempty"`
	Scenario      string `json:"scenario"`
	// Verdict is PASS or FAIL as the run's verdict, SKIP when the cell
	// does not apply (Skipped says why), ERROR when it could not run.
	Verdict verdict.Status `json:"verdict"`
	Skipped string         `json:"skipped,omitempty"`
	Error   string         `json:"error,omitempty"`
	// Failed are the run's failed checks, by name.
	Failed []string `json:"failed,omitempty"`

	Instances int `json:"instances"`
	Connected int `json:"connected"`
	// Expected and Delivered count deliveries over all instances.
	Expected     uint64   `json:"expected"`
	Delivered    uint64   `json:"delivered"`
	DeliveredPct *float64 `json:"delivered_pct"`
	// MissingInOutages were lost while a subscriber was known to be
	// down (its client said so); MissingOutside with no outage to explain
	// them: the loss a client hides.
	MissingInOutages uint64 `json:"missing_in_outages"`
	MissingOutside   uint64 `json:"missing_outside_outages"`
	Duplicates       uint64 `json:"duplicates"`
	SelfReceived     uint64 `json:"self_received"`
	Forged           uint64 `json:"forged"`
	PublishErrors    uint64 `json:"publish_errors"`
	PublishUnknown   uint64 `json:"publish_unknown"`
	// Outages are the subscriber outages the clients told of.
	Outages int `json:"outages"`
	// Resubscribed is "yes" when every outage ended in a resubscription,
	// "no" when one did not, "" when no client told of any.
	Resubscribed string `json:"resubscribed,omitempty"`
	// MaxRecoverySeconds is the longest outage, loss to resubscribed.
	MaxRecoverySeconds *float64 `json:"max_recovery_s,omitempty"`
	// SilentDeaths are subscribers that were connected at the end, by
	// their client's word, yet received nothing in the SilentAfter before
	// the run's last sign of traffic (see silentDeaths), with messages
	// missing.
	SilentDeaths int `json:"silent_deaths"`
	// FaultDetail says what the fault did.
	FaultDetail string `json:"fault,omitempty"`
}

// Matrix is a whole run of the matrix.
type Matrix struct {
	Date            time.Time `json:"date"`
	RedisVersion    string    `json:"redis_version,omitempty"`
	Instances       int       `json:"instances"`
	DurationSeconds float64   `json:"duration_s"`
	Rate            float64   `json:"rate"`
	Scenarios       []string  `json:"scenarios"`
	Cells           []Cell    `json:"cells"`
}

// Failed reports whether a cell failed or could not run.
func (m *Matrix) Failed() bool {
	for _, c := range m.Cells {
		if c.Verdict == verdict.Fail || c.Verdict == "ERROR" {
			return true
		}
	}
	return false
}

// ErrConfig wraps an invalid Config.
var ErrConfig = errors.New("clients: invalid config")

func (c Config) withDefaults() (Config, error) {
	if c.Clients == nil {
		c.Clients = All
	}
	if c.Scenarios == nil {
		c.Scenarios = Scenarios
	}
	if c.AdaptersDir == "" {
		c.AdaptersDir = "adapters"
	}
	if c.Instances == 0 {
		c.Instances = 3
	}
	if c.Duration == 0 {
		c.Duration = 6 * time.Second
	}
	if c.Rate == 0 {
		c.Rate = 100
	}
	switch {
	case c.Instances < 2:
		return c, fmt.Errorf("%w: Instances %d: at least 2 (one instance receives nothing)", ErrConfig, c.Instances)
	case c.Duration < 3*time.Second:
		return c, fmt.Errorf("%w: Duration %v: at least 3s (the fault comes a third in, recovery after)", ErrConfig, c.Duration)
	case !(c.Rate > 0):
		return c, fmt.Errorf("%w: Rate %v: want > 0", ErrConfig, c.Rate)
	}
	return c, nil
}

// Run runs every cell, one at a time (they would skew each other), each
// against a deployment of its own. Cells that cannot run say why; Run
// fails only on a bad Config or when ctx ends.
func Run(ctx context.Context, cfg Config) (*Matrix, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "redisload-clients-")
	if err != nil {
		return nil, fmt.Errorf("clients: %w", err)
	}
	defer os.RemoveAll(tmp)
	m := &Matrix{Date: time.Now().UTC(), Instances: cfg.Instances, DurationSeconds: cfg.Duration.Seconds(), Rate: cfg.Rate}
	for _, s := range cfg.Scenarios {
		m.Scenarios = append(m.Scenarios, s.Name)
	}
	for _, cl := range cfg.Clients {
		argv, why := cl.Command(ctx, cfg.AdaptersDir, tmp)
		for _, sc := range cfg.Scenarios {
			if err := ctx.Err(); err != nil {
				return m, err
			}
			cell := Cell{Client: cl.Name, Scenario: sc.Name, Instances: cfg.Instances}
			switch {
			case why != nil:
				cell.Verdict, cell.Error = "ERROR", "not available: "+why.Error()
			case sc.PubSub == bridge.PubSubSharded && cl.NoSharded != "":
				cell.Verdict, cell.Skipped = verdict.Skip, cl.NoSharded
			default:
				cell = runCell(ctx, cfg, sc, cell, argv, m)
			}
			if ctx.Err() != nil {
				return m, ctx.Err()
			}
			m.Cells = append(m.Cells, cell)
			if cfg.Cell != nil {
				cfg.Cell(cell)
			}
		}
	}
	return m, nil
}

// runCell runs one client through one scenario.
func runCell(ctx context.Context, cfg Config, sc Scenario, cell Cell, argv []string, m *Matrix) Cell {
	po := provision.Options{Mode: sc.Mode}
	inst, err := provision.Start(ctx, po)
	if err != nil {
		cell.Verdict, cell.Error = "ERROR", err.Error()
		return cell
	}
	defer inst.Close()
	hc := harness.Config{Instances: cfg.Instances, Duration: cfg.Duration, Rate: cfg.Rate, DrainTimeout: 2 * time.Second,
		InstanceCmd: argv, Redis: bridge.Options{PubSub: sc.PubSub, KeyPrefix: "clients:"},
		// The series shows when publishes were last accepted, which
		// silentDeaths measures quiet subscribers against.
		Series: true}
	scenarios.UseDeployment(&hc, inst)
	if sc.Mode == provision.Cluster {
		// Channels on every master, so that the fault's shard has some.
		hc.Redis.ChannelsPerType, hc.Placement = 16, harness.PlacementSpread
	}
	th := verdict.DefaultThresholds()
	if sc.Fault != "" {
		hc.Faults = []harness.Fault{{At: cfg.Duration / 3, Action: sc.Fault}}
		th = *scenarios.FaultThresholds(sc.MaxRecovery)
		// A fault cell judges loss and recovery, which tell clients apart.
		// Its latency is the fault's: a client that queues its publishes
		// through a restart (go-redis retries) delivers them seconds late,
		// and loses nothing.
		th.MaxAvgLatency = verdict.NoCheck
	}
	hc = hc.WithDefaults()
	res, err := harness.Run(ctx, hc)
	if err != nil {
		cell.Verdict, cell.Error = "ERROR", err.Error()
		return cell
	}
	if m.RedisVersion == "" {
		m.RedisVersion = res.Server.Version
	}
	return summarize(cell, res, verdict.Evaluate(res, th))
}

// summarize fills a cell from its run and verdict.
func summarize(cell Cell, res *harness.Result, v verdict.Verdict) Cell {
	cell.Verdict = v.Status
	for _, c := range v.Checks {
		if c.Status == verdict.Fail {
			cell.Failed = append(cell.Failed, c.Name)
		}
	}
	t, tl := res.Totals, res.Timeline
	cell.Connected, cell.Expected, cell.Delivered, cell.DeliveredPct = t.Connected, t.Expected, t.Delivered, t.DeliveryRate
	cell.Duplicates, cell.SelfReceived, cell.Forged = t.Duplicates, t.SelfReceived, t.Forged
	cell.PublishErrors, cell.PublishUnknown = t.PublishErrors, t.PublishUnknown
	cell.MissingOutside = tl.LossOutsideOutages
	for _, o := range tl.Outages {
		cell.MissingInOutages += o.Missed - min(o.FailedPublishes, o.Missed)
	}
	cell.Outages, cell.MaxRecoverySeconds = len(tl.Outages), tl.MaxRecoverySeconds
	switch {
	case len(tl.Outages) == 0:
	case tl.Unrecovered > 0:
		cell.Resubscribed = "no"
	default:
		cell.Resubscribed = "yes"
	}
	if len(tl.Faults) > 0 {
		cell.FaultDetail = tl.Faults[0].Detail
		if e := tl.Faults[0].Error; e != "" {
			cell.FaultDetail = "failed: " + e
		}
	}
	cell.SilentDeaths = silentDeaths(res)
	for _, ir := range res.Instances {
		if ir.Adapter != nil && ir.Adapter.ClientVersion != "" {
			cell.ClientVersion = ir.Adapter.ClientVersion
		}
	}
	if cell.Client == Reference {
		cell.ClientVersion = "bridge"
	}
	return cell
}

// silentDeaths counts the subscribers that claim to be fine but stopped
// receiving: connected at the end, messages missing, and nothing received
// in the SilentAfter before the run's last sign of traffic. That sign is
// the others' last delivery or the start of the last second in which
// publishes were accepted, whichever is later: when every instance runs
// the same client, all of them can die together, and then no other
// instance's delivery shows the feed still flowing, but the publishes do.
func silentDeaths(res *harness.Result) int {
	var last float64
	for _, ir := range res.Instances {
		if ir.LastDeliverySeconds != nil {
			last = max(last, *ir.LastDeliverySeconds)
		}
	}
	for i := len(res.Series) - 1; i >= 0; i-- {
		prev, start := uint64(0), 0.0
		if i > 0 {
			prev, start = res.Series[i-1].Published, res.Series[i-1].Seconds
		}
		if res.Series[i].Published > prev {
			last = max(last, start)
			break
		}
	}
	n := 0
	for _, ir := range res.Instances {
		quiet := ir.LastDeliverySeconds == nil || last-*ir.LastDeliverySeconds > SilentAfter.Seconds()
		if ir.Connected && ir.Expected > 0 && ir.Missing > 0 && quiet {
			n++
		}
	}
	return n
}

// Names lists names for a one-line message.
func Names[T any](items []T, name func(T) string) string {
	var out []string
	for _, it := range items {
		out = append(out, name(it))
	}
	return strings.Join(out, ", ")
}

// Regression is a cell that passed in the baseline and does not now.
type Regression struct {
	Client   string `json:"client"`
	Scenario string `json:"scenario"`
	// Was and Now are the cell's verdicts.
	Was string `json:"was"`
	Now string `json:"now"`
}

// Regressions are the cells of m that passed in base and do not now; none
// without a base. A cell new in m, or gone from it, is no regression.
func Regressions(base, m *Matrix) []Regression {
	if base == nil {
		return nil
	}
	was := map[string]verdict.Status{}
	for _, c := range base.Cells {
		was[c.Client+"/"+c.Scenario] = c.Verdict
	}
	var out []Regression
	for _, c := range m.Cells {
		if w, ok := was[c.Client+"/"+c.Scenario]; ok && w == verdict.Pass && c.Verdict != verdict.Pass && c.Verdict != verdict.Skip {
			out = append(out, Regression{c.Client, c.Scenario, string(w), string(c.Verdict)})
		}
	}
	return out
}
