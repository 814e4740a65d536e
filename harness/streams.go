package harness

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redisload/redisload/bridge"
)

// A run over streams (bridge.TransportStreams) leaves data in Redis that a
// run over pub/sub does not: the streams, their entries and a consumer
// group per subscribing instance. The run reads what the streams gained
// and lost to MAXLEN, and takes out again what it put in: it deletes the
// streams it created, and from a stream that was there before it, only
// its own groups (its entries stay: a stream cannot give back one
// writer's entries).

// StreamsStats is a streams run's footprint in Redis.
type StreamsStats struct {
	// Streams are the run's streams, one per channel.
	Streams []string `json:"streams"`
	// MaxLen is each stream's cap (XADD MAXLEN ~); -1 for none.
	MaxLen int64 `json:"maxlen"`
	// Preexisting are the streams that existed before the run: left in
	// place, without the run's groups, with the run's entries.
	Preexisting []string `json:"preexisting,omitempty"`
	// Added is how many entries the streams gained during the run, as
	// Redis counts them (XINFO STREAM's entries-added, after less before),
	// and Trimmed how many of them MAXLEN removed again. A reader further
	// behind than the cap loses what was trimmed before it read it.
	Added   uint64 `json:"entries_added"`
	Trimmed uint64 `json:"trimmed"`
	// Lost is how many entries XADD acknowledged that the streams do not
	// count at the end: gone with the server's data (a restart without
	// persistence, or the unsynced tail of its append-only file), whether
	// the readers had read them by then or not: Missing says what they
	// lacked. A publish with an unknown outcome (sent as the server went
	// down, no reply) that landed counts as added, and so does an entry
	// another writer added (counted foreign or malformed by every reader):
	// with either, Lost is at least this. Needs Redis 7.0 (entries-added); 0 before.
	Lost uint64 `json:"lost"`
	// Redelivered counts entries the readers read from their pending lists
	// after a reconnection: handed over before, never acknowledged.
	// Streams deliver at least once: the duplicates are among these (not
	// every one is one: an entry handed to a connection as it died arrives
	// for the first time).
	Redelivered uint64 `json:"redelivered"`
	// Vanished are the run's streams deleted from outside while it ran (a
	// DEL, an UNLINK): seen gone, or with fewer entries added than a
	// second before, by a server that had not restarted. Their entries
	// until then are lost, and counted in Lost, with this cause.
	Vanished []string `json:"vanished,omitempty"`
	// Deleted streams and GroupsRemoved groups were taken out at the end.
	Deleted       int `json:"deleted"`
	GroupsRemoved int `json:"groups_removed"`
	// CleanupError says what could not be read or removed at the end:
	// `redisload cleanup` removes what a run left.
	CleanupError string `json:"cleanup_error,omitempty"`

	finished bool   // finishStreams ran
	accepted uint64 // XADDs acknowledged, warm-up included: what Added should be
}

// streamState is one stream as XINFO STREAM saw it.
type streamState struct {
	exists        bool
	added, length uint64
}

// streamStates reads each stream's counters; a stream that does not exist
// reads as zero. Redis before 7.0 has no entries-added: then only the
// length is known, and Added stays 0.
func streamStates(ctx context.Context, c redis.Cmdable, keys []string) (map[string]streamState, error) {
	out := make(map[string]streamState, len(keys))
	for _, k := range keys {
		info, err := c.XInfoStream(ctx, k).Result()
		if err != nil {
			if strings.Contains(err.Error(), "no such key") {
				out[k] = streamState{}
				continue
			}
			return nil, fmt.Errorf("XINFO STREAM %s: %w", k, err)
		}
		out[k] = streamState{exists: true, added: uint64(max(info.EntriesAdded, 0)), length: uint64(max(info.Length, 0))}
	}
	return out, nil
}

