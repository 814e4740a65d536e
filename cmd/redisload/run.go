package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/units"
	"github.com/redisload/redisload/live"
	"github.com/redisload/redisload/provision"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/scenarios"
	"github.com/redisload/redisload/verdict"
	"github.com/redisload/redisload/workers"
)

// runLoad is a load run, the default subcommand; it returns the exit
// code. The report goes to stdout (or --output) and nothing else does, so
// that `--format=json | jq` works; progress, verbose events and errors go
// to stderr.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := newFlagSet(&o)
	usageErr := usageErrors(stderr, "redisload")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	// Help and the version need nothing from the environment, and must
	// answer whatever it holds.
	if !o.help && !o.version {
		if err := applyEnv(fs, os.LookupEnv); err != nil {
			return usageErr("%v", err)
		}
	}
	// Given but empty, the URL must not fall back to auto-detection and
	// measure some other server.
	if fs.Changed("redis-url") && strings.TrimSpace(o.redisURL) == "" {
		return usageErr("--redis-url is empty: give a URL, or leave the flag out to find or start a server (--redis=auto)")
	}
	// What the flags ask for, in order of precedence: help and version
	// need nothing else; a scenario is the base the other flags override,
	// so it is applied before anything reads the config.
	switch {
	case o.help:
		printUsage(stdout, fs)
		return exitPass
	case o.version:
		fmt.Fprintln(stdout, "redisload", toolVersion())
		return exitPass
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q (flags only)", fs.Arg(0))
	case o.scenario == "list":
		width := 0
		for _, sc := range scenarios.All() {
			width = max(width, len(sc.Name))
		}
		for _, sc := range scenarios.All() {
			fmt.Fprintf(stdout, "%-*s %s\n", width, sc.Name, sc.Summary)
		}
		return exitPass
	case o.scenario != "" && o.scenarioFile != "":
		return usageErr("--scenario and --scenario-file: give one, not both")
	case o.scenario != "":
		sc, err := scenarios.Lookup(o.scenario)
		if err != nil {
			return usageErr("--scenario: %v", err)
		}
		o.applyScenario(fs, sc)
	case o.scenarioFile != "":
		sc, err := scenarios.Load(o.scenarioFile)
		if err != nil {
			return usageErr("--scenario-file: %v", err)
		}
		o.scenario = sc.Name
		o.applyScenario(fs, sc)
	}
	// A load shape decides the duration and the rate: both flags beside it
	// would say something else, and a scenario's give way to it.
	if o.stages != "" {
		if fs.Changed("duration") || fs.Changed("rate") {
			return usageErr("--stages sets the duration (their sum) and the rate (each stage's): leave out --duration and --rate")
		}
		stages, err := harness.ParseStages(o.stages)
		if err != nil {
			return usageErr("--stages: %v", err)
		}
		shaped := harness.Config{Stages: stages}.WithDefaults() // their sum and their peak
		o.cfg.Stages, o.cfg.Duration, o.cfg.Rate = stages, shaped.Duration, shaped.Rate
	}
	// Everything is checked before anything starts: a mistake costs a
	// second, not a provisioned server and a whole run.
	if err := o.complete(); err != nil {
		return usageErr("%v", err)
	}
	if err := checkPaths(o.outputPaths(), []pathFlag{{"baseline", o.baseline}, {"scenario-file", o.scenarioFile}}); err != nil {
		return usageErr("%v", err)
	}
	// The baseline is read before the run: a wrong path must not cost a
	// whole test.
	var baseline *report.Document
	var limits []verdict.RegressionLimit
	if o.baseline != "" {
		var err error
		if baseline, err = report.ReadFile(o.baseline); err != nil {
			return usageErr("--baseline: %v", err)
		}
		o.baseResult = baseline.Result // drawn beside the run in the HTML
		if limits, err = verdict.ParseRegressions(cmp.Or(o.regressions, verdict.DefaultRegressions)); err != nil {
			return usageErr("--max-regression: %v", err)
		}
	} else if o.regressions != "" {
		return usageErr("--max-regression needs --baseline (or use redisload compare)")
	}
	if o.baselineMismatch != "refuse" && o.baselineMismatch != "warn" {
		return usageErr("--baseline-mismatch must be refuse or warn, got %q", o.baselineMismatch)
	}
	// What can be told before the run is told before it: the load, the
	// scenario and the tool's version (the server's side is known after).
	if baseline != nil && o.baselineMismatch == "refuse" {
		pre := *baseline.Result
		pre.Config, pre.Scenario = o.cfg.WithDefaults().Echo(), o.scenario
		if code, refused := o.checkBaseline(baseline, &pre, stderr); refused {
			return code
		}
	}
	// The password comes from the environment, never a flag, so that it is
	// not in the process list; apply says where it was taken from.
	if err := o.security.apply(&o.cfg.Redis, o.redisURL, stderr); err != nil {
		return usageErr("%v", err)
	}
	// Two sockets an instance: a file limit too low would fail dial by
	// dial, halfway through connecting; say so at once instead.
	if err := checkFileLimit(o.cfg.Instances); err != nil {
		return usageErr("%v", err)
	}

	// Start every output before the run, so that a bad path fails in a
	// second rather than after the whole test. Whatever happens next, an
	// existing file is replaced only by a complete report.
	var files pendingFiles
	defer files.abort()
	outs, err := o.openOutputs(ctx, stdout, &files)
	if err != nil {
		return usageErr("%v", err)
	}
	// The profiles are files of their own, each put in place when it is
	// written, whatever becomes of the reports.
	var cpuProfile, memProfile *pendingFile
	for _, p := range []struct {
		flag, path string
		f          **pendingFile
	}{{"cpuprofile", o.cpuProfile, &cpuProfile}, {"memprofile", o.memProfile, &memProfile}} {
		if p.path == "" {
			continue
		}
		f, err := createPending(ctx, p.flag, p.path)
		if err != nil {
			return usageErr("%v", err)
		}
		defer f.abort() // after a commit, nothing
		*p.f = f
	}

	if o.verbose {
		o.cfg.EventLog = stderr // the report stays alone on stdout
	}
	// The live status line goes to stderr, never into the report; the
	// verbose event log would tear a redrawn line apart.
	// The series is always collected: the JSON then holds what a later
	// `redisload report --html` draws. Its cost (a lock per message and
	// per publish, uncontended but once a second) did not show in the
	// client's CPU per message at 3 M messages/s: 361–367 ns either way.
	o.cfg.Series = true
	finishProgress, phase := func() {}, func(string) {}
	var status func(harness.SeriesPoint)
	if tty := isTerminal(stderr); !o.quiet && !o.verbose && (tty || o.progress) {
		sl := newStatusLine(stderr, tty, o.cfg.WithDefaults().Duration, termWidth(stderr))
		status, finishProgress, phase = sl.Update, sl.Finish, sl.Phase
	}
	var series *seriesFile
	if o.seriesOut != "" {
		var err error
		if series, err = createSeriesFile(ctx, o.seriesOut); err != nil {
			return usageErr("%v", err)
		}
		defer func() { _ = series.Close() }() // on an early return; the run's end checks its error
	}
	var seriesWrite, observe func(harness.SeriesPoint)
	if series != nil {
		seriesWrite = series.Write
	}
	var exporter *live.Exporter
	if o.metricsAddr != "" {
		ln, err := listenMetrics(o.metricsAddr)
		if err != nil {
			return usageErr("--metrics-addr: %v", err)
		}
		exporter = live.NewExporter(o.cfg, map[string]string{"version": toolVersion()})
		stop := serveMetrics(ln, exporter.Handler())
		defer stop()
		fmt.Fprintf(stderr, "redisload: Prometheus metrics at http://%s/metrics\n", ln.Addr())
		observe = exporter.Observe
	}
	o.cfg.Progress = fanOut(status, seriesWrite, observe)

	// Whatever provisioning starts, this stops: on every return below, on a
	// failed verdict and on a panic alike.
	// A server started for a run over streams keeps an append-only file:
	// its restart must keep the streams, or resuming means nothing.
	o.provision.Persistent = o.cfg.Redis.Transport == bridge.TransportStreams
	inst, err := provision.Start(ctx, o.provision)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "redisload: interrupted before the run started")
			return exitInterrupted
		}
		fmt.Fprintf(stderr, "redisload: %v\n", err)
		return exitUnavailable
	}
	defer inst.Close()
	scenarios.UseDeployment(&o.cfg, inst)
	// Said before the run, on stderr: which server, why that one, and what
	// the run will do to it, so that a wrong target is caught in time.
	announce(stderr, inst, o.cfg)

	// Profiling covers the run only: provisioning and reporting are not
	// what a profile of the load generator is for.
	if cpuProfile != nil {
		if err := pprof.StartCPUProfile(cpuProfile); err != nil {
			return usageErr("--cpuprofile: %v", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			if err := cpuProfile.commit(); err != nil {
				fmt.Fprintf(stderr, "redisload: %v\n", err)
			}
		}()
	}
	var res *harness.Result
	var reps []*harness.Result
	for k := range o.repeat {
		if o.repeat > 1 {
			fmt.Fprintf(stderr, "redisload: repetition %d of %d\n", k+1, o.repeat)
		}
		var r *harness.Result
		if series != nil && o.repeat > 1 {
			series.repetition = k + 1
		}
		phase(fmt.Sprintf("connecting %s...", units.Count(o.cfg.Instances, "instance")))
		if exporter != nil {
			exporter.Phase(live.PhaseConnecting)
		}
		if o.workers > 0 || o.spawnWorkers > 0 {
			r, err = o.coordinate(ctx, o.cfg.Redis.URL, stderr)
			if errors.Is(err, workers.ErrLost) {
				finishProgress()
				fmt.Fprintf(stderr, "redisload: %v\n", err)
				return exitUnavailable
			}
		} else {
			r, err = harness.Run(ctx, o.cfg)
		}
		if err != nil {
			break
		}
		finishProgress() // each repetition ends with its own line of figures
		reps = append(reps, r)
		if r.Interrupted {
			break // what ran is reported, and the exit code says interrupted
		}
	}
	switch {
	case err != nil && len(reps) > 0 && ctx.Err() != nil:
		err = nil // interrupted between repetitions: report those that ran
		reps[len(reps)-1].Interrupted = true
		fallthrough
	case err == nil && o.repeat > 1:
		res = harness.Repeated(reps)
	case err == nil:
		res = reps[0]
	}
	finishProgress() // the report must not start on the status line
	if memProfile != nil && res != nil {
		if err := writeHeapProfile(memProfile); err != nil {
			return usageErr("--memprofile: %v", err)
		}
	}
	// Interrupted before publishing began there is nothing to report; after
	// that Run returns a partial result and the report below is printed.
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(stderr, "redisload: interrupted before the run started")
		return exitInterrupted
	case errors.Is(err, harness.ErrUnsupported), errors.Is(err, harness.ErrAdapter):
		fmt.Fprintf(stderr, "redisload: %v\n", err)
		return exitUsage
	case errors.Is(err, harness.ErrUnavailable):
		fmt.Fprintf(stderr, "redisload: %s\n", explainConnectError(bridge.RedactURL(inst.URL), err))
		return exitUnavailable
	case err != nil:
		// Anything else after provisioning is a set-up failure too (a
		// fault's proxy, the tag key), with the one code every
		// subcommand uses for it.
		fmt.Fprintf(stderr, "redisload: %v\n", err)
		return exitUnavailable
	}

	// Where the server came from is the provisioner's knowledge, not the
	// harness's; the report names it so that numbers from the embedded
	// stand-in can never pass for Redis's.
	for _, r := range append([]*harness.Result{res}, res.Repetitions...) {
		r.Server.Mode = string(inst.Mode)
		r.Server.Reason = inst.Reason
		r.Server.Embedded = inst.Mode == provision.Embedded
		r.Scenario = o.scenario
	}
	if baseline != nil {
		if code, refused := o.checkBaseline(baseline, res, stderr); refused {
			return code
		}
	}
	// The verdict is computed even for an interrupted run: the partial
	// report shows it, though the exit code says "interrupted".
	v := verdict.Evaluate(res, o.thresholds)
	if baseline != nil {
		v = v.With(verdict.RegressionChecks(baseline.Result, res, limits)...)
	}
	// The verdict is shared by every rendering, so the formats can never
	// disagree on PASS/FAIL.
	for _, out := range outs {
		if err := o.reporter(out.format, res, v)(out.w); err != nil {
			fmt.Fprintf(stderr, "redisload: writing the %s report: %v\n", out.format, err)
			return exitOutput
		}
	}
	if exporter != nil {
		exporter.Finish(res)
	}
	if series != nil {
		if err := series.Close(); err != nil {
			fmt.Fprintf(stderr, "redisload: %v\n", err)
			return exitOutput
		}
	}
	if err := o.writeHistograms(ctx, res, &files); err != nil {
		fmt.Fprintf(stderr, "redisload: %v\n", err)
		return exitOutput
	}
	// Only now do the files replace what was there: every report is
	// complete, so a reader never finds half of one.
	if err := files.commit(); err != nil {
		fmt.Fprintf(stderr, "redisload: writing the report: %v\n", err)
		return exitOutput
	}
	// An interrupted run reports, and says so in its exit code even when
	// its partial numbers pass: a CI job must not take it for a result.
	switch {
	case res.Interrupted:
		return exitInterrupted
	case !v.Passed():
		return exitFail
	}
	return exitPass
}

