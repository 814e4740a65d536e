// Package capacity finds how much load a Redis deployment sustains: it
// steps the load up, a short measured run per step, and stops at the
// knee, the first step that breaks a limit. It replaces the seed's
// hand-written capacity table with a measured one.
package capacity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/rusage"
	"github.com/redisload/redisload/verdict"
)

// Vary names what the steps increase.
type Vary string

// What can be varied.
const (
	VaryRate      Vary = "rate"      // events/s, at a fixed instance count
	VaryInstances Vary = "instances" // instances, at a fixed rate
)

// Config is a capacity search. Its zero value steps the rate of 5
// instances up from 1000 events/s, doubling, to 1 M events/s, 5 s a step.
type Config struct {
	// Vary is what the steps increase.
	// default: rate
	Vary Vary
	// Start is the first step's rate (events/s) or instance count.
	// default: 1000 events/s, or 2 instances
	Start float64
	// Factor multiplies the load from one step to the next, unless Step
	// is set.
	// default: 2
	Factor float64
	// Step, when positive, is added instead of multiplying by Factor.
	// default: 0
	Step float64
	// Max is the last load tried.
	// default: 1 000 000 events/s, or 1000 instances
	Max float64
	// StepDuration is each step's publishing time.
	// default: 5s
	StepDuration time.Duration
	// MinDelivery is the lowest passing delivery rate, in percent; -1
	// means no check.
	// default: 99.9
	MinDelivery float64
	// MaxP99 is the p99 latency a step must stay under; -1 means no check.
	// default: 100ms
	MaxP99 time.Duration
	// Resolution is how close, in percent of the load, the search pins
	// the knee: once a step fails, it bisects between the last passing
	// load and the first failing one until they are within Resolution of
	// each other (for instances, or one apart); -1 means no bisection,
	// the steps alone.
	// default: 5
	Resolution float64
	// MinAchievedPct is the least share of the target rate a step must
	// publish, in percent like every rate limit: below it the load
	// generator, or Redis, fell behind; -1 means no check.
	// default: 95
	MinAchievedPct float64
	// Run is every step's base configuration: server, instance count (when
	// the rate varies), rate (when instances vary), event types.
	Run harness.Config
	// Runner runs each step: harness.Run in this process, or a
	// coordinator of worker processes (workers.Coordinate), whose load
	// generators then are not this process's CPU.
	// default: harness.Run
	Runner func(ctx context.Context, cfg harness.Config) (*harness.Result, error)
}

// Defaults of Config's zero fields.
const (
	DefaultStartRate      = 1000
	DefaultStartInstances = 2
	DefaultFactor         = 2
	DefaultMaxRate        = 1_000_000
	DefaultMaxInstances   = 1000
	DefaultStepDuration   = 5 * time.Second
	DefaultMinDelivery    = 99.9
	DefaultMaxP99         = 100 * time.Millisecond
	DefaultMinAchievedPct = 95
	DefaultResolution     = 5
)

// WithDefaults fills c's zero fields.
func (c Config) WithDefaults() Config {
	if c.Vary == "" {
		c.Vary = VaryRate
	}
	if c.Start == 0 {
		c.Start = map[Vary]float64{VaryRate: DefaultStartRate, VaryInstances: DefaultStartInstances}[c.Vary]
	}
	if c.Factor == 0 {
		c.Factor = DefaultFactor
	}
	if c.Max == 0 {
		c.Max = map[Vary]float64{VaryRate: DefaultMaxRate, VaryInstances: DefaultMaxInstances}[c.Vary]
	}
	if c.StepDuration == 0 {
		c.StepDuration = DefaultStepDuration
	}
	if c.MinDelivery == 0 {
		c.MinDelivery = DefaultMinDelivery
	}
	if c.MaxP99 == 0 {
		c.MaxP99 = DefaultMaxP99
	}
	if c.MinAchievedPct == 0 {
		c.MinAchievedPct = DefaultMinAchievedPct
	}
	if c.Resolution == 0 {
		c.Resolution = DefaultResolution
	}
	if c.Vary == VaryRate && c.Run.Instances == 0 {
		c.Run.Instances = 5
	}
	if c.Vary == VaryInstances && c.Run.Rate == 0 {
		c.Run.Rate = 100
	}
	c.Run.Duration = c.StepDuration
	return c
}

// noCheck, as a limit, switches its check off (verdict.NoCheck's value).
const noCheck = -1

