package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redisload/redisload/bridge"
)

// FaultAction names what a fault does to the run.
type FaultAction string

// The fault actions. Those marked "own server" need Config.Server: a
// redis-server redisload started, which it may stop or freeze; the others
// work against any server and touch only this run's connections.
const (
	// FaultRestart stops the server and starts it again on the same port
	// after For (own server). Every connection breaks; the data is gone.
	FaultRestart FaultAction = "restart"
	// FaultCrash kills the server (SIGKILL: no shutdown) and starts it
	// again on the same port after For (own server). With an append-only
	// file it loses nothing it acknowledged (Redis writes the file before
	// it replies); without one, everything.
	FaultCrash FaultAction = "crash"
	// FaultHang freezes the server (SIGSTOP) for For, then resumes it (own
	// server). Connections stay open; nothing is answered meanwhile.
	FaultHang FaultAction = "hang"
	// FaultClientKill closes the run's subscriber connections with CLIENT
	// KILL (Instance's only, unless AllInstances).
	FaultClientKill FaultAction = "client-kill"
	// FaultSlowConsumer makes Instance's handler take Delay per message for
	// For, after setting the server's client-output-buffer-limit for
	// pub/sub clients to OutputBufferLimit (own server; restored after), so
	// that Redis disconnects the instance as it would a slow application.
	FaultSlowConsumer FaultAction = "slow-consumer"
	// FaultLatency adds Latency ± Jitter to everything Redis sends to the
	// clients (Instance's, or AllInstances'), through an in-process TCP
	// proxy, for For.
	FaultLatency FaultAction = "latency"
	// FaultPartition cuts Instance's connections for For: open ones are
	// reset and new ones refused, as a firewall rejecting its traffic
	// would; the others are untouched.
	FaultPartition FaultAction = "partition"
	// FaultFailover hands the master of the run's busiest channel over to
	// its replica (own deployment): CLUSTER FAILOVER on the replica, or
	// SENTINEL FAILOVER. It is over when the replica is master.
	FaultFailover FaultAction = "failover"
	// FaultMasterKill kills that master's process with SIGKILL (own
	// deployment); its replica takes over after the cluster's node
	// timeout or the sentinels' down-after. The master is not started
	// again; the fault is over when the replica is master.
	FaultMasterKill FaultAction = "master-kill"
	// FaultSlotMigration moves the slot of the busiest channel to another
	// master (own cluster): IMPORTING, MIGRATING, then NODE on every
	// master, so that sharded subscribers get the server's pushed
	// SUNSUBSCRIBE. The slot stays moved.
	FaultSlotMigration FaultAction = "slot-migration"
)

// FaultActions lists the actions, for help and errors.
var FaultActions = []FaultAction{FaultRestart, FaultCrash, FaultHang, FaultClientKill, FaultSlowConsumer, FaultLatency, FaultPartition,
	FaultFailover, FaultMasterKill, FaultSlotMigration}

// AllInstances as Fault.Instance applies the fault to every instance.
const AllInstances = -1

// Fault is one timed action of a fault script.
type Fault struct {
	// At is when the fault starts, from the start of publishing.
	At time.Duration
	// Action is what it does.
	Action FaultAction
	// For is how long it lasts; when it is over the fault is undone. A
	// fault still active when publishing ends is undone then, so that the
	// drain measures recovery, not the fault.
	// default: restart 1s, hang 2s, partition 5s, others to the end of
	// publishing (client-kill is instantaneous)
	For time.Duration
	// Instance is the instance affected (client-kill, slow-consumer,
	// latency, partition), or AllInstances (client-kill, latency).
	// default: 0
	Instance int
	// Delay is the slow consumer's time per message.
	// default: 10ms
	Delay time.Duration
	// OutputBufferLimit is the slow consumer's pub/sub output buffer limit,
	// "<hard> <soft> <soft seconds>" as CONFIG SET takes it.
	// default: "256kb 128kb 1"
	OutputBufferLimit string
	// ReadBuffer is the slow consumer's socket receive buffer in bytes (see
	// bridge.Options.SubscriberReadBuffer), set from the start of the run:
	// without it the kernel's buffers absorb megabytes of backlog before
	// the server's output buffer grows.
	// default: 64 KiB
	ReadBuffer int
	// Latency and Jitter are the latency fault's added delay.
	// default: 50ms and 10ms
	Latency, Jitter time.Duration
}

