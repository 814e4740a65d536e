package harness

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
)

// The server's own counts, beside the run's: how many times Redis ran the
// run's publishing command (INFO commandstats) and how many subscribers
// each of its channels had when publishing began (PUBSUB NUMSUB or
// SHARDNUMSUB). They do not depend on redisload's accounting, so the
// verdict can check one against the other: foreign traffic only adds to
// the server's numbers, so the server counting less than the run accepted
// (or fewer subscribers than it confirmed) is never explained by it, and
// where the run has the server to itself, counting more is not either.

// ServerCounts is what the server counted of the run.
type ServerCounts struct {
	// Skipped says why the publishes were not compared (the server was
	// restarted or replaced, it has no command statistics); empty when
	// they were.
	Skipped string `json:"skipped,omitempty"`
	// Command is what publishes: PUBLISH, SPUBLISH or XADD.
	Command string `json:"command"`
	// Calls is how many times the server ran Command from the start of
	// publishing to the end of the run, on every node of a cluster:
	// the run's publishes, and anybody else's.
	Calls uint64 `json:"calls"`
	// Accepted is what the run's publishers had accepted (the warm-up's
	// too), and Unknown what they sent with no reply: Calls should be at
	// least Accepted, and, with nobody else publishing, at most
	// Accepted + Unknown.
	Accepted uint64 `json:"accepted"`
	Unknown  uint64 `json:"unknown"`
	// Foreign is the most foreign, forged or malformed messages any one
	// instance received: publishes of others on the run's channels,
	// which Calls counts too.
	Foreign uint64 `json:"foreign"`
	// Subscribers are each channel's subscribers on the server as
	// publishing began, beside the run's own; absent, with
	// SubscribersSkipped saying why, when not read.
	Subscribers        []ChannelSubscribers `json:"subscribers,omitempty"`
	SubscribersSkipped string               `json:"subscribers_skipped,omitempty"`
}

// ChannelSubscribers is one channel's subscribers: on the server, and of
// the run (confirmed by Redis before the first publish).
type ChannelSubscribers struct {
	Channel string `json:"channel"`
	Server  int64  `json:"server"`
	Run     int    `json:"run"`
}

// oracle reads the server's counts at the start and the end of a run.
type oracle struct {
	command  string
	clients  []*redis.Client // every node of a cluster; the probe's else
	sharded  bool
	channels []string
	before   uint64
	runIDs   string // every node's run_id, joined: a restart changes it
	skipped  string
	counts   *ServerCounts
}

// startOracle reads the counts as publishing begins: the command's calls
// and each channel's subscribers. subscribers is how many of the run's
// instances subscribe; a nil oracle (never) is not returned.
func startOracle(ctx context.Context, cfg Config, probe *serverProbe, nodes *nodeProbes, channels []string, subscribers int) *oracle {
	o := &oracle{command: "PUBLISH", channels: channels, sharded: cfg.Redis.PubSub == bridge.PubSubSharded, counts: &ServerCounts{}}
	switch {
	case cfg.Redis.Transport == bridge.TransportStreams:
		o.command = "XADD"
	case o.sharded:
		o.command = "SPUBLISH"
	}
	o.counts.Command = o.command
	o.clients = []*redis.Client{probe.c}
	if nodes != nil {
		o.clients = nodes.clients
	}
	for _, f := range cfg.Faults {
		switch f.Action {
		case FaultRestart, FaultCrash, FaultFailover, FaultMasterKill, FaultSlotMigration:
			// A restarted server starts its counts again; a failover
			// or a slot's move takes its commands to another node.
			o.skipped = fmt.Sprintf("the %s fault restarts or replaces a server, whose counts start again", f.Action)
		}
	}
	var err error
	if o.before, o.runIDs, err = o.calls(ctx); err != nil && o.skipped == "" {
		o.skipped = "the server's command statistics could not be read: " + err.Error()
	}
	if cfg.Redis.Transport == bridge.TransportStreams {
		o.counts.SubscribersSkipped = "a stream has consumer groups, not subscribers (see streams)"
		return o
	}
	subs, err := o.subscribers(ctx)
	if err != nil {
		o.counts.SubscribersSkipped = "the server's subscriber counts could not be read: " + err.Error()
		return o
	}
	for i, ch := range channels {
		o.counts.Subscribers = append(o.counts.Subscribers, ChannelSubscribers{Channel: ch, Server: subs[i], Run: subscribers})
	}
	return o
}

// calls sums the command's calls over the oracle's servers, with their
// run IDs.
func (o *oracle) calls(ctx context.Context) (uint64, string, error) {
	var total uint64
	var ids []string
	key := "cmdstat_" + strings.ToLower(o.command)
	for _, c := range o.clients {
		txt, err := c.Info(ctx, "commandstats", "server").Result()
		if err != nil {
			return 0, "", err
		}
		f := infoFields(txt)
		if f["run_id"] == "" {
			return 0, "", fmt.Errorf("no run_id in INFO server")
		}
		ids = append(ids, f["run_id"])
		if v, ok := f[key]; ok { // calls=N,usec=...; absent before the first call
			n, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			k, err := strconv.ParseUint(n, 10, 64)
			if err != nil {
				return 0, "", fmt.Errorf("%s: %q", key, v)
			}
			total += k
		}
	}
	return total, strings.Join(ids, ","), nil
}

// subscribers counts each channel's subscribers over the oracle's
// servers: classic subscribers anywhere in a cluster, sharded ones on
// the shard owning the channel (the others say 0).
func (o *oracle) subscribers(ctx context.Context) ([]int64, error) {
	out := make([]int64, len(o.channels))
	for _, c := range o.clients {
		var m map[string]int64
		var err error
		if o.sharded {
			m, err = c.PubSubShardNumSub(ctx, o.channels...).Result()
		} else {
			m, err = c.PubSubNumSub(ctx, o.channels...).Result()
		}
		if err != nil {
			return nil, err
		}
		for i, ch := range o.channels {
			out[i] += m[ch]
		}
	}
	return out, nil
}

// finish reads the calls again once the run's connections are closed and
// sets what the run counted beside them.
func (o *oracle) finish(ctx context.Context, pub *publisher, recvs []*receiver, metrics []bridge.Metrics) *ServerCounts {
	c := o.counts
	for i := range pub.published {
		c.Accepted += pub.published[i] + pub.warmPublished[i]
		c.Unknown += pub.unknown[i] + pub.warmNotPublic[i] // the warm-up's are not told apart
	}
	for i, r := range recvs {
		c.Foreign = max(c.Foreign, r.foreign+r.forged+metrics[i].Malformed)
	}
	c.Skipped = o.skipped
	if c.Skipped != "" {
		return c
	}
	after, ids, err := o.calls(ctx)
	switch {
	case err != nil:
		c.Skipped = "the server's command statistics could not be read at the end: " + err.Error()
	case ids != o.runIDs:
		c.Skipped = "the server restarted during the run: its counts started again"
	case after < o.before:
		c.Skipped = "the server's command statistics were reset during the run (CONFIG RESETSTAT)"
	default:
		c.Calls = after - o.before
	}
	return c
}
