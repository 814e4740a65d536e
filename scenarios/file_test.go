package scenarios_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/scenarios"
)

// The documented example reads into exactly what it says, and is valid
// with a server to stop.
func TestExampleFile(t *testing.T) {
	sc, err := scenarios.Load("examples/restart-under-load.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := harness.Config{Instances: 5, Duration: 20 * time.Second, Rate: 500,
		EventTypes: []string{bridge.TypeTicker, bridge.TypeTrade, bridge.TypeOrderbook},
		Faults: []harness.Fault{
			{At: 5 * time.Second, Action: harness.FaultRestart, For: time.Second},
			{At: 10 * time.Second, Action: harness.FaultClientKill, Instance: harness.AllInstances},
			{At: 13 * time.Second, Action: harness.FaultSlowConsumer, Instance: 4, For: 3 * time.Second,
				Delay: 10 * time.Millisecond, OutputBufferLimit: "64kb 32kb 1", ReadBuffer: 65536},
		}}
	if !reflect.DeepEqual(sc.Config, want) || sc.Name != "restart-under-load" || !strings.HasPrefix(sc.Summary, "5 instances") {
		t.Fatalf("got %+v\nwant %+v", sc, want)
	}
	th := report.DefaultThresholds()
	th.MinDeliveryRate, th.MaxErrors, th.MaxAvgLatency, th.MaxDuplicates = -1, -1, 200*time.Millisecond, 0
	th.MaxRecovery, th.LossOnlyInOutages = 2*time.Second, true
	if *sc.Thresholds != th {
		t.Fatalf("thresholds %+v, want %+v", *sc.Thresholds, th)
	}
	cfg := sc.Config.WithDefaults()
	cfg.Server = noServer{}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// JSON reads the same as YAML; absent thresholds keep the defaults.
func TestJSONFile(t *testing.T) {
	sc, err := scenarios.Parse([]byte(`{"instances": 2, "duration": 1.5, "rate": 20,
		"thresholds": {"max_recovery": "3s"},
		"faults": [{"at": "500ms", "action": "partition", "instance": 1, "for": 1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	th := report.DefaultThresholds()
	th.MaxRecovery = 3 * time.Second
	f := harness.Fault{At: 500 * time.Millisecond, Action: harness.FaultPartition, Instance: 1, For: time.Second}
	if sc.Config.Instances != 2 || sc.Config.Duration != 1500*time.Millisecond || len(sc.Config.Faults) != 1 ||
		sc.Config.Faults[0] != f || *sc.Thresholds != th {
		t.Fatalf("%+v, thresholds %+v", sc.Config, sc.Thresholds)
	}
	if sc, err := scenarios.Parse([]byte(`{"instances": 2}`)); err != nil || sc.Thresholds != nil {
		t.Fatalf("no thresholds given: %+v, %v", sc.Thresholds, err)
	}
}

// Mistakes are one-line errors that say where.
func TestFileErrors(t *testing.T) {
	for doc, want := range map[string]string{
		"instances: 3\nrte: 10\n":                       "line 2: field rte not found",
		"duration: soon\n":                              `line 1: "soon": want a duration`,
		"faults:\n  - {action: partition, instance: x}": `line 2: instance "x": want a number or all`,
		"":                    "empty scenario file",
		"instances: [1, 2]\n": "line 1: cannot unmarshal",
	} {
		_, err := scenarios.Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want one line with %q", doc, err, want)
		}
	}
	if _, err := scenarios.Load("examples/nope.yaml"); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("missing file: %v", err)
	}
}
