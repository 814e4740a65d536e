// Package workers runs one load test from several processes, on one
// machine or many: a coordinator announces the run on a control Redis,
// workers join it, each runs a contiguous range of the instances
// (harness.RunShare), and the coordinator merges their accounting into one
// exact Result (harness.MergeParts).
//
// The protocol is a handful of Redis lists under redisload:ctl:, each
// message one JSON value, every wait a bounded BLPOP:
//
//	coordinator                              worker
//	RPUSH slots <run> (one per worker)  →   BLPOP slots            (or --run-id)
//	BLPOP <run>:joined                  ←   RPUSH <run>:joined {id, host, version}
//	RPUSH <run>:to:<id> {assign}        →   BLPOP <run>:to:<id>    spec, range, tag key
//	BLPOP <run>:ready                   ←   RPUSH <run>:ready      connected, subscribed
//	RPUSH <run>:to:<id> {go: start}     →   publishes from start
//	BLPOP <run>:published               ←   RPUSH <run>:published  its counts
//	RPUSH <run>:to:<id> {drain: all}    →   drains, closes
//	BLPOP <run>:results                 ←   RPUSH <run>:results    its PartState
//
// and a heartbeat key per worker (<run>:hb:<id>, 5 s expiry, renewed every
// second), by which the coordinator tells a dead worker from a slow one.
// The run's tag key travels only inside the assignment, which the worker's
// BLPOP removes from the server.
package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
)

// keyPrefix is where the protocol's keys live on the control Redis.
const keyPrefix = "redisload:ctl:"

// slotsKey lists the runs waiting for workers, one entry per worker place.
const slotsKey = keyPrefix + "slots"

// Heartbeats: renewed every heartbeatEvery, gone after heartbeatTTL. Four
// renewals may be missed before a worker counts as lost: with 3 s, a worker
// starved of CPU for 2 s on a loaded machine (race tests in parallel) was
// declared lost while it was running its share.
const (
	heartbeatEvery = time.Second
	heartbeatTTL   = 5 * time.Second
)

// keys names one run's lists.
type keys string

func (k keys) joined() string          { return keyPrefix + string(k) + ":joined" }
func (k keys) ready() string           { return keyPrefix + string(k) + ":ready" }
func (k keys) published() string       { return keyPrefix + string(k) + ":published" }
func (k keys) results() string         { return keyPrefix + string(k) + ":results" }
func (k keys) to(worker string) string { return keyPrefix + string(k) + ":to:" + worker }
func (k keys) hb(worker string) string { return keyPrefix + string(k) + ":hb:" + worker }
func (k keys) stop() string            { return keyPrefix + string(k) + ":stop" }
func (k keys) acks() string            { return keyPrefix + string(k) + ":acks" }
func (k keys) progress() string        { return keyPrefix + string(k) + ":progress" }
func (k keys) all(ids []string) []string {
	out := []string{k.joined(), k.ready(), k.published(), k.results(), k.stop(), k.acks(), k.progress()}
	for _, id := range ids {
		out = append(out, k.to(id), k.hb(id))
	}
	return out
}

