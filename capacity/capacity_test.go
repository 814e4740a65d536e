package capacity

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/harness"
)

func TestSteps(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want []float64
	}{
		{Config{Start: 1000, Max: 8000}, []float64{1000, 2000, 4000, 8000}},
		{Config{Start: 1000, Max: 7999}, []float64{1000, 2000, 4000}},
		{Config{Start: 100, Step: 50, Max: 250}, []float64{100, 150, 200, 250}},
		{Config{Vary: VaryInstances, Start: 2, Factor: 1.5, Max: 10}, []float64{2, 3, 5, 8}},
		{Config{Vary: VaryInstances}, []float64{2, 4, 8, 16, 32, 64, 128, 256, 512}},
	} {
		if got := tc.cfg.WithDefaults().steps(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.cfg, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Vary: "memory"}, "Vary must be rate or instances"},
		{Config{Start: -1}, "Start must be positive"},
		{Config{Factor: 1}, "Factor must be above 1"},
		{Config{Start: 100, Max: 10}, "Max (10) must be at least Start (100)"},
		{Config{Start: 1, Factor: 1.01, Max: 1e6}, "more than 50 steps"},
		{Config{MinDelivery: 101}, "MinDelivery must be a percentage"},
		{Config{MinAchievedPct: 101}, "MinAchievedPct must be a percentage from 0 to 100"},
		{Config{MinAchievedPct: math.NaN()}, "MinAchievedPct must be a percentage"},
		{Config{MinDelivery: math.NaN()}, "MinDelivery must be a percentage"},
		{Config{Vary: VaryInstances, Max: 20000}, "Max must be at most 10000 instances"},
		{Config{Run: harness.Config{EventTypes: []string{"weather"}}}, `EventTypes has an unknown event type "weather"`},
	} {
		if err := tc.cfg.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// A step passes only within every limit, and says which one it broke.
func TestMeasureJudges(t *testing.T) {
	cfg := Config{}.WithDefaults()
	step := func(delivery float64, p99 int64, achieved float64) *harness.Result {
		r := &harness.Result{Config: harness.ResultConfig{Instances: 5, Rate: 1000}, ElapsedSeconds: 5,
			Latency: harness.LatencyStats{Count: 1, P99: p99}}
		r.Totals.DeliveryRate, r.Totals.PublishRate = &delivery, achieved
		r.Totals.Instances, r.Totals.Connected = 5, 5
		r.Server.StatsBefore = map[string]string{"used_cpu_sys": "1.0", "used_cpu_user": "2.0"}
		r.Server.StatsAfter = map[string]string{"used_cpu_sys": "1.5", "used_cpu_user": "3.0", "used_memory_peak_human": "2.10M"}
		return r
	}
	for _, tc := range []struct {
		r    *harness.Result
		want string
	}{
		{step(99.9, 99_999, 950), ""},
		{step(99.89, 1000, 1000), "delivery rate 99.89% (limit >= 99.90%)"},
		{step(100, 100_001, 1000), "p99 latency 100.001 ms (limit < 100.000 ms)"},
		{step(100, 1000, 949), "achieved rate 949/s of 1000/s (limit >= 95% of target)"},
		// Every reason, not only the first.
		{step(99, 200_000, 900), "delivery rate 99.00% (limit >= 99.90%); p99 latency 200.000 ms (limit < 100.000 ms); " +
			"achieved rate 900/s of 1000/s (limit >= 95% of target)"},
	} {
		s := measure(cfg, tc.r, 2500*time.Millisecond)
		if s.Passed != (tc.want == "") || s.Failed != tc.want {
			t.Errorf("%+v: passed %v %q, want %q", s, s.Passed, s.Failed, tc.want)
		}
		// 1.5 s of Redis CPU and 2.5 s of ours over a 5 s step.
		if s.RedisCPUPct != 30 || s.ClientCPUPct != 50 || s.RedisMemoryPeak != "2.10M" {
			t.Errorf("cpu %v%% / %v%%, mem %q", s.RedisCPUPct, s.ClientCPUPct, s.RedisMemoryPeak)
		}
	}
	// A cluster's CPU is its nodes', summed: 1 s + 0.5 s over 5 s.
	r := step(100, 1000, 1000)
	r.Server.Cluster = &harness.ClusterTopology{Nodes: []harness.ClusterNode{
		{Stats: &harness.NodeStats{CPUSeconds: 1}}, {Stats: &harness.NodeStats{CPUSeconds: 0.5}}, {}}}
	if s := measure(cfg, r, time.Second); s.RedisCPUPct != 30 {
		t.Errorf("cluster CPU %v%%, want the nodes' sum, 30%%", s.RedisCPUPct)
	}
}
