package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
)

// The cluster and Sentinel faults act on the master that owns the run's
// busiest channel (the first channel of its first event type), where a
// failure costs the most messages. Each waits, within faultTimeout, until
// the deployment has a master for it again, so that the fault's end in
// the timeline is when the servers recovered; the bridges' recovery is
// measured by their outages.

// topologyFault applies one of the cluster and Sentinel faults.
func (env *faultEnv) topologyFault(a FaultAction) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	defer cancel()
	so, err := env.cfg.Redis.SentinelSet()
	if err != nil {
		return "", err
	}
	if so.Enabled() {
		return env.sentinelFault(ctx, a, so)
	}
	slot := bridge.Slot(env.channel)
	sh, err := env.shardOf(ctx, slot)
	if err != nil {
		return "", err
	}
	switch a {
	case FaultFailover:
		if len(sh.replicas) == 0 {
			return "", fmt.Errorf("master %s of slot %d has no replica to fail over to", sh.master, slot)
		}
		c := env.nodeClient(sh.replicas[0])
		defer c.Close()
		if err := c.ClusterFailover(ctx).Err(); err != nil {
			return "", fmt.Errorf("CLUSTER FAILOVER on %s: %w", sh.replicas[0], err)
		}
		return fmt.Sprintf("CLUSTER FAILOVER: replica %s took over from %s (slot %d, %s)", sh.replicas[0], sh.master, slot, env.channel),
			env.awaitOwner(ctx, slot, func(addr string) bool { return addr == sh.replicas[0] })
	case FaultMasterKill:
		if err := env.cfg.Deployment.KillNode(sh.master); err != nil {
			return "", err
		}
		detail := fmt.Sprintf("master %s of slot %d (%s) killed (SIGKILL)", sh.master, slot, env.channel)
		if len(sh.replicas) == 0 {
			return detail + "; no replica to take over", nil
		}
		return detail + "; a replica took over",
			env.awaitOwner(ctx, slot, func(addr string) bool { return addr != sh.master })
	case FaultSlotMigration:
		to := ""
		for _, m := range sh.masters {
			if m != sh.master {
				to = m
				break
			}
		}
		if to == "" {
			return "", errors.New("a slot migration needs a second master")
		}
		if err := env.migrateSlot(ctx, slot, sh.master, to, sh.masters); err != nil {
			return "", err
		}
		return fmt.Sprintf("slot %d (%s) moved from %s to %s", slot, env.channel, sh.master, to), nil
	}
	return "", fmt.Errorf("unknown action %q", a)
}

// shard is the master serving a slot, its replicas and every master.
type shard struct {
	master   string
	replicas []string
	masters  []string
}

// shardOf reads which master serves slot (CLUSTER NODES, as the report's
// topology), its live replicas and every master. The run's node is asked
// first, then the masters of the last reading: the run's node may be the
// master killed.
func (env *faultEnv) shardOf(ctx context.Context, slot int) (shard, error) {
	t := env.probe.clusterTopology(ctx)
	for _, m := range env.masters {
		if t != nil || ctx.Err() != nil {
			break
		}
		c := env.nodeClient(m)
		t = (&serverProbe{c: c}).clusterTopology(ctx)
		_ = c.Close()
	}
	if t == nil {
		return shard{}, errors.New("CLUSTER NODES: no node answered")
	}
	var out shard
	var masterID string
	for _, n := range t.Nodes {
		if n.Role != "master" || len(n.Slots) == 0 {
			continue
		}
		out.masters = append(out.masters, n.Addr)
		// A master that failed keeps its slots until its replica takes
		// over: it serves nothing meanwhile.
		if !n.Failed && n.serves(slot) {
			out.master, masterID = n.Addr, n.ID
		}
	}
	for _, n := range t.Nodes {
		if n.Role == "replica" && !n.Failed && masterID != "" && n.MasterID == masterID {
			out.replicas = append(out.replicas, n.Addr)
		}
	}
	slices.Sort(out.masters)
	env.masters = out.masters
	if out.master == "" {
		return shard{}, fmt.Errorf("no master serves slot %d", slot)
	}
	return out, nil
}

