package main

// The worker subcommand, and the run's side of a run split over worker
// processes: --workers (workers that join from anywhere), --spawn-workers
// (worker processes of this machine, started and stopped here).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/workers"
)

// controlEnv names the control Redis's URL in a worker's environment: a
// URL may hold a password, which must not be in the process list.
const controlEnv = "REDISLOAD_CONTROL_URL"

// workerOptions are what `redisload worker`'s flags set.
type workerOptions struct {
	controlURL, redisURL, runID string
	once, verbose               bool
	joinTimeout                 time.Duration
}

// newWorkerFlagSet declares `redisload worker`'s flags on o: the command
// parses them, and the completion scripts list them.
func newWorkerFlagSet(o *workerOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("redisload worker", pflag.ContinueOnError)
	fs.StringVar(&o.controlURL, "control-url", os.Getenv(controlEnv), "the control Redis where runs are announced (default $"+controlEnv+", else the Redis under test)")
	fs.StringVar(&o.redisURL, "redis-url", os.Getenv("REDIS_URL"), "the Redis under test (default $REDIS_URL, else the control Redis)")
	fs.StringVar(&o.runID, "run-id", "", "join this run instead of the next one announced (as --spawn-workers does)")
	fs.BoolVar(&o.once, "once", false, "exit after one run (for a Kubernetes Job)")
	fs.DurationVar(&o.joinTimeout, "join-timeout", 30*time.Second, "how long to wait for a run, and for each step of one")
	fs.BoolVar(&o.verbose, "verbose", false, "say each step of each run (errors are said anyway)")
	return fs
}

// runWorker is `redisload worker`: join runs announced on the control
// Redis and run their shares.
func runWorker(ctx context.Context, args []string, stderr io.Writer) int {
	var o workerOptions
	fs := newWorkerFlagSet(&o)
	fs.SetOutput(stderr)
	usageErr := usageErrors(stderr, "redisload worker")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: redisload worker --control-url URL [--once]\n\nJoins load tests announced by `redisload --workers N` on the control Redis\nand runs the instances the coordinator assigns.")
		fmt.Fprintln(stderr)
		fmt.Fprint(stderr, groupedUsages(fs, workerGroups))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitPass
		}
		return exitUsage
	}
	controlURL, redisURL, runID, once, verbose, joinTimeout := o.controlURL, o.redisURL, o.runID, o.once, o.verbose, o.joinTimeout
	controlURL = cmp.Or(controlURL, redisURL)
	redisURL = cmp.Or(redisURL, controlURL)
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q (flags only)", fs.Arg(0))
	case controlURL == "":
		return usageErr("--control-url (or $%s, or $REDIS_URL) is needed", controlEnv)
	case joinTimeout <= 0:
		return usageErr("--join-timeout must be positive")
	}
	ctl, err := controlClient(controlURL)
	if err != nil {
		return usageErr("--control-url: %v", err)
	}
	defer ctl.Close()
	if _, err := (bridge.Options{URL: redisURL}).RedisOptions(); err != nil {
		return usageErr("--redis-url: %v", err)
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "redisload worker: "+format+"\n", a...) }
	steps := func(string, ...any) {}
	if verbose {
		steps = logf
	}
	err = workers.Serve(ctx, ctl, workers.WorkerOptions{Redis: bridge.Options{URL: redisURL}, RunID: runID, Once: once,
		JoinTimeout: joinTimeout, Version: toolVersion(), Log: steps})
	switch {
	case ctx.Err() != nil:
		return exitInterrupted
	case err != nil:
		logf("%v", err)
		return exitUnavailable
	}
	return exitPass
}

// controlClient is a client of the control Redis, with the URL's
// credentials and TLS, and no retries: the protocol's waits are its own.
func controlClient(url string) (*redis.Client, error) {
	ro, err := (bridge.Options{URL: url}).RedisOptions()
	if err != nil {
		return nil, err
	}
	ro.MaxRetries = -1
	ro.ReadTimeout = 5 * time.Second
	ro.ContextTimeoutEnabled = false // BLPOP blocks longer than any read timeout
	return redis.NewClient(ro), nil
}

// spawned are the worker processes this run started.
type spawned struct {
	cmds []*exec.Cmd
	done []chan struct{}
}

// spawnWorkers starts n `redisload worker --once --run-id <runID>`
// processes of this binary, with the URLs in their environment.
// With runID empty they serve announced runs until stopped (a capacity
// sweep's steps), instead of the one run.
func spawnWorkers(n int, runID, redisURL, controlURL string, joinTimeout time.Duration, verbose bool, stderr io.Writer) (*spawned, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s := &spawned{}
	args := []string{"worker", "--join-timeout", joinTimeout.String(), "--verbose=" + strconv.FormatBool(verbose)}
	if runID != "" {
		args = append(args, "--once", "--run-id", runID)
	}
	for range n {
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), "REDIS_URL="+redisURL, controlEnv+"="+controlURL)
		cmd.SysProcAttr = workerAttr()
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			s.stop(0)
			return nil, fmt.Errorf("start worker: %w", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		s.cmds, s.done = append(s.cmds, cmd), append(s.done, done)
	}
	return s, nil
}

