// Package provision finds or starts the Redis server a run measures: the
// one at a URL, a redis-server child process, a container, or an in-process
// stand-in, and says which and why. Whatever it starts, Close stops.
package provision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Mode is how the server is provided.
type Mode string

// The modes of --redis.
const (
	// Auto picks the first that works: a server answering on
	// 127.0.0.1:6379, then Server, then Container, then Embedded.
	Auto Mode = "auto"
	// URL uses the server at Options.URL.
	URL Mode = "url"
	// Server starts redis-server from PATH on a free loopback port.
	Server Mode = "server"
	// Container starts Redis in a container with testcontainers-go.
	Container Mode = "container"
	// Embedded runs an in-process Redis-compatible server (miniredis).
	Embedded Mode = "embedded"
	// Cluster starts a local Redis Cluster of redis-server children.
	Cluster Mode = "cluster"
	// Sentinel starts a master, a replica and three sentinels.
	Sentinel Mode = "sentinel"
)

// Modes lists the valid modes, for flag help and errors.
var Modes = []Mode{Auto, URL, Server, Container, Embedded, Cluster, Sentinel}

// ParseMode checks s against Modes.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = string(m)
	}
	return "", fmt.Errorf("unknown mode %q (want %s)", s, strings.Join(names, ", "))
}

// ErrUnavailable wraps every failure to provide a server in the asked mode.
var ErrUnavailable = errors.New("no Redis server")

// DefaultProbeAddr is where Auto looks for a running server first.
const DefaultProbeAddr = "127.0.0.1:6379"

// DefaultImage is the container image of Container mode.
const DefaultImage = "redis:7"

// Options says how to provide the server. The zero value is Auto.
type Options struct {
	// Mode is how the server is provided.
	// default: Auto, or URL when URL is set
	Mode Mode
	// URL is the server of URL mode. It may carry credentials; Start never
	// prints it.
	// default: ""
	URL string
	// ServerArgs are extra redis-server arguments in Server mode, e.g.
	// "--client-output-buffer-limit", "pubsub 1mb 512kb 10".
	// default: none
	ServerArgs []string
	// Persistent starts Server mode's server, and Cluster mode's nodes,
	// with an append-only file (appendonly yes, appendfsync everysec), so
	// that a restart keeps the data: what a run over streams needs for its
	// restart to mean anything. A restart (SIGTERM) syncs the file whole;
	// a crash loses up to about a second. ServerArgs still override it.
	// default: false (no persistence)
	Persistent bool
	// ServerBin is the redis-server executable of Server mode.
	// default: "redis-server" from PATH
	ServerBin string
	// Image is the container image of Container mode.
	// default: "redis:7"
	Image string
	// ProbeAddr is where Auto looks for a running server first.
	// default: "127.0.0.1:6379"
	ProbeAddr string
	// ClusterMasters is the number of masters in Cluster mode.
	// default: 3
	ClusterMasters int
	// ClusterReplicas is the number of replicas of each master in Cluster
	// mode; -1 means none.
	// default: 1
	ClusterReplicas int
	// ClusterNodeTimeout is the nodes' cluster-node-timeout: how long a
	// master may be unreachable before its replica is promoted. Short, so
	// that failover scenarios end in seconds.
	// default: 2s
	ClusterNodeTimeout time.Duration
}

// Instance is a provided server. Close releases what Start started; for a
// URL it does nothing.
type Instance struct {
	// Mode is the mode used (never Auto).
	Mode Mode
	// URL is what to connect to. It may carry credentials: display it
	// with bridge.RedactURL.
	URL string
	// Reason says why Auto chose this mode; empty otherwise.
	Reason string
	// Nodes are the addresses of Cluster mode's nodes, masters first, or
	// of Sentinel mode's master and replica.
	Nodes []string
	// Sentinels are Sentinel mode's sentinels, and MasterName the master
	// they watch.
	Sentinels  []string
	MasterName string
	// SentinelURL is Sentinel mode's redis+sentinel:// URL: the master
	// found through the sentinels, which follows it through a failover
	// (URL names the master at the start).
	SentinelURL string

	proc *serverProc // the redis-server child of Server mode, nil otherwise
	// members are the servers of Cluster and Sentinel modes, for KillNode.
	members []*Instance

	closeOnce sync.Once
	closeFn   func() error
	closeErr  error
}

// Close stops what Start started. It is idempotent and safe to defer.
func (i *Instance) Close() error {
	i.closeOnce.Do(func() {
		if i.closeFn != nil {
			i.closeErr = i.closeFn()
		}
	})
	return i.closeErr
}