// Validate checks a defaulted Config; errors name the flag.
func (c Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case c.Vary != VaryRate && c.Vary != VaryInstances:
		return bad("Vary", "must be rate or instances, got %q", c.Vary)
	case !(c.Start > 0) || math.IsInf(c.Start, 0):
		return bad("Start", "must be positive, got %v", c.Start)
	case c.Step < 0 || (c.Step == 0 && !(c.Factor > 1)) || math.IsInf(c.Factor, 0):
		return bad("Factor", "must be above 1 (or give a positive Step)")
	case c.Vary == VaryInstances && c.Start < 2:
		return bad("Start", "must be at least 2 instances, got %v: with one, no delivery can be expected", c.Start)
	case c.Max < c.Start:
		return bad("Max", "(%v) must be at least Start (%v)", c.Max, c.Start)
	case c.Vary == VaryInstances && c.Max > harness.MaxInstances:
		return bad("Max", "must be at most %d instances, got %v", harness.MaxInstances, c.Max)
	case c.MinDelivery != noCheck && !(c.MinDelivery >= 0 && c.MinDelivery <= 100): // NaN fails too
		return bad("MinDelivery", "must be a percentage from 0 to 100, or -1 for no check, got %v", c.MinDelivery)
	case c.MaxP99 < 0 && c.MaxP99 != noCheck:
		return bad("MaxP99", "must be positive, or -1 for no check, got %v", c.MaxP99)
	case c.MinAchievedPct != noCheck && !(c.MinAchievedPct >= 0 && c.MinAchievedPct <= 100):
		return bad("MinAchievedPct", "must be a percentage from 0 to 100, or -1 for no check, got %v", c.MinAchievedPct)
	case c.Resolution != noCheck && !(c.Resolution >= 0.1 && c.Resolution < 100):
		return bad("Resolution", "must be a percentage from 0.1 to 100 (exclusive), or -1 for no bisection, got %v", c.Resolution)
	}
	if len(c.steps()) > maxSteps {
		return bad("Max", "%v from Start %v makes more than %d steps: raise Factor or Step", c.Max, c.Start, maxSteps)
	}
	first := c.Run
	c.apply(&first, c.Start)
	return first.WithDefaults().Validate()
}

// ConfigError is a Config field Validate refused, by the field's name: the
// command line maps it to its flag.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "capacity: " + e.Field + " " + e.Reason }

// maxSteps bounds a search: each step is a run of its own. maxBisect
// bounds the bisection after it (from a factor of 1000 to 0.1 % takes 20).
const (
	maxSteps  = 50
	maxBisect = 24
)

// steps lists the loads to try, from Start up to Max.
func (c Config) steps() []float64 {
	var out []float64
	for v := c.Start; v <= c.Max*(1+1e-9) && len(out) <= maxSteps; {
		out = append(out, v)
		if c.Step > 0 {
			v += c.Step
		} else {
			v *= c.Factor
		}
		if c.Vary == VaryInstances {
			v = math.Round(v)
		}
	}
	return out
}

// apply sets one step's load into a run configuration.
func (c Config) apply(run *harness.Config, load float64) {
	if c.Vary == VaryRate {
		run.Rate = load
	} else {
		run.Instances = int(math.Round(load))
	}
}

// Step is one measured step.
type Step struct {
	Instances       int     `json:"instances"`
	TargetRate      float64 `json:"target_rate"`
	AchievedRate    float64 `json:"achieved_rate"`
	DeliveriesPerS  float64 `json:"deliveries_per_s"`
	DeliveryPct     float64 `json:"delivery_pct"`
	P50us           int64   `json:"p50_us"`
	P99us           int64   `json:"p99_us"`
	RedisCPUPct     float64 `json:"redis_cpu_pct"`  // of one core, from INFO cpu; a cluster's nodes summed
	RedisMemoryPeak string  `json:"redis_mem_peak"` // used_memory_peak_human
	ClientCPUPct    float64 `json:"client_cpu_pct"` // of one core, this process
	Passed          bool    `json:"passed"`
	// Failed says which limit the step broke.
	Failed string `json:"failed,omitempty"`
	// Bisect is true for a step of the bisection, after the stepping.
	Bisect bool `json:"bisect,omitempty"`
	// ClientCores is how many cores the load generator had: this host's,
	// or the worker processes' hosts' together.
	ClientCores int `json:"client_cores"`
	// GeneratorBound says the load generator was the limit: it used at
	// least 90 % of what it had (its cores, less Redis's share where
	// Redis runs beside it), or, with Redis beside it, the two used 80 %
	// of the host's cores and redisload the larger share. A failure of
	// this step may be redisload's, not the server's.
	GeneratorBound bool `json:"generator_bound,omitempty"`
}

