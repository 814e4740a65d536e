package harness_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/provision"
)

// Sharded pub/sub over a 3-master cluster, 16 channels per type: exact,
// every message over SPUBLISH to its slot's master and nowhere else.
func TestShardedRunExact(t *testing.T) {
	inst := redistest.Cluster(t, 3, -1)
	cfg := harness.Config{Instances: 4, Duration: 2 * time.Second, Rate: 400, EventTypes: bridge.EventTypes,
		Redis: bridge.Options{URL: inst.URL, PubSub: bridge.PubSubSharded, ChannelsPerType: 16}}.WithDefaults()
	res := runBounded(t, cfg)
	tot := res.Totals
	if tot.Published != tot.TargetEvents || tot.Missing != 0 || tot.Duplicates != 0 || tot.Delivered != 3*tot.Published || tot.Connected != 4 {
		t.Fatalf("published %d of %d, delivered %d, missing %d, duplicates %d, connected %d",
			tot.Published, tot.TargetEvents, tot.Delivered, tot.Missing, tot.Duplicates, tot.Connected)
	}
	if res.Config.PubSub != "sharded" || res.Config.SpreadOver != 0 {
		t.Errorf("config says pubsub %q, spread over %d", res.Config.PubSub, res.Config.SpreadOver)
	}
	var spublish, channels uint64
	for _, n := range res.Server.Cluster.Nodes {
		if n.Role != "master" {
			continue
		}
		channels += uint64(n.Channels)
		if n.Stats == nil || n.Stats.PublishCalls != 0 || n.Stats.SPublishCalls == 0 || n.Stats.BusPublishSent != 0 {
			t.Errorf("master %s: %+v, want SPUBLISH only and no classic bus traffic", n.Addr, n.Stats)
			continue
		}
		spublish += n.Stats.SPublishCalls
	}
	if spublish != tot.Published || channels != 8*16 {
		t.Errorf("SPUBLISH calls %d over the masters, published %d; %d channels placed, want 128", spublish, tot.Published, channels)
	}
}