// Start provides a server in the mode o asks for. A mode that cannot be
// had (no redis-server on PATH, no Docker engine) is an error wrapping
// ErrUnavailable with the reason; Auto falls through to the next mode.
func Start(ctx context.Context, o Options) (*Instance, error) {
	if o.Mode == "" {
		o.Mode = Auto
		if o.URL != "" {
			o.Mode = URL
		}
	}
	switch o.Mode {
	case URL:
		if o.URL == "" {
			return nil, fmt.Errorf("%w: url mode needs a URL (--redis-url or $REDIS_URL)", ErrUnavailable)
		}
		return &Instance{Mode: URL, URL: o.URL}, nil
	case Server:
		return startServer(ctx, o)
	case Container:
		return startContainer(ctx, o)
	case Embedded:
		return startEmbedded()
	case Cluster:
		return startCluster(ctx, o)
	case Sentinel:
		return startSentinel(ctx, o)
	case Auto:
		return startAuto(ctx, o)
	}
	return nil, fmt.Errorf("%w: unknown mode %q", ErrUnavailable, o.Mode)
}

// startAuto tries each mode in turn. A server already listening wins: the
// user most likely means the Redis they run; a started one comes next, and
// the in-process stand-in only when nothing real can be had.
func startAuto(ctx context.Context, o Options) (*Instance, error) {
	addr := o.ProbeAddr
	if addr == "" {
		addr = DefaultProbeAddr
	}
	if answers(ctx, addr) {
		return &Instance{Mode: URL, URL: "redis://" + addr, Reason: addr + " answered PING"}, nil
	}
	var tried []string
	if bin, err := serverBin(o); err == nil {
		o.ServerBin = bin
		inst, err := startServer(ctx, o)
		if err == nil {
			inst.Reason = "nothing answered on " + addr + "; started " + bin
			return inst, nil
		}
		tried = append(tried, err.Error())
	} else {
		tried = append(tried, "no redis-server on PATH")
	}
	if err := dockerHealthy(ctx); err == nil {
		inst, err := startContainer(ctx, o)
		if err == nil {
			inst.Reason = "nothing answered on " + addr + ", " + strings.Join(tried, "; ") + "; started a container"
			return inst, nil
		}
		tried = append(tried, err.Error())
	} else {
		tried = append(tried, "no Docker engine ("+err.Error()+")")
	}
	inst, err := startEmbedded()
	if err != nil {
		return nil, err
	}
	inst.Reason = "nothing answered on " + addr + ", " + strings.Join(tried, "; ")
	return inst, nil
}

// answers reports whether a Redis server replies to PING at addr. A reply
// demanding authentication counts: a server is there, and the run's own
// connection will say what it needs.
func answers(ctx context.Context, addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, ContextTimeoutEnabled: true, DisableIdentity: true, Protocol: 2})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	err := c.Ping(ctx).Err()
	if err == nil {
		return true
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "NOAUTH") || strings.HasPrefix(msg, "WRONGPASS")
}

func serverBin(o Options) (string, error) {
	if o.ServerBin != "" {
		return o.ServerBin, nil
	}
	return exec.LookPath("redis-server")
}

// startServer runs redis-server as a child on a free loopback port, with
// no persistence, and waits until it answers PING.
func startServer(ctx context.Context, o Options) (*Instance, error) {
	bin, err := serverBin(o)
	if err != nil {
		return nil, fmt.Errorf("%w: server mode: redis-server is not on PATH (install the redis-server package)", ErrUnavailable)
	}
	dir, err := os.MkdirTemp("", "redisload-server-")
	if err != nil {
		return nil, fmt.Errorf("%w: server mode: %v", ErrUnavailable, err)
	}
	var lastErr error
	// A free port can be taken between choosing and binding it; retry.
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		inst, err := runServer(ctx, bin, port, dir, append(o.persistence(), o.ServerArgs...))
		if err == nil {
			prev := inst.closeFn
			inst.closeFn = func() error {
				err := prev()
				_ = os.RemoveAll(dir)
				return err
			}
			return inst, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("%w: server mode: %v", ErrUnavailable, lastErr)
}

// persistence is the redis-server arguments of Persistent: before
// ServerArgs, which may override them.
func (o Options) persistence() []string {
	if !o.Persistent {
		return nil
	}
	return []string{"--appendonly", "yes", "--appendfsync", "everysec"}
}

func runServer(ctx context.Context, bin string, port int, dir string, extra []string) (*Instance, error) {
	p := &serverProc{bin: bin, port: port, args: append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir,
		// As many clients as its file limit allows, not Redis's default
		// 10000: a run of more than 5000 instances needs more (Redis
		// lowers this to its limit, and says so in its log).
		"--maxclients", "1000000",
	}, extra...)}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return &Instance{Mode: Server, URL: "redis://" + p.addr(), proc: p, closeFn: p.stop}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lastLine keeps the last meaningful line of a server's output, which is
// where redis-server says why it refused to start.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "***") {
			return l
		}
	}
	return "no output"
}
