package harness_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/verdict"
)

// adapterBuildDir holds the adapters built for the package's tests;
// TestMain removes it.
var adapterBuildDir string

// goRedisAdapter builds adapters/go-redis once for the package's tests.
var goRedisAdapter = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "redisload-adapter-")
	if err != nil {
		return "", err
	}
	adapterBuildDir = dir
	bin := filepath.Join(dir, "go-redis-adapter")
	if out, err := exec.Command("go", "build", "-o", bin, "../adapters/go-redis").CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	return bin, nil
})

func adapterCmd(t *testing.T) []string {
	t.Helper()
	bin, err := goRedisAdapter()
	if err != nil {
		t.Fatalf("building the go-redis adapter: %v", err)
	}
	return []string{bin}
}

// fakeAdapter is the test binary run as an adapter (REDISLOAD_FAKE_ADAPTER
// names how it misbehaves; see TestMain): a go-redis instance, like the
// real adapter, with faults of its own.
func fakeAdapter(mode string) []string {
	return []string{"/usr/bin/env", "REDISLOAD_FAKE_ADAPTER=" + mode, os.Args[0]}
}

// runFakeAdapter is the fake adapter's program.
func runFakeAdapter(mode string) {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 4<<20)
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	say := func(v map[string]any) {
		b, _ := json.Marshal(v)
		mu.Lock()
		out.Write(append(b, '\n'))
		out.Flush()
		mu.Unlock()
	}
	if !in.Scan() {
		os.Exit(2)
	}
	if mode == "exit-early" {
		// What a client's failed dial looks like, quoting its URL.
		fmt.Fprintf(os.Stderr, "at connect (node:net)\nError: cannot connect to %s\n    at main\n", in.Text())
		os.Exit(1)
	}
	if mode == "no-hello" {
		fmt.Fprintln(os.Stderr, "fake adapter: pretending to connect forever")
		time.Sleep(time.Minute)
	}
	var h struct {
		InstanceID string `json:"instance_id"`
		Redis      struct{ URL string }
	}
	_ = json.Unmarshal(in.Bytes(), &h)
	opt, _ := redis.ParseURL(h.Redis.URL)
	ctx := context.Background()
	c := redis.NewClient(opt)
	say(map[string]any{"type": "hello", "protocol": 1, "client": "fake", "client_version": mode})
	published := 0
	for in.Scan() {
		var m struct {
			Type, Channel, Payload string
			ID                     uint64
			Channels               []string
		}
		_ = json.Unmarshal(in.Bytes(), &m)
		switch m.Type {
		case "subscribe":
			ps := c.Subscribe(ctx, m.Channels...)
			for range m.Channels {
				_, _ = ps.Receive(ctx)
			}
			say(map[string]any{"type": "subscribed", "channels": m.Channels})
			if mode == "deaf" {
				// Alive, subscribed, and reading its input no more.
				time.Sleep(time.Minute)
			}
			if mode == "garbage" {
				mu.Lock()
				out.WriteString("this is not JSON\n{\"type\":\"bogus\"}\n")
				out.Flush()
				mu.Unlock()
			}
			if mode == "flood" {
				go func() {
					line := strings.Repeat("x", 1023) + "\n"
					for range 5 << 10 { // 5 MiB
						os.Stderr.WriteString(line)
					}
				}()
			}
			go func() {
				for msg := range ps.Channel() {
					now := time.Now().UnixNano()
					if mode == "future" {
						now += int64(time.Hour)
					}
					var e struct{ Source string }
					_ = json.Unmarshal([]byte(msg.Payload), &e)
					if e.Source == h.InstanceID && mode != "no-filter" {
						say(map[string]any{"type": "filtered", "payload": msg.Payload})
						continue
					}
					say(map[string]any{"type": "message", "channel": msg.Channel, "payload": msg.Payload, "received_ns": now})
					if mode == "forge" {
						// The same message again, and one it never got:
						// another sequence number under the same tag.
						say(map[string]any{"type": "message", "channel": msg.Channel, "payload": msg.Payload, "received_ns": now})
						forged := strings.Replace(msg.Payload, `"seq":`, `"seq":9`, 1)
						say(map[string]any{"type": "message", "channel": msg.Channel, "payload": forged, "received_ns": now})
					}
				}
			}()
		case "publish":
			published++
			if mode == "crash" && published == 5 {
				fmt.Fprintln(os.Stderr, "panic: the fake adapter crashed on purpose")
				os.Exit(3)
			}
			err := c.Publish(ctx, m.Channel, m.Payload).Err()
			if mode == "leak" {
				err = fmt.Errorf("refused by %s", h.Redis.URL)
				fmt.Fprintf(os.Stderr, "connected to %s\n", h.Redis.URL)
			}
			if err != nil {
				say(map[string]any{"type": "published", "id": m.ID, "error": err.Error()})
			} else {
				say(map[string]any{"type": "published", "id": m.ID})
			}
		case "ping":
			say(map[string]any{"type": "pong", "id": m.ID})
		case "stop":
			if mode == "ignore-stop" {
				time.Sleep(time.Minute) // only a kill of its group ends it
			}
			return
		}
	}
}

