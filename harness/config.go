package harness

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redisload/redisload/bridge"
)

// Config describes one load run. The zero value is the seed's standard
// scenario: 3 instances, 20 s, 10 events/s, ticker and trade events, on
// 127.0.0.1:6379.
type Config struct {
	// Instances is the number of bridges, each with a publisher and a
	// subscriber connection.
	// default: 3
	Instances int
	// Duration is how long events are published.
	// default: 20s
	Duration time.Duration
	// Rate is the target number of events per second, over all instances;
	// each event is published by an instance chosen at random. A run
	// publishes floor(Rate × Duration) events, the first at once.
	// default: 10
	Rate float64
	// Warmup publishes at Rate for this long before the measured Duration,
	// as wrk2's calibration and ghz's skipped first requests do:
	// connections, buffers and the server warm up, and those events stay
	// out of the delivery, latency and send-delay figures, reported apart
	// (Result.Warmup). Receivers tell the phases apart by sequence number
	// (measured events start at MeasuredSeqBase), never by a clock, so a
	// run over several hosts splits them exactly. Not with Stages (which
	// ramp already), MaxRate (no schedule) or Faults (whose times are from
	// the start of publishing).
	// default: 0, none
	Warmup time.Duration
	// Stages, when set, shape the load instead of a constant Rate: each
	// ramps the rate linearly from where the previous one ended (the first
	// from 0) to its Rate over its Duration, as k6's stages do. Duration is
	// then their sum (leave it 0, or give that), and Rate their peak
	// (set by WithDefaults: what buffers are sized for).
	// default: none, Rate throughout
	Stages []Stage
	// EventTypes are the event types published, chosen at random per event;
	// every subscribing instance subscribes to all of them.
	// default: ticker, trade
	EventTypes []string
	// Publishers is how many instances publish: instances 0 to
	// Publishers-1; the others only subscribe. The seed's production
	// topology is one publishing host and many subscribing bots.
	// default: 0 (every instance publishes)
	Publishers int
	// DedicatedPublishers makes the publishing instances publish-only: they
	// do not subscribe, as the seed's WebSocket host does not.
	// default: false
	DedicatedPublishers bool
	// MaxRate replaces the open-loop schedule with closed-loop publishing
	// as fast as back-pressure allows: each instance keeps at most
	// MaxInFlight messages that some other instance has not received yet,
	// so the server's output buffers never overflow and the rate found is
	// the highest lossless one. Rate is ignored.
	// default: false
	MaxRate bool
	// MaxInFlight is the back-pressure window of MaxRate, per instance.
	// default: 2048
	MaxInFlight int
	// Pipeline caps how many events one instance sends in one pipelined
	// round trip; each instance sends whatever is due, up to this, at once.
	// default: 512
	Pipeline int
	// PayloadSize pads each event's data to at least this many bytes, with a
	// "pad" field at its end; the envelope stays the seed's. Real
	// orderbooks are kilobytes, the generator's own events 20 to 460
	// bytes. With PayloadSizeMax above it, each event's size is drawn
	// uniformly from [PayloadSize, PayloadSizeMax] (from the seed).
	// default: 0 (the events' own sizes)
	PayloadSize, PayloadSizeMax int
	// BatchWindow is how long a due event may wait for later ones to
	// share its instance's pipeline: the scheduler wakes at most once per
	// window. Shorter brings the send delay, and with it the latency
	// reported, down towards Redis's own, at more CPU on both sides: each
	// publish goes alone, and Redis writes to every subscriber per message
	// (measured in docs/performance.md). NoBatching (-1) writes each event
	// at its own time.
	//
	// On one server (not a cluster, Sentinel, streams or an adapter) the
	// scheduler's own thread writes through each instance's pipe, which
	// does not wait for earlier replies (bridge.Pipe); an instance's due
	// events gather only while a few of its batches are unanswered
	// (pipeAhead). Elsewhere each instance flushes a pipeline and waits
	// for its replies.
	// default: 1ms
	BatchWindow time.Duration
	// Seed makes the run's choices (instance, type, payload of each event)
	// reproducible. Zero picks one at random; Result.Seed says which.
	// default: 0 (random)
	Seed uint64
	// DrainTimeout bounds the wait, after publishing stops, for messages
	// still in flight; NoDrain (-1) skips it.
	// default: 2s
	DrainTimeout time.Duration
	// ConnectTimeout bounds connecting every instance and confirming every
	// subscription.
	// default: 10s
	ConnectTimeout time.Duration
	// Placement, on a Redis Cluster, spreads the instances over its nodes:
	// PlacementSpread connects instance i to node i mod the node count,
	// so that classic pub/sub crosses the cluster bus; PlacementSingle
	// (the zero value) connects every instance to Redis's address. On a
	// standalone server the two are the same.
	// default: PlacementSingle
	Placement Placement
	// Redis holds the connection settings shared by every bridge: URL or
	// address, credentials, key prefix, dial timeout. The harness sets each
	// bridge's InstanceID, Handler and DeliverOwn itself.
	Redis bridge.Options
	// EventLog, when set, receives one line per published and per received
	// event (the seed tool's verbose mode). It costs a lock per message.
	// default: nil
	EventLog io.Writer
	// Series collects a SeriesPoint per second (Result.Series): rates,
	// pending messages, latency and send delay over time, for plots. It
	// costs an uncontended lock per received message and per publish,
	// which did not show in the client's CPU per message at 3 M messages/s
	// (the command always sets it).
	// default: false
	Series bool
	// Progress, when set, is called with each SeriesPoint as it is taken
	// (it implies Series), on a goroutine of the harness; it must return
	// quickly. The command line draws its live status line with it.
	// default: nil
	Progress func(SeriesPoint)
	// Faults is the fault script: timed actions against the server or the
	// connections, from the start of publishing. The result's Timeline
	// records them and each instance's outages.
	// default: none
	Faults []Fault
	// Server lets faults stop, restart and freeze the server; nil unless
	// redisload started it (provision.Instance in server mode).
	// default: nil
	Server ServerControl
	// Deployment lets the cluster and Sentinel faults kill a node; nil
	// unless redisload started the cluster or Sentinel set
	// (provision.Instance in those modes). The faults that only send
	// commands need it too: redisload fails over only what it owns.
	// default: nil
	Deployment DeploymentControl
	// DisableTags publishes without authentication tags: a message that
	// claims to be the run's own is then checked by its instance index,
	// sequence number and send time only, which makes a forgery implausible
	// but not impossible. It exists to measure the tags' cost.
	// default: false (tags on)
	DisableTags bool
	// InstanceCmd makes instances external: each runs this command (its
	// program and arguments), an adapter that does the instance's Redis
	// I/O with a client library of its own and speaks the instance
	// protocol (bridge.ExternalOptions, docs/instance-protocol.md) on its
	// standard input and output. The run builds every message, as for
	// its own instances, and does all the accounting.
	// default: nil (every instance is a bridge of redisload's own)
	InstanceCmd []string
	// ExternalInstances is how many instances, from the first, are
	// external when InstanceCmd is set; the others are the run's own
	// bridges, so that one run mixes both.
	// default: 0, meaning all of them
	ExternalInstances int

	// DisableSelfFilter makes every bridge hand its own messages to the
	// harness, which counts them as self-received. It exists to prove that
	// the self-filter check can fail.
	// default: false
	DisableSelfFilter bool
}

