package provision_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	"go.uber.org/goleak"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/provision"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// miniredis and the Docker client keep package-level workers.
		goleak.IgnoreAnyFunction("github.com/alicebob/miniredis/v2/server.(*Server).servePeer"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func ping(t *testing.T, url string) error {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer c.Close()
	return c.Ping(ctx(t)).Err()
}

func TestServerModeStartsAndStops(t *testing.T) {
	redistest.NeedServerBinary(t)
	inst, err := provision.Start(ctx(t), provision.Options{Mode: provision.Server,
		ServerArgs: []string{"--client-output-buffer-limit", "pubsub 1mb 512kb 10"}})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Mode != provision.Server || inst.Pid() == 0 || !strings.HasPrefix(inst.URL, "redis://127.0.0.1:") {
		t.Fatalf("%+v", inst)
	}
	if err := ping(t, inst.URL); err != nil {
		t.Fatal(err)
	}
	// The extra arguments reached the server.
	opt, _ := redis.ParseURL(inst.URL)
	c := redis.NewClient(opt)
	got, err := c.ConfigGet(ctx(t), "client-output-buffer-limit").Result()
	c.Close()
	if err != nil || !strings.Contains(got["client-output-buffer-limit"], "pubsub 1048576 524288 10") {
		t.Fatalf("client-output-buffer-limit = %q, %v", got["client-output-buffer-limit"], err)
	}
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waits for the child: it has exited and been reaped.
	if pid := inst.Pid(); pid != 0 {
		t.Fatalf("redis-server %d still running after Close", pid)
	}
	if err := inst.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

func TestServerModeBadArgumentFailsFast(t *testing.T) {
	redistest.NeedServerBinary(t)
	start := time.Now()
	_, err := provision.Start(ctx(t), provision.Options{Mode: provision.Server, ServerArgs: []string{"--no-such-option", "1"}})
	if !errors.Is(err, provision.ErrUnavailable) || !strings.Contains(err.Error(), "redis-server exited") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
}

func TestServerModeWithoutBinary(t *testing.T) {
	_, err := provision.Start(ctx(t), provision.Options{Mode: provision.Server, ServerBin: "/nonexistent/redis-server"})
	if !errors.Is(err, provision.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

func TestAutoPrefersAListeningServer(t *testing.T) {
	srv := redistest.StartOwn(t)
	inst, err := provision.Start(ctx(t), provision.Options{ProbeAddr: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if inst.Mode != provision.URL || inst.URL != "redis://"+srv.Addr || inst.Reason != srv.Addr+" answered PING" {
		t.Fatalf("%+v", inst)
	}
}

// A server that demands a password is still "there": auto uses it rather
// than silently measuring another one.
func TestAutoCountsAPasswordProtectedServer(t *testing.T) {
	srv := redistest.StartOwn(t, "--requirepass", "pw")
	inst, err := provision.Start(ctx(t), provision.Options{ProbeAddr: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if inst.Mode != provision.URL {
		t.Fatalf("%+v", inst)
	}
}

func TestAutoStartsAServerWhenNothingListens(t *testing.T) {
	redistest.NeedServerBinary(t)
	probe := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	inst, err := provision.Start(ctx(t), provision.Options{ProbeAddr: probe})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if inst.Mode != provision.Server || !strings.Contains(inst.Reason, "nothing answered on "+probe+"; started ") {
		t.Fatalf("%+v", inst)
	}
	if err := ping(t, inst.URL); err != nil {
		t.Fatal(err)
	}
}

func TestAutoFallsBackToEmbedded(t *testing.T) {
	if err := dockerUp(); err == nil {
		t.Skip("a Docker engine is healthy here: auto would start a container")
	}
	probe := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	inst, err := provision.Start(ctx(t), provision.Options{ProbeAddr: probe, ServerBin: "/nonexistent/redis-server"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if inst.Mode != provision.Embedded || !strings.Contains(inst.Reason, "no Docker engine") {
		t.Fatalf("%+v", inst)
	}
	if err := ping(t, inst.URL); err != nil {
		t.Fatal(err)
	}
}

// The embedded server carries a whole run with exact accounting.
func TestEmbeddedRunsTheHarness(t *testing.T) {
	inst, err := provision.Start(ctx(t), provision.Options{Mode: provision.Embedded})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	runExact(t, inst.URL)
}

// runExact runs 3 instances for 30 events on url and checks every count.
func runExact(t *testing.T, url string) {
	t.Helper()
	res, err := harness.Run(ctx(t), harness.Config{Instances: 3, Duration: 500 * time.Millisecond, Rate: 60,
		Redis: bridge.Options{URL: url}})
	if err != nil {
		t.Fatal(err)
	}
	if tot := res.Totals; tot.Published != 30 || tot.Expected != 60 || tot.Delivered != 60 || tot.SelfFiltered != 30 {
		t.Fatalf("%+v", tot)
	}
}

func dockerUp() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("panic")
		}
	}()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return p.Health(c)
}

func TestContainerModeWithoutEngineSaysSo(t *testing.T) {
	if dockerUp() == nil {
		t.Skip("a Docker engine is healthy here")
	}
	_, err := provision.Start(ctx(t), provision.Options{Mode: provision.Container})
	if !errors.Is(err, provision.ErrUnavailable) || !strings.Contains(err.Error(), "no healthy Docker engine") {
		t.Fatalf("err = %v", err)
	}
}

func TestContainerMode(t *testing.T) {
	testcontainers.SkipIfProviderIsNotHealthy(t)
	inst, err := provision.Start(ctx(t), provision.Options{Mode: provision.Container})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	runExact(t, inst.URL)
}

func TestParseMode(t *testing.T) {
	if m, err := provision.ParseMode("server"); err != nil || m != provision.Server {
		t.Fatal(m, err)
	}
	if _, err := provision.ParseMode("docker"); err == nil || !strings.Contains(err.Error(), "auto, url, server, container, embedded") {
		t.Fatal(err)
	}
}

func TestURLModeNeedsURL(t *testing.T) {
	if _, err := provision.Start(ctx(t), provision.Options{Mode: provision.URL}); !errors.Is(err, provision.ErrUnavailable) {
		t.Fatal(err)
	}
	inst, err := provision.Start(ctx(t), provision.Options{URL: "redis://x:1"})
	if err != nil || inst.Mode != provision.URL || inst.URL != "redis://x:1" {
		t.Fatal(inst, err)
	}
}
