// Package redistest gives tests a real Redis server: a redis-server process
// of their own on a free loopback port, or the server named by
// $REDISLOAD_TEST_REDIS_URL.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
	// Cmd is the redis-server process, nil for a server from EnvURL.
	Cmd *exec.Cmd
}

// Start returns a Redis server that lives until the test ends. Without
// $REDISLOAD_TEST_REDIS_URL it starts redis-server from PATH, with no
// persistence, on a free port, and stops it (by its pid) at cleanup; extra
// args are passed to redis-server. A missing redis-server fails the test:
// CI installs it, and a test that silently skipped would prove nothing.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" && len(args) == 0 {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatalf("%s: %v", EnvURL, err)
		}
		return &Server{URL: u, Addr: opt.Addr}
	}
	return StartOwn(t, args...)
}

// StartOwn always starts a private redis-server, for tests that stop,
// freeze or reconfigure it.
func StartOwn(t testing.TB, args ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (install the redis-server package): %v", err)
	}
	// A port can be taken between choosing and binding; try a few.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := FreePort(t)
		s, err := startAt(t, bin, port, args)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

func startAt(t testing.TB, bin string, port int, extra []string) (*Server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--dir", t.TempDir(), "--loglevel", "warning",
	}, extra...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			return nil, fmt.Errorf("redis-server on port %d exited: %v", port, werr)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer PING: %v", port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(stop)
	return &Server{URL: "redis://" + addr, Addr: addr, Cmd: cmd}, nil
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
