// Package scenarios holds named, documented presets of a run's
// configuration. A scenario sets the shape of a test (instances, duration,
// rate, event types); command-line flags given alongside it override it.
package scenarios

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/verdict"
)

// Scenario is one preset.
type Scenario struct {
	// Name is what --scenario takes.
	Name string
	// Summary is the one line that `redisload --scenario=list` prints.
	Summary string
	// Config is the preset; its zero fields keep the harness defaults.
	Config harness.Config
	// Thresholds, when set, is the scenario's own verdict, replacing the
	// default one (flags given still override each limit).
	Thresholds *verdict.Thresholds
}

// NeedsServer reports whether the scenario's faults stop, freeze or
// reconfigure the server, which redisload only does to a redis-server it
// started.
func (s Scenario) NeedsServer() bool {
	return harness.NeedsServer(s.Config.Faults)
}

// all are the built-in scenarios: the two the seed tool's report ran and
// published, so that its numbers can be reproduced, and the ones it listed
// as untested.
var all = []Scenario{
	{
		Name:    "extreme",
		Summary: "the seed's 'future: extreme scale': 10 instances, 30s, 100 events/s, ticker and trade",
		Config:  harness.Config{Instances: 10, Duration: 30 * time.Second, Rate: 100},
	},
	{
		Name:    "swarm",
		Summary: "100 instances, 30s, 200 events/s: every event fans out to 99 subscribers",
		Config:  harness.Config{Instances: 100, Duration: 30 * time.Second, Rate: 200},
	},
	{
		Name:    "all-events",
		Summary: "all eight event types, orderbook and candle included, 5 instances, 30s, 100 events/s",
		Config:  harness.Config{Instances: 5, Duration: 30 * time.Second, Rate: 100, EventTypes: bridge.EventTypes},
	},
	{
		Name: "fanout",
		Summary: "the seed's production topology: 1 publish-only host, 10 subscribe-only bots, " +
			"30s, 100 events/s, all event types",
		Config: harness.Config{
			Instances: 11, Publishers: 1, DedicatedPublishers: true,
			Duration: 30 * time.Second, Rate: 100, EventTypes: bridge.EventTypes,
		},
	},
	{
		Name:    "standard",
		Summary: "the seed's standard test: 3 instances, 20s, 10 events/s, ticker and trade",
		Config: harness.Config{
			Instances: 3, Duration: 20 * time.Second, Rate: 10,
			EventTypes: []string{bridge.TypeTicker, bridge.TypeTrade},
		},
	},
	{
		Name:    "stress",
		Summary: "the seed's stress test: 5 instances, 30s, 10 events/s, ticker and trade",
		Config: harness.Config{
			Instances: 5, Duration: 30 * time.Second, Rate: 10,
			EventTypes: []string{bridge.TypeTicker, bridge.TypeTrade},
		},
	},
}

// All returns the built-in scenarios sorted by name.
func All() []Scenario {
	out := append(append([]Scenario(nil), all...), faults...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the scenario called name, or an error listing the known
// names.
func Lookup(name string) (Scenario, error) {
	for _, s := range All() {
		if s.Name == name {
			return s, nil
		}
	}
	names := make([]string, 0, len(all)+len(faults))
	for _, s := range All() {
		names = append(names, s.Name)
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(names, ", "))
}