// finishStreams reads what the streams gained and lost since before, then
// removes what the run put in: the streams it created, and its groups
// from the others.
func finishStreams(ctx context.Context, c redis.Cmdable, st *StreamsStats, before map[string]streamState, groups []string) {
	st.finished = true
	after, err := streamStates(ctx, c, st.Streams)
	if err != nil {
		st.CleanupError = err.Error()
	}
	for _, k := range st.Streams {
		b, a := before[k], after[k]
		if a.added >= b.added {
			added := a.added - b.added
			st.Added += added
			if grown := int64(a.length) - int64(b.length); int64(added) > grown {
				st.Trimmed += uint64(int64(added) - grown)
			}
		}
		if !b.exists {
			n, err := c.Del(ctx, k).Result()
			if err != nil && st.CleanupError == "" {
				st.CleanupError = fmt.Sprintf("DEL %s: %v", k, err)
			}
			st.Deleted += int(n)
			continue
		}
		for _, g := range groups {
			n, err := c.XGroupDestroy(ctx, k, g).Result()
			if err != nil && st.CleanupError == "" {
				st.CleanupError = fmt.Sprintf("XGROUP DESTROY %s %s: %v", k, g, err)
			}
			st.GroupsRemoved += int(n)
		}
	}
}

// streamsClient is a client of the run's streams: the probe's own on one
// server; in a cluster, one that follows each key to its slot's master
// (the probe talks to one node). Reads and cleanup only: go-redis's
// cluster client may retry them, which changes nothing.
func streamsClient(o bridge.Options, cluster bool, probe *serverProbe) (redis.Cmdable, func(), error) {
	if !cluster {
		return probe.c, func() {}, nil
	}
	c, err := clusterClient(o)
	if err != nil {
		return nil, nil, err
	}
	return c, func() { _ = c.Close() }, nil
}

// clusterClient is a go-redis cluster client seeded with o's node.
func clusterClient(o bridge.Options) (*redis.ClusterClient, error) {
	ro, err := o.RedisOptions()
	if err != nil {
		return nil, err
	}
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{ro.Addr}, Username: ro.Username, Password: ro.Password,
		TLSConfig: ro.TLSConfig, Dialer: ro.Dialer}), nil
}

// runStreams lists the run's streams: every channel of its event types.
func runStreams(cfg Config, b *bridge.Bridge) []string {
	var keys []string
	for _, t := range cfg.EventTypes {
		keys = append(keys, b.Channels(t)...)
	}
	return keys
}

// RunGroupPrefix starts every stream group a run creates: its instance
// IDs, "redisload-<run ID>-<index>". Cleanup removes only such groups.
const RunGroupPrefix = "redisload-"

// Cleanup is what CleanupStreams found and removed.
type Cleanup struct {
	// Deleted are streams whose groups were all a run's: streams a run
	// created and did not take out (it crashed, or lost its server).
	Deleted []string `json:"deleted"`
	// Kept are streams with groups of others: only the runs' groups were
	// removed from them.
	Kept []string `json:"kept"`
	// GroupsRemoved counts the runs' groups removed, from either.
	GroupsRemoved int `json:"groups_removed"`
}

