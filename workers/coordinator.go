package workers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
)

// CoordinatorOptions configure a coordinator. Workers must be set.
type CoordinatorOptions struct {
	// Workers is how many worker processes run the instances.
	Workers int
	// JoinTimeout bounds the wait for them to join.
	// default: 30s
	JoinTimeout time.Duration
	// RunID names the run; spawned workers are given it.
	// default: random
	RunID string
	// Announce puts the run's places in the list any worker takes from;
	// workers that were given the run ID do not need it.
	// default: false
	Announce bool
	// Version is this coordinator's; a worker of another is refused.
	Version string
	// Log, when set, is told what the coordinator does.
	Log func(format string, a ...any)
}

// ErrLost wraps the failure of a run that could not start because a
// worker was lost or never came.
var ErrLost = errors.New("workers: worker lost")

// member is a joined worker and what it reported.
type member struct {
	joinMsg
	lo, hi    int
	ready     bool
	published []uint64
	result    *resultMsg
	lost      string
}

// NewRunID returns a random run ID.
func NewRunID() string { return fmt.Sprintf("%08x", rand.Uint32()) }

// Coordinate runs cfg over o.Workers worker processes joined through the
// control Redis ctl, and returns the merged Result: the same accounting a
// single process would report, plus a report per worker. A worker that
// dies or stops answering once the run has started costs its instances
// (counted as not connected, with nothing received) and the run goes on
// to its end in bounded time; one lost before the start aborts the run
// with an error wrapping ErrLost. Every key it made is deleted when it
// returns.
func Coordinate(ctx context.Context, ctl *redis.Client, cfg harness.Config, o CoordinatorOptions) (*harness.Result, error) {
	cfg = cfg.WithDefaults()
	for cfg.Seed == 0 {
		cfg.Seed = rand.Uint64() // every worker draws the same schedule from it
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case o.Workers < 1 || o.Workers > cfg.Instances:
		return nil, fmt.Errorf("workers: %d workers for %d instances: want 1 to the instances", o.Workers, cfg.Instances)
	}
	if o.JoinTimeout == 0 {
		o.JoinTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	runID := cmp.Or(o.RunID, NewRunID())
	k := keys(runID)
	place := `"` + runID + `"` // a place in the slots list, as JSON
	// Times the coordinator announces are on the server's clock.
	offset, _ := clockOffset(ctx, ctl)
	spec := SpecOf(cfg, runID, o.Version)
	spec.NotBeforeUnixNano -= int64(offset)
	spec.Workers = o.Workers
	var key bridge.TagKey
	if !cfg.DisableTags {
		var err error
		if key, err = bridge.NewTagKey(); err != nil {
			return nil, err
		}
	}
	// The server is described, and its counters read, by the coordinator:
	// one reader for the run, as in a single process.
	probe, err := harness.NewProbe(cfg.Redis)
	if err != nil {
		return nil, err
	}
	defer probe.Close()
	server := probe.Describe(ctx)
	server.StatsBefore = probe.Stats(ctx)
	statsRead := time.Now()
	// Over streams, what the streams hold before any worker subscribes;
	// the end takes out what the run added, also when the run fails.
	streams, err := probe.StartStreams(ctx, cfg, runID)
	if err != nil {
		return nil, err
	}
	var res *harness.Result
	var parts []harness.PartState
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		streams.Finish(cctx, res, cfg, parts)
	}()

	var members []*member
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var ids []string
		for _, m := range members {
			ids = append(ids, m.ID)
		}
		_ = ctl.Del(cctx, k.all(ids)...).Err()
		_ = ctl.LRem(cctx, slotsKey, 0, place).Err()
	}()
	if o.Announce {
		places := make([]any, o.Workers)
		for i := range places {
			places[i] = place
		}
		if err := ctl.RPush(ctx, slotsKey, places...).Err(); err != nil {
			return nil, fmt.Errorf("workers: control Redis: %w", err)
		}
	}
	abort := func(reason string) {
		actx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, m := range members {
			_ = push(actx, ctl, k.to(m.ID), toWorker{Type: "abort", Reason: reason})
		}
	}

	// Join: the first o.Workers of this version.
	jctx, cancel := context.WithTimeout(ctx, o.JoinTimeout)
	for len(members) < o.Workers {
		var j joinMsg
		if err := pop(jctx, ctl, k.joined(), &j, nil); err != nil {
			cancel()
			abort("the run did not start: too few workers")
			return nil, fmt.Errorf("%w: %d of %d workers joined within %v (%v)", ErrLost, len(members), o.Workers, o.JoinTimeout, err)
		}
		if j.Version != o.Version {
			why := fmt.Sprintf("worker %s on %s runs redisload %s, the coordinator %s", j.ID, j.Host, j.Version, o.Version)
			o.Log("refused: %s", why)
			_ = push(ctx, ctl, k.to(j.ID), toWorker{Type: "refuse", Reason: why})
			continue
		}
		members = append(members, &member{joinMsg: j})
	}
	cancel()
	for w, m := range members {
		m.lo, m.hi = w*cfg.Instances/o.Workers, (w+1)*cfg.Instances/o.Workers
		msg := toWorker{Type: "assign", Spec: &spec, Lo: m.lo, Hi: m.hi}
		if !cfg.DisableTags {
			msg.TagKey = &key
		}
		if err := push(ctx, ctl, k.to(m.ID), msg); err != nil {
			return nil, fmt.Errorf("workers: control Redis: %w", err)
		}
		o.Log("worker %s (%s): instances %d to %d", m.ID, m.Host, m.lo, m.hi-1)
	}

	// The live status line, when asked for, from the workers' intervals.
	relay := newProgressRelay(ctl, k.progress(), cfg)
	// alive checks the heartbeats of the members still owing a message,
	// and shows the progress made meanwhile.
	alive := func(key string, owing func(*member) bool) func() error {
		return func() error {
			defer relay.poll(ctx, members)
			for _, m := range members {
				if m.lost != "" || !owing(m) {
					continue
				}
				if n, err := ctl.Exists(ctx, k.hb(m.ID)).Result(); err == nil && n == 0 {
					// A worker that has said its last deletes its heartbeat:
					// its message may have landed just after the wait for
					// it timed out, and is then still to be taken.
					if l, err := ctl.LLen(ctx, key).Result(); err == nil && l > 0 {
						continue
					}
					m.lost = fmt.Sprintf("worker %s on %s lost: no heartbeat for %v", m.ID, m.Host, heartbeatTTL)
					o.Log("%s", m.lost)
				}
			}
			return nil
		}
	}
	// collect pops messages from key until every member not lost has
	// given one (got says so), within ctx.
	collect := func(ctx context.Context, key string, owing func(*member) bool, take func(data []byte) error) error {
		check := alive(key, owing)
		for slices.ContainsFunc(members, func(m *member) bool { return m.lost == "" && owing(m) }) {
			var raw rawMsg
			if err := pop(ctx, ctl, key, &raw, check); err != nil {
				return err
			}
			if err := take(raw); err != nil {
				return err
			}
		}
		return nil
	}
	byID := func(id string) *member {
		for _, m := range members {
			if m.ID == id {
				return m
			}
		}
		return nil
	}

	// Ready: every worker connected and subscribed, or no run.
	rctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+10*time.Second)
	var uncertainties []time.Duration
	err = collect(rctx, k.ready(), func(m *member) bool { return !m.ready }, func(data []byte) error {
		var r readyMsg
		if err := jsonUnmarshal(data, &r); err != nil {
			return err
		}
		if m := byID(r.ID); m != nil && !m.ready {
			m.ready = true
			uncertainties = append(uncertainties, time.Duration(r.UncertaintyNs))
		}
		return nil
	})
	cancel()
	if err == nil {
		for _, m := range members {
			if m.lost != "" {
				err = errors.New(m.lost)
			}
		}
	}
	if err != nil {
		abort("the run did not start")
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: before the start: %v (each worker connects within %v)", ErrLost, err, cfg.ConnectTimeout)
	}
	// The start, on the server's clock: every worker converts it to its
	// own. Two corrected clocks disagree by up to the sum of their
	// uncertainties (TIME's microseconds count on each side).
	start := time.Now().Add(250*time.Millisecond - offset) // time for the "go" to reach everybody
	slices.Sort(uncertainties)
	tolerance := 2 * time.Microsecond
	for _, u := range uncertainties[max(len(uncertainties)-2, 0):] {
		tolerance += u
	}
	for _, m := range members {
		_ = push(ctx, ctl, k.to(m.ID), toWorker{Type: "go", StartUnixNano: start.UnixNano(), ToleranceNs: int64(tolerance)})
	}
	o.Log("all %d workers ready: publishing from %s", len(members), start.Format("15:04:05.000"))
	// Interrupted (Ctrl-C) from now on, the run stops where it is and is
	// reported as far as it went, as a run in one process is: the workers
	// see the stop key, and every later wait is bounded without ctx.
	stopped := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = ctl.Set(sctx, k.stop(), "1", time.Minute).Err()
	})
	defer stopped()
	rest := context.WithoutCancel(ctx)
	// The fault script is the coordinator's: it acts on the server, and
	// the workers' outages show what it did to them.
	stopFaults, err := harness.StartFaults(cfg, start.Add(offset), runID)
	if err != nil {
		abort("the run's faults could not start")
		return nil, err
	}

	// Published: bounded by the run's own bound on publishing.
	pctx, cancel := context.WithDeadline(rest, start.Add(cfg.Duration+harness.PublishGrace+10*time.Second))
	_ = collect(pctx, k.published(), func(m *member) bool { return m.published == nil }, func(data []byte) error {
		var p publishedMsg
		if err := jsonUnmarshal(data, &p); err != nil {
			return err
		}
		if m := byID(p.ID); m != nil && len(p.Published) == cfg.Instances {
			m.published = p.Published
		}
		return nil
	})
	cancel()
	serverFaults := stopFaults() // publishing is over: what is applied is undone before the drain
	all := make([]uint64, cfg.Instances)
	for _, m := range members {
		if m.published == nil && m.lost == "" {
			m.lost = fmt.Sprintf("worker %s on %s did not report its publishes in time", m.ID, m.Host)
		}
		for i := m.lo; i < m.hi && m.published != nil; i++ {
			all[i] = m.published[i]
		}
	}
	for _, m := range members {
		if m.lost == "" {
			_ = push(rest, ctl, k.to(m.ID), toWorker{Type: "drain", Published: all})
		}
	}

	// Results: bounded by the drain and the run's grace.
	dctx, cancel := context.WithTimeout(rest, cfg.DrainTimeout+harness.MaxGrace+10*time.Second)
	_ = collect(dctx, k.results(), func(m *member) bool { return m.result == nil }, func(data []byte) error {
		var r resultMsg
		if err := jsonUnmarshal(data, &r); err != nil {
			return err
		}
		if m := byID(r.ID); m != nil {
			m.result = &r
			if r.Error != "" {
				m.lost = fmt.Sprintf("worker %s on %s failed: %s", m.ID, m.Host, r.Error)
			}
		}
		return nil
	})
	cancel()
	relay.poll(rest, members) // the intervals up to every worker's last
	res, parts, err = merge(cfg, runID, start, members, all, mergeFaults(cfg.Faults, serverFaults, members))
	if err != nil {
		res = nil
		return nil, err
	}
	server.StatsAfter = probe.Stats(rest)
	server.NoteTraffic(time.Since(statsRead).Seconds())
	res.Server = server
	res.Interrupted = ctx.Err() != nil
	for _, m := range members {
		res.Interrupted = res.Interrupted || m.result != nil && m.result.Interrupted
	}
	return res, nil
}

