package provision

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// A local Redis Cluster for everyone: Masters masters with Replicas
// replicas each, every node a redis-server child on a free loopback port,
// joined and given slots with the cluster commands themselves (CLUSTER
// MEET, ADDSLOTSRANGE, REPLICATE), so that nothing but redis-server is
// needed. Each node's cluster bus listens on its port + 10000, so ports are
// chosen below 55536 with that one free too.

// The defaults of Cluster mode.
const (
	DefaultClusterMasters     = 3
	DefaultClusterReplicas    = 1
	DefaultClusterNodeTimeout = 2 * time.Second
)

// maxClusterPort keeps a node's bus port (+10000) a valid port.
const maxClusterPort = 65535 - 10000

// clusterSlots is Redis Cluster's slot count.
const clusterSlots = 16384

// clusterReadyTimeout bounds the wait for cluster_state:ok once every node
// has its slots and its master.
const clusterReadyTimeout = 20 * time.Second

// startCluster starts and joins the cluster's nodes and waits until every
// node says cluster_state:ok. Whatever it started is stopped on failure.
func startCluster(ctx context.Context, o Options) (*Instance, error) {
	masters, replicas, timeout := o.ClusterMasters, o.ClusterReplicas, o.ClusterNodeTimeout
	if masters == 0 {
		masters = DefaultClusterMasters
	}
	if replicas == 0 {
		replicas = DefaultClusterReplicas
	}
	if replicas < 0 { // -1: none
		replicas = 0
	}
	if timeout == 0 {
		timeout = DefaultClusterNodeTimeout
	}
	if masters < 1 || masters > 16 || replicas > 4 {
		return nil, fmt.Errorf("%w: cluster mode: from 1 to 16 masters with 0 to 4 replicas each, got %d and %d", ErrUnavailable, masters, replicas)
	}
	bin, err := serverBin(o)
	if err != nil {
		return nil, fmt.Errorf("%w: cluster mode: redis-server is not on PATH (install the redis-server package)", ErrUnavailable)
	}
	dir, err := os.MkdirTemp("", "redisload-cluster-")
	if err != nil {
		return nil, fmt.Errorf("%w: cluster mode: %v", ErrUnavailable, err)
	}
	n := masters * (1 + replicas)
	c := &cluster{dir: dir}
	inst := &Instance{Mode: Cluster, closeFn: c.stop}
	fail := func(err error) (*Instance, error) {
		_ = c.stop()
		return nil, fmt.Errorf("%w: cluster mode: %v", ErrUnavailable, err)
	}
	used := map[int]bool{}
	ports, err := clusterPorts(n, used)
	if err != nil {
		return fail(err)
	}
	for i := range ports {
		args := append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(timeout.Milliseconds(), 10),
			"--repl-diskless-sync-delay", "0"}, append(o.persistence(), o.ServerArgs...)...)
		var node *Instance
		for attempt := 1; ; attempt++ {
			nodeDir := filepath.Join(dir, strconv.Itoa(ports[i]))
			if err := os.Mkdir(nodeDir, 0o755); err != nil {
				return fail(err)
			}
			if node, err = runServer(ctx, bin, ports[i], nodeDir, args); err == nil {
				break
			}
			// A port, or its bus port, checked free and taken by another
			// process before the node bound it: the node takes others.
			if attempt == maxPortAttempts || !strings.Contains(err.Error(), "Failed listening") {
				return fail(fmt.Errorf("node %d of %d: %v", i+1, n, err))
			}
			alt, perr := clusterPorts(1, used)
			if perr != nil {
				return fail(perr)
			}
			ports[i] = alt[0]
		}
		c.nodes = append(c.nodes, node)
	}
	if err := c.join(ctx, masters, replicas); err != nil {
		return fail(err)
	}
	inst.URL = c.nodes[0].URL
	inst.members = c.nodes
	for _, node := range c.nodes {
		inst.Nodes = append(inst.Nodes, strings.TrimPrefix(node.URL, "redis://"))
	}
	return inst, nil
}

// cluster is the nodes of Cluster mode.
type cluster struct {
	dir   string
	nodes []*Instance // each a Server-mode instance of its own
}

// stop stops every node and removes their files.
func (c *cluster) stop() error { return stopAll(c.nodes, c.dir) }

// stopAll stops servers all at once (one given SIGTERM may take up to its
// second to exit) and removes their directory.
func stopAll(servers []*Instance, dir string) error {
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.Close()
		}()
	}
	wg.Wait()
	return os.RemoveAll(dir)
}

// adminClient is a plain client for setting a topology up: one try per
// command, short timeouts, RESP2.
func adminClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second, ContextTimeoutEnabled: true, Protocol: 2, DisableIdentity: true})
}