// Defaults of Fault's zero fields.
const (
	DefaultRestartDowntime   = time.Second
	DefaultHangFor           = 2 * time.Second
	DefaultPartitionFor      = 5 * time.Second
	DefaultSlowDelay         = 10 * time.Millisecond
	DefaultOutputBufferLimit = "256kb 128kb 1"
	DefaultSlowReadBuffer    = 64 << 10
	DefaultLatency           = 50 * time.Millisecond
	DefaultJitter            = 10 * time.Millisecond
)

// withDefaults fills f's zero fields; until is the end of publishing.
func (f Fault) withDefaults(until time.Duration) Fault {
	if f.For == 0 {
		switch f.Action {
		case FaultRestart, FaultCrash:
			f.For = DefaultRestartDowntime
		case FaultHang:
			f.For = DefaultHangFor
		case FaultPartition:
			f.For = DefaultPartitionFor
		case FaultSlowConsumer, FaultLatency:
			f.For = max(until-f.At, 0)
		}
	}
	if f.Action == FaultSlowConsumer {
		if f.Delay == 0 {
			f.Delay = DefaultSlowDelay
		}
		if f.OutputBufferLimit == "" {
			f.OutputBufferLimit = DefaultOutputBufferLimit
		}
		if f.ReadBuffer == 0 {
			f.ReadBuffer = DefaultSlowReadBuffer
		}
	}
	if f.Action == FaultLatency {
		if f.Latency == 0 {
			f.Latency = DefaultLatency
		}
		if f.Jitter == 0 {
			f.Jitter = DefaultJitter
		}
	}
	return f
}

// NeedsServer reports whether the action stops, freezes or reconfigures
// the server.
func (a FaultAction) NeedsServer() bool {
	return a == FaultRestart || a == FaultCrash || a == FaultHang || a == FaultSlowConsumer
}

// NeedsServer reports whether any of faults needs Config.Server.
func NeedsServer(faults []Fault) bool {
	return slices.ContainsFunc(faults, func(f Fault) bool { return f.Action.NeedsServer() })
}

// NeedsDeployment reports whether the action acts on a Redis Cluster or
// Sentinel set redisload started (Config.Deployment).
func (a FaultAction) NeedsDeployment() bool {
	return a == FaultFailover || a == FaultMasterKill || a == FaultSlotMigration
}

// NeedsDeployment reports whether any of faults needs Config.Deployment.
func NeedsDeployment(faults []Fault) bool {
	return slices.ContainsFunc(faults, func(f Fault) bool { return f.Action.NeedsDeployment() })
}

// needsProxy reports whether the action works through the proxy.
func (a FaultAction) needsProxy() bool { return a == FaultLatency || a == FaultPartition }

// validateFaults checks c.Faults; its errors name the fault by position
// and action, as a scenario file lists them.
func (c Config) validateFaults() error {
	for i, f := range c.Faults {
		if err := c.validateFault(i, f); err != nil {
			return err
		}
		name := fmt.Sprintf("fault %d (%s)", i+1, f.Action)
		switch {
		case f.Action.NeedsServer() && c.Server == nil:
			return fmt.Errorf("%s: needs a redis-server that redisload started and may stop (Config.Server)", name)
		case f.Action.NeedsDeployment() && c.Deployment == nil:
			return fmt.Errorf("%s: needs a Redis Cluster or Sentinel set that redisload started (Config.Deployment)", name)
		case f.Action == FaultSlotMigration && c.Redis.Sentinel.Enabled() || f.Action == FaultSlotMigration && strings.HasPrefix(c.Redis.URL, "redis+sentinel:"):
			return fmt.Errorf("%s: moves a cluster's slot, and a Sentinel set has none", name)
		case f.Action.needsProxy() && strings.HasPrefix(c.Redis.URL, "unix:"):
			return fmt.Errorf("%s: works through a TCP proxy, and the server is a unix socket", name)
		case f.Action == FaultSlowConsumer && len(strings.Fields(f.OutputBufferLimit)) != 3 && f.OutputBufferLimit != "":
			return fmt.Errorf("%s: output buffer limit %q: want \"<hard> <soft> <seconds>\"", name, f.OutputBufferLimit)
		}
	}
	return nil
}