// generatorBoundPct is the share of its cores above which the load
// generator is taken to be the limit; sharedHostPct the share of a host's
// cores above which a host running both Redis and redisload is (the
// kernel's network work and other processes take the rest: on a 2-core
// host the latency knee came at 169 % of 200).
const (
	generatorBoundPct = 90
	sharedHostPct     = 80
)

// Result is a capacity search: the steps run, in the order they ran, and
// the two that bound the knee.
type Result struct {
	Vary  Vary   `json:"vary"`
	Steps []Step `json:"steps"`
	// Sustainable is the index of the passing step of highest load below
	// the knee; -1 when even the first step failed.
	Sustainable int `json:"sustainable"`
	// Knee is the index of the failing step of lowest load above
	// Sustainable; -1 when no step failed.
	Knee int `json:"knee"`
	// Resolution echoes the bisection's (percent; -1: none).
	Resolution float64 `json:"resolution_pct"`
	// Limits echo what a step had to meet.
	MinDelivery    float64 `json:"min_delivery_pct"`
	MaxP99us       int64   `json:"max_p99_us"`
	MinAchievedPct float64 `json:"min_achieved_pct"`
	Redis          string  `json:"redis"`
	Server         string  `json:"server"`
}

// Run steps the load up until a step fails, Max is passed, or ctx ends,
// then bisects between the last pass and the first fail to Resolution.
// progress, when set, is told each step as it finishes.
func Run(ctx context.Context, cfg Config, progress func(Step)) (*Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	res := &Result{Vary: cfg.Vary, Sustainable: -1, Knee: -1, MinDelivery: cfg.MinDelivery,
		MaxP99us: cfg.MaxP99.Microseconds(), MinAchievedPct: cfg.MinAchievedPct, Resolution: cfg.Resolution}
	step := func(load float64, bisect bool) (bool, error) {
		run := cfg.Run
		cfg.apply(&run, load)
		cpu, _ := rusage.Self()
		runner := cfg.Runner
		if runner == nil {
			runner = harness.Run
		}
		r, err := runner(ctx, run)
		var s Step
		refused := errors.Is(err, bridge.ErrMaxClients)
		// A server that took this search's plain connections a step ago
		// and now closes new ones at once is not speaking TLS: it is at
		// its maxclients, its refusal lost with the reset.
		closed := errors.Is(err, bridge.ErrTLSMismatch) && len(res.Steps) > 0
		switch {
		case (refused || closed) && ctx.Err() == nil:
			// The server's limit on clients is a knee too, the one a
			// search over instances meets first: a failed step, not a
			// failed search.
			why := "the server refused connections: max number of clients reached"
			if !refused {
				why = "the server closed new connections at once (at its maxclients, most likely)"
			}
			s = Step{Instances: run.Instances, TargetRate: run.Rate, ClientCores: runtime.NumCPU(), Failed: why}
		case err != nil:
			return false, err
		case r.Interrupted:
			return false, ctx.Err()
		default:
			after, _ := rusage.Self()
			s = measure(cfg, r, after-cpu)
			res.Redis, res.Server = r.Redis, r.Server.Version
		}
		s.Bisect = bisect
		res.Steps = append(res.Steps, s)
		if progress != nil {
			progress(s)
		}
		if s.Passed {
			res.Sustainable = len(res.Steps) - 1
		} else {
			res.Knee = len(res.Steps) - 1
		}
		return s.Passed, nil
	}
	var pass, fail float64 // the highest passing and the lowest failing load
	for _, load := range cfg.steps() {
		ok, err := step(load, false)
		if err != nil {
			return res, err
		}
		if !ok {
			fail = load
			break // the knee
		}
		pass = load
	}
	if cfg.Resolution == noCheck || pass == 0 || fail == 0 {
		return res, nil // nothing failed, or nothing passed: no interval
	}
	// The knee lies anywhere between pass and fail (a factor of 2 apart by
	// default): halve the interval until it is within the resolution.
	for range maxBisect {
		mid := (pass + fail) / 2
		if cfg.Vary == VaryInstances {
			mid = math.Round(mid)
			if mid <= pass || mid >= fail {
				break // one instance apart: as fine as instances go
			}
		}
		if (fail-pass)/pass*100 <= cfg.Resolution {
			break
		}
		ok, err := step(mid, true)
		if err != nil {
			return res, err
		}
		if ok {
			pass = mid
		} else {
			fail = mid
		}
	}
	return res, nil
}

