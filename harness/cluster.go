package harness

import (
	"context"
	"net/url"

	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/redisload/redisload/bridge"
	"golang.org/x/sync/errgroup"
)

// ClusterTopology is a Redis Cluster as the node the run connects to sees
// it (CLUSTER NODES): which node serves which slots, and who replicates
// whom. The report's header names it, because a number measured on one
// node of a cluster means something else than on a standalone server.
type ClusterTopology struct {
	Masters  int           `json:"masters"`
	Replicas int           `json:"replicas"`
	Nodes    []ClusterNode `json:"nodes"`
}

// ClusterNode is one node of a cluster.
type ClusterNode struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	// Role is "master" or "replica"; a failed node is still listed, with
	// Failed set, so that a report taken mid-failover says so.
	Role   string `json:"role"`
	Failed bool   `json:"failed,omitempty"`
	// MasterID is the replica's master; empty for a master.
	MasterID string `json:"master_id,omitempty"`
	// Slots are the master's slot ranges, "0-5460" style.
	Slots []string `json:"slots,omitempty"`
	// SlotCount is how many slots the ranges hold.
	SlotCount int `json:"slot_count,omitempty"`
	// Channels is how many of the run's channels hash to the master's
	// slots (CLUSTER KEYSLOT): where sharded pub/sub would carry them.
	Channels int `json:"channels,omitempty"`
	// Version is the node's redis_version, read after the run.
	Version string `json:"version,omitempty"`
	// Stats is what the node did during the run; nil when it could not
	// be read before and after.
	Stats *NodeStats `json:"stats,omitempty"`
}

// clusterTopology reads CLUSTER NODES; nil when the server is not in
// cluster mode or will not say.
func (p *serverProbe) clusterTopology(ctx context.Context) *ClusterTopology {
	txt, err := p.c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil
	}
	return parseClusterNodes(txt)
}

// placeChannels counts, per master, the channels whose slot it serves,
// asking the server for each slot (CLUSTER KEYSLOT) in one pipeline rather
// than computing CRC16 here. A channel whose slot no master claims (a
// cluster mid-migration) is left uncounted.
func (p *serverProbe) placeChannels(ctx context.Context, t *ClusterTopology, channels []string) {
	pipe := p.c.Pipeline()
	cmds := make([]*redis.IntCmd, len(channels))
	for i, ch := range channels {
		cmds[i] = pipe.ClusterKeySlot(ctx, ch)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return
	}
	for _, c := range cmds {
		slot := int(c.Val())
		for i := range t.Nodes {
			if t.Nodes[i].Role == "master" && t.Nodes[i].serves(slot) {
				t.Nodes[i].Channels++
				break
			}
		}
	}
}

// serves reports whether slot lies in the node's ranges.
func (n ClusterNode) serves(slot int) bool {
	for _, s := range n.Slots {
		if lo, hi := slotRange(s); slot >= lo && slot <= hi {
			return true
		}
	}
	return false
}

// slotRange reads "0-5460", or "42" for one slot.
func slotRange(s string) (lo, hi int) {
	a, b, isRange := strings.Cut(s, "-")
	lo, _ = strconv.Atoi(a)
	hi = lo
	if isRange {
		hi, _ = strconv.Atoi(b)
	}
	return lo, hi
}

// parseClusterNodes reads CLUSTER NODES' lines: id, ip:port@cport[,host],
// flags, master, ping-sent, pong-recv, config-epoch, link-state, slots...
// Masters come first, by their first slot; replicas after, by master.
func parseClusterNodes(txt string) *ClusterTopology {
	t := &ClusterTopology{}
	for _, line := range strings.Split(strings.TrimSpace(txt), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		n := ClusterNode{ID: f[0], Addr: addr, Role: "master"}
		flags := strings.Split(f[2], ",")
		for _, fl := range flags {
			switch fl {
			case "slave":
				n.Role = "replica"
			case "fail", "fail?":
				n.Failed = true
			}
		}
		if n.Role == "replica" && f[3] != "-" {
			n.MasterID = f[3]
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") { // a slot being migrated
				continue
			}
			n.Slots = append(n.Slots, s)
			lo, hi := slotRange(s)
			n.SlotCount += hi - lo + 1
		}
		if n.Role == "master" {
			t.Masters++
		} else {
			t.Replicas++
		}
		t.Nodes = append(t.Nodes, n)
	}
	if len(t.Nodes) == 0 {
		return nil
	}
	first := func(n ClusterNode) int {
		if len(n.Slots) == 0 {
			return 1 << 20
		}
		lo, _ := slotRange(n.Slots[0])
		return lo
	}
	sort.SliceStable(t.Nodes, func(i, j int) bool {
		a, b := t.Nodes[i], t.Nodes[j]
		if (a.Role == "master") != (b.Role == "master") {
			return a.Role == "master"
		}
		if a.Role == "master" {
			return first(a) < first(b)
		}
		return a.MasterID < b.MasterID
	})
	return t
}

