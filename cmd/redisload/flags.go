package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/shlex"
	"github.com/spf13/pflag"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/capacity"
	"github.com/redisload/redisload/docs"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/provision"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/scenarios"
	"github.com/redisload/redisload/verdict"
)

// The command line of a load run: every flag, how flags map to the
// library's Config and Thresholds (and the library's field errors back to
// flags), and --help. The library knows no flag; this file is the one
// place that knows both.

// options is everything the command line says. The harness config and the
// thresholds are filled by pflag directly; the rest needs parsing or
// checking in complete before it can be used.
type options struct {
	cfg          harness.Config
	thresholds   verdict.Thresholds
	eventTypes   string
	scenario     string
	scenarioFile string
	// sentinels and sentinelMaster are --sentinel and --sentinel-master,
	// a redis+sentinel:// URL spelt as flags.
	sentinels, sentinelMaster string
	// The run over worker processes (workers.go).
	workers, spawnWorkers int
	// instanceCmd is --instance-cmd, split as a shell would.
	instanceCmd string
	// repeat is how many times the run is made (see harness.Repeated).
	repeat int
	// seriesOut is --series-out's file; metricsAddr --metrics-addr's.
	seriesOut, metricsAddr string
	// stages is the load shape, as --stages writes it (harness.ParseStages).
	stages      string
	controlURL  string
	joinTimeout time.Duration
	redisURL    string
	provision   provision.Options
	mode        string
	security    securityFlags
	format      string
	extraOut    map[string]*string // format -> file, from --json-out and the like
	hdrOut      string
	html        string
	baseline    string
	// baseResult is the baseline's result, once read.
	baseResult       *harness.Result
	regressions      string
	baselineMismatch string
	hdrOutDir        string
	output           string
	matrix           bool
	cpuProfile       string
	memProfile       string
	verbose          bool
	quiet            bool
	progress         bool
	version          bool
	help             bool
}