// terminate asks the workers to stop (SIGTERM: they end their run and
// exit), then stops them as stop does.
func (s *spawned) terminate(grace time.Duration) {
	for _, cmd := range s.cmds {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	s.stop(grace)
}

// stop waits up to grace for the workers to exit, then kills those left,
// and reaps them all: nothing is left running.
func (s *spawned) stop(grace time.Duration) {
	deadline := time.After(grace)
	for i, cmd := range s.cmds {
		select {
		case <-s.done[i]:
			continue
		case <-deadline:
		}
		_ = cmd.Process.Kill()
		<-s.done[i]
	}
}

// coordinate runs the load over worker processes: spawned here, or
// joining through the control Redis.
func (o *options) coordinate(ctx context.Context, redisURL string, stderr io.Writer) (*harness.Result, error) {
	controlURL := cmp.Or(o.controlURL, redisURL)
	ctl, err := controlClient(controlURL)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	// The workers' stderr and the coordinator's lines meet here: whole
	// writes, one at a time.
	stderr = &syncWriter{w: stderr}
	n := o.workers
	runID := workers.NewRunID()
	if o.spawnWorkers > 0 {
		n = o.spawnWorkers
		// The children read the URLs from their environment, never their
		// arguments, with the password the run took from its own.
		ctlURL := controlURL
		if o.controlURL == "" { // the Redis under test, with its password
			ctlURL = withPassword(controlURL, o.cfg.Redis)
		}
		sp, err := spawnWorkers(n, runID, withPassword(redisURL, o.cfg.Redis), ctlURL, o.joinTimeout, o.verbose, stderr)
		if err != nil {
			return nil, err
		}
		// They exit after their run; a worker still running then (the
		// coordinator failed first) is killed.
		defer sp.stop(5 * time.Second)
	}
	logf := func(string, ...any) {}
	if o.verbose {
		logf = func(format string, a ...any) { fmt.Fprintf(stderr, "redisload: "+format+"\n", a...) }
	}
	fmt.Fprintf(stderr, "redisload: run %s over %d worker processes (%s)\n", runID, n, workerWording(o))
	return workers.Coordinate(ctx, ctl, o.cfg, workers.CoordinatorOptions{Workers: n, RunID: runID, Announce: o.spawnWorkers == 0,
		JoinTimeout: o.joinTimeout, Version: toolVersion(), Log: logf})
}

// workerWording says where the workers come from.
func workerWording(o *options) string {
	if o.spawnWorkers > 0 {
		return "started here"
	}
	return "joining through the control Redis: start them with `redisload worker`, --join-timeout " + o.joinTimeout.String()
}

// checkWorkerFlags refuses what does not split over workers yet.
func checkWorkerFlags(o *options) error {
	switch {
	case o.workers < 0 || o.spawnWorkers < 0:
		return errors.New("--workers and --spawn-workers must not be negative")
	case o.workers > 0 && o.spawnWorkers > 0:
		return errors.New("--workers and --spawn-workers: give one")
	case o.workers == 0 && o.spawnWorkers == 0:
		if o.controlURL != "" {
			return errors.New("--control-url applies to --workers and --spawn-workers")
		}
		return nil
	case max(o.workers, o.spawnWorkers) > o.cfg.Instances:
		return fmt.Errorf("%d workers for %d instances: at most one worker per instance", max(o.workers, o.spawnWorkers), o.cfg.Instances)
	case o.joinTimeout <= 0:
		return errors.New("--join-timeout must be positive")
	}
	if o.controlURL != "" {
		if _, err := (bridge.Options{URL: o.controlURL}).RedisOptions(); err != nil {
			return fmt.Errorf("--control-url: %v", err)
		}
	}
	return nil
}

// withPassword puts o's credentials into raw, a URL of the same server,
// when raw has none (the run took them from the environment).
func withPassword(raw string, o bridge.Options) string {
	u, err := url.Parse(raw)
	if err != nil || o.Password == "" || u.User != nil {
		return raw
	}
	u.User = url.UserPassword(o.Username, o.Password)
	return u.String()
}

// syncWriter serialises writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// sweepWorkers starts n workers for a capacity sweep, which serve its
// steps in turn, and returns the steps' runner and what stops them.
func sweepWorkers(n int, run harness.Config, joinTimeout time.Duration, stderr io.Writer) (stop func(), runner func(context.Context, harness.Config) (*harness.Result, error), err error) {
	url := withPassword(run.Redis.URL, run.Redis)
	ctl, err := controlClient(run.Redis.URL)
	if err != nil {
		return nil, nil, err
	}
	stderr = &syncWriter{w: stderr}
	sp, err := spawnWorkers(n, "", url, url, joinTimeout, false, stderr)
	if err != nil {
		_ = ctl.Close()
		return nil, nil, err
	}
	stop = func() {
		sp.terminate(5 * time.Second)
		_ = ctl.Close()
	}
	runner = func(ctx context.Context, cfg harness.Config) (*harness.Result, error) {
		return workers.Coordinate(ctx, ctl, cfg, workers.CoordinatorOptions{Workers: min(n, cfg.Instances), Announce: true,
			JoinTimeout: joinTimeout, Version: toolVersion()})
	}
	return stop, runner, nil
}