// validateFault checks what fault i says in itself, against the run's
// instances and duration; validateFaults adds what it needs of the
// server, which a worker of a split run does not act on.
func (c Config) validateFault(i int, f Fault) error {
	name := fmt.Sprintf("fault %d (%s)", i+1, f.Action)
	switch {
	case !slices.Contains(FaultActions, f.Action):
		return fmt.Errorf("fault %d: unknown action %q (known: %s)", i+1, f.Action, faultActionList())
	case f.At < 0 || f.At >= c.Duration:
		return fmt.Errorf("%s: at %v is outside the run's duration %v", name, f.At, c.Duration)
	case f.For < 0 || f.Delay < 0 || f.Latency < 0 || f.Jitter < 0 || f.ReadBuffer < 0:
		return fmt.Errorf("%s: durations must not be negative", name)
	case f.Instance == AllInstances && f.Action != FaultClientKill && f.Action != FaultLatency:
		return fmt.Errorf("%s: applies to one instance, not all", name)
	case f.Instance != AllInstances && (f.Instance < 0 || f.Instance >= c.Instances):
		return fmt.Errorf("%s: instance %d does not exist (%d instances)", name, f.Instance, c.Instances)
	}
	return nil
}

func faultActionList() string {
	names := make([]string, len(FaultActions))
	for i, a := range FaultActions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// DeploymentControl is what the cluster and Sentinel faults need of a
// deployment redisload started; provision.Instance implements it.
type DeploymentControl interface {
	// KillNode kills the server at addr (host:port) with SIGKILL.
	KillNode(addr string) error
}

// ServerControl is what fault scripts need of a server redisload started;
// provision.Instance implements it.
type ServerControl interface {
	// Stop stops the server until Restart.
	Stop() error
	// Kill kills the server (SIGKILL) until Restart.
	Kill() error
	// Restart starts it again on the same port and returns once it answers.
	Restart(ctx context.Context) error
	// Freeze suspends it; Thaw resumes it.
	Freeze() error
	Thaw() error
}

// FaultRecord is one fault as it happened, for the timeline.
type FaultRecord struct {
	Action FaultAction `json:"action"`
	// Instance is the instance affected, -1 for all, or for the server.
	Instance int `json:"instance"`
	// AtSeconds and EndSeconds are when the fault was applied and when
	// undoing it was complete (a restarted server answering), from the
	// start of publishing; EndSeconds equals AtSeconds for an
	// instantaneous fault.
	AtSeconds  float64 `json:"at_s"`
	EndSeconds float64 `json:"end_s"`
	// Detail says what was done, e.g. how many connections were killed.
	Detail string `json:"detail,omitempty"`
	// Error is set when applying or undoing the fault failed.
	Error string `json:"error,omitempty"`
}

// faultSide says which part of each fault a runner plays: a single
// process plays all of it; over workers, the coordinator plays what acts
// on the server and each worker what acts on its own instances'
// connections and handlers.
type faultSide int

const (
	sideAll faultSide = iota
	sideServer
	sideInstances
)

// InProcess reports whether the action acts inside an instance's
// process: on its proxy (latency, partition) or its handler
// (slow-consumer, whose output buffer limit is set on the server). Over
// workers, the worker that runs the instance plays it.
func (a FaultAction) InProcess() bool { return a.needsProxy() || a == FaultSlowConsumer }

// faultEnv is what the fault runner acts on.
type faultEnv struct {
	cfg     Config
	side    faultSide
	lo, hi  int // sideInstances: the instances in this process
	start   time.Time
	probe   *serverProbe
	proxies *proxies // nil without proxy faults
	recvs   []*receiver
	prefix  string
	// channel is the run's busiest channel: the topology faults act on
	// the master that owns it.
	channel string
	// masters are the cluster's masters as last read, to ask when the
	// run's node does not answer.
	masters []string
}

// step is one half of a fault: its application, or its undoing.
type step struct {
	at   time.Duration
	undo bool
	idx  int // index into the records
}

// runFaults plays the script (its side's part: see faultSide) from start
// until every step is done or stop is closed; then it undoes whatever is
// still applied, so that the drain runs against a healthy server. The
// records are by the script's index, empty for a fault not applied. Every step is bounded in time, so the
// runner ends within a few seconds of stop. It closes ready once the steps
// due at the start are done: a fault at 0 is in place before the first
// publish.
func runFaults(env *faultEnv, stop <-chan struct{}, ready chan<- struct{}) []FaultRecord {
	faults := make([]Fault, len(env.cfg.Faults))
	var steps []step
	for i, f := range env.cfg.Faults {
		faults[i] = f.withDefaults(env.cfg.Duration)
		if !env.plays(faults[i]) {
			continue
		}
		steps = append(steps, step{at: faults[i].At, idx: i})
		if faults[i].Action != FaultClientKill && !faults[i].Action.NeedsDeployment() {
			steps = append(steps, step{at: faults[i].At + faults[i].For, undo: true, idx: i})
		}
	}
	// Ordered by time; at equal times an undo before an application, so
	// that back-to-back faults of one kind do not overlap.
	slices.SortStableFunc(steps, func(a, b step) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(btoi(!a.undo), btoi(!b.undo))
	})
	records := make([]FaultRecord, len(faults))
	applied := make([]bool, len(faults))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stopped := false
	readyOnce := func() {
		if ready != nil {
			close(ready)
			ready = nil
		}
	}
	defer readyOnce()
	for _, s := range steps {
		if s.at > 0 {
			readyOnce()
		}
		if !stopped {
			timer.Reset(time.Until(env.start.Add(s.at)))
			select {
			case <-stop:
				stopped = true
			case <-timer.C:
			}
		}
		if stopped && (!s.undo || !applied[s.idx]) {
			continue // never start a fault after the end
		}
		f, rec := faults[s.idx], &records[s.idx]
		if !s.undo {
			rec.Action, rec.Instance = f.Action, f.Instance
			rec.AtSeconds = time.Since(env.start).Seconds()
			rec.EndSeconds = rec.AtSeconds
			rec.Detail, rec.Error = errText(env.apply(f))
			if f.Action.NeedsDeployment() { // over when its apply returns: the replica is master
				rec.EndSeconds = time.Since(env.start).Seconds()
			}
			applied[s.idx] = f.Action != FaultClientKill && !f.Action.NeedsDeployment()
			continue
		}
		if !applied[s.idx] {
			continue
		}
		applied[s.idx] = false
		detail, errMsg := errText(env.undo(f))
		rec.EndSeconds = time.Since(env.start).Seconds() // undone: a restarted server answers
		rec.Detail = joinNonEmpty(rec.Detail, detail)
		if errMsg != "" {
			rec.Error = joinNonEmpty(rec.Error, "undo: "+errMsg)
		}
	}
	return records
}