// adapterRun runs cfg with its instances external, against a server of
// the test's own.
func adapterRun(t *testing.T, cfg harness.Config) *harness.Result {
	t.Helper()
	srv := redistest.StartOwn(t)
	cfg.Redis.URL = srv.URL
	return run(t, cfg)
}

// Every instance a go-redis adapter: the run is exact, as with
// redisload's own bridges, and the report names the client.
func TestExternalInstancesExact(t *testing.T) {
	res := adapterRun(t, harness.Config{Instances: 3, Duration: time.Second, Rate: 100, InstanceCmd: adapterCmd(t),
		Redis: bridge.Options{KeyPrefix: "ext:"}})
	checkExact(t, res)
	for _, ir := range res.Instances {
		a := ir.Adapter
		if a == nil || a.Client != "go-redis" || !strings.HasPrefix(a.ClientVersion, "9.") || a.Misbehaved() || a.ProtocolErrors != 0 {
			t.Fatalf("instance %d: adapter %+v", ir.Index, a)
		}
	}
	if res.Config.InstanceCmd == "" || res.Config.ExternalInstances != 3 || len(res.Warnings) != 0 {
		t.Fatalf("config %+v warnings %q", res.Config, res.Warnings)
	}
	if c := res.Server.Counts; c.Calls != 100 || c.Subscribers[0].Server != 3 {
		t.Fatalf("server counts %+v", c)
	}
}

// Two external instances beside two of redisload's own: one run, one
// accounting, exact across both kinds.
func TestExternalAndOwnInstancesMixed(t *testing.T) {
	res := adapterRun(t, harness.Config{Instances: 4, Duration: time.Second, Rate: 100, InstanceCmd: adapterCmd(t),
		ExternalInstances: 2, Redis: bridge.Options{KeyPrefix: "mix:"}})
	checkExact(t, res)
	for _, ir := range res.Instances {
		if (ir.Adapter != nil) != (ir.Index < 2) {
			t.Fatalf("instance %d: adapter %+v", ir.Index, ir.Adapter)
		}
	}
}

// The go-redis adapter through a client kill: its client reconnects and
// subscribes again by itself, it says so, and what was lost is inside
// the outages it told.
func TestExternalInstancesThroughClientKill(t *testing.T) {
	srv := redistest.StartOwn(t)
	res := run(t, harness.Config{Instances: 3, Duration: 2 * time.Second, Rate: 200, InstanceCmd: adapterCmd(t),
		Redis:  bridge.Options{URL: srv.URL, KeyPrefix: "extk:"},
		Faults: []harness.Fault{{At: 700 * time.Millisecond, Action: harness.FaultClientKill, Instance: harness.AllInstances}}})
	tl := res.Timeline
	if len(tl.Faults) != 1 || tl.Faults[0].Detail != "killed 3 subscriber connections" {
		t.Fatalf("faults %+v", tl.Faults)
	}
	hit := map[int]bool{}
	for _, o := range tl.Outages {
		hit[o.Instance] = true
		if o.RecoverySeconds == nil {
			t.Errorf("outage %+v never recovered", o)
		}
	}
	if len(hit) != 3 || tl.Unrecovered != 0 || tl.LossOutsideOutages != 0 || res.Totals.Connected != 3 || res.Totals.Duplicates != 0 {
		t.Fatalf("outages on %v, %d unrecovered, %d lost outside, %d connected; totals %+v", hit, tl.Unrecovered,
			tl.LossOutsideOutages, res.Totals.Connected, res.Totals)
	}
	if res.Totals.Delivered+res.Totals.Missing != res.Totals.Expected || res.Totals.Published != res.Totals.TargetEvents {
		t.Fatalf("totals %+v", res.Totals)
	}
}