// awaitOwner waits until the slot's master, as the cluster says, is one
// that ok accepts.
func (env *faultEnv) awaitOwner(ctx context.Context, slot int, ok func(string) bool) error {
	for {
		if sh, err := env.shardOf(ctx, slot); err == nil && ok(sh.master) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no new master for slot %d within %v", slot, faultTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// migrateSlot moves an empty slot as a resharding does; a slot holding
// keys is refused, since moving keys is not what a pub/sub test is for.
func (env *faultEnv) migrateSlot(ctx context.Context, slot int, from, to string, masters []string) error {
	src, dst := env.nodeClient(from), env.nodeClient(to)
	defer src.Close()
	defer dst.Close()
	if n, err := src.ClusterCountKeysInSlot(ctx, slot).Result(); err != nil || n > 0 {
		return fmt.Errorf("slot %d holds %d keys (%v): refusing to move it", slot, n, err)
	}
	var others []*redis.Client
	for _, m := range masters {
		if m != from && m != to {
			c := env.nodeClient(m)
			defer c.Close()
			others = append(others, c)
		}
	}
	return MigrateSlot(ctx, slot, src, dst, others...)
}

// MigrateSlot moves slot, which must hold no keys, from the master src to
// the master dst the way a resharding does (CLUSTER SETSLOT IMPORTING on
// dst, MIGRATING on src, then NODE on both), and tells the other masters
// at once rather than by gossip. Sharded subscribers of the slot's
// channels on src get a SUNSUBSCRIBE from the server: this is the
// slot-migration fault, exported for tests of other clients.
func MigrateSlot(ctx context.Context, slot int, src, dst *redis.Client, others ...*redis.Client) error {
	srcID, err := src.ClusterMyID(ctx).Result()
	if err != nil {
		return err
	}
	dstID, err := dst.ClusterMyID(ctx).Result()
	if err != nil {
		return err
	}
	steps := []struct {
		c    *redis.Client
		args []any
	}{
		{dst, []any{"CLUSTER", "SETSLOT", slot, "IMPORTING", srcID}},
		{src, []any{"CLUSTER", "SETSLOT", slot, "MIGRATING", dstID}},
		{dst, []any{"CLUSTER", "SETSLOT", slot, "NODE", dstID}},
		{src, []any{"CLUSTER", "SETSLOT", slot, "NODE", dstID}},
	}
	for _, st := range steps {
		if err := st.c.Do(ctx, st.args...).Err(); err != nil {
			return fmt.Errorf("%v: %w", st.args, err)
		}
	}
	for _, c := range others {
		_ = c.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err() // gossip tells them anyway
	}
	return nil
}

// sentinelFault fails over or kills the master of a Sentinel set.
func (env *faultEnv) sentinelFault(ctx context.Context, a FaultAction, so bridge.SentinelOptions) (string, error) {
	old, err := so.Master(ctx)
	if err != nil {
		return "", err
	}
	switch a {
	case FaultFailover:
		var errs []error
		for _, addr := range so.Addrs {
			c := redis.NewSentinelClient(&redis.Options{Addr: addr, Username: so.Username, Password: so.Password, MaxRetries: -1})
			err := c.Failover(ctx, so.MasterName).Err()
			_ = c.Close()
			if err == nil {
				errs = nil
				break
			}
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return "", fmt.Errorf("SENTINEL FAILOVER: %w", errors.Join(errs...))
		}
		return fmt.Sprintf("SENTINEL FAILOVER of %s (master %s)", so.MasterName, old), env.awaitSentinel(ctx, so, old)
	case FaultMasterKill:
		if err := env.cfg.Deployment.KillNode(old); err != nil {
			return "", err
		}
		return fmt.Sprintf("master %s of %s killed (SIGKILL); the sentinels promoted its replica", old, so.MasterName),
			env.awaitSentinel(ctx, so, old)
	}
	return "", fmt.Errorf("%s needs a Redis Cluster", a)
}

// awaitSentinel waits until the sentinels name another master than old.
func (env *faultEnv) awaitSentinel(ctx context.Context, so bridge.SentinelOptions, old string) error {
	for {
		if now, err := so.Master(ctx); err == nil && now != old {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the sentinels named no new master within %v", faultTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// nodeClient is a client of one node with the run's credentials; the
// options were valid for the run's own connections.
func (env *faultEnv) nodeClient(addr string) *redis.Client {
	c, err := nodeClient(env.cfg.Redis, addr)
	if err != nil {
		return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	}
	return c
}