// newFlagSet declares every flag with its default. The flags are in the
// order --help shows them: what to run, where, how to report, the verdict.
func newFlagSet(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("redisload", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard) // errors are printed once, by run
	c := &o.cfg
	fs.StringVar(&o.scenario, "scenario", "", "start from a named preset (flags given override it); \"list\" lists them")
	fs.StringVar(&o.scenarioFile, "scenario-file", "", "start from a scenario file, YAML or JSON: shape, verdict and fault script (see scenarios/examples)")
	// What to run: the shape of the load.
	fs.IntVar(&c.Instances, "instances", harness.DefaultInstances, "number of bridge instances (each a publisher and a subscriber connection)")
	fs.Var(newDurationValue(harness.DefaultDuration, &c.Duration), "duration", "how long to publish: 30s, 1m, or a bare number of seconds")
	c.Rate = harness.DefaultRate
	fs.Var((*rateValue)(c), "rate", "target events per second over all instances, or max: as fast as back-pressure allows without loss")
	fs.Var(newDurationValue(0, &c.Warmup), "warmup", "publish at the rate for this long before --duration, keeping those events out of every figure but their own (reported apart): connections, buffers and the server warm up first")
	fs.StringVar(&o.stages, "stages", "", "a load shape instead of --rate and --duration: DURATION:RATE stages, each ramping linearly from the previous rate (the first from 0), e.g. 10s:1000,30s:20000,10s:0")
	// The flags' defaults are the library's own constants, so --help
	// shows what a run without the flag does.
	fs.IntVar(&c.MaxInFlight, "max-inflight", harness.DefaultMaxInFlight, "with --rate=max: most messages one instance keeps ahead of the slowest receiver")
	fs.IntVar(&c.Publishers, "publishers", 0, "how many instances publish, the first ones (0: all); the others only subscribe")
	fs.BoolVar(&c.DedicatedPublishers, "dedicated-publishers", false, "publishing instances do not subscribe (a publish-only host, as the seed's WebSocket host)")
	fs.IntVar(&c.Pipeline, "pipeline", harness.DefaultPipeline, "most events one instance sends in one pipelined round trip")
	c.BatchWindow = harness.DefaultBatchWindow
	fs.Var(&sizeValue{&c.PayloadSize, &c.PayloadSizeMax}, "payload-size", "pad each event's data to this many bytes, or to a size drawn from a range like 100-4096, keeping the envelope (default: the events' own, 20-460 bytes)")
	fs.Var(&durationValue{&c.BatchWindow, parseWindow}, "batch-window", "how long a due event may wait to share a pipeline with later ones; shorter lowers the send delay at more CPU on both sides (-1: each event written at its own time, without waiting for earlier replies, on one server)")
	fs.StringVar(&o.eventTypes, "event-types", strings.Join(harness.DefaultEventTypes, ","), "comma-separated event types to publish, or \"all\" ("+strings.Join(bridge.EventTypes, ", ")+")")
	// 0 picks a seed at random; the report prints it, so any run can be
	// replayed with the same events.
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed that reproduces the run's events (0: random, printed in the report)")
	// Whose client: external instances, adapters of other languages.
	fs.StringVar(&o.instanceCmd, "instance-cmd", "", "run instances as processes of this command, adapters speaking the instance protocol with a client of their own (e.g. 'node adapters/ioredis/adapter.js'; quoted as a shell would)")
	fs.IntVar(&c.ExternalInstances, "external-instances", 0, "with --instance-cmd: how many instances, the first ones, run it (0: all); the others are redisload's own bridges")
	// Where: which server, how to reach it. No flag takes a password
	// (see securityFlags.apply for why).
	fs.StringVar(&o.mode, "redis", "", "where the server comes from: auto, url, server, container, embedded, cluster or sentinel (default: url when a URL is given, else auto)")
	registerClusterFlags(fs, &o.provision, c)
	// $REDIS_URL is the default, as most Redis tools read it; an empty
	// --redis-url= is refused in runLoad, not taken as "none".
	fs.StringVar(&o.redisURL, "redis-url", os.Getenv("REDIS_URL"), "Redis URL, redis://[user:password@]host:port[/db], or redis+sentinel://host:port[,host:port...]/<master> (default $REDIS_URL)")
	fs.StringVar(&o.sentinels, "sentinel", "", "find the master through these sentinels, host:port[,host:port...] (as --redis-url=redis+sentinel://<sentinels>/<master>)")
	fs.StringVar(&o.sentinelMaster, "sentinel-master", provision.SentinelMaster, "with --sentinel: the name the sentinels know the master by")
	fs.IntVar(&o.workers, "workers", 0, "run the instances on this many worker processes that join through the control Redis (see: redisload worker --help)")
	fs.IntVar(&o.spawnWorkers, "spawn-workers", 0, "run the instances on this many worker processes started on this machine")
	fs.IntVar(&o.repeat, "repeat", 1, "run the same configuration this many times, fresh instances each, and report the median and spread of every headline number (checks: accounting in every repetition, latencies and regressions at the median)")
	fs.StringVar(&o.controlURL, "control-url", "", "with --workers: the Redis the run is coordinated through (default: the Redis under test)")
	fs.DurationVar(&o.joinTimeout, "join-timeout", 30*time.Second, "with --workers: how long to wait for the workers to join")
	fs.StringArrayVar(&o.provision.ServerArgs, "redis-server-arg", nil, "extra redis-server argument in server mode; repeat it (--redis-server-arg=--maxclients --redis-server-arg=20000)")
	fs.StringVar(&o.provision.Image, "redis-image", provision.DefaultImage, "container image in container mode")
	fs.StringVar(&o.provision.ProbeAddr, "redis-probe-addr", provision.DefaultProbeAddr, "where auto mode looks for a running server first")
	// Hidden: a test seam for auto mode's first guess, not a user's knob.
	_ = fs.MarkHidden("redis-probe-addr")
	o.security.register(fs)
	fs.StringVar(&c.Redis.KeyPrefix, "key-prefix", bridge.DefaultKeyPrefix, "channel prefix: events go to <prefix><type>")
	fs.Var(newDurationValue(harness.DefaultDrainTimeout, &c.DrainTimeout), "drain-timeout", "after publishing, how long to wait for messages in flight")
	fs.Var(newDurationValue(harness.DefaultConnectTimeout, &c.ConnectTimeout), "connect-timeout", "how long connecting and subscribing every instance may take")
	// How to report.
	fs.StringVar(&o.format, "format", "table", "report format: "+strings.Join(report.Formats(report.Run), ", "))
	fs.StringVarP(&o.output, "output", "o", "", "write the report to this file instead of standard output")
	// One --<format>-out per format beside --format's stdout, so that a
	// CI job gets a table for people and JSON for the gate in one run.
	o.extraOut = map[string]*string{}
	for _, f := range extraFormats {
		o.extraOut[f] = new(string)
		fs.StringVar(o.extraOut[f], f+"-out", "", "also write the report as "+f+" to this file (with any --format)")
	}
	fs.StringVar(&o.html, "html", "", "also write a self-contained HTML report with plots to this file")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve the run's live figures as Prometheus metrics at http://HOST:PORT/metrics while it goes (on 127.0.0.1 unless HOST is given)")
	fs.StringVar(&o.seriesOut, "series-out", "", "write the per-second series to this file as the run goes, one JSON line a second, synced (tail -f it; a crash loses at most a second)")
	fs.StringVar(&o.hdrOut, "hdr-out", "", "write the merged latency histogram to this file (.hgrm, HdrHistogram's plotter format, ms)")
	fs.StringVar(&o.hdrOutDir, "hdr-out-dir", "", "write each instance's latency histogram to DIR/instance-<i>.hgrm")
	fs.BoolVar(&o.matrix, "matrix", false, "show the per-source delivery matrix (up to 20 instances)")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log every published and received event to standard error, and show the matrix")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no live status line on a terminal")
	fs.BoolVar(&o.progress, "progress", false, "when standard error is not a terminal, print a status line every 5s")

	th := &o.thresholds
	d := verdict.DefaultThresholds()
	// -1 switches any of these checks off, and nothing else does.
	fs.Float64Var(&th.MinDeliveryRate, "min-delivery", d.MinDeliveryRate, "verdict: lowest passing delivery rate, in percent (-1: no check)")
	fs.Int64Var(&th.MaxErrors, "max-errors", d.MaxErrors, "verdict: most errors that pass (-1: no check)")
	fs.Var(newLimitValue(d.MaxAvgLatency, &th.MaxAvgLatency), "max-avg-latency", "verdict: average latency must stay below this (-1: no check)")
	fs.Var(newLimitValue(d.MaxP99Latency, &th.MaxP99Latency), "max-p99-latency", "verdict: p99 latency must stay below this (-1: no check)")
	fs.Int64Var(&th.MaxDuplicates, "max-duplicates", d.MaxDuplicates, "verdict: most duplicate deliveries that pass (-1: no check)")
	fs.Var(newLimitValue(d.MaxRecovery, &th.MaxRecovery), "max-recovery", "verdict: every subscriber outage must end (resubscribed) within this (-1: no check)")
	fs.BoolVar(&th.LossOnlyInOutages, "loss-only-in-outages", false, "verdict: fail when messages are missing that no subscriber outage explains")

	fs.StringVar(&o.baseline, "baseline", "", "a previous run's JSON report: the verdict gains a check per --max-regression metric against it")
	fs.StringVar(&o.regressions, "max-regression", "", "how much worse than --baseline may pass, e.g. p99=20%,avg=20%,delivery=0.1 (default "+verdict.DefaultRegressions+")")
	fs.StringVar(&o.baselineMismatch, "baseline-mismatch", "refuse", "when this run is set up differently from --baseline (instances, rate, event types, versions...): refuse (exit 2, naming each field) or warn")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the run to this file (go tool pprof)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a Go heap profile to this file as the run ends, its result still held (go tool pprof; -sample_index=alloc_space for the whole run)")
	fs.BoolVar(&c.DisableTags, "no-auth-tags", false, "publish without authentication tags (make bench measures their cost with it)")
	_ = fs.MarkHidden("no-auth-tags")
	fs.BoolVar(&c.DisableSelfFilter, "no-self-filter", false, "deliver each instance its own messages (proves the self-received check fails)")
	// Hidden: a knob for the test that proves the verdict can fail, not a
	// mode anyone should run; it is still named in the report when used.
	_ = fs.MarkHidden("no-self-filter")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	return fs
}

