package clients_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/clients"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/verdict"
)

func TestMain(m *testing.M) { os.Exit(redistest.CheckLeaks(m.Run())) }

// Every client through the standard scenario and a Sentinel failover (the
// one failover every client has): the accounting is exact whatever the
// client does, and the reference row passes both. An adapter whose runtime
// is missing fails where CI installs them all (REDISLOAD_ADAPTERS_REQUIRED),
// and is skipped with its reason elsewhere.
func TestEveryClientStandardAndFailover(t *testing.T) {
	redistest.DeploymentTurn(t) // its Sentinel sets fail over: see DeploymentTurn
	sc, err := clients.LookupScenarios([]string{"standard", "sentinel-failover"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	m, err := clients.Run(ctx, clients.Config{Scenarios: sc, AdaptersDir: "../adapters", Duration: 4 * time.Second, Rate: 150})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Cells) != len(clients.All)*2 {
		t.Fatalf("%d cells, want %d", len(m.Cells), len(clients.All)*2)
	}
	for _, c := range m.Cells {
		t.Run(c.Client+"/"+c.Scenario, func(t *testing.T) {
			if strings.HasPrefix(c.Error, "not available: ") {
				if os.Getenv("REDISLOAD_ADAPTERS_REQUIRED") != "" {
					t.Fatal(c.Error)
				}
				t.Skip(c.Error)
			}
			if c.Error != "" || c.Expected == 0 {
				t.Fatalf("cell %+v", c)
			}
			// Every expected delivery is delivered or missing, and every
			// missing one is inside an outage or outside all of them.
			if c.Expected-c.Delivered != c.MissingInOutages+c.MissingOutside || c.Forged != 0 || c.SelfReceived != 0 {
				t.Fatalf("cell %+v", c)
			}
			if c.Client != clients.Reference && c.ClientVersion == "" {
				t.Errorf("no client version: %+v", c)
			}
			switch c.Scenario {
			case "standard":
				if c.Verdict != verdict.Pass || c.Delivered != c.Expected || c.Duplicates != 0 || c.Connected != c.Instances {
					t.Fatalf("cell %+v", c)
				}
			case "sentinel-failover":
				if strings.HasPrefix(c.FaultDetail, "failed") || c.FaultDetail == "" {
					t.Fatalf("fault %q", c.FaultDetail)
				}
				if c.Client == clients.Reference && (c.Verdict != verdict.Pass || c.MissingOutside != 0 || c.Resubscribed == "no") {
					t.Fatalf("reference cell %+v", c)
				}
			}
			t.Logf("%+v", c)
		})
	}
}

// Unknown names are refused with the known ones listed.
func TestLookup(t *testing.T) {
	if _, err := clients.Lookup([]string{"go-redis", "jedis"}); err == nil || !strings.Contains(err.Error(), `"jedis" (known: redisload, go-redis, ioredis, node-redis, redis-py)`) {
		t.Fatalf("%v", err)
	}
	cs, err := clients.Lookup([]string{"redis-py", "go-redis"})
	if err != nil || len(cs) != 2 || cs[0].Name != "go-redis" || cs[1].Name != "redis-py" {
		t.Fatalf("%v %v", cs, err)
	}
	if _, err := clients.LookupScenarios([]string{"nope"}); err == nil || !strings.Contains(err.Error(), "sentinel-failover") {
		t.Fatalf("%v", err)
	}
}

// A cell that passed in the baseline and fails now is a regression; one
// that was failing, is skipped, or is new is not.
func TestRegressions(t *testing.T) {
	base := &clients.Matrix{Cells: []clients.Cell{{Client: "a", Scenario: "s", Verdict: verdict.Pass},
		{Client: "b", Scenario: "s", Verdict: verdict.Fail}, {Client: "c", Scenario: "s", Verdict: verdict.Pass}}}
	now := &clients.Matrix{Cells: []clients.Cell{{Client: "a", Scenario: "s", Verdict: verdict.Fail},
		{Client: "b", Scenario: "s", Verdict: verdict.Fail}, {Client: "c", Scenario: "s", Verdict: verdict.Skip},
		{Client: "d", Scenario: "s", Verdict: verdict.Fail}}}
	regs := clients.Regressions(base, now)
	if len(regs) != 1 || regs[0] != (clients.Regression{Client: "a", Scenario: "s", Was: "PASS", Now: "FAIL"}) {
		t.Fatalf("%+v", regs)
	}
	if clients.Regressions(nil, now) != nil {
		t.Fatal("regressions without a baseline")
	}
}

// A subscriber that stays "connected" but stops receiving is a silent
// death, measured against the last second publishes were accepted in:
// when every instance runs the same client and all die together, no
// other instance's delivery shows the feed flowing, the publishes do.
func TestSilentDeaths(t *testing.T) {
	at := func(s float64) *float64 { return &s }
	inst := func(last *float64, missing uint64) harness.InstanceResult {
		return harness.InstanceResult{Connected: true, LastDeliverySeconds: last,
			Counts: harness.Counts{Expected: 100, Missing: missing}}
	}
	series := func(published ...uint64) []harness.SeriesPoint {
		var out []harness.SeriesPoint
		for i, p := range published {
			out = append(out, harness.SeriesPoint{Seconds: float64(i + 1), Published: p})
		}
		return out
	}
	for _, c := range []struct {
		name string
		res  harness.Result
		want int
	}{
		{"all quiet from 2 s while publishes went on to 6 s",
			harness.Result{Instances: []harness.InstanceResult{inst(at(2), 60), inst(at(2.1), 60), inst(nil, 100)},
				Series: series(10, 20, 30, 40, 50, 60)}, 3},
		{"all quiet because nothing was accepted after 2 s",
			harness.Result{Instances: []harness.InstanceResult{inst(at(2), 10), inst(at(2.1), 10)},
				Series: series(10, 20, 20, 20, 20, 20)}, 0},
		{"one quiet while the others received",
			harness.Result{Instances: []harness.InstanceResult{inst(at(2), 60), inst(at(5.9), 0), inst(at(5.95), 0)}}, 1},
		{"quiet but nothing missing: not dead, idle",
			harness.Result{Instances: []harness.InstanceResult{inst(at(2), 0), inst(at(2), 0)},
				Series: series(10, 20, 30, 40, 50, 60)}, 0},
	} {
		if got := clients.SilentDeaths(&c.res); got != c.want {
			t.Errorf("%s: %d silent deaths, want %d", c.name, got, c.want)
		}
	}
}
