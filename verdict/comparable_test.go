package verdict_test

import (
	"strings"
	"testing"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/verdict"
)

// Two runs of one setup are comparable; every field of the setup that
// differs is named once, the rest not at all.
func TestComparable(t *testing.T) {
	base := &harness.Result{Redis: "redis://h:6379", Config: harness.ResultConfig{Instances: 5, Rate: 2000, Publishers: 5,
		EventTypes: []string{"trade", "ticker"}, Pipeline: 512, PubSub: "classic"},
		Server: harness.ServerInfo{Version: "7.0.15", Mode: "url"}}
	same := *base
	same.Config.EventTypes = []string{"ticker", "trade"} // order does not matter
	if ms := verdict.Comparable(base, &same, "v1", "v1"); len(ms) != 0 {
		t.Fatalf("same setup: %v", ms)
	}
	cur := *base
	cur.Redis = "rediss://h:6380"
	cur.Config = harness.ResultConfig{Instances: 2, MaxRate: true, Publishers: 2, EventTypes: []string{"ticker"}, Pipeline: 512,
		PubSub: "sharded", ChannelsPerType: 16, BatchWindowUs: -1, Transport: "streams"}
	cur.Scenario = "stress"
	cur.Server = harness.ServerInfo{Version: "7.2.4", Mode: "server", Cluster: &harness.ClusterTopology{}}
	var got []string
	for _, m := range verdict.Comparable(base, &cur, "v1", "v2") {
		got = append(got, m.String())
	}
	want := []string{"instances: baseline 5, this run 2", "publishers: baseline 5, this run 2", "rate: baseline 2000/s, this run max",
		"event types: baseline ticker,trade, this run ticker", "channels per type: baseline 1, this run 16",
		"pubsub: baseline classic, this run sharded", "events via: baseline pubsub, this run streams", "batch window: baseline 1000µs, this run none",
		"transport: baseline redis, this run rediss", "scenario: baseline none, this run stress",
		"redisload version: baseline v1, this run v2", "server version: baseline 7.0.15, this run 7.2.4",
		"server mode: baseline url, this run server", "cluster: baseline false, this run true"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mismatches\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