// join makes the nodes one cluster: every node meets the first, the
// masters take equal ranges of slots, each replica follows its master,
// and then every node must report cluster_state:ok.
func (c *cluster) join(ctx context.Context, masters, replicas int) error {
	clients := make([]*redis.Client, len(c.nodes))
	for i, node := range c.nodes {
		clients[i] = adminClient(strings.TrimPrefix(node.URL, "redis://"))
		defer clients[i].Close()
	}
	ctx, cancel := context.WithTimeout(ctx, clusterReadyTimeout)
	defer cancel()
	first := c.nodes[0].proc
	for _, cl := range clients[1:] {
		if err := cl.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(first.port)).Err(); err != nil {
			return fmt.Errorf("CLUSTER MEET: %v", err)
		}
	}
	for m := 0; m < masters; m++ {
		lo, hi := m*clusterSlots/masters, (m+1)*clusterSlots/masters-1
		if err := clients[m].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			return fmt.Errorf("CLUSTER ADDSLOTSRANGE %d %d: %v", lo, hi, err)
		}
	}
	ids := make([]string, len(clients))
	for i, cl := range clients {
		id, err := cl.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return fmt.Errorf("CLUSTER MYID: %v", err)
		}
		ids[i] = id
	}
	// A replica can follow its master only once it knows it: wait until
	// every node knows every other.
	if err := waitAll(ctx, clients, "every node to know the others", func(cl *redis.Client) bool {
		nodes, err := cl.ClusterNodes(ctx).Result()
		return err == nil && strings.Count(strings.TrimSpace(nodes), "\n")+1 == len(clients) && !strings.Contains(nodes, "handshake")
	}); err != nil {
		return err
	}
	for r := 0; r < replicas; r++ {
		for m := 0; m < masters; m++ {
			i := masters + r*masters + m
			if err := clients[i].Do(ctx, "CLUSTER", "REPLICATE", ids[m]).Err(); err != nil {
				return fmt.Errorf("CLUSTER REPLICATE: %v", err)
			}
		}
	}
	if err := waitAll(ctx, clients, "cluster_state:ok on every node", func(cl *redis.Client) bool {
		info, err := cl.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384")
	}); err != nil {
		return err
	}
	// Ready means every node sees every replica as one: gossip spreads a
	// REPLICATE a moment after cluster_state turns ok, and a report or a
	// failover scenario that read the topology then would see masters
	// without slots where the replicas are.
	// ...and with every bus link up: a node drops the bus messages it
	// cannot send, and classic pub/sub crosses the bus.
	if err := waitAll(ctx, clients, "every node to see every replica, every link connected", func(cl *redis.Client) bool {
		nodes, err := cl.ClusterNodes(ctx).Result()
		return err == nil && strings.Count(nodes, "slave") == masters*replicas &&
			strings.Count(nodes, " connected") == len(clients)
	}); err != nil {
		return err
	}
	// ...and with every replica in sync: a replica that has not loaded
	// its master's data refuses to take over (its data is too old), and a
	// master killed then would stay failed.
	return waitAll(ctx, clients[masters:], "every replica in sync with its master", replicaInSync(ctx))
}

// replicaInSync is true of a replica whose link to its master is up; the
// master sends its data at once, not after the default 5 s wait for
// other replicas (--repl-diskless-sync-delay 0).
func replicaInSync(ctx context.Context) func(*redis.Client) bool {
	return func(cl *redis.Client) bool {
		info, err := cl.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	}
}

// waitAll polls ok on every client until all say yes, or ctx ends.
func waitAll(ctx context.Context, clients []*redis.Client, what string, ok func(*redis.Client) bool) error {
	for {
		all := true
		for _, cl := range clients {
			if !ok(cl) {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// maxPortAttempts bounds how often a node takes new ports after finding
// its own taken.
const maxPortAttempts = 3

// clusterPorts picks n free loopback ports whose bus port (+10000) is free
// too, none of them in used (which it extends). Both stay below the
// kernel's ephemeral range where it leaves room: there an outgoing
// connection can take a port between the check and the bind. Candidates
// are checked by listening; a process-wide cursor keeps concurrent
// clusters of one process apart, the pid concurrent processes.
func clusterPorts(n int, used map[int]bool) ([]int, error) {
	limit := maxClusterPort
	if low := ephemeralLow(); low-10000 > 12000 {
		limit = min(limit, low-10000)
	}
	lo := 10000
	span := limit - lo
	var ports []int
	for tried := 0; len(ports) < n && tried < span; tried++ {
		p := lo + int(portCursor.Add(1)+uint64(os.Getpid()))%span
		if used[p] || used[p+10000] || !portFree(p) || !portFree(p+10000) {
			continue
		}
		ports = append(ports, p)
		used[p], used[p+10000] = true, true
	}
	if len(ports) < n {
		return nil, fmt.Errorf("not enough free loopback ports below %d (with their bus ports)", limit+10000)
	}
	return ports, nil
}

// portCursor is where the next search for cluster ports starts.
var portCursor atomic.Uint64

// ephemeralLow is the lowest port the kernel gives outgoing connections
// (32768 where it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	v, err := strconv.Atoi(f[0])
	if err != nil || v <= 1024 {
		return 32768
	}
	return v
}

// portFree reports whether 127.0.0.1:p can be listened on now.
func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