// applyScenario takes the preset's value for every flag the user did not
// give: flags on the command line override the scenario.
func (o *options) applyScenario(fs *pflag.FlagSet, sc scenarios.Scenario) {
	// fs.Changed, not the value: a flag given with its default value
	// still overrides the scenario, as the user typed it.
	p := sc.Config
	if !fs.Changed("instances") && p.Instances != 0 {
		o.cfg.Instances = p.Instances
	}
	if !fs.Changed("duration") && p.Duration != 0 {
		o.cfg.Duration = p.Duration
	}
	if !fs.Changed("rate") && p.Rate != 0 {
		o.cfg.Rate = p.Rate
	}
	if !fs.Changed("event-types") && len(p.EventTypes) > 0 {
		o.eventTypes = strings.Join(p.EventTypes, ",")
	}
	if !fs.Changed("publishers") && p.Publishers != 0 {
		o.cfg.Publishers = p.Publishers
	}
	if !fs.Changed("dedicated-publishers") && p.DedicatedPublishers {
		o.cfg.DedicatedPublishers = true
	}
	o.cfg.Faults = p.Faults // no flag sets faults
	if th := sc.Thresholds; th != nil {
		o.applyThresholds(fs, *th)
	}
}

// applyThresholds takes a scenario's verdict for every threshold flag the
// user did not give.
func (o *options) applyThresholds(fs *pflag.FlagSet, th verdict.Thresholds) {
	set := func(flag string, apply func()) {
		if !fs.Changed(flag) {
			apply()
		}
	}
	t := &o.thresholds
	set("min-delivery", func() { t.MinDeliveryRate = th.MinDeliveryRate })
	set("max-errors", func() { t.MaxErrors = th.MaxErrors })
	set("max-avg-latency", func() { t.MaxAvgLatency = th.MaxAvgLatency })
	set("max-p99-latency", func() { t.MaxP99Latency = th.MaxP99Latency })
	set("max-duplicates", func() { t.MaxDuplicates = th.MaxDuplicates })
	set("max-recovery", func() { t.MaxRecovery = th.MaxRecovery })
	set("loss-only-in-outages", func() { t.LossOnlyInOutages = th.LossOnlyInOutages })
}

