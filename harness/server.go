package harness

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/units"
)

// ServerInfo says what was measured: the report names the server in its
// header, because numbers from the wrong server are worse than none.
type ServerInfo struct {
	// Mode is how the server was provided (url, server, container,
	// embedded); set by the caller that provided it.
	Mode string `json:"mode,omitempty"`
	// Reason says why that mode was chosen, when it was chosen for the user.
	Reason string `json:"reason,omitempty"`
	// Embedded is true for the in-process stand-in: its numbers describe
	// it, not Redis.
	Embedded bool `json:"embedded"`
	// Version, RedisMode, OS and ArchBits come from INFO server; empty
	// when the server does not say.
	Version   string `json:"redis_version,omitempty"`
	RedisMode string `json:"redis_mode,omitempty"`
	OS        string `json:"os,omitempty"`
	ArchBits  string `json:"arch_bits,omitempty"`
	// PubsubLimit is the server's client-output-buffer-limit for pub/sub
	// clients, which decides when Redis disconnects a slow subscriber.
	PubsubLimit string `json:"pubsub_output_buffer_limit"`
	// PubsubHardBytes is the hard limit in bytes; 0 when none or unknown.
	PubsubHardBytes int64 `json:"pubsub_hard_limit_bytes"`
	// Cluster is the cluster's topology when the server is a cluster
	// node (redis_mode:cluster); absent otherwise.
	Cluster *ClusterTopology `json:"cluster,omitempty"`
	// StatsBefore and StatsAfter are INFO counters read before connecting
	// and after closing: connected_clients, pubsub_channels,
	// total_commands_processed, used_memory.
	StatsBefore map[string]string `json:"stats_before,omitempty"`
	StatsAfter  map[string]string `json:"stats_after,omitempty"`
	// CountersBefore and CountersAfter are the same readings as numbers,
	// for machines (the maps keep INFO's text, "1.94M", for people);
	// absent when the server could not be read.
	CountersBefore *ServerCounters `json:"counters_before,omitempty"`
	CountersAfter  *ServerCounters `json:"counters_after,omitempty"`
	// NetInBytes and NetOutBytes are what the server read and wrote on all
	// its connections between the two readings (INFO's total_net_*), over
	// TrafficSeconds: the run's bytes in and out, payloads and every copy
	// fanned out, with whatever else the server served meanwhile. Zero
	// when unknown.
	NetInBytes     int64   `json:"net_in_bytes,omitempty"`
	NetOutBytes    int64   `json:"net_out_bytes,omitempty"`
	TrafficSeconds float64 `json:"traffic_s,omitempty"`
	// Counts are the server's own counts of the run's publishes and
	// subscribers, for the verdict to check the run's against; absent
	// for a run over workers.
	Counts *ServerCounts `json:"counts,omitempty"`
}

// ServerCounters are INFO's counters of one reading, as numbers: what a
// pipeline compares without parsing "1.94M".
type ServerCounters struct {
	ConnectedClients       int64   `json:"connected_clients"`
	PubsubChannels         int64   `json:"pubsub_channels"`
	TotalCommandsProcessed int64   `json:"total_commands_processed"`
	UsedMemoryBytes        int64   `json:"used_memory_bytes"`
	UsedMemoryPeakBytes    int64   `json:"used_memory_peak_bytes"`
	CPUSeconds             float64 `json:"cpu_s"` // used_cpu_sys + used_cpu_user
	NetInputBytes          int64   `json:"total_net_input_bytes"`
	NetOutputBytes         int64   `json:"total_net_output_bytes"`
}

// countersOf reads the typed counters out of a reading; nil for none.
func countersOf(stats map[string]string) *ServerCounters {
	if len(stats) == 0 {
		return nil
	}
	i := func(k string) int64 { v, _ := strconv.ParseInt(stats[k], 10, 64); return v }
	f := func(k string) float64 { v, _ := strconv.ParseFloat(stats[k], 64); return v }
	return &ServerCounters{ConnectedClients: i("connected_clients"), PubsubChannels: i("pubsub_channels"),
		TotalCommandsProcessed: i("total_commands_processed"), UsedMemoryBytes: i("used_memory"),
		UsedMemoryPeakBytes: i("used_memory_peak"), CPUSeconds: f("used_cpu_sys") + f("used_cpu_user"),
		NetInputBytes: i("total_net_input_bytes"), NetOutputBytes: i("total_net_output_bytes")}
}