// announce says on stderr which server the run measures and why, before
// it starts: loudly when it is the embedded stand-in.
func announce(w io.Writer, inst *provision.Instance, c harness.Config) {
	// The password is redacted here as everywhere: this line goes to CI
	// logs.
	where := bridge.RedactURL(inst.URL)
	switch inst.Mode {
	case provision.Server:
		where = "redis-server started on " + strings.TrimPrefix(inst.URL, "redis://")
	case provision.Container:
		where = "a Redis container at " + where
	case provision.Embedded:
		where = "an EMBEDDED in-process server (miniredis) at " + strings.TrimPrefix(inst.URL, "redis://")
	case provision.Cluster:
		// Classic pub/sub: every instance on the first node, and PUBLISH
		// crosses the cluster bus to every other node.
		where = fmt.Sprintf("a local Redis Cluster of %d nodes (classic pub/sub through %s)", len(inst.Nodes),
			strings.TrimPrefix(inst.URL, "redis://"))
		switch {
		case c.Redis.Transport == bridge.TransportStreams:
			where = fmt.Sprintf("a local Redis Cluster of %d nodes (streams: each read from its slot's master; append-only files on)", len(inst.Nodes))
		case c.Redis.PubSub == bridge.PubSubSharded:
			where = fmt.Sprintf("a local Redis Cluster of %d nodes (sharded pub/sub: each instance on every shard its channels need)", len(inst.Nodes))
		case c.Placement == harness.PlacementSpread:
			where = fmt.Sprintf("a local Redis Cluster of %d nodes (classic pub/sub, the instances spread over the nodes)", len(inst.Nodes))
		}
	case provision.Sentinel:
		where = fmt.Sprintf("a local Sentinel set: master %s with a replica, %d sentinels watching %q",
			strings.TrimPrefix(inst.URL, "redis://"), len(inst.Sentinels), inst.MasterName)
	}
	switch {
	case inst.Reason != "":
		fmt.Fprintf(w, "redisload: using %s (%s)\n", where, inst.Reason)
	case inst.Mode == provision.Cluster || inst.Mode == provision.Sentinel:
		fmt.Fprintf(w, "redisload: using %s\n", where)
	}
	// Loud: auto mode may fall back to the stand-in, and a user who did
	// not ask for it must not take its numbers for Redis's.
	if inst.Mode == provision.Embedded {
		fmt.Fprintln(w, "redisload: WARNING: no real Redis server: the numbers will describe an in-process Go stand-in, not Redis")
	}
	for _, f := range c.Faults {
		fmt.Fprintf(w, "redisload: fault: %s\n", describeFault(f))
	}
	if c.MaxRate {
		fmt.Fprintf(w, "redisload: %s on %s, %v at the highest lossless rate (at most %d in flight each)...\n",
			units.Count(c.Instances, "instance"), where, c.Duration, c.MaxInFlight)
		return
	}
	rate := fmt.Sprintf("%g events/s", c.Rate)
	if len(c.Stages) > 0 {
		rate = fmt.Sprintf("stages %s (peak %g events/s)", harness.StagesText(c.Stages), c.Rate)
	}
	warm := ""
	if c.Warmup > 0 {
		warm = fmt.Sprintf(", after a %v warm-up (not measured)", c.Warmup)
	}
	fmt.Fprintf(w, "redisload: %s on %s, %v at %s (%d events)%s...\n",
		units.Count(c.Instances, "instance"), where, c.Duration, rate, c.TotalEvents(), warm)
}

