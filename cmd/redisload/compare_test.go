package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/report"
)

var (
	pass5   = filepath.Join("..", "..", "testdata", "results", "pass-5.json")
	restart = filepath.Join("..", "..", "testdata", "results", "restart.json")
)

// compare works on files alone: exit 0 without limits or within them, 1
// on a regression, 2 on bad input, each with one line.
func TestCompareExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{pass5, restart}, exitPass, "| Latency p99         |    6.627 ms |     1.836 ms |"},
		{[]string{pass5, restart}, exitPass, "Set up differently (the numbers below compare two experiments):\n  instances: pass-5.json 5, restart.json 3\n"},
		{[]string{pass5, pass5}, exitPass, "Comparison (pass-5.json → pass-5.json):"},
		{[]string{"--max-regression=p99=1000%", pass5, restart}, exitPass, "Overall Status: PASS"},
		{[]string{"--max-regression=delivery=0.1", pass5, restart}, exitFail, "Overall Status: FAIL"},
		{[]string{"--format=markdown", "--max-regression=errors=0", pass5, restart}, exitFail, "## redisload compare: FAIL"},
		{[]string{"--help"}, exitPass, "Usage: redisload compare [--max-regression SPEC]"},
		{[]string{pass5}, exitUsage, "want two JSON reports"},
		{[]string{pass5, "/nonexistent.json"}, exitUsage, "nonexistent.json"},
		{[]string{"--max-regression=p98=1%", pass5, restart}, exitUsage, "--max-regression:"},
		{[]string{"--format=xml", pass5, restart}, exitUsage, "--format must be one of table, html, json, junit, markdown"},
		{[]string{"--format=json", "--max-regression=delivery=0.1", pass5, restart}, exitFail, `"status": "FAIL"`},
	} {
		code, out, errs := invoke(t, context.Background(), append([]string{"compare"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%v: exit %d\n%s%s", tc.args, code, out, errs)
		}
		if code == exitUsage && strings.Count(errs, "\n") != 2 {
			t.Errorf("%v: want one error line and the hint:\n%s", tc.args, errs)
		}
	}
}

// --baseline adds one verdict check per metric: a run compared with
// itself passes; against a doctored, impossibly fast baseline its p99
// check fails and the exit code is 1.
func TestBaselineGate(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.json")
	args := []string{"--redis-url=" + srv.URL, "--key-prefix=bl:", "--duration=1", "--rate=100", "--max-avg-latency=-1"}
	if code, _, errs := invoke(t, context.Background(), append(args, "--json-out="+base)...); code != exitPass {
		t.Fatalf("baseline run: exit %d\n%s", code, errs)
	}
	code, out, errs := invoke(t, context.Background(), append(args, "--baseline="+base, "--max-regression=delivery=0.1,errors=0", "--format=json")...)
	doc, err := report.ReadDocument(strings.NewReader(out))
	if err != nil || code != exitPass {
		t.Fatalf("exit %d, %v\n%s", code, err, errs)
	}
	ids := ""
	for _, c := range doc.Verdict.Checks {
		ids += c.ID + " "
	}
	if !strings.HasSuffix(ids, "regression_delivery regression_errors measured ") {
		t.Fatalf("checks %s", ids)
	}

	// The baseline, doctored: 1 µs p99.
	var raw map[string]any
	data, _ := os.ReadFile(base)
	_ = json.Unmarshal(data, &raw)
	raw["latency"].(map[string]any)["p99_us"] = 1
	data, _ = json.Marshal(raw)
	fast := filepath.Join(dir, "fast.json")
	_ = os.WriteFile(fast, data, 0o644)
	code, out, _ = invoke(t, context.Background(), append(args, "--baseline="+fast)...)
	if code != exitFail || !strings.Contains(out, "| Latency p99 vs baseline   | +20% at most (baseline 0.001 ms)") {
		t.Fatalf("exit %d\n%s", code, out)
	}

	for _, bad := range [][]string{{"--baseline=/nonexistent.json"}, {"--max-regression=p99=1%"}, {"--baseline=" + base, "--max-regression=x=1"}} {
		if code, _, errs := invoke(t, context.Background(), bad...); code != exitUsage || strings.Count(errs, "\n") != 2 {
			t.Errorf("%v: exit %d\n%s", bad, code, errs)
		}
	}
}

// A baseline of another setup is refused before the run, each difference
// named on a line of its own, and nothing is written; with
// --baseline-mismatch=warn the run goes on and the report says so.
func TestBaselineMismatchRefused(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.json")
	common := []string{"--redis-url=" + srv.URL, "--key-prefix=bm:", "--duration=1", "--max-avg-latency=-1"}
	if code, _, errs := invoke(t, context.Background(), append(common, "--instances=2", "--rate=50", "--json-out="+base)...); code != exitPass {
		t.Fatalf("baseline run: exit %d\n%s", code, errs)
	}
	out := filepath.Join(dir, "out.json")
	run := append(common, "--instances=3", "--rate=100", "--event-types=all", "--baseline="+base, "--json-out="+out)
	code, stdout, errs := invoke(t, context.Background(), run...)
	for _, want := range []string{"redisload: --baseline: instances: baseline 2, this run 3\n",
		"redisload: --baseline: publishers: baseline 2, this run 3\n", "redisload: --baseline: rate: baseline 50/s, this run 100/s\n",
		"redisload: --baseline: event types: baseline ticker,trade, this run candle,"} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q", want)
		}
	}
	if code != exitUsage || stdout != "" || strings.Count(errs, "redisload: --baseline:") != 5 || strings.Contains(errs, "instances on") {
		t.Fatalf("exit %d, stdout %q\n%s", code, stdout, errs)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused run wrote %s: %v", out, err)
	}
	code, _, errs = invoke(t, context.Background(), append(run, "--baseline-mismatch=warn")...)
	doc, err := report.ReadFile(out)
	// The run's own verdict is not what this tests (a loaded machine may
	// fail a check): the report must be there, and not refused.
	if code != exitPass && code != exitFail || err != nil {
		t.Fatalf("warn: exit %d, %v\n%s", code, err, errs)
	}
	var warned int
	for _, w := range doc.Warnings {
		if strings.HasPrefix(w, "set up differently from the baseline: ") {
			warned++
		}
	}
	if warned != 4 || doc.Scenario != "" {
		t.Errorf("%d setup warnings, scenario %q: %q", warned, doc.Scenario, doc.Warnings)
	}
	if code, _, errs := invoke(t, context.Background(), append(run, "--baseline-mismatch=maybe")...); code != exitUsage ||
		!strings.Contains(errs, "--baseline-mismatch must be refuse or warn") {
		t.Errorf("exit %d\n%s", code, errs)
	}
}