// Adapters that misbehave are counted and named, the run stays bounded
// and honest, and nothing of theirs is left running.
func TestBadAdapters(t *testing.T) {
	srv := redistest.StartOwn(t)
	base := harness.Config{Instances: 3, Duration: time.Second, Rate: 60, ExternalInstances: 1, ConnectTimeout: 2 * time.Second,
		DrainTimeout: 500 * time.Millisecond}
	cfg := func(mode, prefix string) harness.Config {
		c := base
		c.InstanceCmd = fakeAdapter(mode)
		c.Redis = bridge.Options{URL: srv.URL, KeyPrefix: prefix}
		return c
	}

	t.Run("never says hello", func(t *testing.T) {
		start := time.Now()
		_, err := harness.Run(context.Background(), cfg("no-hello", "bh:"))
		if err == nil || !strings.Contains(err.Error(), "no hello within the connect timeout") ||
			!strings.Contains(err.Error(), "pretending to connect forever") || time.Since(start) > 5*time.Second {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
	})
	t.Run("ends before its hello", func(t *testing.T) {
		start := time.Now()
		_, err := harness.Run(context.Background(), cfg("exit-early", "be:"))
		if !errors.Is(err, harness.ErrAdapterFailed) || errors.Is(err, harness.ErrUnavailable) ||
			!strings.Contains(err.Error(), "it ended with exit status 1") || !strings.Contains(err.Error(), "its stderr says: Error: cannot connect to") ||
			time.Since(start) > time.Second {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
	})
	t.Run("quotes its password", func(t *testing.T) {
		const pw = "s3cr%t pw"
		if err := srv.Client(t).Do(context.Background(), "ACL", "SETUSER", "adapter", "on", ">"+pw, "~*", "&*", "+@all").Err(); err != nil {
			t.Fatal(err)
		}
		c := cfg("leak", "bl:")
		c.Redis.Username, c.Redis.Password = "adapter", pw
		res := run(t, c)
		if ir := res.Instances[0]; ir.PublishErrors == 0 || ir.Published != 0 {
			t.Fatalf("instance 0 %+v", ir.Counts)
		}
		out, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw)} {
			if strings.Contains(string(out), form) || strings.Contains(strings.Join(res.Warnings, "\n"), form) {
				t.Fatalf("%q in the report: %s", form, out)
			}
		}
		if !strings.Contains(string(out), "refused by redis://adapter:xxxxx@") || !strings.Contains(res.Instances[0].Adapter.StderrTail, "connected to redis://adapter:xxxxx@") {
			t.Fatalf("the report lost the adapter's words: %s", out)
		}
		_, err = harness.Run(context.Background(), func() harness.Config { c := c; c.InstanceCmd = fakeAdapter("exit-early"); return c }())
		if err == nil || strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), url.PathEscape(pw)) || strings.Contains(err.Error(), url.QueryEscape(pw)) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("crashes", func(t *testing.T) {
		res := run(t, cfg("crash", "bc:"))
		a := res.Instances[0].Adapter
		if a.Exited == "" || !strings.Contains(a.Exit, "exit status 3") || !strings.Contains(a.StderrTail, "crashed on purpose") {
			t.Fatalf("adapter %+v", a)
		}
		if res.Instances[0].Connected || res.Totals.Connected != 2 || res.Instances[0].Published != 4 || res.Instances[0].PublishUnknown != 1 {
			t.Fatalf("instance 0 %+v", res.Instances[0])
		}
		if !strings.Contains(strings.Join(res.Warnings, "\n"), "crashed on purpose") {
			t.Fatalf("warnings %q", res.Warnings)
		}
	})
	t.Run("stops reading its input", func(t *testing.T) {
		// 100 KB an event: the pipe's 64 KiB cannot hold one, so the
		// first publish's write waits for an adapter that never reads,
		// until it is killed as hung.
		c := cfg("deaf", "bd:")
		c.PayloadSize, c.PayloadSizeMax = 100_000, 100_000
		start := time.Now()
		res := run(t, c)
		a, ir := res.Instances[0].Adapter, res.Instances[0]
		if !strings.Contains(a.Exit, "killed: it left its input unread for 5s") || ir.Connected || ir.Published != 0 ||
			ir.PublishUnknown == 0 || time.Since(start) > 20*time.Second {
			t.Fatalf("after %v: adapter %+v, instance 0 %+v", time.Since(start), a, ir.Counts)
		}
		if verdict.Evaluate(res, verdict.DefaultThresholds()).Passed() {
			t.Fatal("a run whose adapter hung passed")
		}
	})
	t.Run("writes garbage", func(t *testing.T) {
		res := run(t, cfg("garbage", "bg:"))
		a := res.Instances[0].Adapter
		if a.ProtocolErrors != 2 || a.FirstProtocolError != "this is not JSON" {
			t.Fatalf("adapter %+v", a)
		}
		checkDelivered(t, res)
	})
	t.Run("floods stderr", func(t *testing.T) {
		res := run(t, cfg("flood", "bf:"))
		a := res.Instances[0].Adapter
		if a.StderrBytes != 5<<20 || len(a.StderrTail) > 2<<10 {
			t.Fatalf("stderr %d bytes, tail %d", a.StderrBytes, len(a.StderrTail))
		}
		checkDelivered(t, res)
	})
	t.Run("reports what it never received", func(t *testing.T) {
		res := run(t, cfg("forge", "bx:"))
		ir := res.Instances[0]
		// Each delivery reported twice and once forged: duplicates and
		// forgeries, never extra deliveries.
		if ir.Delivered != ir.Expected || ir.Duplicates != ir.Expected || ir.Forged != ir.Expected || ir.Missing != 0 {
			t.Fatalf("instance 0 %+v", ir.Counts)
		}
	})
	t.Run("stamps with a clock ahead", func(t *testing.T) {
		res := run(t, cfg("future", "bt:"))
		ir := res.Instances[0]
		if ir.Adapter.FutureStamps != ir.Delivered || ir.Delivered != ir.Expected || ir.Forged != 0 {
			t.Fatalf("instance 0 %+v, adapter %+v", ir.Counts, ir.Adapter)
		}
		if max := time.Duration(res.Latency.Max) * time.Microsecond; max > 10*time.Second {
			t.Fatalf("latency max %v: the future stamps were believed", max)
		}
	})
	t.Run("does not filter its own", func(t *testing.T) {
		res := run(t, cfg("no-filter", "bn:"))
		if ir := res.Instances[0]; ir.SelfReceived != ir.Published || ir.SelfFiltered != 0 || ir.Published == 0 {
			t.Fatalf("instance 0 %+v", ir.Counts)
		}
	})
	t.Run("ignores stop", func(t *testing.T) {
		start := time.Now()
		res := run(t, cfg("ignore-stop", "bi:"))
		if a := res.Instances[0].Adapter; !strings.HasPrefix(a.Exit, "killed") || time.Since(start) > 10*time.Second {
			t.Fatalf("adapter %+v after %v", a, time.Since(start))
		}
		if pid := res.Instances[0].Adapter.PID; syscall.Kill(pid, 0) == nil {
			t.Fatalf("adapter %d still running", pid)
		}
	})
}

// checkDelivered asserts that every instance got all it expected.
func checkDelivered(t *testing.T, res *harness.Result) {
	t.Helper()
	for _, ir := range res.Instances {
		if ir.Delivered != ir.Expected || ir.Expected == 0 || ir.Duplicates != 0 || ir.Forged != 0 {
			t.Fatalf("instance %d: %+v", ir.Index, ir.Counts)
		}
	}
}