// appliedFaults keeps the records of the faults applied before the end,
// for the timeline.
func appliedFaults(records []FaultRecord) []FaultRecord {
	var out []FaultRecord
	for _, r := range records {
		if r.Action != "" {
			out = append(out, r)
		}
	}
	return out
}

// plays reports whether this runner plays any part of f.
func (env *faultEnv) plays(f Fault) bool {
	switch env.side {
	case sideServer:
		return !f.Action.needsProxy()
	case sideInstances:
		mine := f.Instance == AllInstances || f.Instance >= env.lo && f.Instance < env.hi
		return f.Action.InProcess() && mine
	}
	return true
}

// joinNonEmpty joins the non-empty parts with "; ".
func joinNonEmpty(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "; ")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// errText splits a step's outcome into the record's detail and error.
func errText(detail string, err error) (string, string) {
	if err != nil {
		return detail, err.Error()
	}
	return detail, ""
}

// faultTimeout bounds every server command and restart of a fault.
const faultTimeout = 10 * time.Second

// apply starts fault f and says what it did.
func (env *faultEnv) apply(f Fault) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	defer cancel()
	switch f.Action {
	case FaultRestart:
		return "server stopped", env.cfg.Server.Stop()
	case FaultCrash:
		return "server killed (SIGKILL)", env.cfg.Server.Kill()
	case FaultHang:
		return "server frozen (SIGSTOP)", env.cfg.Server.Freeze()
	case FaultClientKill:
		n, err := env.probe.killSubscribers(ctx, env.prefix, f.Instance, env.cfg.Redis.Transport == bridge.TransportStreams)
		return fmt.Sprintf("killed %d subscriber connections", n), err
	case FaultSlowConsumer:
		var detail []string
		if env.side != sideInstances {
			old, err := env.probe.setPubsubLimit(ctx, f.OutputBufferLimit)
			if err != nil {
				return "", err
			}
			detail = append(detail, fmt.Sprintf("pubsub output buffer limit %s (was %s)", f.OutputBufferLimit, old))
		}
		if env.side != sideServer {
			env.recvs[f.Instance].slowNs.Store(int64(f.Delay))
			detail = append(detail, fmt.Sprintf("handler %v per message", f.Delay))
		}
		return strings.Join(detail, ", "), nil
	case FaultLatency:
		return fmt.Sprintf("+%v ± %v from the server", f.Latency, f.Jitter), env.proxies.addLatency(f.Instance, f.Latency, f.Jitter)
	case FaultPartition:
		return "connections cut", env.proxies.cut(f.Instance)
	case FaultFailover, FaultMasterKill, FaultSlotMigration:
		return env.topologyFault(f.Action)
	}
	return "", errors.New("unknown action")
}