// Spec is what decides a run, as the coordinator announces it: every
// worker builds the same harness.Config from it. The Redis under test is
// each worker's own setting (its URL may carry a password, which never
// travels here).
type Spec struct {
	Version           string          `json:"version"`
	RunID             string          `json:"run_id"`
	Instances         int             `json:"instances"`
	DurationNs        int64           `json:"duration_ns"`
	Rate              float64         `json:"rate"`
	Pipeline          int             `json:"pipeline"`
	Publishers        int             `json:"publishers"`
	Dedicated         bool            `json:"dedicated_publishers"`
	EventTypes        []string        `json:"event_types"`
	Seed              uint64          `json:"seed"`
	DrainTimeoutNs    int64           `json:"drain_timeout_ns"`
	ConnectTimeoutNs  int64           `json:"connect_timeout_ns"`
	KeyPrefix         string          `json:"key_prefix"`
	ChannelsPerType   int             `json:"channels_per_type"`
	PubSub            string          `json:"pubsub"`
	Transport         string          `json:"transport,omitempty"`
	StreamMaxLen      int64           `json:"stream_maxlen,omitempty"`
	DisableTags       bool            `json:"disable_tags"`
	Series            bool            `json:"series"`
	MaxRate           bool            `json:"max_rate"`
	Workers           int             `json:"workers"`
	MaxInFlight       int             `json:"max_inflight"`
	BatchWindowNs     int64           `json:"batch_window_ns"`
	PayloadSize       int             `json:"payload_size,omitempty"`
	PayloadSizeMax    int             `json:"payload_size_max,omitempty"`
	Stages            []harness.Stage `json:"stages,omitempty"`
	WarmupNs          int64           `json:"warmup_ns,omitempty"`
	NotBeforeUnixNano int64           `json:"not_before_ns"`
	// Progress asks each worker for its intervals as they are taken, for
	// the coordinator's live status line.
	Progress bool `json:"progress,omitempty"`
	// Faults is the run's fault script: each worker plays, for its own
	// instances, what acts inside their process.
	Faults []harness.Fault `json:"faults,omitempty"`
}

// SpecOf is the announcement of cfg, for a run of the given ID.
func SpecOf(cfg harness.Config, runID, version string) Spec {
	return Spec{Version: version, RunID: runID, Instances: cfg.Instances, DurationNs: int64(cfg.Duration), Rate: cfg.Rate,
		Pipeline: cfg.Pipeline, Publishers: cfg.Publishers, Dedicated: cfg.DedicatedPublishers, EventTypes: cfg.EventTypes,
		Seed: cfg.Seed, DrainTimeoutNs: int64(cfg.DrainTimeout), ConnectTimeoutNs: int64(cfg.ConnectTimeout),
		KeyPrefix: cfg.Redis.KeyPrefix, ChannelsPerType: cfg.Redis.ChannelsPerType, PubSub: string(cfg.Redis.PubSub),
		Transport: string(cfg.Redis.Transport), StreamMaxLen: cfg.Redis.StreamMaxLen,
		DisableTags: cfg.DisableTags, Series: cfg.Series, MaxRate: cfg.MaxRate, MaxInFlight: cfg.MaxInFlight,
		BatchWindowNs: int64(cfg.BatchWindow), PayloadSize: cfg.PayloadSize, PayloadSizeMax: cfg.PayloadSizeMax, Stages: cfg.Stages, WarmupNs: int64(cfg.Warmup), NotBeforeUnixNano: time.Now().UnixNano(), Progress: cfg.Progress != nil, Faults: cfg.Faults}
}

// Config is the harness configuration the spec describes, against the
// server redis names.
func (s Spec) Config(redis bridge.Options) harness.Config {
	redis.KeyPrefix, redis.ChannelsPerType, redis.PubSub = s.KeyPrefix, s.ChannelsPerType, bridge.PubSubMode(s.PubSub)
	redis.Transport, redis.StreamMaxLen = bridge.Transport(s.Transport), s.StreamMaxLen
	return harness.Config{Instances: s.Instances, Duration: time.Duration(s.DurationNs), Rate: s.Rate, Pipeline: s.Pipeline,
		Publishers: s.Publishers, DedicatedPublishers: s.Dedicated, EventTypes: s.EventTypes, Seed: s.Seed,
		DrainTimeout: time.Duration(s.DrainTimeoutNs), ConnectTimeout: time.Duration(s.ConnectTimeoutNs),
		DisableTags: s.DisableTags, Series: s.Series, MaxRate: s.MaxRate, MaxInFlight: s.MaxInFlight,
		BatchWindow: time.Duration(s.BatchWindowNs), PayloadSize: s.PayloadSize, PayloadSizeMax: s.PayloadSizeMax, Stages: s.Stages, Warmup: time.Duration(s.WarmupNs), Redis: redis}
}

