package scenarios_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/scenarios"
	"github.com/redisload/redisload/verdict"
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
	th := verdict.DefaultThresholds()
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
	th := verdict.DefaultThresholds()
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
		"instances: 3\nrte: 10\n":                       `line 2: unknown field "rte" (known: name, summary, instances, duration, rate,`,
		"faults:\n  - {at: 1s, actoin: restart}\n":      `line 2: unknown field "actoin" (known: at, action, for,`,
		"rate: fast\n":                                  `line 1: rate: "fast" is not a number`,
		`{"instances": "x"}`:                            `line 1: instances: "x" is not a whole number`,
		"duration: soon\n":                              `line 1: "soon": want a duration`,
		"faults:\n  - {action: partition, instance: x}": `line 2: instance "x": want a number or all`,
		"":                    "empty scenario file",
		"instances: [1, 2]\n": "line 1: instances: a list is not a whole number",
		// A gate must not be switched off by a bad value: NaN, another
		// negative than -1, a zero limit.
		"thresholds: {min_delivery: .nan}\n":  "thresholds: min_delivery: must be a percentage from 0 to 100, or -1 for no check, got NaN",
		"thresholds: {min_delivery: 101}\n":   "thresholds: min_delivery: must be a percentage",
		"thresholds: {max_errors: -7}\n":      "thresholds: max_errors: must be 0 or more, or -1 for no check, got -7",
		"thresholds: {max_p99_latency: -7}\n": `line 1: "-7": -7s: want a positive duration, or -1 for no check`,
		"thresholds: {max_avg_latency: 0}\n":  `line 1: "0": 0s: want a positive duration, or -1 for no check`,
		"thresholds: {max_recovery: .inf}\n":  `line 1: ".inf": want a positive duration like 100ms, or -1 for no check`,
		"instances: 3\n---\ninstances: 5\n":   "more than one YAML document",
		"instances: 3\n---\n":                 "more than one YAML document",
	} {
		_, err := scenarios.Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want one line with %q", doc, err, want)
		}
	}
	if _, err := scenarios.Load("examples/nope.yaml"); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("missing file: %v", err)
	}
	// -1 is the one "no check", for counts and durations alike.
	sc, err := scenarios.Parse([]byte("thresholds: {max_p99_latency: -1, max_errors: -1, max_avg_latency: \"-1\"}\n"))
	if err != nil || sc.Thresholds.MaxP99Latency != verdict.NoCheck || sc.Thresholds.MaxErrors != verdict.NoCheck ||
		sc.Thresholds.MaxAvgLatency != verdict.NoCheck {
		t.Errorf("-1 thresholds: %+v, %v", sc.Thresholds, err)
	}
}

// A file larger than the limit is refused before it is parsed.
func TestFileSizeLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	big := "# " + strings.Repeat("x", scenarios.MaxFileSize) + "\ninstances: 3\n"
	if err := os.WriteFile(path, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := scenarios.Load(path); err == nil || !strings.Contains(err.Error(), "larger than 1024 KiB") {
		t.Fatalf("Load of a %d-byte file: %v", len(big), err)
	}
}
