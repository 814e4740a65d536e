package workers

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/rusage"
)

// WorkerOptions configure a worker. The zero value joins any announced
// run, once, against the control Redis itself.
type WorkerOptions struct {
	// Redis is the server under test, with its credentials.
	// default: the control Redis's address (see Serve)
	Redis bridge.Options
	// RunID, when set, joins that run without taking an announced place:
	// the coordinator that spawned this worker names it.
	// default: "" (take the next announced place)
	RunID string
	// JoinTimeout bounds each wait for the coordinator: for a run to be
	// announced, and between the steps of one.
	// default: 30s
	JoinTimeout time.Duration
	// Version is this worker's version; the coordinator refuses a worker
	// of another.
	Version string
	// Log, when set, is told what the worker does, one line at a time.
	Log func(format string, a ...any)
	// Once returns after one run; otherwise the worker joins runs until
	// ctx ends.
	Once bool
	// ClockSkew makes this worker's clock seem off by this much, for the
	// tests of clock correction; 0 outside tests.
	ClockSkew time.Duration
}

// Serve joins runs announced on the control Redis ctl and runs its share
// of each, until ctx ends (or after one run, with Once). A run it cannot
// serve is reported to its coordinator, and the worker goes on.
func Serve(ctx context.Context, ctl *redis.Client, o WorkerOptions) error {
	if o.JoinTimeout == 0 {
		o.JoinTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	for {
		err := serveOne(ctx, ctl, o)
		switch {
		case ctx.Err() != nil:
			return nil
		case o.Once:
			return err
		case err != nil:
			o.Log("run abandoned: %v", err)
		}
	}
}

// serveOne joins one run and serves it.
func serveOne(ctx context.Context, ctl *redis.Client, o WorkerOptions) error {
	runID := o.RunID
	if runID == "" {
		jctx, cancel := context.WithTimeout(ctx, o.JoinTimeout)
		var slot string
		err := pop(jctx, ctl, slotsKey, &slot, nil)
		cancel()
		if err != nil {
			return fmt.Errorf("workers: no run announced within %v: %w", o.JoinTimeout, err)
		}
		runID = slot
	}
	k := keys(runID)
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.Uint32()&0xffff)
	o.Log("joining run %s as %s", runID, id)

	// The heartbeat says "alive" to the coordinator until this returns.
	hbCtx, stopHB := context.WithCancel(context.Background())
	var hb sync.WaitGroup
	hb.Go(func() { heartbeat(hbCtx, ctl, k.hb(id)) })
	defer func() { stopHB(); hb.Wait(); _ = ctl.Del(context.Background(), k.hb(id)).Err() }()

	if err := push(ctx, ctl, k.joined(), joinMsg{ID: id, Host: host, PID: os.Getpid(), Version: o.Version}); err != nil {
		return err
	}
	// next waits for the coordinator's next message, within ctx and the
	// join timeout.
	next := func(ctx context.Context, want string) (toWorker, error) {
		wctx, cancel := context.WithTimeout(ctx, o.JoinTimeout)
		defer cancel()
		var m toWorker
		if err := pop(wctx, ctl, k.to(id), &m, nil); err != nil {
			return m, fmt.Errorf("workers: waiting for %q from the coordinator: %w", want, err)
		}
		switch {
		case m.Type == "refuse" || m.Type == "abort":
			return m, fmt.Errorf("workers: the coordinator %sd this worker: %s", m.Type, m.Reason)
		case m.Type != want:
			return m, fmt.Errorf("%w: got %q, want %q", ErrProtocol, m.Type, want)
		}
		return m, nil
	}
	a, err := next(ctx, "assign")
	if err != nil {
		return err
	}
	if a.Spec == nil || a.Spec.RunID != runID {
		return fmt.Errorf("%w: an assignment without its run's spec", ErrProtocol)
	}
	var key bridge.TagKey
	if !a.Spec.DisableTags {
		if a.TagKey == nil || a.TagKey.IsZero() {
			return fmt.Errorf("%w: an assignment without the run's tag key", ErrProtocol)
		}
		key = *a.TagKey
	}
	redisOpts := o.Redis
	if redisOpts.URL == "" && redisOpts.Addr == "" {
		redisOpts.Addr = ctl.Options().Addr
	}
	cfg := a.Spec.Config(redisOpts)
	o.Log("instances %d to %d of %d", a.Lo, a.Hi-1, a.Spec.Instances)
	cpuBefore, _ := rusage.Self() // a worker serving runs in turn reports each run's own CPU
	// The coordinator interrupted (Ctrl-C) sets the run's stop key: the
	// run stops publishing and draining at once and reports what it has.
	runCtx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	var watch sync.WaitGroup
	defer watch.Wait()
	watchStop := func() {
		watch.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					if n, err := ctl.Exists(runCtx, k.stop()).Result(); err == nil && n > 0 {
						interrupt()
						return
					}
				}
			}
		})
	}
	offset, uncertainty := clockOffset(ctx, ctl)
	offset += o.ClockSkew // as the skewed clock would have measured it
	share := harness.Share{Lo: a.Lo, Hi: a.Hi, RunID: runID, TagKey: key, NotBeforeNs: a.Spec.NotBeforeUnixNano,
		ClockOffset: offset, ClockSkew: o.ClockSkew, Faults: a.Spec.Faults,
		Ready: func(ctx context.Context) (harness.Go, error) {
			if err := push(ctx, ctl, k.ready(), readyMsg{ID: id, UncertaintyNs: int64(uncertainty)}); err != nil {
				return harness.Go{}, err
			}
			m, err := next(ctx, "go")
			if err == nil {
				watchStop()
			}
			return harness.Go{Start: time.Unix(0, m.StartUnixNano), Tolerance: time.Duration(m.ToleranceNs)}, err
		},
		Published: func(ctx context.Context, mine []uint64) ([]uint64, error) {
			if err := push(ctx, ctl, k.published(), publishedMsg{ID: id, Published: mine}); err != nil {
				return nil, err
			}
			// ctx here outlives an interruption: the counts are owed.
			m, err := next(ctx, "drain")
			return m.Published, err
		},
		Acks: func(ctx context.Context, mine []uint64) ([]uint64, error) {
			return exchangeAcks(ctx, ctl, k, id, a.Spec.Workers, mine)
		}}
	if a.Spec.Progress {
		// From the share's sampler goroutine, once a second: a slow
		// control Redis costs a point of the live view, never the run.
		k0 := 0
		share.Progress = func(raw harness.SeriesRaw) {
			pctx, cancel := context.WithTimeout(runCtx, 500*time.Millisecond)
			defer cancel()
			_ = push(pctx, ctl, k.progress(), progressMsg{ID: id, K: k0, Raw: raw})
			k0++
		}
	}
	res, runErr := harness.RunShare(runCtx, cfg, share)
	interrupt() // ends the stop watch
	msg := resultMsg{ID: id, ClockOffsetUs: offset.Microseconds(), ClockUncertaintyUs: uncertainty.Microseconds()}
	cpu, rss := rusage.Self()
	msg.CPUSeconds, msg.RSSBytes, msg.CPUs = (cpu - cpuBefore).Seconds(), rss, runtime.NumCPU()
	if runErr != nil {
		msg.Error = runErr.Error()
	} else {
		msg.Part, msg.StartUnixNano, msg.Drained, msg.Interrupted = res.Part, res.Start.UnixNano(), res.Drained, res.Interrupted
		msg.Faults = res.Faults
		msg.ConnectSeconds, msg.ElapsedSeconds, msg.DrainSeconds = res.ConnectSeconds, res.ElapsedSeconds, res.DrainSeconds
	}
	// Reported even when ctx has ended: the coordinator is owed an answer.
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := push(rctx, ctl, k.results(), msg); err != nil {
		return errors.Join(runErr, err)
	}
	o.Log("run %s done", runID)
	return runErr
}