// scenarioWording names the scenario whose faults are at stake.
func scenarioWording(o *options) string {
	if o.scenario != "" {
		return "--scenario " + o.scenario
	}
	return "the scenario file " + o.scenarioFile
}

// serverWording names the server the user asked for, for an error.
func serverWording(o *options) string {
	if o.provision.Mode == "" || o.provision.Mode == provision.URL {
		return "a URL"
	}
	return "--redis=" + string(o.provision.Mode)
}

// complete checks what flags alone cannot and fills the harness config.
// Errors name the flag.
func (o *options) complete() error {
	types, err := harness.ParseEventTypes(o.eventTypes)
	if err != nil {
		return fmt.Errorf("--event-types: %v", err)
	}
	o.cfg.EventTypes = types
	if o.instanceCmd != "" {
		argv, err := shlex.Split(o.instanceCmd)
		switch {
		case err != nil:
			return fmt.Errorf("--instance-cmd: %v", err)
		case len(argv) == 0:
			return errors.New("--instance-cmd names no program")
		case o.workers > 0 || o.spawnWorkers > 0:
			return errors.New("--instance-cmd runs its adapters in this process's run: not with --workers or --spawn-workers")
		}
		if _, err := harness.FindAdapter(argv); err != nil {
			return fmt.Errorf("--instance-cmd: %s", strings.TrimPrefix(err.Error(), "instance adapter: "))
		}
		o.cfg.InstanceCmd = argv
	}
	if o.sentinels != "" {
		if o.redisURL != "" {
			return errors.New("--sentinel and --redis-url (or $REDIS_URL) both name the server: give one")
		}
		o.redisURL = bridge.SentinelScheme + "://" + o.sentinels + "/" + o.sentinelMaster
	}
	if o.redisURL != "" {
		// The whole URL, as the bridges will read it: a redis+sentinel://
		// URL without its master name is bad usage, not an outage.
		if _, err := (bridge.Options{URL: o.redisURL}).RedisOptions(); err != nil {
			// The flag names the source; the package's prefix adds nothing.
			return fmt.Errorf("--redis-url: %s", strings.TrimPrefix(err.Error(), "bridge: "))
		}
	}
	o.provision.URL = o.redisURL
	if o.mode != "" {
		m, err := provision.ParseMode(o.mode)
		if err != nil {
			return fmt.Errorf("--redis: %v", err)
		}
		o.provision.Mode = m
	}
	if harness.NeedsServer(o.cfg.Faults) {
		// Only a server redisload started may be stopped or frozen: auto
		// would pick the one on 6379, which may be someone's.
		switch {
		case o.provision.Mode == "" && o.redisURL == "", o.provision.Mode == provision.Auto:
			o.provision.Mode = provision.Server
		case o.provision.Mode != provision.Server:
			return fmt.Errorf("--scenario %s stops or freezes the server, so it needs a redis-server of its own (--redis=server), not %s",
				o.scenario, serverWording(o))
		}
	}
	if harness.NeedsDeployment(o.cfg.Faults) {
		// Failing over or killing a master is done only to a deployment
		// redisload started; with none named, it starts a cluster.
		switch {
		case o.provision.Mode == "" && o.redisURL == "", o.provision.Mode == provision.Auto:
			o.provision.Mode = provision.Cluster
		case o.provision.Mode != provision.Cluster && o.provision.Mode != provision.Sentinel:
			return fmt.Errorf("%s fails over, kills or moves a master's slots, so it needs a Redis Cluster or Sentinel set of its own (--redis=cluster or --redis=sentinel), not %s",
				scenarioWording(o), serverWording(o))
		}
	}
	switch {
	case o.provision.Mode == provision.URL && o.redisURL == "":
		return errors.New("--redis=url needs --redis-url or $REDIS_URL")
	case o.redisURL != "" && o.provision.Mode != "" && o.provision.Mode != provision.URL:
		return fmt.Errorf("--redis=%s starts its own server: it cannot be combined with --redis-url (or $REDIS_URL)", o.provision.Mode)
	case len(o.provision.ServerArgs) > 0 && o.provision.Mode != provision.Server && o.provision.Mode != "" &&
		o.provision.Mode != provision.Auto && o.provision.Mode != provision.Cluster && o.provision.Mode != provision.Sentinel:
		return fmt.Errorf("--redis-server-arg applies to --redis=server, cluster, sentinel (or auto), not %s", o.provision.Mode)
	}
	if err := checkClusterFlags(o.provision); err != nil {
		return err
	}
	if err := checkWorkerFlags(o); err != nil {
		return err
	}
	if o.repeat < 1 || o.repeat > maxRepeat {
		return fmt.Errorf("--repeat must be from 1 to %d, got %d", maxRepeat, o.repeat)
	}
	if err := formatError(report.Run, o.format); err != nil {
		return err
	}
	if o.cfg.Redis.KeyPrefix == "" || strings.ContainsAny(o.cfg.Redis.KeyPrefix, " \"\\") {
		return fmt.Errorf("--key-prefix must be non-empty, without spaces, quotes or backslashes: %q", o.cfg.Redis.KeyPrefix)
	}
	if err := o.thresholds.Validate(); err != nil {
		return flagError(err)
	}
	// Every field is set from a flag (whose default is the library's), so
	// the config is checked as given: a 0 the user typed is refused, not
	// replaced by the default. On the command line, --drain-timeout=0
	// means no drain.
	if o.cfg.DrainTimeout == 0 {
		o.cfg.DrainTimeout = harness.NoDrain
	}
	cfg := o.cfg
	if o.provision.Mode == provision.Server {
		cfg.Server = serverToStart{} // started after this check, before the run
	}
	if o.provision.Mode == provision.Cluster || o.provision.Mode == provision.Sentinel {
		cfg.Deployment = serverToStart{}
		if o.provision.Mode == provision.Sentinel {
			cfg.Redis.URL = bridge.SentinelScheme + "://127.0.0.1:1/" + provision.SentinelMaster // what the run will use
		}
	}
	return flagError(cfg.Validate())
}