// mergeFaults is the run's fault timeline: the coordinator's part of each
// fault with the workers' parts. A fault of one instance whose worker was
// lost is recorded as failed: what was done to it is not known.
func mergeFaults(script []harness.Fault, server []harness.FaultRecord, members []*member) []harness.FaultRecord {
	sides := [][]harness.FaultRecord{server}
	lost := map[int]string{}
	for _, m := range members {
		if m.result != nil && m.lost == "" {
			sides = append(sides, m.result.Faults)
			continue
		}
		for i, f := range script {
			if f.Action.InProcess() && f.Instance >= m.lo && f.Instance < m.hi {
				lost[i] = fmt.Sprintf("instance %d's worker %s was lost: what was done to it is not known", f.Instance, m.ID)
			}
		}
	}
	return harness.MergeFaultRecords(script, lost, sides...)
}

// receivedOf is, for each source in [lo, hi), the most distinct messages
// any receiver of the members still standing got from it.
func receivedOf(members []*member, n, lo, hi int) []uint64 {
	out := make([]uint64, n)
	for _, m := range members {
		if m.lost != "" || m.result == nil {
			continue
		}
		for _, r := range m.result.Part.Receivers {
			ts, err := harness.DecodeTrackers(r.Trackers)
			if err != nil {
				continue // the merge refuses this part with the reason
			}
			for j := lo; j < hi && j < len(ts); j++ {
				out[j] = max(out[j], ts[j].Unique)
			}
		}
	}
	return out
}

