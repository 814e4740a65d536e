package capacity

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
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
		{Config{Resolution: 0.01}, "Resolution must be a percentage from 0.1 to 100"},
		{Config{Resolution: 100}, "Resolution must be a percentage from 0.1 to 100"},
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
		r.Totals.Published, r.Totals.Expected, r.Totals.Delivered = 5000, 20000, uint64(200*delivery)
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
	// The generator is the limit at 90 % of its cores, less what a Redis
	// beside it used (30 % here, on loopback), or once the two use 80 % of
	// the host and redisload the more.
	r0 := step(100, 1000, 1000)
	r0.Redis = "redis://127.0.0.1:6379"
	host := float64(runtime.NumCPU()) * 100
	for _, tc := range []struct {
		pct   float64 // client CPU, % of one core
		bound bool
	}{{10, false}, {host - 30, true}, {0.8*host - 30 - 1, false}, {0.8*host - 30 + 1, true}} {
		cpu := time.Duration(tc.pct / 100 * 5 * float64(time.Second)) // over the 5 s step
		if s := measure(cfg, r0, cpu); s.GeneratorBound != tc.bound || s.ClientCores != runtime.NumCPU() {
			t.Errorf("client CPU %.0f%% of %d cores, Redis 30%%: generator bound %v, want %v", tc.pct, s.ClientCores, s.GeneratorBound, tc.bound)
		}
	}
	// Redis elsewhere: the host's share is not taken into account.
	r0.Redis = "redis://10.1.2.3:6379"
	if s := measure(cfg, r0, time.Duration((0.8*host-30+1)/100*5*float64(time.Second))); s.GeneratorBound {
		t.Error("a remote Redis's CPU counted against this host")
	}
	// A cluster's CPU is its nodes', summed: 1 s + 0.5 s over 5 s.
	r := step(100, 1000, 1000)
	r.Server.Cluster = &harness.ClusterTopology{Nodes: []harness.ClusterNode{
		{Stats: &harness.NodeStats{CPUSeconds: 1}}, {Stats: &harness.NodeStats{CPUSeconds: 0.5}}, {}}}
	if s := measure(cfg, r, time.Second); s.RedisCPUPct != 30 {
		t.Errorf("cluster CPU %v%%, want the nodes' sum, 30%%", s.RedisCPUPct)
	}
}

// knee is a runner whose server takes up to kneeLoad: above it a run
// fails its delivery check (rate) or is refused its clients (instances).
// It stands for the server only to pin the search's arithmetic; the
// command's tests run the search against a real one.
func knee(kneeLoad float64, vary Vary) func(context.Context, harness.Config) (*harness.Result, error) {
	return func(_ context.Context, cfg harness.Config) (*harness.Result, error) {
		load := cfg.Rate
		if vary == VaryInstances {
			load = float64(cfg.Instances)
			if load > kneeLoad {
				return nil, fmt.Errorf("%w: instance 3: %w", harness.ErrUnavailable, bridge.ErrMaxClients)
			}
		}
		delivery := 100.0
		if load > kneeLoad {
			delivery = 50
		}
		r := &harness.Result{Config: harness.ResultConfig{Instances: cfg.Instances, Rate: cfg.Rate}, ElapsedSeconds: 1,
			Latency: harness.LatencyStats{Count: 1, P99: 1000}, Redis: "redis://127.0.0.1:1"}
		r.Totals.DeliveryRate, r.Totals.PublishRate = &delivery, cfg.Rate
		r.Totals.Instances, r.Totals.Connected = cfg.Instances, cfg.Instances
		r.Totals.Published, r.Totals.Expected = 1000, 1000*uint64(cfg.Instances-1)
		r.Totals.Delivered = uint64(float64(r.Totals.Expected) * delivery / 100)
		return r, nil
	}
}

// After the first failing step the search bisects between it and the
// last pass until they are within the resolution, and names both.
func TestBisection(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        Config
		kneeAt     float64
		loads      []float64 // every step's, in order
		sust, knee int
	}{
		{"rate to 5%", Config{Start: 1000, Max: 64000, Run: harness.Config{Instances: 2}}, 5000,
			[]float64{1000, 2000, 4000, 8000, 6000, 5000, 5500, 5250}, 5, 7},
		{"rate, no bisection", Config{Start: 1000, Max: 64000, Resolution: -1, Run: harness.Config{Instances: 2}}, 5000,
			[]float64{1000, 2000, 4000, 8000}, 2, 3},
		{"rate, knee beyond max", Config{Start: 1000, Max: 4000, Run: harness.Config{Instances: 2}}, 5000,
			[]float64{1000, 2000, 4000}, 2, -1},
		{"rate, first step fails", Config{Start: 8000, Max: 64000, Run: harness.Config{Instances: 2}}, 5000,
			[]float64{8000}, -1, 0},
		// Refused clients are a failed step, and instances stop one apart.
		{"instances to one apart", Config{Vary: VaryInstances, Start: 2, Max: 64, Run: harness.Config{Rate: 10}}, 11,
			[]float64{2, 4, 8, 16, 12, 10, 11}, 6, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Runner = knee(tc.kneeAt, tc.cfg.WithDefaults().Vary)
			res, err := Run(context.Background(), tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			var loads []float64
			failed := false // a step failed before this one: it is the bisection's
			for i, s := range res.Steps {
				load := s.TargetRate
				if res.Vary == VaryInstances {
					load = float64(s.Instances)
				}
				loads = append(loads, load)
				if s.Bisect != failed {
					t.Errorf("step %d (%v): bisect %v", i+1, load, s.Bisect)
				}
				failed = failed || !s.Passed
			}
			if !reflect.DeepEqual(loads, tc.loads) || res.Sustainable != tc.sust || res.Knee != tc.knee {
				t.Fatalf("loads %v, sustainable %d, knee %d; want %v, %d, %d", loads, res.Sustainable, res.Knee, tc.loads, tc.sust, tc.knee)
			}
			if tc.knee >= 0 && strings.Contains(tc.name, "instances") && res.Steps[tc.knee].Failed != "the server refused connections: max number of clients reached" {
				t.Errorf("knee: %q", res.Steps[tc.knee].Failed)
			}
		})
	}
}