// flagError turns the library's field errors into the flags' words.
func flagError(err error) error {
	var ce *harness.ConfigError
	var te *verdict.ThresholdError
	var cpe *capacity.ConfigError
	switch {
	case errors.As(err, &ce):
		return fmt.Errorf("--%s %s", configFlags[ce.Field], ce.Reason)
	case errors.As(err, &te):
		return fmt.Errorf("--%s %s, got %s", thresholdFlags[te.Field], te.Reason, te.Value)
	case errors.As(err, &cpe):
		// A reason may name another field ("must be at least Start"):
		// those become flags too.
		reason := capacityField.ReplaceAllStringFunc(cpe.Reason, func(f string) string { return "--" + capacityFlags[f] })
		return fmt.Errorf("--%s %s", capacityFlags[cpe.Field], reason)
	}
	return err
}

// capacityField matches a capacity.Config field's name in a reason.
var capacityField = regexp.MustCompile(`\b(Vary|Start|Factor|Step|Max|MinDelivery|MaxP99|MinAchievedPct|Resolution)\b`)

// capacityFlags names each capacity.Config field's flag.
var capacityFlags = map[string]string{
	"Vary": "vary", "Start": "start", "Factor": "factor", "Step": "step", "Max": "max", "Resolution": "resolution",
	"MinDelivery": "min-delivery", "MaxP99": "max-p99-latency", "MinAchievedPct": "min-achieved",
}

// configFlags names each harness.Config field's flag, for the library's
// validation errors: the one place the command line knows both.
var configFlags = map[string]string{
	"Instances": "instances", "Duration": "duration", "Rate": "rate", "Publishers": "publishers", "Stages": "stages", "Warmup": "warmup",
	"DedicatedPublishers": "dedicated-publishers", "MaxRate": "rate=max", "MaxInFlight": "max-inflight",
	"Pipeline": "pipeline", "BatchWindow": "batch-window", "PayloadSize": "payload-size", "PayloadSizeMax": "payload-size", "DrainTimeout": "drain-timeout", "ConnectTimeout": "connect-timeout", "Placement": "placement",
	"EventTypes": "event-types", "Redis.Transport": "transport", "Redis.StreamMaxLen": "stream-maxlen",
	"InstanceCmd": "instance-cmd", "ExternalInstances": "external-instances",
}

