package verdict

import (
	"fmt"
	"slices"
	"strings"

	"github.com/redisload/redisload/harness"
)

// Mismatch is one way two runs were set up differently: a field their
// comparison would be meaningless across.
type Mismatch struct {
	Field    string `json:"field"`
	Baseline string `json:"baseline"`
	Current  string `json:"current"`
}

// String is the one line a refusal prints for it.
func (m Mismatch) String() string { return m.Text("baseline", "this run") }

// Text is the line with the two runs named, as compare names its files.
func (m Mismatch) Text(baseName, curName string) string {
	return fmt.Sprintf("%s: %s %s, %s %s", m.Field, baseName, m.Baseline, curName, m.Current)
}

// Comparable lists every field of the setup in which cur differs from base:
// what decides the load (instances, who publishes, rate or the closed
// loop, event types, channels, pub/sub mode, pipeline, batch window,
// in-flight window), the path to the server (transport), the scenario, the
// tool's version and what was measured (the server's version, how it was
// provided, cluster or not). A regression check across any of them compares
// two different experiments: against a baseline of 5 instances at 2000
// events/s, a run of 2 at 50/s passed every check. versions are the
// tools' versions of base and cur.
func Comparable(base, cur *harness.Result, baseVersion, curVersion string) []Mismatch {
	var out []Mismatch
	add := func(field string, b, c any) {
		bs, cs := fmt.Sprint(b), fmt.Sprint(c)
		if bs != cs {
			out = append(out, Mismatch{Field: field, Baseline: bs, Current: cs})
		}
	}
	bc, cc := base.Config, cur.Config
	add("instances", bc.Instances, cc.Instances)
	add("publishers", bc.Publishers, cc.Publishers)
	add("dedicated publishers", bc.DedicatedPublishers, cc.DedicatedPublishers)
	add("rate", loadText(bc), loadText(cc))
	add("stages", orDefault(bc.StagesText(), "none"), orDefault(cc.StagesText(), "none"))
	add("warm-up", fmt.Sprintf("%gs", bc.WarmupSeconds), fmt.Sprintf("%gs", cc.WarmupSeconds))
	if bc.MaxRate && cc.MaxRate {
		add("max in-flight", bc.MaxInFlight, cc.MaxInFlight)
	}
	add("event types", sortedList(bc.EventTypes), sortedList(cc.EventTypes))
	add("channels per type", max(bc.ChannelsPerType, 1), max(cc.ChannelsPerType, 1))
	add("pubsub", orDefault(bc.PubSub, "classic"), orDefault(cc.PubSub, "classic"))
	add("events via", orDefault(bc.Transport, "pubsub"), orDefault(cc.Transport, "pubsub"))
	add("payload size", sizeText(bc), sizeText(cc))
	add("pipeline", bc.Pipeline, cc.Pipeline)
	add("batch window", windowText(bc.BatchWindowUs), windowText(cc.BatchWindowUs))
	add("transport", transport(base.Redis), transport(cur.Redis))
	add("scenario", orDefault(base.Scenario, "none"), orDefault(cur.Scenario, "none"))
	add("redisload version", orDefault(baseVersion, "unknown"), orDefault(curVersion, "unknown"))
	add("server version", orDefault(base.Server.Version, "unknown"), orDefault(cur.Server.Version, "unknown"))
	add("server mode", orDefault(base.Server.Mode, "unknown"), orDefault(cur.Server.Mode, "unknown"))
	add("cluster", base.Server.Cluster != nil, cur.Server.Cluster != nil)
	return out
}

// loadText is a run's load: its target rate, or the closed loop.
func loadText(c harness.ResultConfig) string {
	if c.MaxRate {
		return "max"
	}
	return fmt.Sprintf("%g/s", c.Rate)
}

// windowText shows a batch window in µs; 0 is a report from before the
// window was recorded, when it was 1 ms.
func windowText(us int64) string {
	switch us {
	case -1:
		return "none"
	case 0:
		return "1000µs"
	}
	return fmt.Sprintf("%dµs", us)
}

// sizeText is a run's payload padding.
func sizeText(c harness.ResultConfig) string {
	switch {
	case c.PayloadSize == 0:
		return "the events' own"
	case c.PayloadSizeMax > c.PayloadSize:
		return fmt.Sprintf("%d-%d bytes", c.PayloadSize, c.PayloadSizeMax)
	}
	return fmt.Sprintf("%d bytes", c.PayloadSize)
}

// transport is how the server was reached: the scheme of the report's
// Redis label (redis, rediss, unix, redis+sentinel).
func transport(label string) string {
	if scheme, _, ok := strings.Cut(label, "://"); ok {
		return scheme
	}
	if strings.HasPrefix(label, "unix:") || strings.HasPrefix(label, "/") {
		return "unix"
	}
	return "redis"
}

func sortedList(xs []string) string {
	s := slices.Clone(xs)
	slices.Sort(s)
	return strings.Join(s, ",")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