// String is the topology in one line, for the report's header. Versions
// are named when the nodes do not all run the same one (a rolling
// upgrade): otherwise the header's server line has it.
func (t *ClusterTopology) String() string {
	mixed := false
	for _, n := range t.Nodes {
		mixed = mixed || n.Version != t.Nodes[0].Version
	}
	var parts []string
	for _, n := range t.Nodes {
		s := n.Addr + " " + n.Role
		if mixed && n.Version != "" {
			s += " " + n.Version
		}
		if len(n.Slots) > 0 {
			s += " " + strings.Join(n.Slots, ",")
		}
		if n.Channels > 0 {
			s += fmt.Sprintf(" (%d channels)", n.Channels)
		}
		if n.Failed {
			s += " FAILED"
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("%d masters, %d replicas: %s", t.Masters, t.Replicas, strings.Join(parts, "; "))
}

// NodeStats is what one node of a cluster did during the run: the change
// of its counters from before publishing to after the run's connections
// closed. With classic pub/sub every PUBLISH is copied to every other
// node over the cluster bus (BusPublish*); sharded pub/sub keeps a
// message within its shard (BusPublishShard*). These are the numbers that
// tell the two apart.
type NodeStats struct {
	// SubscriberConns and PublisherConns are this run's connections to
	// the node when publishing ended (CLIENT LIST, by the bridges' names).
	SubscriberConns         int     `json:"subscriber_conns"`
	PublisherConns          int     `json:"publisher_conns"`
	PublishCalls            uint64  `json:"publish_calls"`
	SPublishCalls           uint64  `json:"spublish_calls"`
	CPUSeconds              float64 `json:"cpu_s"`
	NetInBytes              uint64  `json:"net_in_bytes"`
	NetOutBytes             uint64  `json:"net_out_bytes"`
	BusPublishSent          uint64  `json:"bus_publish_sent"`
	BusPublishReceived      uint64  `json:"bus_publish_received"`
	BusPublishShardSent     uint64  `json:"bus_publishshard_sent"`
	BusPublishShardReceived uint64  `json:"bus_publishshard_received"`
}

// nodeCounterFields are the counters NodeStats is made of, by the name
// INFO or CLUSTER INFO gives them.
var nodeCounterFields = []string{"cmdstat_publish", "cmdstat_spublish", "used_cpu_sys", "used_cpu_user",
	"total_net_input_bytes", "total_net_output_bytes",
	"cluster_stats_messages_publish_sent", "cluster_stats_messages_publish_received",
	"cluster_stats_messages_publishshard_sent", "cluster_stats_messages_publishshard_received"}

// nodeProbes are plain clients to every node of a cluster, for its
// counters before and after the run.
type nodeProbes struct {
	addrs   []string
	clients []*redis.Client
}

// newNodeProbes connects, lazily, to each node of t with the run's
// credentials and TLS.
func newNodeProbes(o bridge.Options, t *ClusterTopology) (*nodeProbes, error) {
	np := &nodeProbes{}
	for _, n := range t.Nodes {
		c, err := nodeClient(o, n.Addr)
		if err != nil {
			np.close()
			return nil, err
		}
		np.addrs = append(np.addrs, n.Addr)
		np.clients = append(np.clients, c)
	}
	return np, nil
}

// nodeClient is a plain client of the node at addr with o's credentials
// and TLS, one connection, never retried: the probes' and the faults'.
func nodeClient(o bridge.Options, addr string) (*redis.Client, error) {
	ro, err := atAddr(o, addr).RedisOptions()
	if err != nil {
		return nil, err
	}
	ro.MaxRetries, ro.PoolSize = -1, 1
	return redis.NewClient(ro), nil
}

func (np *nodeProbes) close() {
	for _, c := range np.clients {
		_ = c.Close()
	}
}

// nodeCounters is one node's counters, by nodeCounterFields' names, and
// its version.
type nodeCounters struct {
	vals    map[string]float64
	version string
}

// counters reads every node's counters at once; a node that does not
// answer within ctx has none (nil).
func (np *nodeProbes) counters(ctx context.Context) []*nodeCounters {
	out := make([]*nodeCounters, len(np.clients))
	var g errgroup.Group
	for i, c := range np.clients {
		g.Go(func() error {
			info, err := c.Info(ctx, "commandstats", "cpu", "stats", "server").Result()
			if err != nil {
				return nil
			}
			cl, _ := c.ClusterInfo(ctx).Result()
			f := infoFields(info + "\n" + cl)
			m := map[string]float64{}
			for _, k := range nodeCounterFields {
				v := f[k]
				if strings.HasPrefix(k, "cmdstat_") { // calls=N,usec=...
					v, _, _ = strings.Cut(strings.TrimPrefix(v, "calls="), ",")
				}
				m[k], _ = strconv.ParseFloat(v, 64)
			}
			out[i] = &nodeCounters{vals: m, version: f["redis_version"]}
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// connections counts, per node, this run's subscriber and publisher
// connections; a node that does not answer has none counted.
func (np *nodeProbes) connections(ctx context.Context, prefix string) [][2]int {
	out := make([][2]int, len(np.clients))
	var g errgroup.Group
	for i, c := range np.clients {
		g.Go(func() error {
			list, err := c.ClientList(ctx).Result()
			if err != nil {
				return nil
			}
			for _, rc := range runClients(list, prefix) {
				if rc.role == bridge.RoleSubscriber {
					out[i][0]++
				} else {
					out[i][1]++
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// nodeStats sets each node's Stats to the change between before and
// after, where both were read, with its connections at the end.
func nodeStats(t *ClusterTopology, addrs []string, before, after []*nodeCounters, conns [][2]int) {
	for i, addr := range addrs {
		if before[i] == nil || after[i] == nil {
			continue
		}
		d := func(k string) float64 { return max(after[i].vals[k]-before[i].vals[k], 0) }
		u := func(k string) uint64 { return uint64(d(k)) }
		s := &NodeStats{PublishCalls: u("cmdstat_publish"), SPublishCalls: u("cmdstat_spublish"),
			CPUSeconds: d("used_cpu_sys") + d("used_cpu_user"), NetInBytes: u("total_net_input_bytes"),
			NetOutBytes: u("total_net_output_bytes"), BusPublishSent: u("cluster_stats_messages_publish_sent"),
			BusPublishReceived:      u("cluster_stats_messages_publish_received"),
			BusPublishShardSent:     u("cluster_stats_messages_publishshard_sent"),
			BusPublishShardReceived: u("cluster_stats_messages_publishshard_received")}
		if conns != nil {
			s.SubscriberConns, s.PublisherConns = conns[i][0], conns[i][1]
		}
		version := after[i].version
		for j := range t.Nodes {
			if t.Nodes[j].Addr == addr {
				t.Nodes[j].Stats, t.Nodes[j].Version = s, version
			}
		}
	}
}

// kind reads the server's version and whether it is a cluster node (INFO
// server), within probeTimeout; "" and false when it does not answer,
// and the connection's own error then says why.
func (p *serverProbe) kind(ctx context.Context) (version string, cluster bool) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	txt, err := p.c.Info(ctx, "server").Result()
	if err != nil {
		return "", false
	}
	f := infoFields(txt)
	return f["redis_version"], f["redis_mode"] == "cluster"
}

// majorVersion is the major number of a Redis version, 0 if unreadable.
func majorVersion(v string) int {
	major, _, _ := strings.Cut(v, ".")
	n, _ := strconv.Atoi(major)
	return n
}

// clusterAddrs lists the nodes of the cluster the probe is connected to,
// masters and replicas alike (classic pub/sub reaches both); nil when it
// is not a cluster or does not say, and the run then stays on one address.
func (p *serverProbe) clusterAddrs(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	t := p.clusterTopology(ctx)
	if t == nil {
		return nil
	}
	var addrs []string
	for _, n := range t.Nodes {
		if !n.Failed {
			addrs = append(addrs, n.Addr)
		}
	}
	return addrs
}

// atAddr is o pointed at addr, with its credentials and TLS kept.
func atAddr(o bridge.Options, addr string) bridge.Options {
	if o.URL == "" {
		o.Addr = addr
		return o
	}
	if u, err := url.Parse(o.URL); err == nil {
		u.Host = addr
		o.URL = u.String()
	}
	return o
}