// heartbeat renews key until ctx ends.
func heartbeat(ctx context.Context, c *redis.Client, key string) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		_ = c.Set(ctx, key, strconv.FormatInt(time.Now().UnixNano(), 10), heartbeatTTL).Err()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clockOffset estimates this host's clock minus the Redis server's, from
// the TIME sample with the shortest round trip of several, and its
// uncertainty, half that round trip.
func clockOffset(ctx context.Context, c *redis.Client) (offset, uncertainty time.Duration) {
	best := time.Duration(-1)
	for range 16 {
		t0 := time.Now()
		st, err := c.Time(ctx).Result()
		t1 := time.Now()
		if err != nil {
			return 0, 0
		}
		if rtt := t1.Sub(t0); best < 0 || rtt < best {
			best = rtt
			offset = t0.Add(rtt / 2).Sub(st)
		}
	}
	return offset, best / 2
}

// exchangeAcks posts this worker's receipts (field id of the run's acks
// hash, 8 bytes a source) and returns, per source, the least of the other
// workers': the closed loop's back-pressure across processes. A worker
// that has not posted yet holds every source at 0: until all workers have,
// nothing is acknowledged.
func exchangeAcks(ctx context.Context, ctl *redis.Client, k keys, id string, workers int, mine []uint64) ([]uint64, error) {
	buf := make([]byte, 8*len(mine))
	for j, v := range mine {
		binary.LittleEndian.PutUint64(buf[8*j:], v)
	}
	pipe := ctl.Pipeline()
	pipe.HSet(ctx, k.acks(), id, buf)
	all := pipe.HGetAll(ctx, k.acks())
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]uint64, len(mine))
	if len(all.Val()) < workers {
		return out, nil // someone has not said yet: hold every source
	}
	for j := range out {
		out[j] = ^uint64(0)
	}
	for who, v := range all.Val() {
		if who == id || len(v) != len(buf) {
			continue
		}
		for j := range out {
			out[j] = min(out[j], binary.LittleEndian.Uint64([]byte(v[8*j:])))
		}
	}
	return out, nil
}
