package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The deployments a bridge can be pointed at, besides one standalone
// server: a Redis Cluster (any node's address), and a master that Redis
// Sentinel manages. Both change under a running bridge (a failover, a
// slot migrated), so the bridge reads where things are from the servers
// themselves each time it (re)connects, rather than once.

// PubSubMode is classic or sharded pub/sub.
type PubSubMode string

// The pub/sub modes.
const (
	// PubSubClassic is PUBLISH and SUBSCRIBE. In a cluster every message
	// is copied to every node over the cluster bus, so a subscriber may
	// connect to any node.
	PubSubClassic PubSubMode = ""
	// PubSubSharded is SPUBLISH and SSUBSCRIBE (Redis 7.0 and later): a
	// channel belongs to the shard owning its slot, its messages stay in
	// that shard, and subscribers connect to every shard owning any of
	// their channels.
	PubSubSharded PubSubMode = "sharded"
)

// String names the mode as the command line spells it.
func (m PubSubMode) String() string {
	if m == PubSubClassic {
		return "classic"
	}
	return string(m)
}

// SentinelOptions finds the master through Redis Sentinel, as go-redis's
// FailoverOptions does: every connection (re)dialled asks the sentinels
// where the master is now, so that the bridge follows a failover.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor the master by; setting
	// it turns Sentinel on, and Addr is then not used.
	// default: "" (no Sentinel)
	MasterName string
	// Addrs are the sentinels' host:port addresses, asked in turn.
	Addrs []string
	// Username and Password authenticate to the sentinels (not to the
	// master: Options.Username and Password do that).
	// default: none
	Username, Password string
}

// Enabled reports whether the master is found through sentinels.
func (s SentinelOptions) Enabled() bool { return s.MasterName != "" }

// SentinelScheme is the URL scheme of a master found through Sentinel:
// redis+sentinel://[user:password@]host:port[,host:port...]/master[/db].
// The credentials are the master's; the hosts are the sentinels'.
const SentinelScheme = "redis+sentinel"

// SentinelSet returns the sentinels o finds its master through, from
// Sentinel or a redis+sentinel:// URL; not Enabled when there are none.
func (o Options) SentinelSet() (SentinelOptions, error) {
	if o.Sentinel.Enabled() || !strings.HasPrefix(o.URL, SentinelScheme+"://") {
		return o.Sentinel, nil
	}
	so, _, err := parseSentinelURL(o.URL)
	return so, err
}

// parseSentinelURL reads a redis+sentinel:// URL into the sentinel
// options and the credentials and database of the master.
func parseSentinelURL(raw string) (SentinelOptions, *redis.Options, error) {
	u, err := ParseURL(raw)
	if err != nil {
		return SentinelOptions{}, nil, err
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if parts[0] == "" || len(parts) > 2 {
		return SentinelOptions{}, nil, fmt.Errorf("%w: want %s://host:port[,host:port...]/<master name>[/<db>]", ErrInvalidURL, SentinelScheme)
	}
	so := SentinelOptions{MasterName: parts[0], Addrs: strings.Split(u.Host, ",")}
	ro := &redis.Options{Addr: "sentinel:" + so.MasterName}
	if len(parts) == 2 {
		if ro.DB, err = strconv.Atoi(parts[1]); err != nil || ro.DB < 0 {
			return SentinelOptions{}, nil, fmt.Errorf("%w: database %q is not a number", ErrInvalidURL, parts[1])
		}
	}
	if u.User != nil {
		ro.Username = u.User.Username()
		ro.Password, _ = u.User.Password()
	}
	for _, a := range so.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return SentinelOptions{}, nil, fmt.Errorf("%w: sentinel address %q: want host:port", ErrInvalidURL, a)
		}
	}
	return so, ro, nil
}

// sentinelDialer dials the master the sentinels name now, whatever address
// go-redis passes: the address is asked again at every dial, so that a
// connection broken by a failover is dialled again to the new master.
func sentinelDialer(s SentinelOptions, next dialFunc) dialFunc {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		addr, err := s.Master(ctx)
		if err != nil {
			return nil, err
		}
		return next(ctx, network, addr)
	}
}

// dialFunc dials one connection.
type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// baseDialer is how ro reaches one given address: TLS with a bounded
// handshake, or plain TCP.
func baseDialer(ro *redis.Options) dialFunc {
	if ro.Dialer != nil {
		return ro.Dialer
	}
	return netDialer(ro.DialTimeout).DialContext
}