// thresholdFlags names each verdict.Thresholds field's flag, for the
// library's validation errors.
var thresholdFlags = map[string]string{
	"MinDeliveryRate": "min-delivery", "MaxErrors": "max-errors", "MaxAvgLatency": "max-avg-latency",
	"MaxP99Latency": "max-p99-latency", "MaxDuplicates": "max-duplicates", "MaxRecovery": "max-recovery",
}

// outputPaths are the files the run writes, by flag.
func (o *options) outputPaths() []pathFlag {
	out := []pathFlag{{"output", o.output}}
	for _, f := range extraFormats {
		out = append(out, pathFlag{f + "-out", *o.extraOut[f]})
	}
	return append(out, pathFlag{"html", o.html}, pathFlag{"series-out", o.seriesOut}, pathFlag{"hdr-out", o.hdrOut}, pathFlag{"cpuprofile", o.cpuProfile},
		pathFlag{"memprofile", o.memProfile}, pathFlag{"hdr-out-dir", o.hdrOutDir})
}

// serverToStart stands for the redis-server that server mode will start,
// so that a fault script is checked before anything starts; the run gets
// the real one.
type serverToStart struct{}

// The methods refuse: the fault script is only checked, never run, against
// the stand-in.
func (serverToStart) Stop() error                   { return errNotStarted }
func (serverToStart) Kill() error                   { return errNotStarted }
func (serverToStart) Restart(context.Context) error { return errNotStarted }
func (serverToStart) Freeze() error                 { return errNotStarted }
func (serverToStart) Thaw() error                   { return errNotStarted }
func (serverToStart) KillNode(string) error         { return errNotStarted }

var errNotStarted = errors.New("redis-server not started yet")

// registerClusterFlags declares the flags a run and a capacity sweep share
// for a cluster: its shape, where the instances connect, and how the
// channels spread over slots.
func registerClusterFlags(fs *pflag.FlagSet, prov *provision.Options, run *harness.Config) {
	fs.IntVar(&prov.ClusterMasters, "cluster-masters", provision.DefaultClusterMasters, "with --redis=cluster: how many masters")
	fs.IntVar(&prov.ClusterReplicas, "cluster-replicas", provision.DefaultClusterReplicas, "with --redis=cluster: replicas of each master (-1: none)")
	fs.Var((*placementValue)(&run.Placement), "placement", "on a cluster: spread the instances over its nodes (spread), or all on the URL's node (single)")
	run.Placement = harness.PlacementSpread
	fs.IntVar(&run.Redis.ChannelsPerType, "channels-per-type", 1, "spread each event type over this many channels, <prefix><type>:<k> (1: the TypeScript bridge's names)")
	fs.Var((*pubsubValue)(&run.Redis.PubSub), "pubsub", "classic (PUBLISH/SUBSCRIBE) or sharded (SPUBLISH/SSUBSCRIBE to each channel's shard; Redis 7.0+)")
	fs.Var((*transportValue)(&run.Redis.Transport), "transport", "pubsub, or streams: a stream per channel (XADD), a consumer group per instance (XREADGROUP, XACK), so that a subscriber that is away resumes instead of losing")
	fs.Int64Var(&run.Redis.StreamMaxLen, "stream-maxlen", bridge.DefaultStreamMaxLen, "with --transport=streams: cap each stream at about this many entries (XADD MAXLEN ~; -1: no cap)")
}

// transportValue is --transport: pubsub or streams.
type transportValue bridge.Transport

// Set reads pubsub or streams.
func (v *transportValue) Set(s string) error {
	switch t := bridge.Transport(s); t {
	case bridge.TransportPubSub, bridge.TransportStreams:
		*v = transportValue(t)
		return nil
	}
	return errors.New("want pubsub or streams")
}

// String is what --help shows as the default.
func (v *transportValue) String() string {
	return string(cmp.Or(bridge.Transport(*v), bridge.TransportPubSub))
}

// Type names the value in --help.
func (v *transportValue) Type() string { return "pubsub|streams" }

// pubsubValue is --pubsub: classic or sharded.
type pubsubValue bridge.PubSubMode

// Set reads classic or sharded; the library's classic is its zero value.
func (p *pubsubValue) Set(s string) error {
	switch s {
	case "classic":
		*p = pubsubValue(bridge.PubSubClassic)
	case "sharded":
		*p = pubsubValue(bridge.PubSubSharded)
	default:
		return errors.New("want classic or sharded")
	}
	return nil
}