// CleanupStreams removes what runs over streams left under keyPrefix on
// the server o names (every master, when it is a cluster's node): every
// group named like a run's instance (RunGroupPrefix), and the streams
// that had no other group. A stream
// with a group of anyone else's, or with none at all, is not deleted:
// nothing says a run made it. With dryRun it only says what it would do.
func CleanupStreams(ctx context.Context, o bridge.Options, keyPrefix string, dryRun bool) (Cleanup, error) {
	var out Cleanup
	ro, err := o.RedisOptions()
	if err != nil {
		return out, err
	}
	ro.MaxRetries = -1
	node := redis.NewClient(ro)
	defer node.Close()
	// On a cluster the keys are spread over the masters: each is scanned,
	// and each key is then reached through its slot's master.
	var c redis.Cmdable = node
	scan := func(ctx context.Context, n *redis.Client) ([]string, error) {
		var keys []string
		iter := n.ScanType(ctx, 0, escapeGlob(keyPrefix)+"*", 1000, "stream").Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return keys, iter.Err()
	}
	info, err := node.Info(ctx, "cluster").Result()
	if err != nil {
		return out, fmt.Errorf("cleanup: INFO: %w", err)
	}
	var keys []string
	if strings.Contains(info, "cluster_enabled:1") {
		cc, err := clusterClient(o)
		if err != nil {
			return out, err
		}
		defer cc.Close()
		c = cc
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			ks, err := scan(ctx, n)
			mu.Lock()
			keys = append(keys, ks...)
			mu.Unlock()
			return err
		})
		if err != nil {
			return out, fmt.Errorf("cleanup: SCAN %s* on the masters: %w", keyPrefix, err)
		}
	} else if keys, err = scan(ctx, node); err != nil {
		return out, fmt.Errorf("cleanup: SCAN %s*: %w", keyPrefix, err)
	}
	slices.Sort(keys)
	for _, k := range keys {
		groups, err := c.XInfoGroups(ctx, k).Result()
		if err != nil {
			return out, fmt.Errorf("cleanup: XINFO GROUPS %s: %w", k, err)
		}
		ours := 0
		for _, g := range groups {
			if !strings.HasPrefix(g.Name, RunGroupPrefix) {
				continue
			}
			ours++
			if !dryRun {
				if err := c.XGroupDestroy(ctx, k, g.Name).Err(); err != nil {
					return out, fmt.Errorf("cleanup: XGROUP DESTROY %s %s: %w", k, g.Name, err)
				}
			}
		}
		out.GroupsRemoved += ours
		switch {
		case ours > 0 && ours == len(groups):
			if !dryRun {
				if err := c.Del(ctx, k).Err(); err != nil {
					return out, fmt.Errorf("cleanup: DEL %s: %w", k, err)
				}
			}
			out.Deleted = append(out.Deleted, k)
		case ours > 0:
			out.Kept = append(out.Kept, k)
		}
	}
	return out, nil
}

// escapeGlob escapes the glob characters of a key prefix for SCAN MATCH.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// StreamsRun is the streams footprint of a run over several processes,
// which its coordinator keeps as Run keeps its own: read before any
// instance subscribes, finished once the parts are merged.
type StreamsRun struct {
	st     *StreamsStats
	before map[string]streamState
	keys   redis.Cmdable
	close  func()
	groups []string
	v7     bool // entries-added is known
	// stopWatch ends the watch for streams deleted from outside, and
	// watched is closed when it has.
	stopWatch chan struct{}
	watched   chan struct{}
}

// streamsWatch is how often a run's streams are read for a deletion
// from outside: a stream deleted and re-created by the next XADD within
// one interval is seen by its entries-added going down.
var streamsWatch = 500 * time.Millisecond

// watch reads the streams every streamsWatch until stopWatch: a stream
// that existed and is gone, or whose entries-added went down, while the
// server's run_id stayed the same, was deleted from outside (a restart
// without persistence changes the run_id, and is told apart).
func (s *StreamsRun) watch(p *serverProbe) {
	defer close(s.watched)
	last := s.before
	runID := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		txt, err := p.c.Info(ctx, "server").Result()
		if err != nil {
			return ""
		}
		return infoFields(txt)["run_id"]
	}
	id := runID()
	t := time.NewTicker(streamsWatch)
	defer t.Stop()
	for {
		select {
		case <-s.stopWatch:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		now, err := streamStates(ctx, s.keys, s.st.Streams)
		cancel()
		cur := runID()
		if err != nil || cur == "" || id == "" {
			continue // a server down or frozen says nothing about deletions
		}
		if cur == id {
			for _, k := range s.st.Streams {
				b, a := last[k], now[k]
				if b.exists && (!a.exists || a.added < b.added) && !slices.Contains(s.st.Vanished, k) {
					s.st.Vanished = append(s.st.Vanished, k)
				}
			}
		}
		last, id = now, cur
	}
}