// Master asks the sentinels in turn for the master's address; the first
// answer wins. A sentinel that does not answer is skipped.
func (s SentinelOptions) Master(ctx context.Context) (string, error) {
	var errs []error
	for _, a := range s.Addrs {
		c := redis.NewSentinelClient(&redis.Options{Addr: a, Username: s.Username, Password: s.Password,
			MaxRetries: -1, DialerRetries: 1, Protocol: 2, ContextTimeoutEnabled: true})
		addr, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
		_ = c.Close()
		if err == nil && len(addr) == 2 {
			return net.JoinHostPort(addr[0], addr[1]), nil
		}
		if err == nil {
			err = errors.New("no address")
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", a, err))
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("bridge: no sentinel named the master %q: %w", s.MasterName, errors.Join(errs...))
}

// slotCount is Redis Cluster's number of hash slots.
const slotCount = 16384

// Slot returns the Redis Cluster hash slot of a key or channel: CRC16
// (XMODEM) of its hash tag, the part between the first "{" and the next
// "}" when that part is not empty, or of the whole name, modulo 16384.
// go-redis has the same function in an internal package; the tests check
// this one against the server's CLUSTER KEYSLOT.
func Slot(name string) int {
	if i := strings.IndexByte(name, '{'); i >= 0 {
		if j := strings.IndexByte(name[i+1:], '}'); j > 0 {
			name = name[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(name); k++ {
		crc ^= uint16(name[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % slotCount
}

// shardMap is where a cluster's slots are, as one node said: immutable,
// replaced whole when read again.
type shardMap struct {
	// owner[slot] is the index in masters of the slot's master, -1 for a
	// slot no master serves.
	owner [slotCount]int16
	// masters are the masters' addresses; nodes every node's, masters
	// first, the ones to ask next time.
	masters, nodes []string
	// read is when the map was read.
	read time.Time
}

// ownerOf returns the address of the master serving slot ("" for the
// configured server of a map that is not a cluster's), and false when no
// master serves it.
func (m *shardMap) ownerOf(slot int) (string, bool) {
	if i := m.owner[slot]; i >= 0 {
		return m.masters[i], true
	}
	return "", false
}

// singleShard is the map of a server that is not a cluster: every slot is
// its own, at addr.
func singleShard(addr string) *shardMap {
	m := &shardMap{masters: []string{addr}, nodes: []string{addr}, read: time.Now()}
	for i := range m.owner {
		m.owner[i] = 0
	}
	return m
}

// readShardMap asks c for the slot map: CLUSTER SHARDS (Redis 7.0), or
// CLUSTER SLOTS before it. A server not in cluster mode says so, and is
// one shard holding every slot (sharded pub/sub works on it as well).
func readShardMap(ctx context.Context, c *redis.Client, self string) (*shardMap, error) {
	m := &shardMap{}
	for i := range m.owner {
		m.owner[i] = -1
	}
	var replicas []string
	addMaster := func(addr string, ranges [][2]int64) {
		idx := int16(len(m.masters))
		m.masters = append(m.masters, addr)
		for _, r := range ranges {
			for s := max(r[0], 0); s <= min(r[1], slotCount-1); s++ {
				m.owner[s] = idx
			}
		}
	}
	shards, err := c.ClusterShards(ctx).Result()
	switch {
	case err == nil:
		for _, sh := range shards {
			var ranges [][2]int64
			for _, r := range sh.Slots {
				ranges = append(ranges, [2]int64{r.Start, r.End})
			}
			for _, n := range sh.Nodes {
				addr := nodeAddr(n.IP, n.Endpoint, n.Port)
				// A failed master keeps its slots in the map until its
				// replica takes over: it is still their owner, and the
				// subscriber waits for the takeover (7.0 says "fail",
				// later versions "failed").
				switch {
				case n.Role == "master" && len(ranges) > 0:
					addMaster(addr, ranges)
				case n.Health != "fail" && n.Health != "failed":
					replicas = append(replicas, addr) // "loading" too: 7.0 says so of an empty master's
				}
			}
		}
	case notCluster(err):
		return singleShard(self), nil
	case isUnknownCommand(err):
		//lint:ignore SA1019 the fallback for servers before 7.0, which have no CLUSTER SHARDS
		slots, serr := c.ClusterSlots(ctx).Result()
		if serr != nil {
			return nil, serr
		}
		for _, s := range slots {
			if len(s.Nodes) == 0 {
				continue
			}
			addMaster(s.Nodes[0].Addr, [][2]int64{{int64(s.Start), int64(s.End)}})
			for _, r := range s.Nodes[1:] {
				replicas = append(replicas, r.Addr)
			}
		}
	default:
		return nil, err
	}
	m.nodes = append(append(m.nodes, m.masters...), replicas...)
	return m, nil
}

// nodeAddr is a node's address as CLUSTER SHARDS gives it.
func nodeAddr(ip, endpoint string, port int64) string {
	host := ip
	if host == "" || host == "?" {
		host = endpoint
	}
	return net.JoinHostPort(host, strconv.FormatInt(port, 10))
}

// notCluster recognises a standalone server's answer to CLUSTER commands.
func notCluster(err error) bool {
	return err != nil && strings.Contains(err.Error(), "cluster support disabled")
}

// isUnknownCommand recognises a server too old for a command.
func isUnknownCommand(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "ERR unknown")
}

// movedSlot reads the slot of a "MOVED <slot> <addr>" or "ASK ..." error
// reply; false for any other text.
func movedSlot(msg string) (int, bool) {
	f := strings.Fields(msg)
	if len(f) != 3 || (f[0] != "MOVED" && f[0] != "ASK") {
		return 0, false
	}
	s, err := strconv.Atoi(f[1])
	return s, err == nil && s >= 0 && s < slotCount
}

// nodeClients are the bridge's go-redis clients to a cluster's nodes, by
// address: the sharded publisher's routes, and where the slot map is read.
type nodeClients struct {
	mu      sync.Mutex
	clients map[string]*redis.Client
	newFn   func(addr string) *redis.Client
}

// get returns the client of addr, making it on first use.
func (nc *nodeClients) get(addr string) *redis.Client {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if c, ok := nc.clients[addr]; ok {
		return c
	}
	if nc.clients == nil {
		nc.clients = map[string]*redis.Client{}
	}
	c := nc.newFn(addr)
	nc.clients[addr] = c
	return c
}

// close closes every client.
func (nc *nodeClients) close() error {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	var errs []error
	for _, c := range nc.clients {
		errs = append(errs, c.Close())
	}
	nc.clients = nil
	return errors.Join(errs...)
}
