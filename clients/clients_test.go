package clients_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/clients"
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