// String is what --help shows as the default.
func (p *pubsubValue) String() string { return bridge.PubSubMode(*p).String() }

// Type names the value in --help.
func (p *pubsubValue) Type() string { return "classic|sharded" }

// checkClusterFlags refuses a cluster shape given without --redis=cluster,
// and a 0 that would read as the default.
func checkClusterFlags(prov provision.Options) error {
	switch {
	case prov.ClusterReplicas == 0:
		return errors.New("--cluster-replicas 0 reads as the default: give -1 for no replicas")
	case prov.Mode != provision.Cluster && (prov.ClusterMasters != provision.DefaultClusterMasters ||
		prov.ClusterReplicas != provision.DefaultClusterReplicas):
		return errors.New("--cluster-masters and --cluster-replicas apply to --redis=cluster")
	}
	return nil
}

// placementValue is --placement: single or spread.
type placementValue harness.Placement

// Set reads single or spread; the library's single is its zero value.
func (p *placementValue) Set(s string) error {
	switch s {
	case "single":
		*p = placementValue(harness.PlacementSingle)
	case "spread":
		*p = placementValue(harness.PlacementSpread)
	default:
		return errors.New("want single or spread")
	}
	return nil
}

// String is what --help shows as the default.
func (p *placementValue) String() string {
	if *p == placementValue(harness.PlacementSingle) {
		return "single"
	}
	return string(*p)
}

// Type names the value in --help.
func (p *placementValue) Type() string { return "single|spread" }

// rateValue is the --rate flag: events per second, or "max". It sets two
// fields of the config, which is why it wraps the whole Config rather than
// a float.
type rateValue harness.Config

// Set reads a number of events per second, or "max", which switches the
// closed loop on instead of setting a rate.
func (r *rateValue) Set(s string) error {
	if s == "max" {
		r.MaxRate = true
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return errors.New("want events per second (a number) or max")
	}
	r.Rate, r.MaxRate = v, false
	return nil
}

// String is what --help shows as the default.
func (r *rateValue) String() string {
	if r.MaxRate {
		return "max"
	}
	return strconv.FormatFloat(r.Rate, 'g', -1, 64)
}

// Type names the value in --help.
func (r *rateValue) Type() string { return "events/s|max" }

// durationValue is a pflag.Value that takes Go durations ("30s", "1m") or,
// like the seed's tool, a bare number of seconds ("30", "2.5"); as a
// threshold (newLimitValue), also -1 for no check.
type durationValue struct {
	d     *time.Duration
	parse func(string) (time.Duration, error)
}

// newDurationValue is a duration flag whose default is def.
func newDurationValue(def time.Duration, p *time.Duration) *durationValue {
	*p = def
	return &durationValue{p, scenarios.ParseDuration}
}

// sizeValue is --payload-size: N bytes, or MIN-MAX.
// maxRepeat bounds --repeat: each repetition is a whole run, held whole
// in the report.
const maxRepeat = 100

// percentValue is a percentage flag: "5" or "5%", or -1 for "none".
type percentValue struct{ p *float64 }

func (v percentValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64) + "%"
}

func (v percentValue) Set(s string) error {
	f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil {
		return fmt.Errorf("want a percentage such as 5 or 5%%, got %q", s)
	}
	*v.p = f
	return nil
}

func (v percentValue) Type() string { return "percent" }

type sizeValue struct{ min, max *int }

// Set reads "512" or "100-4096".
func (v *sizeValue) Set(s string) error {
	lo, hi, ranged := strings.Cut(strings.TrimSpace(s), "-")
	a, err := strconv.Atoi(lo)
	b := a
	if err == nil && ranged {
		b, err = strconv.Atoi(hi)
	}
	if err != nil || a < 1 || b < a {
		return errors.New("want a size in bytes like 512, or a range like 100-4096")
	}
	*v.min, *v.max = a, 0
	if b > a {
		*v.max = b
	}
	return nil
}

func (v *sizeValue) String() string {
	switch {
	case v.min == nil || *v.min == 0:
		return ""
	case *v.max > *v.min:
		return fmt.Sprintf("%d-%d", *v.min, *v.max)
	}
	return strconv.Itoa(*v.min)
}

// Type names the value in --help.
func (v *sizeValue) Type() string { return "bytes" }