// Placement is where a cluster's instances connect.
type Placement string

// The placements.
const (
	PlacementSingle Placement = ""
	PlacementSpread Placement = "spread"
)

// Defaults of Config's zero fields.
const (
	DefaultInstances      = 3
	DefaultDuration       = 20 * time.Second
	DefaultRate           = 10.0
	DefaultDrainTimeout   = 2 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultPipeline       = 512
	DefaultMaxInFlight    = 2048
	DefaultBatchWindow    = time.Millisecond
)

// MaxPayloadSize bounds PayloadSize: a megabyte an event is already far
// past what pub/sub fan-out carries well.
const MaxPayloadSize = 1 << 20

// NoBatching, as BatchWindow, hands each event to its instance at its
// intended time.
const NoBatching = -1

// DefaultEventTypes are the seed's event types.
var DefaultEventTypes = []string{bridge.TypeTicker, bridge.TypeTrade}

// WithDefaults returns c with every zero field replaced by its default.
func (c Config) WithDefaults() Config {
	if c.Instances == 0 {
		c.Instances = DefaultInstances
	}
	if len(c.Stages) > 0 {
		// The shape decides both: Validate refuses a Duration that is not
		// the stages' sum.
		d, peak := stagesShape(c.Stages)
		if c.Duration == 0 {
			c.Duration = d
		}
		c.Rate = peak
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if len(c.EventTypes) == 0 {
		c.EventTypes = DefaultEventTypes
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.Pipeline == 0 {
		c.Pipeline = DefaultPipeline
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.BatchWindow == 0 {
		c.BatchWindow = DefaultBatchWindow
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	return c
}

// MaxInstances bounds --instances: each instance holds two connections.
const MaxInstances = 10000

// MaxPipeline bounds Pipeline, and MaxPipelinedEvents Pipeline × Instances:
// each instance keeps a batch of up to Pipeline envelopes (about 300 bytes
// each), so that no input can ask for more memory than a large host has
// (16 Mi events, about 5 GB, reached only by publishers far behind). The
// default 512 × the largest instance count fits.
const (
	MaxPipeline        = 10000
	MaxPipelinedEvents = 1 << 24
)

// ConfigError is a Config field Validate refused. Field is the field's
// name, so that a caller names its own spelling of it (the command line
// maps it to a flag).
type ConfigError struct {
	Field  string
	Reason string // "must be at least 1, got 0"
}

func (e *ConfigError) Error() string { return "harness: " + e.Field + " " + e.Reason }

// Validate checks a Config whose defaults are applied (WithDefaults): Run
// does both. Errors about one field are *ConfigError; a fault script's are
// plain errors that name the fault.
func (c Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if err := c.validateStages(); err != nil {
		return err
	}
	switch {
	case c.Warmup < 0:
		return bad("Warmup", "must not be negative, got %v", c.Warmup)
	case c.Warmup > 0 && len(c.Stages) > 0:
		return bad("Warmup", "does not go with stages: ramp up in a first stage instead")
	case c.Warmup > 0 && c.MaxRate:
		return bad("Warmup", "needs a schedule: the closed loop of the maximum rate has none")
	case c.Warmup > 0 && len(c.Faults) > 0:
		return bad("Warmup", "does not go with a fault script yet: its times are from the start of publishing")
	}
	switch {
	case c.Instances < 2:
		// One instance receives nobody's events but its own, which it
		// filters: no delivery is ever expected, and a run of it would
		// measure nothing.
		return bad("Instances", "must be at least 2, got %d: with one, no other instance receives its events, so no delivery can be expected and nothing would be measured", c.Instances)
	case c.Instances > MaxInstances:
		return bad("Instances", "must be at most %d, got %d", MaxInstances, c.Instances)
	case c.Duration <= 0:
		return bad("Duration", "must be positive, got %v", c.Duration)
	case c.Publishers < 0 || c.Publishers > c.Instances:
		return bad("Publishers", "must be from 1 to the instances (%d), got %d", c.Instances, c.Publishers)
	case c.DedicatedPublishers && c.publishers() == c.Instances:
		return bad("DedicatedPublishers", "needs fewer publishers than instances: someone must subscribe")
	case c.MaxInFlight < 1:
		return bad("MaxInFlight", "must be at least 1, got %d", c.MaxInFlight)
	case !c.MaxRate && (c.Rate <= 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0)):
		return bad("Rate", "must be a positive number of events per second, got %v", c.Rate)
	case c.Pipeline < 1 || c.Pipeline > MaxPipeline:
		return bad("Pipeline", "must be from 1 to %d, got %d", MaxPipeline, c.Pipeline)
	case c.Pipeline*c.Instances > MaxPipelinedEvents:
		return bad("Pipeline", "%d × %d instances is over %d events buffered at once (about 300 bytes each): lower it",
			c.Pipeline, c.Instances, MaxPipelinedEvents)
	case c.PayloadSize < 0 || c.PayloadSize > MaxPayloadSize:
		return bad("PayloadSize", "must be from 0 to %d bytes, got %d", MaxPayloadSize, c.PayloadSize)
	case c.PayloadSizeMax != 0 && (c.PayloadSizeMax < c.PayloadSize || c.PayloadSizeMax > MaxPayloadSize || c.PayloadSize == 0):
		return bad("PayloadSizeMax", "must be from PayloadSize (%d, which must be set) to %d bytes, got %d", c.PayloadSize, MaxPayloadSize, c.PayloadSizeMax)
	case c.BatchWindow < 0 && c.BatchWindow != NoBatching || c.BatchWindow > time.Second:
		return bad("BatchWindow", "must be up to 1s, or -1 for none, got %v", c.BatchWindow)
	case c.DrainTimeout < 0 && c.DrainTimeout != NoDrain:
		return bad("DrainTimeout", "must be positive, or -1 for no drain, got %v", c.DrainTimeout)
	case c.ConnectTimeout < 0:
		return bad("ConnectTimeout", "must not be negative, got %v", c.ConnectTimeout)
	case c.Placement != PlacementSingle && c.Placement != PlacementSpread:
		return bad("Placement", "must be single or spread, got %q", c.Placement)
	case c.Redis.Transport != "" && c.Redis.Transport != bridge.TransportPubSub && c.Redis.Transport != bridge.TransportStreams:
		return bad("Redis.Transport", "must be pubsub or streams, got %q", c.Redis.Transport)
	case c.Redis.Transport == bridge.TransportStreams && c.Redis.PubSub == bridge.PubSubSharded:
		return bad("Redis.Transport", "streams replace pub/sub: they do not go with sharded pub/sub")
	case c.Redis.StreamMaxLen < -1:
		return bad("Redis.StreamMaxLen", "must be positive, or -1 for no cap, got %d", c.Redis.StreamMaxLen)
	}
	for _, t := range c.EventTypes {
		if !slices.Contains(bridge.EventTypes, t) {
			return bad("EventTypes", "has an unknown event type %q (known: %s)", t, strings.Join(bridge.EventTypes, ", "))
		}
	}
	if err := c.validateFaults(); err != nil {
		return err
	}
	switch {
	case c.ExternalInstances < 0 || c.ExternalInstances > c.Instances:
		return bad("ExternalInstances", "must be from 0 (all) to the instances (%d), got %d", c.Instances, c.ExternalInstances)
	case c.ExternalInstances > 0 && len(c.InstanceCmd) == 0:
		return bad("ExternalInstances", "needs InstanceCmd: the adapter they run")
	case len(c.InstanceCmd) > 0 && c.InstanceCmd[0] == "":
		return bad("InstanceCmd", "has no program")
	case len(c.InstanceCmd) > 0 && c.Redis.Transport == bridge.TransportStreams:
		return bad("InstanceCmd", "external instances speak pub/sub: not with the streams transport")
	}
	if !c.MaxRate && c.TotalEvents() == 0 {
		return bad("Rate", "%g for %v publishes no event: raise the rate or the duration so that rate × duration ≥ 1", c.Rate, c.Duration)
	}
	return nil
}

// NoDrain, as DrainTimeout, skips the drain: the counts are read as soon as
// publishing stops.
const NoDrain = -1

// externalInstances is how many instances, from the first, run
// InstanceCmd.
func (c Config) externalInstances() int {
	switch {
	case len(c.InstanceCmd) == 0:
		return 0
	case c.ExternalInstances == 0:
		return c.Instances
	}
	return c.ExternalInstances
}

// publishers is the number of publishing instances.
func (c Config) publishers() int {
	if c.Publishers == 0 {
		return c.Instances
	}
	return c.Publishers
}

// publishes reports whether instance i publishes.
func (c Config) publishes(i int) bool { return i < c.publishers() }

// subscribes reports whether instance i subscribes.
func (c Config) subscribes(i int) bool { return !(c.DedicatedPublishers && c.publishes(i)) }

// TotalEvents is the number of events the run publishes: those its pacer
// schedules before Duration. With MaxRate there is no target, and it is 0.
func (c Config) TotalEvents() uint64 {
	if c.MaxRate {
		return 0
	}
	return c.scheduledEvents() - c.warmupEvents()
}

// MeasuredSeqBase is where a run with a warm-up starts its measured
// events' sequence numbers (base+1 onwards): every warm-up event is below
// it, every measured one above, whichever host tells them apart.
const MeasuredSeqBase = 1 << 40

// publishing is how long events are published: the warm-up, then the
// measured duration.
func (c Config) publishing() time.Duration { return max(c.Warmup, 0) + c.Duration }

// scheduledEvents is every event of the schedule, warm-up included.
func (c Config) scheduledEvents() uint64 { return c.pacer().total(c.publishing()) }

// warmupEvents is how many of the schedule's first events are the
// warm-up's: those due before Warmup ends, by the pacer's own At.
func (c Config) warmupEvents() uint64 {
	if c.Warmup <= 0 || c.MaxRate {
		return 0
	}
	p := c.pacer()
	k := p.Due(c.Warmup)
	for k > 0 && p.At(k-1) >= c.Warmup {
		k--
	}
	for p.At(k) < c.Warmup {
		k++
	}
	return min(k, c.scheduledEvents())
}

// seqBase is where measured sequence numbers start: MeasuredSeqBase with
// a warm-up, 0 without.
func (c Config) seqBase() uint64 {
	if c.Warmup > 0 {
		return MeasuredSeqBase
	}
	return 0
}

// pacer is the run's open-loop schedule.
func (c Config) pacer() runPacer {
	if len(c.Stages) > 0 {
		return NewStagedPacer(c.Stages)
	}
	return ConstantPacer{Rate: c.Rate}
}

// validateStages checks a load shape: each stage a positive duration and
// a finite rate, not negative; some load; the run's Duration their sum;
// and no closed loop beside it.
func (c Config) validateStages() error {
	if len(c.Stages) == 0 {
		return nil
	}
	bad := func(format string, a ...any) error {
		return &ConfigError{Field: "Stages", Reason: fmt.Sprintf(format, a...)}
	}
	if len(c.Stages) > MaxStages {
		return bad("has %d stages, at most %d", len(c.Stages), MaxStages)
	}
	for i, s := range c.Stages {
		if s.Duration <= 0 || s.Rate < 0 || math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) {
			return bad("stage %d (%v:%g) must have a positive duration and a rate of 0 or more", i+1, s.Duration, s.Rate)
		}
	}
	d, peak := stagesShape(c.Stages)
	switch {
	case c.MaxRate:
		return bad("shape an open-loop schedule: MaxRate has none")
	case peak == 0:
		return bad("are all at 0 events/s: nothing would be published")
	case c.Duration != 0 && c.Duration != d:
		return bad("last %v in all, but Duration is %v: leave Duration unset with Stages", d, c.Duration)
	}
	return nil
}

// MaxStages bounds a load shape.
const MaxStages = 100

// stagesShape is the sum of the stages' durations and their peak rate.
func stagesShape(stages []Stage) (time.Duration, float64) {
	var d time.Duration
	peak := 0.0
	for _, s := range stages {
		d += s.Duration
		peak = max(peak, s.Rate)
	}
	return d, peak
}

// ParseStages reads a load shape written "10s:1000,30s:20000,10s:0": for
// each stage its duration and the rate it ramps to (see Config.Stages).
// Validate checks the values; this checks the form.
func ParseStages(s string) ([]Stage, error) {
	var out []Stage
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		d, r, ok := strings.Cut(part, ":")
		dur, err1 := time.ParseDuration(strings.TrimSpace(d))
		rate, err2 := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("stage %q: want DURATION:RATE, such as 30s:20000", part)
		}
		out = append(out, Stage{Duration: dur, Rate: rate})
	}
	return out, nil
}

// StagesText writes stages as ParseStages reads them.
func StagesText(stages []Stage) string {
	parts := make([]string, len(stages))
	for i, s := range stages {
		parts[i] = s.Duration.String() + ":" + strconv.FormatFloat(s.Rate, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

// ParseEventTypes splits a comma-separated list; "all" means every type.
func ParseEventTypes(s string) ([]string, error) {
	if strings.TrimSpace(s) == "all" {
		return slices.Clone(bridge.EventTypes), nil
	}
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.Contains(bridge.EventTypes, t) {
			return nil, fmt.Errorf("unknown event type %q (known: %s, or all)", t, strings.Join(bridge.EventTypes, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no event type given")
	}
	return out, nil
}
