package provision

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A local Sentinel set for everyone: a master, a replica of it and three
// sentinels watching it, all redis-server children on free loopback ports
// (redis-server --sentinel, no other package), with a short down-after so
// that a failover takes seconds.

// SentinelMaster is the name the sentinels know the master by.
const SentinelMaster = "mymaster"

// sentinelDownAfter is how long the master may not answer before the
// sentinels call it down; short, for failover scenarios.
const sentinelDownAfter = 2 * time.Second

// startSentinel starts the master, the replica and the sentinels, and
// waits until every sentinel knows the master, its replica and the other
// sentinels. Whatever it started is stopped on failure.
func startSentinel(ctx context.Context, o Options) (*Instance, error) {
	bin, err := serverBin(o)
	if err != nil {
		return nil, fmt.Errorf("%w: sentinel mode: redis-server is not on PATH (install the redis-server package)", ErrUnavailable)
	}
	dir, err := os.MkdirTemp("", "redisload-sentinel-")
	if err != nil {
		return nil, fmt.Errorf("%w: sentinel mode: %v", ErrUnavailable, err)
	}
	s := &sentinelSet{dir: dir}
	fail := func(err error) (*Instance, error) {
		_ = s.stop()
		return nil, fmt.Errorf("%w: sentinel mode: %v", ErrUnavailable, err)
	}
	ports, err := clusterPorts(5, map[int]bool{}) // any five free ports below the ephemeral range: no bus, but the helper is at hand
	if err != nil {
		return fail(err)
	}
	mdir, rdir := filepath.Join(dir, "master"), filepath.Join(dir, "replica")
	for _, d := range []string{mdir, rdir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fail(err)
		}
	}
	// The master sends its data to the replica at once, not after the
	// default 5 s wait for other replicas: a replica out of sync cannot
	// be promoted.
	master, err := runServer(ctx, bin, ports[0], mdir, append([]string{"--repl-diskless-sync-delay", "0"}, o.ServerArgs...))
	if err != nil {
		return fail(fmt.Errorf("master: %v", err))
	}
	s.servers = append(s.servers, master)
	replica, err := runServer(ctx, bin, ports[1], rdir, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(ports[0])}, o.ServerArgs...))
	if err != nil {
		return fail(fmt.Errorf("replica: %v", err))
	}
	s.servers = append(s.servers, replica)
	for i, port := range ports[2:] {
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", port))
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %s %d\nsentinel failover-timeout %s 10000\nsentinel parallel-syncs %s 1\n",
			port, dir, SentinelMaster, ports[0], SentinelMaster, sentinelDownAfter.Milliseconds(), SentinelMaster, SentinelMaster)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return fail(err)
		}
		p := &serverProc{bin: bin, port: port, args: []string{conf, "--sentinel"}}
		if err := p.start(ctx); err != nil {
			return fail(fmt.Errorf("sentinel %d: %v", i+1, err))
		}
		s.servers = append(s.servers, &Instance{Mode: Server, URL: "redis://" + p.addr(), proc: p, closeFn: p.stop})
		s.sentinels = append(s.sentinels, p.addr())
	}
	if err := s.await(ctx); err != nil {
		return fail(err)
	}
	return &Instance{Mode: Sentinel, URL: master.URL, Sentinels: s.sentinels, MasterName: SentinelMaster,
		SentinelURL: "redis+sentinel://" + strings.Join(s.sentinels, ",") + "/" + SentinelMaster,
		Nodes:       []string{strings.TrimPrefix(master.URL, "redis://"), strings.TrimPrefix(replica.URL, "redis://")},
		members:     []*Instance{master, replica}, closeFn: s.stop}, nil
}

// sentinelSet is what Sentinel mode started.
type sentinelSet struct {
	dir       string
	servers   []*Instance // master, replica, then the sentinels
	sentinels []string
}

// stop stops everything at once and removes the files.
func (s *sentinelSet) stop() error { return stopAll(s.servers, s.dir) }

// await waits until every sentinel sees the master up, its replica, and
// the two other sentinels: before that a failover could not be agreed on.
func (s *sentinelSet) await(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, clusterReadyTimeout)
	defer cancel()
	clients := make([]*redis.Client, len(s.sentinels))
	for i, addr := range s.sentinels {
		clients[i] = adminClient(addr)
		defer clients[i].Close()
	}
	rc := adminClient(s.servers[1].URL[len("redis://"):])
	defer rc.Close()
	if err := waitAll(ctx, []*redis.Client{rc}, "the replica in sync with the master", replicaInSync(ctx)); err != nil {
		return err
	}
	return waitAll(ctx, clients, "every sentinel to know the master, its replica and the others", func(c *redis.Client) bool {
		m, err := c.Do(ctx, "SENTINEL", "MASTER", SentinelMaster).Slice()
		if err != nil {
			return false
		}
		f := map[string]string{}
		for i := 0; i+1 < len(m); i += 2 {
			f[fmt.Sprint(m[i])] = fmt.Sprint(m[i+1])
		}
		return f["num-slaves"] == "1" && f["num-other-sentinels"] == "2" && !strings.Contains(f["flags"], "down")
	})
}