// parseWindow reads --batch-window: a positive duration, or -1 for none
// (harness.NoBatching).
func parseWindow(s string) (time.Duration, error) {
	if strings.TrimSpace(s) == "-1" {
		return harness.NoBatching, nil
	}
	d, err := scenarios.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive duration like 250us, or -1 for none")
	}
	return d, nil
}

// newLimitValue is a duration threshold: a positive duration, or -1 for
// no check (verdict.NoCheck); scenarios.ParseLimit says which.
func newLimitValue(def time.Duration, p *time.Duration) *durationValue {
	*p = def
	return &durationValue{p, scenarios.ParseLimit}
}

// Set parses with the flag's own rule, so that an error names what the
// flag accepts.
func (d *durationValue) Set(s string) error {
	v, err := d.parse(s)
	if err != nil {
		return err
	}
	*d.d = v
	return nil
}

// String shows -1 as -1 rather than -1ns: the value a user types for
// "no check".
func (d *durationValue) String() string {
	if *d.d == verdict.NoCheck {
		return "-1"
	}
	return d.d.String()
}

// Type names the value in --help.
func (d *durationValue) Type() string { return "duration" }

// printUsage writes --help: what the tool does, examples first (most
// envPrefix starts the environment variable of every flag of a run:
// REDISLOAD_INSTANCES for --instances, as k6 reads K6_VUS.
const envPrefix = "REDISLOAD_"

// envName is the environment variable of a flag.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// noEnv are the flags an environment variable does not set: asking for
// help or the version is the command line's alone, and
// $REDISLOAD_CONTROL_URL is the worker's (see controlEnv): set where
// workers run, it must not turn a plain run into a refused one.
var noEnv = map[string]bool{"help": true, "version": true, "control-url": true}

// applyEnv sets each flag not given on the command line from its
// environment variable, when that is set: a Job's or a CI step's
// configuration without a long command line. The command line wins; a
// bad value is refused naming the variable. Set this way, a flag counts as
// given (it overrides a scenario, as the flag would).
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || noEnv[f.Name] {
			return
		}
		if v, ok := lookup(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("$%s: %v", envName(f.Name), e)
			}
		}
	})
	return err
}

// readers want one to copy), then every flag and the exit codes.
func printUsage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, `redisload: load and latency test for Redis pub/sub event fan-out.

Runs N in-process event-bridge instances (each a publisher and a subscriber
connection with a unique ID) against one Redis, publishes randomized
market-data events at a fixed total rate from randomly chosen instances,
and checks that every other instance received each one, once, quickly.

Usage:
  redisload [flags]                           a load run, judged by a verdict
  redisload scenarios                         list the named scenarios
  redisload compare OLD.json NEW.json         two saved reports side by side (--help for its flags)
  redisload report RESULT.json                a saved report rendered again, in any format (--help)
  redisload capacity [flags]                  step the load up to the knee (--help for its flags)
  redisload worker [flags]                    run instances of runs announced on a control Redis (--help)
  redisload completion bash|zsh|fish          a shell completion script (source <(redisload completion bash))
  redisload version                           the version (also --version, and in every report)
  redisload clients [flags]                   every client library's adapter through every failover (--help)
  redisload cleanup [flags]                   remove what crashed streams runs left (--help)
  redisload help                              this text (also --help)
  redisload help TOPIC                        a page of the documentation, one of:
%s

Examples:
  redisload                                   # 3 instances, 20s, 10 events/s
  redisload --instances=5 --duration=30s --verbose
  redisload --rate=5000 --event-types=all --max-p99-latency=20ms
  redisload --redis-url=redis://:secret@redis.internal:6379 --format=json -o result.json
  redisload --seed=42 --matrix                # reproduce a run's events
  redisload --scenario=stress --rate=50       # a preset, with the rate overridden
  redisload --scenario=restart                # a fault: the server restarts mid-run
  redisload --baseline=good.json --json-out=new.json --html=report.html

%s
Environment:
  Every flag above can be set as REDISLOAD_<FLAG>, upper case, "_" for "-"
  (REDISLOAD_INSTANCES=50, REDISLOAD_MAX_P99_LATENCY=20ms,
  REDISLOAD_EVENT_TYPES=all); the command line wins. Also REDIS_URL (the
  default of --redis-url) and REDIS_PASSWORD (never on the command line);
  REDISLOAD_CONTROL_URL is "redisload worker"'s.

Exit codes:
  0 pass   1 a check failed   2 bad usage   3 Redis unreachable or set-up failed
  4 the run finished but a report could not be written
  130 interrupted (the partial report is printed first)
`, wrapList(docs.Topics(), "      ", 78), groupedUsages(fs, runGroups))
}