// undo ends fault f and says what it did.
func (env *faultEnv) undo(f Fault) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	defer cancel()
	switch f.Action {
	case FaultRestart, FaultCrash:
		return "server started", env.cfg.Server.Restart(ctx)
	case FaultHang:
		return "server resumed", env.cfg.Server.Thaw()
	case FaultSlowConsumer:
		if env.side != sideServer {
			env.recvs[f.Instance].slowNs.Store(0)
		}
		if env.side == sideInstances {
			return "handler at full speed", nil
		}
		n, known, err := env.probe.restorePubsubLimit(ctx)
		if !known {
			return "limit restored (the server does not count output-buffer disconnections: Redis < 7.2)", err
		}
		return fmt.Sprintf("limit restored; %d clients disconnected for output buffer limits so far", n), err
	case FaultLatency:
		return "latency removed", env.proxies.removeLatency(f.Instance)
	case FaultPartition:
		return "connections restored", env.proxies.heal(f.Instance)
	}
	return "", nil
}

// killSubscribers closes this run's subscriber connections (instance's
// only, unless AllInstances) with CLIENT KILL ID: never another client of
// a shared server, which CLIENT KILL TYPE pubsub would be.
func (p *serverProbe) killSubscribers(ctx context.Context, prefix string, instance int, streams bool) (int, error) {
	// A stream reader is a plain client, not a pub/sub one: named as a
	// subscriber all the same.
	args := []any{"CLIENT", "LIST", "TYPE", "pubsub"}
	if streams {
		args = args[:2]
	}
	list, err := p.c.Do(ctx, args...).Text()
	if err != nil {
		return 0, err
	}
	var ids []string
	for _, c := range subscriberClients(list, prefix) {
		if instance == AllInstances || c.instance == instance {
			ids = append(ids, c.id)
		}
	}
	killed := 0
	for _, id := range ids {
		n, err := p.c.Do(ctx, "CLIENT", "KILL", "ID", id).Int()
		if err != nil {
			return killed, err
		}
		killed += n
	}
	return killed, nil
}

// setPubsubLimit sets the pub/sub class of client-output-buffer-limit and
// remembers the whole previous setting, returning its pub/sub part.
func (p *serverProbe) setPubsubLimit(ctx context.Context, limit string) (string, error) {
	old, err := p.c.ConfigGet(ctx, "client-output-buffer-limit").Result()
	if err != nil {
		return "", err
	}
	p.savedLimit = old["client-output-buffer-limit"]
	if err := p.c.ConfigSet(ctx, "client-output-buffer-limit", "pubsub "+limit).Err(); err != nil {
		return "", err
	}
	was, _, _ := pubsubLimit(p.savedLimit)
	return was, nil
}

// restorePubsubLimit puts back what setPubsubLimit replaced and returns
// the server's count of clients disconnected for exceeding an output
// buffer limit, and whether the server keeps one (INFO stats, Redis 7.2
// and later).
func (p *serverProbe) restorePubsubLimit(ctx context.Context) (n int, known bool, err error) {
	if p.savedLimit != "" {
		if err := p.c.ConfigSet(ctx, "client-output-buffer-limit", p.savedLimit).Err(); err != nil {
			return 0, false, err
		}
	}
	info, err := p.c.Info(ctx, "stats").Result()
	if err != nil {
		return 0, false, err
	}
	v, known := infoFields(info)["client_output_buffer_limit_disconnections"]
	n, _ = strconv.Atoi(v)
	return n, known, nil
}
