package report_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/redisload/redisload/capacity"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/verdict"
)

func TestGoldenCompare(t *testing.T) {
	limits, _ := verdict.ParseRegressions(verdict.DefaultRegressions + ",errors=0")
	c := verdict.Compare(load(t, "pass-5"), load(t, "restart"), limits)
	if !c.Failed() || len(c.Rows) == 0 {
		t.Fatalf("restart vs pass-5: failed %v", c.Failed())
	}
	for _, md := range []bool{false, true} {
		var buf bytes.Buffer
		if err := report.NewCompareReporter(c, "pass-5.json", "restart.json", md)(&buf); err != nil {
			t.Fatal(err)
		}
		name := "compare.txt"
		if md {
			name = "compare.md"
		}
		golden(t, name, buf.Bytes())
	}
}

// The capacity table, golden, from a fixed search: two passing steps, the
// first failing one, and two of bisection, the knee's with the load
// generator saturated.
func TestGoldenCapacity(t *testing.T) {
	res := &capacity.Result{Vary: capacity.VaryRate, Sustainable: 3, Knee: 4, Resolution: 20, MinDelivery: 99.9, MaxP99us: 100_000, MinAchievedPct: 95,
		Redis: "redis://127.0.0.1:6379", Server: "7.0.15", Steps: []capacity.Step{
			{Instances: 5, TargetRate: 80000, AchievedRate: 79961, DeliveriesPerS: 319589, DeliveryPct: 100, P50us: 1328, P99us: 3401,
				RedisCPUPct: 15, RedisMemoryPeak: "1.87M", ClientCPUPct: 46, Passed: true},
			{Instances: 5, TargetRate: 160000, AchievedRate: 159722, DeliveriesPerS: 638885, DeliveryPct: 100, P50us: 1766, P99us: 6239,
				RedisCPUPct: 29, RedisMemoryPeak: "2.10M", ClientCPUPct: 99, Passed: true},
			{Instances: 5, TargetRate: 320000, AchievedRate: 308765, DeliveriesPerS: 1235059, DeliveryPct: 100, P50us: 72511, P99us: 180607,
				RedisCPUPct: 46, RedisMemoryPeak: "2.76M", ClientCPUPct: 125, Failed: "p99 180.607 ms > 100ms"},
			{Instances: 5, TargetRate: 240000, AchievedRate: 239000, DeliveriesPerS: 956000, DeliveryPct: 100, P50us: 2100, P99us: 9100,
				RedisCPUPct: 38, RedisMemoryPeak: "2.20M", ClientCPUPct: 110, Passed: true, Bisect: true, ClientCores: 2},
			{Instances: 5, TargetRate: 280000, AchievedRate: 270000, DeliveriesPerS: 1080000, DeliveryPct: 100, P50us: 40100, P99us: 150000,
				RedisCPUPct: 42, RedisMemoryPeak: "2.50M", ClientCPUPct: 185, Failed: "p99 150.000 ms > 100ms", Bisect: true,
				ClientCores: 2, GeneratorBound: true},
		}}
	for format, name := range map[string]string{"table": "capacity.txt", "markdown": "capacity.md"} {
		var buf bytes.Buffer
		if err := report.NewCapacityReporter(res, format)(&buf); err != nil {
			t.Fatal(err)
		}
		golden(t, name, buf.Bytes())
		if !strings.Contains(buf.String(), "Sustainable capacity: 5 instances at 240000 events/s (956000 deliveries/s, p99 9.100 ms). "+
			"Knee at step 5: p99 150.000 ms > 100ms. The knee lies between 240000 and 280000 events/s (16.7% apart; resolution 20%). "+
			"At the knee redisload itself used 185% CPU on 2 cores (Redis 42%): the knee is the load generator's") {
			t.Errorf("%s: no capacity line:\n%s", format, buf.String())
		}
	}
}

// Every command offers every format the registry has for its input, and
// each renders: the compare JSON carries the status, the capacity JUnit
// one failing case per failed step, every HTML page is one document.
func TestEveryFormatOfEveryKind(t *testing.T) {
	limits, _ := verdict.ParseRegressions("errors=0")
	run := load(t, "restart")
	c := verdict.Compare(load(t, "pass-5"), run, limits)
	capRes := &capacity.Result{Vary: capacity.VaryRate, Sustainable: 0, Knee: 1, Steps: []capacity.Step{
		{Instances: 5, TargetRate: 1000, Passed: true}, {Instances: 5, TargetRate: 2000, Failed: "delivery rate 90.00% (limit >= 99.90%)"}}}
	inputs := map[report.Kind]report.Input{
		report.Run:      {Result: run, Verdict: verdict.Evaluate(run, verdict.DefaultThresholds()), Version: "test"},
		report.Compare:  {Comparison: c, OldName: "a.json", NewName: "b.json", Version: "test"},
		report.Capacity: {Capacity: capRes, Version: "test"},
	}
	for kind, in := range inputs {
		formats := report.Formats(kind)
		if strings.Join(formats, ",") != "table,html,json,junit,markdown" {
			t.Errorf("kind %d: formats %v", kind, formats)
		}
		for _, f := range formats {
			r, err := report.New(f, kind, in)
			if err != nil {
				t.Fatalf("kind %d %s: %v", kind, f, err)
			}
			var buf bytes.Buffer
			if err := r(&buf); err != nil || buf.Len() == 0 {
				t.Fatalf("kind %d %s: %v, %d bytes", kind, f, err, buf.Len())
			}
			out := buf.String()
			switch {
			case f == "html" && (!strings.HasPrefix(out, "<!DOCTYPE html>") || !strings.HasSuffix(out, "</html>\n")):
				t.Errorf("kind %d: html is not one page", kind)
			case kind == report.Compare && f == "json" && !strings.Contains(out, `"status": "FAIL"`):
				t.Errorf("compare json: %s", out)
			case kind == report.Capacity && f == "junit" && !strings.Contains(out, `failures="1"`):
				t.Errorf("capacity junit: %s", out)
			}
		}
	}
	if _, err := report.New("pdf", report.Run, report.Input{}); err == nil || !strings.Contains(err.Error(), "table, html, json, junit, markdown") {
		t.Errorf("unknown format: %v", err)
	}
}