// NoteTraffic fills the typed counters from StatsBefore and StatsAfter,
// read seconds apart, and NetInBytes and NetOutBytes from their deltas.
func (s *ServerInfo) NoteTraffic(seconds float64) {
	s.CountersBefore, s.CountersAfter = countersOf(s.StatsBefore), countersOf(s.StatsAfter)
	delta := func(k string) int64 {
		b, errB := strconv.ParseInt(s.StatsBefore[k], 10, 64)
		a, errA := strconv.ParseInt(s.StatsAfter[k], 10, 64)
		if errB != nil || errA != nil || a < b {
			return 0 // unknown, or the server restarted in between
		}
		return a - b
	}
	s.NetInBytes, s.NetOutBytes = delta("total_net_input_bytes"), delta("total_net_output_bytes")
	if s.NetInBytes > 0 || s.NetOutBytes > 0 {
		s.TrafficSeconds = seconds
	}
}

// statsFields are the INFO fields of StatsBefore/After.
var statsFields = []string{"connected_clients", "pubsub_channels", "total_commands_processed", "used_memory_human",
	"used_memory_peak_human", "used_memory", "used_memory_peak", "client_output_buffer_limit_disconnections", "used_cpu_sys", "used_cpu_user", "total_net_input_bytes", "total_net_output_bytes"}

// serverProbe is a plain client to the run's server, for INFO and CONFIG.
type serverProbe struct {
	c *redis.Client
	// savedLimit is the client-output-buffer-limit a slow-consumer fault
	// replaced, restored after it; only the fault runner uses it.
	savedLimit string
}

func newServerProbe(o bridge.Options) (*serverProbe, error) {
	ro, err := o.RedisOptions()
	if err != nil {
		return nil, err
	}
	ro.MaxRetries = -1
	// One connection: the output-buffer sampler and the fault runner take
	// turns, and the counters after the run see exactly one client of ours.
	ro.PoolSize = 1
	return &serverProbe{c: redis.NewClient(ro)}, nil
}

func (p *serverProbe) close() { _ = p.c.Close() }

// describe reads INFO server and the pub/sub output buffer limit. A server
// that refuses either (a managed Redis may forbid CONFIG) still runs: the
// report says what is unknown.
func (p *serverProbe) describe(ctx context.Context) ServerInfo {
	var si ServerInfo
	if txt, err := p.c.Info(ctx, "server").Result(); err == nil {
		f := infoFields(txt)
		si.Version, si.RedisMode, si.OS, si.ArchBits = f["redis_version"], f["redis_mode"], f["os"], f["arch_bits"]
	}
	if si.RedisMode == "cluster" {
		si.Cluster = p.clusterTopology(ctx)
	}
	si.PubsubLimit = "unknown"
	cfg, err := p.c.ConfigGet(ctx, "client-output-buffer-limit").Result()
	if err != nil {
		si.PubsubLimit = "unknown (CONFIG GET: " + firstWords(err.Error()) + ")"
	} else if l, hard, ok := pubsubLimit(cfg["client-output-buffer-limit"]); ok {
		si.PubsubLimit, si.PubsubHardBytes = l, hard
	}
	return si
}

// stats reads the counters of StatsBefore/After; nil if INFO fails.
func (p *serverProbe) stats(ctx context.Context) map[string]string {
	txt, err := p.c.Info(ctx, "clients", "stats", "memory", "cpu").Result()
	if err != nil {
		return nil
	}
	f := infoFields(txt)
	out := map[string]string{}
	for _, k := range statsFields {
		if v, ok := f[k]; ok {
			out[k] = v
		}
	}
	return out
}

// infoFields parses INFO's "key:value" lines.
func infoFields(txt string) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(txt, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			f[k] = v
		}
	}
	return f
}