// measure reads one step's row out of its run and judges it.
func measure(cfg Config, r *harness.Result, clientCPU time.Duration) Step {
	t := r.Totals
	s := Step{Instances: r.Config.Instances, TargetRate: r.Config.Rate, AchievedRate: t.PublishRate,
		DeliveriesPerS: t.DeliveryThroughput, DeliveryPct: 100, P50us: r.Latency.P50, P99us: r.Latency.P99,
		RedisMemoryPeak: r.Server.StatsAfter["used_memory_peak_human"]}
	if t.DeliveryRate != nil {
		s.DeliveryPct = *t.DeliveryRate
	}
	wall := r.ConnectSeconds + r.ElapsedSeconds + r.DrainSeconds
	s.ClientCores = runtime.NumCPU()
	local := len(r.Workers) == 0 && isLoopback(r.Redis)
	if len(r.Workers) > 0 {
		// The load came from the workers: their CPU is the generator's,
		// and their hosts' cores what it had.
		clientCPU, s.ClientCores = 0, 0
		hosts := map[string]bool{}
		for _, w := range r.Workers {
			clientCPU += time.Duration(w.CPUSeconds * float64(time.Second))
			if !hosts[w.Host] {
				hosts[w.Host], s.ClientCores = true, s.ClientCores+max(w.CPUs, 1)
			}
		}
	}
	if wall > 0 {
		s.ClientCPUPct = clientCPU.Seconds() / wall * 100
		s.RedisCPUPct = (cpuSeconds(r.Server.StatsAfter) - cpuSeconds(r.Server.StatsBefore)) / wall * 100
		if cl := r.Server.Cluster; cl != nil {
			// A cluster's work is spread over its nodes: the one the run
			// talks to is a fraction of it.
			var sum float64
			for _, n := range cl.Nodes {
				if n.Stats != nil {
					sum += n.Stats.CPUSeconds
				}
			}
			s.RedisCPUPct = sum / wall * 100
		}
		// What the generator could have used: its cores, less what a Redis
		// on the same host took from them.
		avail := float64(s.ClientCores) * 100
		if local {
			avail -= s.RedisCPUPct
		}
		shared := local && s.ClientCPUPct+s.RedisCPUPct >= sharedHostPct/100.0*float64(s.ClientCores)*100 &&
			s.ClientCPUPct > s.RedisCPUPct
		s.GeneratorBound = s.ClientCPUPct >= generatorBoundPct/100.0*avail || shared
	}
	// The step is judged by the run's own verdict, so that "passes" means
	// here what it means for a run: every instance connected at the end, no
	// self-received event, no error (a publish not accepted, a broken
	// connection: delivery would be measured over part of the load only),
	// and the step's delivery and p99 limits; plus the achieved rate.
	v := verdict.Evaluate(r, verdict.Thresholds{
		MinDeliveryRate: cfg.MinDelivery, MaxErrors: 0, MaxAvgLatency: verdict.NoCheck,
		MaxP99Latency: cfg.MaxP99, MaxDuplicates: verdict.NoCheck, MaxRecovery: verdict.NoCheck,
	})
	achieved := verdict.Check{ID: "achieved", Name: "Achieved rate", Status: verdict.Skip, Reason: "limit off (-1)",
		Threshold: "not checked", Measured: fmt.Sprintf("%.0f/s of %.0f/s", s.AchievedRate, s.TargetRate)}
	if cfg.MinAchievedPct != noCheck {
		achieved.Threshold = fmt.Sprintf(">= %.0f%% of target", cfg.MinAchievedPct)
		achieved.Status, achieved.Reason = verdict.Pass, ""
		if s.AchievedRate < cfg.MinAchievedPct/100*s.TargetRate {
			achieved.Status = verdict.Fail
		}
	}
	// The run's verdict has its "measured" check: a step that measured
	// nothing (no delivery expected, nothing delivered) fails by it.
	v = v.With(achieved)
	// Every reason, not the first: a step can break several limits.
	var reasons []string
	for _, c := range v.Checks {
		if c.Status == verdict.Fail {
			reasons = append(reasons, fmt.Sprintf("%s %s (limit %s)", strings.ToLower(c.Name), c.Measured, c.Threshold))
		}
	}
	s.Passed = v.Passed()
	s.Failed = strings.Join(reasons, "; ")
	return s
}

// isLoopback reports whether the server's address (a URL or host:port,
// as Result.Redis has it) is on this host's loopback.
func isLoopback(addr string) bool {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cpuSeconds sums INFO's used_cpu_sys and used_cpu_user.
func cpuSeconds(stats map[string]string) float64 {
	sys, _ := strconv.ParseFloat(stats["used_cpu_sys"], 64)
	user, _ := strconv.ParseFloat(stats["used_cpu_user"], 64)
	return sys + user
}