// describeFault says in one line what a fault will do and when.
func describeFault(f harness.Fault) string {
	who := "the server"
	switch {
	case f.Action == harness.FaultRestart || f.Action == harness.FaultCrash || f.Action == harness.FaultHang:
	case f.Action.NeedsDeployment():
		who = "the busiest channel's master"
	case f.Instance == harness.AllInstances:
		who = "all instances"
	default:
		who = "instance " + strconv.Itoa(f.Instance)
	}
	s := fmt.Sprintf("%s of %s at %v", f.Action, who, f.At)
	if f.For > 0 {
		s += fmt.Sprintf(" for %v", f.For)
	}
	return s
}

// writeHeapProfile writes the heap profile into p and puts it in place.
// The run's result is still held, its connections closed: in use is what
// a finished run keeps; alloc_space is everything the run allocated.
func writeHeapProfile(p *pendingFile) error {
	runtime.GC() // in use as of now, not as of the last collection
	if err := pprof.WriteHeapProfile(p); err != nil {
		return err
	}
	return p.commit()
}

// checkBaseline compares this run's setup (cur) with the baseline's: each
// difference is one line on stderr, and the run is refused (exit 2) unless
// --baseline-mismatch=warn, in which case the lines become warnings of
// the report too. Regression checks across different setups would compare
// two experiments and could pass either way.
func (o *options) checkBaseline(baseline *report.Document, cur *harness.Result, stderr io.Writer) (code int, refused bool) {
	ms := verdict.Comparable(baseline.Result, cur, baseline.Version, toolVersion())
	if len(ms) == 0 {
		return 0, false
	}
	for _, m := range ms {
		fmt.Fprintf(stderr, "redisload: --baseline: %s\n", m)
	}
	if o.baselineMismatch == "warn" {
		for _, m := range ms {
			w := "set up differently from the baseline: " + m.String()
			if !slices.Contains(cur.Warnings, w) {
				cur.Warnings = append(cur.Warnings, w)
			}
		}
		return 0, false
	}
	fmt.Fprintln(stderr, "redisload: --baseline: the run is set up differently from the baseline, so a regression check would compare two experiments; record a new baseline, or pass --baseline-mismatch=warn")
	return exitUsage, true
}