// rawMsg is one message, decoded by its taker.
type rawMsg []byte

// UnmarshalJSON keeps the message as it is.
func (r *rawMsg) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

// merge assembles the run's Result from its members' parts, standing in
// a LostPart for each member lost.
func merge(cfg harness.Config, runID string, start time.Time, members []*member, all []uint64, faults []harness.FaultRecord) (*harness.Result, []harness.PartState, error) {
	prefix := "redisload-" + runID + "-"
	res := &harness.Result{RunID: runID, Redis: harness.RedisLabel(cfg.Redis), KeyPrefix: cmp.Or(cfg.Redis.KeyPrefix, bridge.DefaultKeyPrefix),
		Seed: cfg.Seed, StartedAt: start.UTC(), Config: cfg.Echo(), Drained: true, Timeline: harness.Timeline{Faults: faults}}
	var parts []harness.PartState
	for _, m := range members {
		if m.lost == "" && m.result == nil {
			m.lost = fmt.Sprintf("worker %s on %s sent no result in time", m.ID, m.Host)
		}
	}
	for _, m := range members {
		r := m.result
		if m.lost != "" {
			published := m.published
			if published == nil {
				// Lost before it said what it published: what the others
				// received of it is what is known to have been accepted.
				published = receivedOf(members, cfg.Instances, m.lo, m.hi)
				m.lost += " (before reporting its publishes: counted as what the others received of them)"
			}
			lp, err := harness.LostPart(cfg.Instances, m.lo, m.hi, published, prefix, m.lost)
			if err != nil {
				return nil, nil, err
			}
			parts = append(parts, lp)
			res.Drained = false
			continue
		}
		parts = append(parts, r.Part)
		res.ConnectSeconds = max(res.ConnectSeconds, r.ConnectSeconds)
		res.ElapsedSeconds = max(res.ElapsedSeconds, r.ElapsedSeconds)
		res.DrainSeconds = max(res.DrainSeconds, r.DrainSeconds)
		res.Drained = res.Drained && r.Drained
	}
	if res.ElapsedSeconds == 0 {
		res.ElapsedSeconds = cfg.Duration.Seconds()
	}
	if err := harness.MergeParts(res, cfg, start, parts); err != nil {
		return nil, nil, err
	}
	for _, m := range members {
		w := harness.WorkerReport{ID: m.ID, Host: m.Host, PID: m.PID, Lo: m.lo, Hi: m.hi, Lost: m.lost}
		if r := m.result; r != nil {
			w.CPUSeconds, w.RSSBytes, w.CPUs = r.CPUSeconds, r.RSSBytes, r.CPUs
			w.ClockOffsetUs, w.ClockUncertaintyUs = r.ClockOffsetUs, r.ClockUncertaintyUs
		}
		for _, ir := range res.Instances[m.lo:m.hi] {
			w.Published += ir.Published
			w.Delivered += ir.Delivered
		}
		res.Workers = append(res.Workers, w)
		if m.lost != "" {
			res.Warnings = append(res.Warnings, m.lost+fmt.Sprintf(": its instances %d to %d are counted as not connected, with nothing received", m.lo, m.hi-1))
		}
	}
	return res, parts, nil
}
