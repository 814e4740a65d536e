// Package redistest gives tests a real Redis server, found or started with
// the same chain as redisload's --redis=auto: the server named by
// $REDISLOAD_TEST_REDIS_URL, else a redis-server process of the test's own
// on a free loopback port, else a container, else the embedded stand-in.
//
// In CI (CI=true or REDISLOAD_REQUIRE_REAL_REDIS=1) falling back to the
// embedded stand-in fails the test: CI must measure a real server.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/provision"
)

// EnvURL names the environment variable that points tests at an existing
// server instead of starting one.
const EnvURL = "REDISLOAD_TEST_REDIS_URL"

// Server is a Redis server for one test.
type Server struct {
	// URL is the redis:// URL to connect to.
	URL string
	// Addr is its host:port.
	Addr string
	// Mode says how it was provided: url (from EnvURL), server, container
	// or embedded.
	Mode provision.Mode
	// Inst is what provided the server: tests that stop, restart or freeze
	// a server of their own (StartOwn) use its methods.
	Inst *provision.Instance
}

// requireReal reports whether the embedded fallback is forbidden.
func requireReal() bool {
	return os.Getenv("CI") == "true" || os.Getenv("REDISLOAD_REQUIRE_REAL_REDIS") == "1"
}

// Start returns a Redis server that lives until the test ends, by the
// chain above; extra args go to redis-server (and rule out every link but
// a process of the test's own).
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" && len(args) == 0 {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatalf("%s: %v", EnvURL, err)
		}
		return &Server{URL: u, Addr: opt.Addr, Mode: provision.URL, Inst: &provision.Instance{Mode: provision.URL, URL: u}}
	}
	if _, err := exec.LookPath("redis-server"); err == nil {
		return start(t, provision.Options{Mode: provision.Server, ServerArgs: args})
	}
	if len(args) > 0 {
		skipOrFail(t, "needs its own redis-server (with "+strings.Join(args, " ")+"), and none is on PATH")
	}
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if inst, err := provision.Start(c, provision.Options{Mode: provision.Container}); err == nil {
		return adopt(t, inst)
	}
	if requireReal() {
		t.Fatal("no real Redis for the tests: no redis-server on PATH, no Docker engine, and CI forbids the embedded fallback (install redis-server)")
	}
	t.Log("no redis-server on PATH and no Docker engine: using the embedded stand-in")
	return start(t, provision.Options{Mode: provision.Embedded})
}

// StartOwn returns a redis-server process of the test's own, for tests
// that stop, freeze or reconfigure the server or need a real server's
// behaviour. Without redis-server on PATH the test is skipped with the
// reason, or fails in CI.
func StartOwn(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		skipOrFail(t, "needs its own redis-server process, and none is on PATH")
	}
	return start(t, provision.Options{Mode: provision.Server, ServerArgs: args})
}

// NeedServerBinary skips a test of redis-server provisioning itself when
// no redis-server is on PATH (and fails it in CI).
func NeedServerBinary(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		skipOrFail(t, "tests redis-server provisioning, and no redis-server is on PATH")
	}
}

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if requireReal() {
		t.Fatal(why + " (CI requires a real server: install redis-server)")
	}
	t.Skip(why)
}

func start(t testing.TB, o provision.Options) *Server {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := provision.Start(c, o)
	if err != nil {
		t.Fatalf("start Redis: %v", err)
	}
	return adopt(t, inst)
}

// adopt wraps inst and stops it when the test ends.
func adopt(t testing.TB, inst *provision.Instance) *Server {
	t.Cleanup(func() { _ = inst.Close() })
	opt, err := redis.ParseURL(inst.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &Server{URL: inst.URL, Addr: opt.Addr, Mode: inst.Mode, Inst: inst}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Client returns a plain go-redis client for s, closed at cleanup.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ACLUser makes user, password "pw", on s with the given ACL rules (all
// keys, and whatever rules grant: "&*", "+@all", "-publish"...), and
// returns a URL that logs in as it: a real user of a real ACL, for tests
// of what a server refuses.
func (s *Server) ACLUser(t testing.TB, user string, rules ...string) string {
	t.Helper()
	args := []any{"ACL", "SETUSER", user, "on", ">pw", "~*"}
	for _, r := range rules {
		args = append(args, r)
	}
	if err := s.Client(t).Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER %s: %v", user, err)
	}
	return fmt.Sprintf("redis://%s:pw@%s", user, s.Addr)
}

// Kill ends a server of the test's own (StartOwn) as kill -9 does: no
// shutdown, every connection reset, and nothing restarts it.
func Kill(t testing.TB, s *Server) {
	t.Helper()
	p, err := os.FindProcess(s.Inst.Pid())
	if err != nil || s.Inst.Pid() == 0 {
		t.Fatalf("kill: no redis-server process of the test's own (%v)", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
}

// Cluster starts a local Redis Cluster of masters masters with replicas
// replicas each (-1: none) for one test, stopped when it ends.
func Cluster(t testing.TB, masters, replicas int) *provision.Instance {
	t.Helper()
	NeedServerBinary(t)
	DeploymentTurn(t)
	return start(t, provision.Options{Mode: provision.Cluster, ClusterMasters: masters, ClusterReplicas: replicas}).Inst
}

// Sentinel starts a local Sentinel set (a master, a replica, three
// sentinels) for one test, stopped when it ends.
func Sentinel(t testing.TB) *provision.Instance {
	t.Helper()
	NeedServerBinary(t)
	DeploymentTurn(t)
	return start(t, provision.Options{Mode: provision.Sentinel}).Inst
}