// Each cluster and Sentinel fault as shipped: every instance recovers and
// is connected at the end, the fault happened, all loss is inside the
// outages and counted exactly (missed - failed publishes = missing), and
// the run ends in its bound.
func TestTopologyFaults(t *testing.T) {
	cases := []struct {
		name              string
		masters, replicas int
		action            harness.FaultAction
		pubsub            bridge.PubSubMode
		duration          time.Duration
		wantOutage        bool
		// busLoss: classic pub/sub in a cluster forwards a message over
		// the bus after accepting it, so a node killed in between loses
		// messages its publishers saw accepted, with no subscriber outage
		// to explain them. Allowed (and asserted to come only from the
		// killed node's publishers): the report counts them as loss
		// outside outages, and the scenario's verdict FAILs honestly.
		busLoss bool
	}{
		{"sharded slot-migration", 2, -1, harness.FaultSlotMigration, bridge.PubSubSharded, 4 * time.Second, true, false},
		{"sharded failover", 3, 1, harness.FaultFailover, bridge.PubSubSharded, 4 * time.Second, true, false},
		{"sharded master-kill", 3, 1, harness.FaultMasterKill, bridge.PubSubSharded, 8 * time.Second, true, false},
		{"classic master-kill", 3, 1, harness.FaultMasterKill, bridge.PubSubClassic, 8 * time.Second, true, true},
		{"sentinel master-kill", 0, 0, harness.FaultMasterKill, bridge.PubSubClassic, 10 * time.Second, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var inst *provision.Instance
			url := ""
			if tc.masters == 0 {
				inst = redistest.Sentinel(t)
				url = inst.SentinelURL
			} else {
				inst = redistest.Cluster(t, tc.masters, tc.replicas)
				url = inst.URL
			}
			cfg := harness.Config{Instances: 4, Duration: tc.duration, Rate: 200, DrainTimeout: 2 * time.Second,
				Placement: harness.PlacementSpread, Deployment: inst,
				Faults: []harness.Fault{{At: 1500 * time.Millisecond, Action: tc.action}},
				Redis:  bridge.Options{URL: url, PubSub: tc.pubsub, ChannelsPerType: 16}}.WithDefaults()
			res := runBounded(t, cfg)
			tl := res.Timeline
			if len(tl.Faults) != 1 || tl.Faults[0].Error != "" {
				t.Fatalf("faults %+v: want one, applied", tl.Faults)
			}
			if res.Totals.Connected != 4 || tl.Unrecovered != 0 || tl.LossOutsideOutages != 0 && !tc.busLoss {
				t.Errorf("connected %d of 4, %d unrecovered, %d lost outside outages; outages %+v",
					res.Totals.Connected, tl.Unrecovered, tl.LossOutsideOutages, tl.Outages)
			}
			if tc.busLoss {
				checkBusLoss(t, res)
			}
			if tc.wantOutage && len(tl.Outages) == 0 {
				t.Errorf("no outage: the fault %s did not reach the subscribers (%s)", tc.action, tl.Faults[0].Detail)
			}
			var lost uint64
			for _, o := range tl.Outages {
				lost += o.Missed - o.FailedPublishes
				if o.RecoverySeconds == nil {
					t.Errorf("outage of instance %d never recovered", o.Instance)
				}
			}
			if lost+tl.LossOutsideOutages != res.Totals.Missing {
				t.Errorf("outages lost %d (missed less failed publishes), %d missing in all", lost, res.Totals.Missing)
			}
			if res.Totals.Duplicates != 0 {
				t.Errorf("%d duplicates", res.Totals.Duplicates)
			}
			if tc.action == harness.FaultMasterKill {
				// go-redis redials a dead node from a goroutine that looks
				// at its pool's state once a second: give those of the
				// closed clients their second to see it, or goleak
				// counts them.
				time.Sleep(1200 * time.Millisecond)
			}
			t.Logf("%s: %d outages, max recovery %.3fs, missing %d, publish errors %d; %s", tc.name, len(tl.Outages),
				maxRecovery(tl), res.Totals.Missing, res.Totals.PublishErrors, tl.Faults[0].Detail)
		})
	}
}

// checkBusLoss asserts that every message missing at a receiver with no
// outage was published through the killed node.
func checkBusLoss(t *testing.T, res *harness.Result) {
	t.Helper()
	victim := strings.Fields(res.Timeline.Faults[0].Detail)[1] // "master <addr> of ..."
	hadOutage := map[int]bool{}
	for _, o := range res.Timeline.Outages {
		hadOutage[o.Instance] = true
	}
	for _, ir := range res.Instances {
		if hadOutage[ir.Index] {
			continue
		}
		for _, src := range res.Instances {
			if c := res.Matrix.Cell(ir.Index, src.Index); src.Index != ir.Index && c.Missing > 0 && src.Node != victim {
				t.Errorf("instance %d (no outage) missed %d from instance %d on %s, not on the killed node %s",
					ir.Index, c.Missing, src.Index, src.Node, victim)
			}
		}
	}
}

func maxRecovery(tl harness.Timeline) float64 {
	if tl.MaxRecoverySeconds == nil {
		return -1
	}
	return *tl.MaxRecoverySeconds
}

// The cluster faults are refused without a deployment redisload started,
// and a slot migration under Sentinel.
func TestTopologyFaultsNeedTheirDeployment(t *testing.T) {
	for _, c := range []harness.Config{
		{Instances: 2, Duration: time.Second, Rate: 10, Faults: []harness.Fault{{Action: harness.FaultMasterKill}}},
		{Instances: 2, Duration: time.Second, Rate: 10, Deployment: &provision.Instance{},
			Redis:  bridge.Options{URL: "redis+sentinel://127.0.0.1:1/m"},
			Faults: []harness.Fault{{Action: harness.FaultSlotMigration}}},
	} {
		err := c.WithDefaults().Validate()
		if err == nil || !strings.Contains(fmt.Sprint(err), "fault 1") {
			t.Errorf("%+v: %v", c.Faults, err)
		}
	}
}