// StartStreams reads the streams of a run over streams (cfg.Redis's
// Transport) with run ID runID, before its instances subscribe; nil for
// a run over pub/sub.
func (p *Probe) StartStreams(ctx context.Context, cfg Config, runID string) (*StreamsRun, error) {
	cfg = cfg.WithDefaults()
	if cfg.Redis.Transport != bridge.TransportStreams {
		return nil, nil
	}
	b, err := bridge.New(cfg.Redis) // never connected: it names the channels
	if err != nil {
		return nil, err
	}
	_ = b.Close()
	version, cluster := p.p.kind(ctx)
	return startStreams(ctx, p.p, cfg, version, cluster, b, instanceIDs("redisload-"+runID+"-", cfg.Instances))
}

// startStreams reads the run's streams (b names them) before any group
// of groups, its instances', is created; Run and a coordinator alike.
func startStreams(ctx context.Context, p *serverProbe, cfg Config, version string, cluster bool, b *bridge.Bridge, groups []string) (*StreamsRun, error) {
	keys, closeKeys, err := streamsClient(cfg.Redis, cluster, p)
	if err != nil {
		return nil, err
	}
	s := &StreamsRun{keys: keys, close: closeKeys, groups: groups, v7: version != "" && majorVersion(version) >= 7,
		st: &StreamsStats{Streams: runStreams(cfg, b), MaxLen: cmp.Or(cfg.Redis.StreamMaxLen, bridge.DefaultStreamMaxLen)}}
	if s.before, err = streamStates(ctx, keys, s.st.Streams); err != nil {
		closeKeys()
		return nil, fmt.Errorf("streams: %w", err)
	}
	for _, k := range s.st.Streams {
		if s.before[k].exists {
			s.st.Preexisting = append(s.st.Preexisting, k)
		}
	}
	s.stopWatch, s.watched = make(chan struct{}), make(chan struct{})
	go s.watch(p)
	return s, nil
}

// finish reads what the streams gained and lost and removes what the run
// added, once.
func (s *StreamsRun) finish(ctx context.Context) {
	if s.stopWatch != nil {
		close(s.stopWatch)
		<-s.watched
		s.stopWatch = nil
	}
	if !s.st.finished {
		finishStreams(ctx, s.keys, s.st, s.before, s.groups)
	}
}

// abort finishes the streams of a run that ended early, then closes.
func (s *StreamsRun) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	s.finish(ctx)
	s.close()
}

// count adds one instance's publishes Redis acknowledged and entries it
// read again from its pending list.
func (s *StreamsRun) count(m bridge.Metrics) {
	s.st.accepted += m.Published
	s.st.Redelivered += m.Redelivered
}

// settle computes Lost once every instance is counted: what XADD
// acknowledged and the streams no longer count went with the server's
// data. It needs Redis 7's entries-added.
func (s *StreamsRun) settle() {
	if s.v7 {
		s.st.Lost = s.st.accepted - min(s.st.Added, s.st.accepted)
	}
}

// Finish reads what the streams gained and lost, removes what the run
// added, and sets res.Streams and its warnings; parts are the processes'
// accounting, whose receivers' metrics hold what they read again and
// published. Call it once, also for a run that failed (with nil res).
func (s *StreamsRun) Finish(ctx context.Context, res *Result, cfg Config, parts []PartState) {
	if s == nil {
		return
	}
	defer s.close()
	s.finish(ctx)
	if res == nil {
		return
	}
	for _, p := range parts {
		for _, r := range p.Receivers {
			s.count(r.Metrics)
		}
	}
	s.settle()
	res.Streams = s.st
	res.Warnings = append(res.Warnings, streamsWarnings(res, cfg.WithDefaults())...)
}
