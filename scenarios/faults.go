package scenarios

import (
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/provision"
	"github.com/redisload/redisload/verdict"
)

// faults are the scenarios that break something mid-run and check that
// the bridges recover as documented. Each states its own verdict: a fault
// causes errors and loss by design, so instead of "no errors" and a
// delivery floor it bounds the recovery time and requires that every
// missing message fall inside an outage.
var faults = []Scenario{
	{
		Name:    "restart",
		Summary: "server stopped at 4s, started again 1s later on its port: all resubscribe within 2s, lose only inside outages",
		Config: harness.Config{Instances: 3, Duration: 10 * time.Second, Rate: 100,
			Faults: []harness.Fault{{At: 4 * time.Second, Action: harness.FaultRestart, For: time.Second}}},
		Thresholds: FaultThresholds(2 * time.Second),
	},
	{
		Name:    "crash",
		Summary: "server killed (SIGKILL) at 4s, started again 1s later: with an append-only file (--transport=streams) nothing it acknowledged is lost; all resubscribe within 2s, lose only inside outages",
		Config: harness.Config{Instances: 3, Duration: 10 * time.Second, Rate: 100,
			Faults: []harness.Fault{{At: 4 * time.Second, Action: harness.FaultCrash, For: time.Second}}},
		Thresholds: FaultThresholds(2 * time.Second),
	},
	{
		Name:    "hang",
		Summary: "server frozen (SIGSTOP) for 2s at 4s: no connection drops, nothing lost, average latency under 500ms",
		Config: harness.Config{Instances: 3, Duration: 10 * time.Second, Rate: 100,
			Faults: []harness.Fault{{At: 4 * time.Second, Action: harness.FaultHang, For: 2 * time.Second}}},
		Thresholds: withLatency(verdict.DefaultThresholds(), 500*time.Millisecond),
	},
	{
		Name:    "client-kill",
		Summary: "the run's subscribers CLIENT KILLed at 4s: all resubscribe within 1s, lose only inside outages",
		Config: harness.Config{Instances: 3, Duration: 10 * time.Second, Rate: 100,
			Faults: []harness.Fault{{At: 4 * time.Second, Action: harness.FaultClientKill, Instance: harness.AllInstances}}},
		Thresholds: FaultThresholds(time.Second),
	},
	{
		Name:    "slow-consumer",
		Summary: "instance 2 handles 10ms/message for 3s under a 64kb pubsub limit: Redis drops it; only it loses, inside outages",
		Config: harness.Config{Instances: 3, Duration: 10 * time.Second, Rate: 5000,
			EventTypes: []string{bridge.TypeOrderbook},
			Faults: []harness.Fault{{At: 3 * time.Second, Action: harness.FaultSlowConsumer, Instance: 2,
				For: 3 * time.Second, OutputBufferLimit: "64kb 32kb 1"}}},
		// The slow instance's backlog is seconds late: latency is not
		// what this scenario judges.
		Thresholds: withLatency(*FaultThresholds(2 * time.Second), verdict.NoCheck),
	},
	{
		Name:    "latency",
		Summary: "50ms ± 10ms added to all Redis replies by an in-process proxy: nothing lost, average latency under 200ms",
		Config: harness.Config{Instances: 3, Duration: 10 * time.Second, Rate: 100,
			Faults: []harness.Fault{{Action: harness.FaultLatency, Instance: harness.AllInstances}}},
		Thresholds: withLatency(verdict.DefaultThresholds(), 200*time.Millisecond),
	},
	{
		Name:    "partition",
		Summary: "instance 1 cut off for 5s at 3s by an in-process proxy: only it loses, inside its outage; back within 8s",
		Config: harness.Config{Instances: 3, Duration: 12 * time.Second, Rate: 100,
			Faults: []harness.Fault{{At: 3 * time.Second, Action: harness.FaultPartition, Instance: 1, For: 5 * time.Second}}},
		Thresholds: FaultThresholds(8 * time.Second),
	},
	{
		Name: "failover",
		Summary: "the busiest channel's master handed to its replica at 4s (CLUSTER or SENTINEL FAILOVER; --redis=cluster or sentinel): " +
			"all receive again within 5s, lose only inside outages",
		Config: harness.Config{Instances: 5, Duration: 12 * time.Second, Rate: 100,
			Faults: []harness.Fault{{At: 4 * time.Second, Action: harness.FaultFailover}}},
		Thresholds: FaultThresholds(5 * time.Second),
	},
	{
		Name: "master-kill",
		Summary: "the busiest channel's master killed (SIGKILL) at 4s; its replica takes over after the 2s node timeout (--redis=cluster or sentinel): " +
			"all receive again within 10s, lose only inside outages",
		Config: harness.Config{Instances: 5, Duration: 15 * time.Second, Rate: 100,
			Faults: []harness.Fault{{At: 4 * time.Second, Action: harness.FaultMasterKill}}},
		Thresholds: FaultThresholds(10 * time.Second),
	},
	{
		Name: "slot-migration",
		Summary: "the busiest channel's slot moved to another master at 4s (--redis=cluster): sharded subscribers get the pushed SUNSUBSCRIBE; " +
			"all receive again within 2s, lose only inside outages",
		Config: harness.Config{Instances: 5, Duration: 10 * time.Second, Rate: 100,
			Faults: []harness.Fault{{At: 4 * time.Second, Action: harness.FaultSlotMigration}}},
		Thresholds: FaultThresholds(2 * time.Second),
	},
}

// FaultThresholds are the verdict of a fault scenario: the defaults, with
// errors and the delivery floor left unchecked (the fault causes both),
// every outage recovered within maxRecovery, and no loss outside outages.
func FaultThresholds(maxRecovery time.Duration) *verdict.Thresholds {
	th := verdict.DefaultThresholds()
	th.MinDeliveryRate = verdict.NoCheck
	th.MaxErrors = verdict.NoCheck
	th.MaxRecovery = maxRecovery
	th.LossOnlyInOutages = true
	return &th
}

// withLatency returns th with another average-latency limit (NoCheck: none).
func withLatency(th verdict.Thresholds, avg time.Duration) *verdict.Thresholds {
	th.MaxAvgLatency = avg
	return &th
}

// UseDeployment points c at inst, which redisload started: its URL (a
// Sentinel set's master through the sentinels, followed through a
// failover), and the server or deployment that the faults may stop,
// restart or fail over.
func UseDeployment(c *harness.Config, inst *provision.Instance) {
	c.Redis.URL = inst.URL
	switch inst.Mode {
	case provision.Server:
		c.Server = inst
	case provision.Sentinel:
		c.Redis.URL = inst.SentinelURL
		c.Deployment = inst
	case provision.Cluster:
		c.Deployment = inst
	}
}