// pubsubLimit reads the pubsub class out of a client-output-buffer-limit
// value ("normal 0 0 0 slave … pubsub 33554432 8388608 60") as "hard 32 MiB,
// soft 8 MiB for 60s"; a zero limit is "none".
func pubsubLimit(v string) (string, int64, bool) {
	w := strings.Fields(v)
	for i := 0; i+3 < len(w); i++ {
		if w[i] != "pubsub" {
			continue
		}
		hard, err1 := strconv.ParseInt(w[i+1], 10, 64)
		soft, err2 := strconv.ParseInt(w[i+2], 10, 64)
		secs, err3 := strconv.ParseInt(w[i+3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return "", 0, false
		}
		return fmt.Sprintf("hard %s, soft %s for %ds", units.Bytes(hard), units.Bytes(soft), secs), hard, true
	}
	return "", 0, false
}

// firstWords keeps a server error short enough for a report cell.
func firstWords(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// OutputBuffers is what sampling the subscribers' output buffers on the
// server saw. Redis queues a subscriber's messages in that buffer while the
// subscriber reads slower than publishers write; past the pubsub
// client-output-buffer-limit it disconnects the subscriber, and pub/sub
// messages are lost without any error at the publisher.
type OutputBuffers struct {
	// Samples is how many times CLIENT LIST was read (0: not available).
	Samples int `json:"samples"`
	// PeakBytes is the largest omem seen on a subscriber of this run.
	PeakBytes int64 `json:"peak_bytes"`
	// PeakInstance is whose buffer it was; -1 when nothing was queued.
	PeakInstance int `json:"peak_instance"`
	// LimitBytes is the server's hard pubsub limit; 0 when none or unknown.
	LimitBytes int64 `json:"limit_bytes"`
	// IntervalMs is the time between samples: a buffer that filled and
	// was cut off between two samples is not in PeakBytes.
	IntervalMs int64 `json:"interval_ms"`
	// LimitDisconnections is how many clients the server disconnected
	// for their output buffer limit during the run, from its own counter
	// (INFO's client_output_buffer_limit_disconnections, Redis 7.2+),
	// which no sample can miss; absent where the server has none.
	LimitDisconnections *int64 `json:"limit_disconnections,omitempty"`
}

// limitDisconnections is the delta of the server's own count of clients
// cut off for their output buffer limit; nil where it has none, or it
// restarted in between.
func limitDisconnections(before, after map[string]string) *int64 {
	const k = "client_output_buffer_limit_disconnections"
	b, errB := strconv.ParseInt(before[k], 10, 64)
	a, errA := strconv.ParseInt(after[k], 10, 64)
	if errB != nil || errA != nil || a < b {
		return nil
	}
	d := a - b
	return &d
}

// outputBufferInterval is how often the buffers of n subscribers are
// sampled: every 100 ms, fast enough to see a buffer grow towards the limit
// during a second-long burst, stretched by one step per 100 subscribers,
// because each sample is a CLIENT LIST the size of the client count for
// both sides to produce and parse (at 1000 instances, 100 ms cost the
// harness a sixth more CPU per message than the reference).
func outputBufferInterval(n int) time.Duration {
	return 100 * time.Millisecond * time.Duration(max(1, n/100))
}

// sampleTimeout bounds one output-buffer sample; CLIENT LIST of a thousand
// clients takes milliseconds.
const sampleTimeout = 250 * time.Millisecond

// sampleOutputBuffers reads CLIENT LIST TYPE pubsub until stop is closed
// and returns the peak output buffer of this run's n subscribers, whose
// connection names start with prefix.
//
// nodes, when not empty, are the servers to sample instead of the probe's
// own: the nodes of a cluster the instances are spread over.
func (p *serverProbe) sampleOutputBuffers(prefix string, n int, stop <-chan struct{}, nodes []*redis.Client) OutputBuffers {
	ob := OutputBuffers{PeakInstance: -1, IntervalMs: outputBufferInterval(n).Milliseconds()}
	t := time.NewTicker(outputBufferInterval(n))
	defer t.Stop()
	if len(nodes) == 0 {
		nodes = []*redis.Client{p.c}
	}
	for {
		// Short: stop waits for the sample in progress, and a frozen
		// server must not hold the end of the run.
		ctx, cancel := context.WithTimeout(context.Background(), sampleTimeout)
		answered := 0
		for _, c := range nodes {
			// TYPE pubsub: the publishers' connections are not wanted.
			if list, err := c.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text(); err == nil {
				answered++
				peakOutputBuffer(list, prefix, &ob)
			}
		}
		cancel()
		if answered == len(nodes) {
			ob.Samples++
		}
		select {
		case <-stop:
			return ob
		case <-t.C:
		}
	}
}

// awaitGone waits, at most until ctx ends or a second, until the server
// has dropped every connection of this run (named "<prefix>..."): a
// closed socket reaches Redis's event loop a moment after Close returns,
// and the counters after the run must not catch it half-way.
func (p *serverProbe) awaitGone(ctx context.Context, prefix string) {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		list, err := p.c.ClientList(ctx).Result()
		if err != nil || !strings.Contains(list, "name="+prefix) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// peakOutputBuffer folds one CLIENT LIST reply into ob.
func peakOutputBuffer(list, prefix string, ob *OutputBuffers) {
	for _, c := range subscriberClients(list, prefix) {
		if c.omem > ob.PeakBytes {
			ob.PeakBytes, ob.PeakInstance = c.omem, c.instance
		}
	}
}

// subscriberClient is one of this run's subscriber connections as CLIENT
// LIST shows it.
type subscriberClient struct {
	instance int
	id       string
	omem     int64 // output buffer bytes; -1 when not shown
	role     bridge.Role
}

// subscriberClients picks this run's subscriber connections, named
// "<prefix><instance>/sub", out of a CLIENT LIST reply.
func subscriberClients(list, prefix string) []subscriberClient {
	var out []subscriberClient
	for _, c := range runClients(list, prefix) {
		if c.role == bridge.RoleSubscriber {
			out = append(out, c)
		}
	}
	return out
}

// runClients picks this run's connections, named "<prefix><instance>/sub"
// or "/pub", out of a CLIENT LIST reply.
func runClients(list, prefix string) []subscriberClient {
	var out []subscriberClient
	for _, line := range strings.Split(list, "\n") {
		c := subscriberClient{omem: -1}
		var name string
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "id":
				c.id = v
			case "name":
				name = v
			case "omem":
				c.omem, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		inst, role, ok := bridge.ParseClientName(name)
		if !ok || !strings.HasPrefix(inst, prefix) {
			continue
		}
		c.role = role
		var err error
		if c.instance, err = strconv.Atoi(inst[len(prefix):]); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// Probe is a plain connection to a run's server, for a coordinator of a
// run split over processes: it describes the server and reads its
// counters before and after, as Run does for itself.
type Probe struct{ p *serverProbe }

// NewProbe connects, lazily, to the server o names.
func NewProbe(o bridge.Options) (*Probe, error) {
	p, err := newServerProbe(o)
	if err != nil {
		return nil, err
	}
	return &Probe{p: p}, nil
}

// Describe reads the server's description (ServerInfo without its
// counters), within probeTimeout.
func (p *Probe) Describe(ctx context.Context) ServerInfo {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return p.p.describe(ctx)
}

// Stats reads the counters of ServerInfo.StatsBefore/After, within
// probeTimeout; nil when the server does not answer.
func (p *Probe) Stats(ctx context.Context) map[string]string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return p.p.stats(ctx)
}

// Close closes the connection.
func (p *Probe) Close() { p.p.close() }

// checkPermissions asks the server, with ACL DRYRUN, whether the run's
// user may run each command the run will on each of its channels, so that
// an ACL refusing them is one clear line before anything connects, in the
// server's words (which, unlike a refused SUBSCRIBE, name the channel or
// the command). A server that refuses DRYRUN itself (no ACL permission
// for it, Redis before 7.0) is not asked: the refusals then show where
// they happen, a SUBSCRIBE at connect and each PUBLISH counted by reason.
func (p *serverProbe) checkPermissions(ctx context.Context, cfg Config, channels []string) error {
	user, err := p.c.Do(ctx, "ACL", "WHOAMI").Text()
	if err != nil {
		return nil
	}
	type command struct {
		name string
		args func(ch string) []any
	}
	var cmds []command
	switch {
	case cfg.Redis.Transport == bridge.TransportStreams:
		cmds = []command{
			{"XADD", func(ch string) []any { return []any{"XADD", ch, "*", "f", "v"} }},
			{"XGROUP", func(ch string) []any { return []any{"XGROUP", "CREATE", ch, "g", "$", "MKSTREAM"} }},
			{"XREADGROUP", func(ch string) []any { return []any{"XREADGROUP", "GROUP", "g", "c", "STREAMS", ch, ">"} }},
		}
	case cfg.Redis.PubSub == bridge.PubSubSharded:
		cmds = []command{
			{"SPUBLISH", func(ch string) []any { return []any{"SPUBLISH", ch, "x"} }},
			{"SSUBSCRIBE", func(ch string) []any { return []any{"SSUBSCRIBE", ch} }},
		}
	default:
		cmds = []command{
			{"PUBLISH", func(ch string) []any { return []any{"PUBLISH", ch, "x"} }},
			{"SUBSCRIBE", func(ch string) []any { return []any{"SUBSCRIBE", ch} }},
		}
	}
	for _, c := range cmds {
		var refused []string
		var reply string
		for _, ch := range channels {
			args := append([]any{"ACL", "DRYRUN", user}, c.args(ch)...)
			res, err := p.c.Do(ctx, args...).Text()
			switch {
			case err != nil:
				return nil // DRYRUN itself refused or unknown: not asked
			case res != "OK":
				refused, reply = append(refused, ch), res
			}
		}
		if len(refused) > 0 {
			return fmt.Errorf("%w: %w", ErrUnavailable, &bridge.RefusedError{Command: c.name, Channels: refused, Reply: reply})
		}
	}
	return nil
}