// joinMsg is a worker's application to a run.
type joinMsg struct {
	ID      string `json:"id"`
	Host    string `json:"host"`
	PID     int    `json:"pid"`
	Version string `json:"version"`
}

// toWorker is every message the coordinator sends a worker; Type says
// which fields are set.
type toWorker struct {
	Type string `json:"type"` // assign, refuse, go, drain, abort
	// assign
	Spec   *Spec          `json:"spec,omitempty"`
	Lo     int            `json:"lo,omitempty"`
	Hi     int            `json:"hi,omitempty"`
	TagKey *bridge.TagKey `json:"tag_key,omitempty"`
	// refuse, abort
	Reason string `json:"reason,omitempty"`
	// go: the start on the reference clock (the Redis server's), and how
	// far the workers' corrected clocks may disagree
	StartUnixNano int64 `json:"start_ns,omitempty"`
	ToleranceNs   int64 `json:"tolerance_ns,omitempty"`
	// drain
	Published []uint64 `json:"published,omitempty"`
}

// readyMsg says a worker's instances are connected and subscribed, and
// how well it knows its clock's offset.
type readyMsg struct {
	ID            string `json:"id"`
	UncertaintyNs int64  `json:"uncertainty_ns"`
}

// publishedMsg is a worker's count of accepted publishes, by instance.
type publishedMsg struct {
	ID        string   `json:"id"`
	Published []uint64 `json:"published"`
}

// progressMsg is a worker's K-th interval, sent as it is taken.
type progressMsg struct {
	ID  string            `json:"id"`
	K   int               `json:"k"`
	Raw harness.SeriesRaw `json:"raw"`
}

// resultMsg is a worker's accounting and its own vital signs.
type resultMsg struct {
	ID                 string            `json:"id"`
	Error              string            `json:"error,omitempty"`
	Part               harness.PartState `json:"part"`
	StartUnixNano      int64             `json:"start_ns"`
	ConnectSeconds     float64           `json:"connect_s"`
	ElapsedSeconds     float64           `json:"elapsed_s"`
	DrainSeconds       float64           `json:"drain_s"`
	Drained            bool              `json:"drained"`
	Interrupted        bool              `json:"interrupted,omitempty"`
	CPUSeconds         float64           `json:"cpu_s"`
	CPUs               int               `json:"cpus"` // the worker's host's, for "the generator was the limit"
	RSSBytes           int64             `json:"rss_bytes"`
	ClockOffsetUs      int64             `json:"clock_offset_us"`
	ClockUncertaintyUs int64             `json:"clock_uncertainty_us"`
	// Faults is what the worker did of the fault script, by its index.
	Faults []harness.FaultRecord `json:"faults,omitempty"`
}

// ErrProtocol wraps a message that is not what the protocol says.
var ErrProtocol = errors.New("workers: protocol")

// push sends one message to a list.
func push(ctx context.Context, c *redis.Client, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.RPush(ctx, key, b).Err()
}

// pop waits, within ctx, for one message on key and decodes it into v.
// It waits in steps of a second, so that check (when set) runs between
// them: the coordinator checks its workers' heartbeats there.
func pop(ctx context.Context, c *redis.Client, key string, v any, check func() error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A second at a time (Redis's and go-redis's shortest block):
		// ctx's deadline is checked between them.
		res, err := c.BLPop(ctx, time.Second, key).Result()
		switch {
		case errors.Is(err, redis.Nil):
			if check != nil {
				if err := check(); err != nil {
					return err
				}
			}
			continue
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("workers: control Redis: %w", err)
		}
		if err := json.Unmarshal([]byte(res[1]), v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrProtocol, key, err)
		}
		return nil
	}
}

// jsonUnmarshal decodes one message, naming the protocol in its error.
func jsonUnmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return nil
}
