package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/scenarios"
	"github.com/redisload/redisload/verdict"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{}) // as main does
	// --spawn-workers starts this executable as `<it> worker ...`: in the
	// tests that is the test binary, which then is a worker, as main.
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(redistest.CheckLeaks(m.Run()))
}

// invoke runs the command in-process and returns its exit code and output.
func invoke(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrorsExit2WithOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--instances=0"}, "--instances must be at least 2"},
		{[]string{"--repeat=0"}, "--repeat must be from 1 to 100, got 0"},
		{[]string{"--stages=10s:100", "--rate=5"}, "--stages sets the duration (their sum) and the rate (each stage's): leave out --duration and --rate"},
		{[]string{"--stages=10s"}, `--stages: stage "10s": want DURATION:RATE, such as 30s:20000`},
		{[]string{"--stages=10s:0"}, "--stages are all at 0 events/s: nothing would be published"},
		{[]string{"--stages=10s:100", "--rate=max"}, "--stages sets the duration"},
		{[]string{"--warmup=-1s"}, "--warmup must not be negative, got -1s"},
		{[]string{"--metrics-addr=nope"}, "--metrics-addr: address nope: missing port in address"},
		{[]string{"--warmup=1s", "--rate=max"}, "--warmup needs a schedule: the closed loop of the maximum rate has none"},
		{[]string{"--warmup=1s", "--stages=1s:10"}, "--warmup does not go with stages: ramp up in a first stage instead"},
		{[]string{"--warmup=1s", "--scenario=restart"}, "--warmup does not go with a fault script yet"},
		{[]string{"--instances=-4"}, "--instances must be at least 2"},
		{[]string{"--instances=1"}, "--instances must be at least 2, got 1: with one, no other instance receives its events, so no delivery can be expected and nothing would be measured"},
		{[]string{"--transport=kafka"}, `invalid argument "kafka" for "--transport" flag: want pubsub or streams`},
		{[]string{"--transport=streams", "--pubsub=sharded"}, "--transport streams replace pub/sub: they do not go with sharded pub/sub"},
		{[]string{"--stream-maxlen=-5"}, "--stream-maxlen must be positive, or -1 for no cap, got -5"},
		{[]string{"--duration=0"}, "--duration must be positive"},
		{[]string{"--duration=-1s"}, "--duration must be positive"},
		{[]string{"--duration=soon"}, `"--duration" flag`},
		{[]string{"--rate=abc"}, `"--rate" flag`},
		{[]string{"--rate=max", "--instances=1"}, "--instances must be at least 2"},
		{[]string{"--rate=max", "--max-inflight=0"}, "--max-inflight must be at least 1"},
		{[]string{"--pipeline=0"}, "--pipeline must be from 1 to 10000, got 0"},
		{[]string{"--pipeline=100000"}, "--pipeline must be from 1 to 10000"},
		{[]string{"--pipeline=10000", "--instances=5000"}, "--pipeline 10000 × 5000 instances is over 16777216 events"},
		{[]string{"--redis-url="}, "--redis-url is empty"},
		{[]string{"--redis-url", " "}, "--redis-url is empty"},
		// One rule for "no check": -1. NaN, other negatives and zero
		// limits are refused, so a typo cannot switch a gate off.
		{[]string{"--min-delivery=NaN"}, "--min-delivery must be a percentage from 0 to 100, or -1 for no check, got NaN"},
		{[]string{"--min-delivery=-7"}, "--min-delivery must be a percentage from 0 to 100, or -1 for no check, got -7"},
		{[]string{"--min-delivery=+Inf"}, "--min-delivery must be a percentage"},
		{[]string{"--max-errors=-7"}, "--max-errors must be 0 or more, or -1 for no check, got -7"},
		{[]string{"--max-duplicates=-2"}, "--max-duplicates must be 0 or more"},
		{[]string{"--max-avg-latency=-7"}, `"--max-avg-latency" flag: -7s: want a positive duration, or -1 for no check`},
		{[]string{"--max-p99-latency=0"}, `"--max-p99-latency" flag: 0s: want a positive duration, or -1 for no check`},
		{[]string{"--max-recovery=NaN"}, `"--max-recovery" flag: want a positive duration like 100ms, or -1 for no check`},
		{[]string{"--rate=0"}, "--rate must be a positive"},
		{[]string{"--rate=0.1", "--duration=5s"}, "publishes no event"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"--event-types=ticker,quote"}, `--event-types: unknown event type "quote"`},
		{[]string{"--redis-url=http://localhost:6379"}, `--redis-url: invalid Redis URL: scheme "http"`},
		{[]string{"--redis-url=redis://:topsecret@h:port"}, "--redis-url: invalid Redis URL"},
		{[]string{"--format=xml"}, "--format must be one of table, html, json, junit, markdown"},
		{[]string{"--min-delivery=120"}, "--min-delivery must be a percentage"},
		{[]string{"--key-prefix=a b"}, "--key-prefix must be"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--output=/nonexistent-dir/x.json"}, "--output:"},
	} {
		code, out, errs := invoke(t, context.Background(), tc.args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != exitUsage || out != "" || len(lines) != 2 || !strings.Contains(lines[0], tc.want) ||
			!strings.HasPrefix(lines[0], "redisload: ") || strings.Contains(errs, "topsecret") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", tc.args, code, out, errs, tc.want)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := invoke(t, context.Background(), "--help")
	for _, want := range []string{"--instances", "--duration", "--rate", "--verbose", "--redis-url", "Examples:", "Exit codes:"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("--help: exit %d, missing %q", code, want)
		}
	}
	if strings.Contains(out, "no-self-filter") {
		t.Error("--help shows the hidden test knob")
	}
	if code, out, _ := invoke(t, context.Background(), "--version"); code != 0 || !strings.HasPrefix(out, "redisload ") {
		t.Fatalf("--version: %d %q", code, out)
	}
	if code, out, _ := invoke(t, context.Background(), "version"); code != 0 || out != "redisload "+toolVersion()+"\n" {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, out, _ := invoke(t, context.Background(), "help"); code != 0 || !strings.Contains(out, "Exit codes:") {
		t.Fatalf("help: %d %q", code, out)
	}
}

// A build of the command names its commit (the test binary has none, so
// the real binary is built), and make build's injected version wins.
func TestVersionOfABuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "redisload")
	// Explicit: the environment may say -buildvcs=false in GOFLAGS.
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !regexp.MustCompile(`^redisload (dev-[0-9a-f]{12}(\+dirty)?|v\S+)\n$`).Match(out) {
		t.Fatalf("version of a build: %q, %v", out, err)
	}
	version = "v9.9.9"
	defer func() { version = "" }()
	if toolVersion() != "v9.9.9" {
		t.Fatal("the injected version is not used")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30": 30 * time.Second, "2.5": 2500 * time.Millisecond, "30s": 30 * time.Second, "1m30s": 90 * time.Second, "500ms": 500 * time.Millisecond,
	} {
		if got, err := scenarios.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "10 s", "1e", "inf", "NaN", "0x10", "1e300"} {
		if _, err := scenarios.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

func TestUnreachableRedisExit3(t *testing.T) {
	port := strconv.Itoa(redistest.FreePort(t))
	start := time.Now()
	code, out, errs := invoke(t, context.Background(), "--redis-url=redis://admin:hunter2@127.0.0.1:"+port, "--duration=1")
	if code != exitUnavailable || out != "" || !strings.Contains(errs, "cannot reach Redis at redis://admin:xxxxx@127.0.0.1:"+port) {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errs)
	}
	if strings.Contains(errs, "hunter2") {
		t.Fatal("password in output")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestPassingRunTableExit0(t *testing.T) {
	srv := redistest.Start(t)
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=3", "--duration=1", "--rate=30", "--matrix", "--key-prefix=c0:")
	if code != exitPass {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"| Total Events Published | 30 of 30 target", "| Expected Received | 60 ", "| Delivery Rate | 100.00%",
		"| Forged / Foreign / Malformed | 0 / 0 / 0 ",
		"| Delivery rate | >= 95.00% | 100.00%", "Event Distribution", "Overall Status: PASS",
	} {
		if !strings.Contains(squeeze(out), want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// The verdict can fail: with the self-filter off every instance receives
// its own messages, and the run exits 1.
func TestSelfReceivedFailsExit1(t *testing.T) {
	srv := redistest.Start(t)
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=3", "--duration=1", "--rate=20",
		"--no-self-filter", "--format=json", "--key-prefix=c1:")
	if code != exitFail {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	doc, err := report.ReadDocument(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Totals.SelfReceived != 20 || doc.Verdict.Status != verdict.Fail {
		t.Fatalf("self-received %d, verdict %s", doc.Totals.SelfReceived, doc.Verdict.Status)
	}
	for _, c := range doc.Verdict.Checks {
		if want := verdict.Pass; c.ID == "self_received" {
			want = verdict.Fail
			if c.Status != want || c.Measured != "20" {
				t.Errorf("check %+v", c)
			}
		} else if c.Status != want {
			t.Errorf("check %+v, want %s", c, want)
		}
	}
}

func TestJSONToFileAndThresholdFailure(t *testing.T) {
	srv := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "r.json")
	// A p99 limit of 1ns cannot be met: the verdict fails on it alone.
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=2", "--duration=0.5", "--rate=40",
		"--format=json", "-o", path, "--max-p99-latency=1ns", "--max-duplicates=0", "--seed=7", "--key-prefix=c2:")
	if code != exitFail || out != "" {
		t.Fatalf("exit %d stdout %q stderr %s", code, out, errs)
	}
	doc, err := report.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if doc.SchemaVersion != report.SchemaVersion || doc.Seed != 7 || doc.Totals.Published != 20 || doc.Totals.Expected != 20 || doc.Totals.Delivered != 20 {
		t.Fatalf("document %+v totals %+v", doc, doc.Totals)
	}
	var ids []string
	for _, c := range doc.Verdict.Checks {
		ids = append(ids, c.ID+"="+string(c.Status))
	}
	if got := strings.Join(ids, ","); got != "connected=PASS,self_received=PASS,delivery_rate=PASS,errors=PASS,avg_latency=PASS,p99_latency=FAIL,duplicates=PASS,server_counts=PASS,measured=PASS" {
		t.Fatalf("checks %s", got)
	}
}

// --repeat 3 makes three whole runs, fresh instances each, exact each;
// the report holds them, its body is the median by p99 with that
// repetition's numbers, the table shows medians and spread, and the
// document serves as a baseline whose regressions compare medians.
func TestRepeatThreeRuns(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.json")
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=2", "--duration=0.5", "--rate=40",
		"--repeat=3", "--json-out="+base, "--seed=7", "--key-prefix=rep:")
	if code != exitPass || !strings.Contains(out, "Repetitions (3 runs; the sections below are repetition ") ||
		strings.Count(errs, "redisload: repetition ") != 3 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	doc, err := report.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Repetitions) != 3 || doc.RepeatBody < 1 || doc.RepeatBody > 3 {
		t.Fatalf("%d repetitions, body %d", len(doc.Repetitions), doc.RepeatBody)
	}
	ids := map[string]bool{}
	var p99s []int64
	for k, r := range doc.Repetitions {
		ids[r.RunID] = true
		p99s = append(p99s, r.Latency.P99)
		if r.Totals.Published != 20 || r.Totals.Expected != 20 || r.Totals.Delivered != 20 || r.Totals.Missing != 0 {
			t.Errorf("repetition %d: totals %+v", k+1, r.Totals)
		}
	}
	body := doc.Repetitions[doc.RepeatBody-1]
	slices.Sort(p99s)
	if len(ids) != 3 || doc.RunID != body.RunID || doc.Latency.P99 != p99s[1] {
		t.Errorf("run IDs %v, body %s (p99 %d); p99s %v: want three runs, the body the median", ids, doc.RunID, doc.Latency.P99, p99s)
	}
	// Against itself as the baseline: same medians, no regression.
	code, out, errs = invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=2", "--duration=0.5", "--rate=40",
		"--repeat=2", "--baseline="+base, "--max-regression=delivery=0", "--seed=7", "--key-prefix=rep:")
	if code != exitPass || !strings.Contains(out, "Repetitions (2 runs") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
}

// --stages shapes the load: the run publishes the area under the ramps
// exactly, every one delivered, and its series holds the target of each
// second beside what was published.
func TestStagesShapeTheLoad(t *testing.T) {
	srv := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "r.json")
	code, _, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=2", "--stages=2s:400,2s:400,1s:0",
		"--json-out="+path, "--html="+filepath.Join(filepath.Dir(path), "r.html"), "--key-prefix=stg:")
	if code != exitPass || !strings.Contains(errs, "5s at stages 2s:400,2s:400,1s:0 (peak 400 events/s) (1400 events)") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	doc, err := report.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// 0→400 over 2 s is 400 events, 400 for 2 s 800, 400→0 over 1 s 200.
	if tt := doc.Totals; tt.TargetEvents != 1400 || tt.Published != 1400 || tt.Delivered != 1400 || tt.Missing != 0 ||
		doc.Config.Rate != 400 || doc.Config.DurationSeconds != 5 || doc.Config.StagesText() != "2s:400,2s:400,1s:0" {
		t.Fatalf("config %+v totals %+v", doc.Config, tt)
	}
	want := []float64{100, 300, 400, 400, 200} // each second's share of the shape
	if len(doc.Series) < len(want) {
		t.Fatalf("%d points", len(doc.Series))
	}
	for k, w := range want {
		if got := doc.Series[k].TargetRate; math.Abs(got-w) > 0.02*w+2 {
			t.Errorf("second %d: target %.1f/s, want %.0f/s", k+1, got, w)
		}
	}
}

// A warm-up split over two worker processes is told apart by sequence
// number, not by any clock: the measured and warm-up figures are exact.
func TestWarmupOverWorkers(t *testing.T) {
	srv := redistest.Start(t)
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=4", "--spawn-workers=2",
		"--warmup=0.5", "--duration=0.5", "--rate=40", "--format=json", "--key-prefix=wwarm:")
	if code != exitPass {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	doc, err := report.ReadDocument(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	tt, w := doc.Totals, doc.Warmup
	if tt.TargetEvents != 20 || tt.Published != 20 || tt.Expected != 60 || tt.Delivered != 60 || tt.Missing != 0 ||
		doc.Latency.Count != 60 || w == nil || w.Published != 20 || w.Expected != 60 || w.Arrived != 60 || len(doc.Workers) != 2 {
		t.Fatalf("totals %+v, latency samples %d, warm-up %+v, %d workers", tt, doc.Latency.Count, w, len(doc.Workers))
	}
}

// --series-out writes a line a second while the run goes (it can be
// tailed), and its last line's counts are the report's.
func TestSeriesOut(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	path, reportPath := filepath.Join(dir, "s.jsonl"), filepath.Join(dir, "r.json")
	done := make(chan int, 1)
	go func() {
		code, _, _ := invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=2", "--duration=3", "--rate=50",
			"--series-out="+path, "--json-out="+reportPath, "--key-prefix=ser:")
		done <- code
	}()
	// Mid-run, at least one whole line is already in the file.
	time.Sleep(2200 * time.Millisecond)
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(b, []byte("\n")) {
		t.Errorf("mid-run: %q, %v: want a line a second as the run goes", b, err)
	}
	if code := <-done; code != exitPass {
		t.Fatalf("exit %d", code)
	}
	b, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var last harness.SeriesPoint
	prev := -1.0
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if last.Seconds <= prev {
			t.Errorf("t_s %v after %v", last.Seconds, prev)
		}
		prev = last.Seconds
	}
	doc, err := report.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 3 || last.Published != doc.Totals.Published || last.Published != 150 || last.Delivered != doc.Totals.Delivered ||
		len(doc.Series) != len(lines) {
		t.Errorf("%d lines, last %+v; report published %d delivered %d, %d points", len(lines), last,
			doc.Totals.Published, doc.Totals.Delivered, len(doc.Series))
	}
}

// --metrics-addr serves the run while it goes: a scrape mid-run finds it
// publishing, with counters that are one of the run's own seconds (the
// same second --series-out wrote) and no more latency samples than the
// run delivered in the end; the port is free again after the run.
func TestMetricsMidRun(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	series, reportPath := filepath.Join(dir, "s.jsonl"), filepath.Join(dir, "r.json")
	done := make(chan int, 1)
	go func() {
		code, _, _ := invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=3", "--duration=3", "--rate=50",
			"--metrics-addr="+addr, "--series-out="+series, "--json-out="+reportPath, "--key-prefix=prom:")
		done <- code
	}()
	time.Sleep(2300 * time.Millisecond)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if code := <-done; code != exitPass {
		t.Fatalf("exit %d", code)
	}
	value := func(name string) float64 {
		for _, l := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		t.Fatalf("no %s in:\n%s", name, body)
		return 0
	}
	published, delivered := value("redisload_published_total"), value("redisload_delivered_total")
	if !strings.Contains(string(body), `redisload_phase{phase="publishing"} 1`) ||
		!strings.Contains(string(body), `instances="3"`) || published <= 0 {
		t.Errorf("mid-run scrape:\n%s", body)
	}
	b, _ := os.ReadFile(series)
	seen := false
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var p harness.SeriesPoint
		if json.Unmarshal([]byte(l), &p) == nil && float64(p.Published) == published && float64(p.Delivered) == delivered {
			seen = true
		}
	}
	doc, err := report.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	if !seen || value("redisload_latency_seconds_count") > float64(doc.Latency.Count) || published > float64(doc.Totals.Published) {
		t.Errorf("scraped %v published, %v delivered: not one of the run's seconds\n%s", published, delivered, b)
	}
	// Three instances, under the limit: labelled counters too, adding up
	// to the totals of the same second.
	var perInstance float64
	for i := range 3 {
		perInstance += value(fmt.Sprintf(`redisload_instance_published_total{instance="%d"}`, i))
	}
	if sends := value("redisload_send_delay_seconds_count"); perInstance != published || sends < published || sends > float64(doc.SendDelay.Count) {
		t.Errorf("instances published %v, total %v; %v send delays (the run %d)", perInstance, published, sends, doc.SendDelay.Count)
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("the metrics server outlived the run")
	}
}

// Ctrl-C during a repeated run reports the repetitions that ran, says the
// run was interrupted, and exits 130: never a PASS for part of the runs.
func TestRepeatInterrupted(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	code, out, errs := invoke(t, ctx, "--redis-url="+srv.URL, "--instances=2", "--duration=1", "--rate=20", "--repeat=3",
		"--format=json", "--key-prefix=repint:")
	if code != exitInterrupted {
		t.Fatalf("exit %d: %s", code, errs)
	}
	doc, err := report.ReadDocument(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if !doc.Interrupted || len(doc.Repetitions) < 1 || len(doc.Repetitions) > 2 || !doc.Repetitions[len(doc.Repetitions)-1].Interrupted {
		t.Errorf("interrupted %v, %d repetitions: want the ones that ran, the last marked", doc.Interrupted, len(doc.Repetitions))
	}
}

func TestInterruptedRunPrintsPartialReportExit130(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	code, out, errs := invoke(t, ctx, "--redis-url="+srv.URL, "--duration=60s", "--rate=20", "--key-prefix=c4:")
	if code != exitInterrupted || !strings.Contains(out, "Overall Status: PASS (interrupted: partial run)") || !strings.Contains(out, "interrupted after") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
}

// buildBinary builds redisload once per test that needs the real process.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "redisload")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// Under a file limit too small for the instances asked for, the run stops
// at once with what to do, instead of failing dial by dial.
func TestFileLimitTooLowExit2(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	cmd := exec.Command("sh", "-c", `ulimit -Sn 200 && ulimit -Hn 200 && exec "$0" --instances=500 --redis=embedded`, bin)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil {
		t.Fatal(err)
	}
	if code := cmd.ProcessState.ExitCode(); code != exitUsage ||
		!strings.Contains(string(out), "--instances=500 needs about 1064 open files, and this process may open 200") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// process is the built binary, running.
type process struct {
	cmd       *exec.Cmd
	out, errb bytes.Buffer
	done      chan error
}

// startBinary starts bin with args, its output captured.
func startBinary(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p
}

// wait waits for the process to exit, killing it and failing the test
// after limit.
func (p *process) wait(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("no exit within %v", limit)
	}
}

// The built binary, sent a real SIGINT, drains, prints the partial report
// and exits 130: the signal wiring in main works.
func TestBinarySIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	srv := redistest.Start(t)
	bin := buildBinary(t)
	p := startBinary(t, bin, "--redis-url="+srv.URL, "--duration=60", "--rate=20", "--key-prefix=c5:")
	cmd, out, errb := p.cmd, &p.out, &p.errb
	time.Sleep(700 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGINT)
	p.wait(t, 10*time.Second)
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted || !strings.Contains(out.String(), "interrupted: partial run") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}

func TestScenarioListAndUnknown(t *testing.T) {
	code, out, _ := invoke(t, context.Background(), "--scenario=list")
	if code != 0 || !strings.Contains(out, "standard       the seed's standard test") || !strings.Contains(out, "stress         the seed's stress test") ||
		!strings.Contains(out, "slow-consumer  instance 2 handles") || !strings.Contains(out, "slot-migration the busiest channel's slot") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	code, sub, _ := invoke(t, context.Background(), "scenarios")
	if code != 0 || sub != out || strings.Count(sub, "\n") != 16 {
		t.Fatalf("redisload scenarios: exit %d\n%s", code, sub)
	}
	code, _, errs := invoke(t, context.Background(), "--scenario=nope")
	if code != exitUsage || !strings.Contains(errs, `--scenario: unknown scenario "nope" (known: all-events, client-kill, crash, extreme, failover, fanout, hang, latency, master-kill, partition, restart, slot-migration, slow-consumer, standard, stress, swarm)`) {
		t.Fatalf("exit %d %s", code, errs)
	}
}

// Flags given on the command line override the scenario; the rest comes
// from it.
func TestScenarioFlagsOverride(t *testing.T) {
	var o options
	fs := newFlagSet(&o)
	if err := fs.Parse([]string{"--scenario=stress", "--duration=2s", "--event-types=candle"}); err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Lookup("stress")
	if err != nil {
		t.Fatal(err)
	}
	o.applyScenario(fs, sc)
	if err := o.complete(); err != nil {
		t.Fatal(err)
	}
	if o.cfg.Instances != 5 || o.cfg.Duration != 2*time.Second || o.cfg.Rate != 10 || strings.Join(o.cfg.EventTypes, ",") != "candle" {
		t.Fatalf("config %+v", o.cfg)
	}
}

// serverChildren counts this process's redis-server children, from /proc.
func serverChildren(t *testing.T) int { return len(children(t, "redis-server")) }

// children lists the live child processes of this one whose command name
// contains name.
func children(t *testing.T, name string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	me := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at ')'.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "("+name) {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(me) && f[0] != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Server mode starts redis-server, reports it, and leaves nothing running:
// after a passing run, a failing one, and one cancelled mid-way.
func TestServerModeLeavesNoProcess(t *testing.T) {
	redistest.NeedServerBinary(t)
	before := serverChildren(t)
	code, out, errs := invoke(t, context.Background(), "--redis=server", "--duration=0.5", "--rate=20",
		"--redis-server-arg=--client-output-buffer-limit", "--redis-server-arg=pubsub 4mb 2mb 20", "--format=json")
	if code != exitPass || !strings.Contains(errs, "instances on redis-server started on 127.0.0.1:") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	doc, err := report.ReadDocument(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Server.Mode != "server" || doc.Server.PubsubLimit != "hard 4 MiB, soft 2 MiB for 20s" || doc.Server.Embedded {
		t.Fatalf("server %+v", doc.Server)
	}
	if n := serverChildren(t); n != before {
		t.Fatalf("%d redis-server children after a passing run, %d before", n, before)
	}
	if code, _, _ := invoke(t, context.Background(), "--redis=server", "--duration=0.3", "--rate=20", "--no-self-filter"); code != exitFail {
		t.Fatalf("failing run: exit %d", code)
	}
	if n := serverChildren(t); n != before {
		t.Fatalf("%d redis-server children after a failing run, %d before", n, before)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(400*time.Millisecond, func() {
		if serverChildren(t) != before+1 {
			t.Error("no redis-server child while the run was under way")
		}
		cancel()
	})
	if code, _, _ := invoke(t, ctx, "--redis=server", "--duration=30s", "--rate=20"); code != exitInterrupted {
		t.Fatalf("cancelled run: exit %d", code)
	}
	if n := serverChildren(t); n != before {
		t.Fatalf("%d redis-server children after a cancelled run, %d before", n, before)
	}
}

// With nothing listening where auto looks first, it starts redis-server and
// says which and why.
func TestAutoModeStartsServer(t *testing.T) {
	redistest.NeedServerBinary(t)
	probe := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	code, out, errs := invoke(t, context.Background(), "--redis-probe-addr="+probe, "--duration=0.3", "--rate=20")
	if code != exitPass || !strings.Contains(errs, "redisload: using redis-server started on 127.0.0.1:") ||
		!strings.Contains(errs, "(nothing answered on "+probe+"; started ") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	if !strings.Contains(out, "mode server") || !strings.Contains(out, "Chosen by --redis=auto: nothing answered on "+probe) {
		t.Fatalf("report does not name the server:\n%s", out)
	}
}

func TestEmbeddedModeSaysSoLoudly(t *testing.T) {
	code, out, errs := invoke(t, context.Background(), "--redis=embedded", "--duration=0.3", "--rate=20", "--format=json")
	if code != exitPass || !strings.Contains(errs, "WARNING: no real Redis server") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	doc, err := report.ReadDocument(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if !doc.Server.Embedded || doc.Server.Mode != "embedded" || doc.Totals.Delivered != 12 {
		t.Fatalf("server %+v totals %+v", doc.Server, doc.Totals)
	}
	code, out, _ = invoke(t, context.Background(), "--redis=embedded", "--duration=0.3", "--rate=20")
	if code != exitPass || !strings.Contains(out, "!!! EMBEDDED SERVER: these numbers describe miniredis") {
		t.Fatalf("table lacks the banner:\n%s", out)
	}
}

func TestRedisModeUsageErrors(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redis=docker"}, `--redis: unknown mode "docker"`},
		{[]string{"--redis=url"}, "--redis=url needs --redis-url or $REDIS_URL"},
		{[]string{"--redis=server", "--redis-url=redis://127.0.0.1:6379"}, "--redis=server starts its own server"},
		{[]string{"--redis=embedded", "--redis-server-arg=--port"}, "--redis-server-arg applies to --redis=server"},
	} {
		code, _, errs := invoke(t, context.Background(), tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d %q, want %q", tc.args, code, errs, tc.want)
		}
	}
}

func TestContainerModeWithoutEngineExit3(t *testing.T) {
	code, _, errs := invoke(t, context.Background(), "--redis=container", "--duration=0.3")
	if code == exitPass {
		t.Skip("a Docker engine is healthy here; the container mode ran")
	}
	if code != exitUnavailable || !strings.Contains(errs, "container mode: no healthy Docker engine") {
		t.Fatalf("exit %d %q", code, errs)
	}
}

// With nothing listening, no redis-server on PATH and no Docker engine,
// auto runs on the embedded stand-in and says so on stderr and in the
// report.
func TestAutoWithNothingAvailableRunsEmbeddedLoudly(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no redis-server, no docker
	probe := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	code, out, errs := invoke(t, context.Background(), "--redis-probe-addr="+probe, "--duration=0.3", "--rate=20")
	if code == exitPass && strings.Contains(errs, "started a container") {
		t.Skip("a Docker engine answered without the docker binary")
	}
	if code != exitPass || !strings.Contains(errs, "using an EMBEDDED in-process server (miniredis)") ||
		!strings.Contains(errs, "no redis-server on PATH") || !strings.Contains(errs, "WARNING: no real Redis server") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	if !strings.Contains(out, "!!! EMBEDDED SERVER") || !strings.Contains(out, "Chosen by --redis=auto: nothing answered on "+probe) {
		t.Fatalf("report:\n%s", out)
	}
}

func TestMaxRateRun(t *testing.T) {
	srv := redistest.Start(t)
	// Latency at the maximum rate, under -race and a parallel test suite,
	// is whatever the machine has left; this test is about loss.
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--rate=max", "--duration=0.5", "--key-prefix=mx:",
		"--format=json", "--max-avg-latency=1h")
	if code != exitPass || !strings.Contains(errs, "at the highest lossless rate (at most 2048 in flight each)") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	doc, err := report.ReadDocument(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if !doc.Config.MaxRate || doc.Totals.Published == 0 || doc.Totals.Missing != 0 || doc.Totals.Delivered != 2*doc.Totals.Published {
		t.Fatalf("config %+v totals %+v", doc.Config, doc.Totals)
	}
}

// The fanout preset through the CLI: the host's row says pub-only and
// expects nothing, every bot gets everything, and the run passes.
func TestFanoutScenarioRun(t *testing.T) {
	srv := redistest.Start(t)
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--scenario=fanout", "--duration=0.5",
		"--instances=4", "--key-prefix=fo:", "--format=json")
	if code != exitPass {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	doc, err := report.ReadDocument(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	host := doc.Instances[0]
	if doc.Config.Publishers != 1 || !doc.Config.DedicatedPublishers || host.Published != 50 || host.Expected != 0 ||
		doc.Totals.Expected != 150 || doc.Totals.Delivered != 150 || len(doc.Config.EventTypes) != 8 {
		t.Fatalf("config %+v host %+v totals %+v", doc.Config, host, doc.Totals)
	}
}

// --redis=cluster: a local 3-master cluster with replicas, classic pub/sub
// through one node (PUBLISH crosses the cluster bus), exact accounting,
// the header naming the cluster, and every node gone afterwards.
func TestClusterModeRun(t *testing.T) {
	redistest.NeedServerBinary(t)
	redistest.DeploymentTurn(t) // see DeploymentTurn
	before := serverChildren(t)
	code, out, errs := invoke(t, context.Background(), "--redis=cluster", "--instances=3", "--duration=1", "--rate=100",
		"--format=json", "--channels-per-type=16")
	if code != exitPass {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	doc, err := report.ReadDocument(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Server.RedisMode != "cluster" || doc.Server.Mode != "cluster" || doc.Totals.Delivered != doc.Totals.Expected ||
		doc.Totals.Expected != 2*doc.Totals.Published || doc.Totals.Connected != 3 {
		t.Fatalf("server %+v, totals %+v", doc.Server, doc.Totals)
	}
	if !strings.Contains(errs, "redisload: using a local Redis Cluster of 6 nodes") {
		t.Errorf("stderr: %s", errs)
	}
	// Spread (the default): instance i on node i of 6.
	nodes := map[string]bool{}
	for _, ir := range doc.Instances {
		nodes[ir.Node] = true
	}
	if doc.Config.SpreadOver != 6 || len(nodes) != 3 || nodes[""] {
		t.Errorf("spread over %d nodes, instances on %v", doc.Config.SpreadOver, nodes)
	}
	if cl := doc.Server.Cluster; cl == nil || cl.Masters != 3 || cl.Replicas != 3 || len(cl.Nodes) != 6 ||
		cl.Nodes[0].SlotCount+cl.Nodes[1].SlotCount+cl.Nodes[2].SlotCount != 16384 ||
		cl.Nodes[0].Channels+cl.Nodes[1].Channels+cl.Nodes[2].Channels != 2*16 || cl.Nodes[0].Channels == 0 ||
		doc.Config.ChannelsPerType != 16 {
		t.Errorf("cluster topology: %+v", cl)
	}
	// Classic pub/sub through the first node: every PUBLISH is there, and
	// it sends each one over the bus to each of the 5 other nodes. (What
	// the others count as received can be a few short right after the
	// cluster formed: the report shows it as it is.)
	if cl := doc.Server.Cluster; cl != nil && len(cl.Nodes) == 6 {
		var calls, sent uint64
		for _, n := range cl.Nodes {
			if n.Stats == nil {
				t.Fatalf("node %s: no stats", n.Addr)
			}
			calls += n.Stats.PublishCalls
			sent += n.Stats.BusPublishSent
		}
		if calls != doc.Totals.Published || sent != 5*doc.Totals.Published {
			t.Errorf("%d PUBLISH calls over the nodes and %d sent over the bus, %d published", calls, sent, doc.Totals.Published)
		}
	}
	if n := serverChildren(t); n != before {
		t.Errorf("%d redis-server children left, %d before", n, before)
	}
	// Single: every instance on the first node, every PUBLISH there.
	code, out, errs = invoke(t, context.Background(), "--redis=cluster", "--instances=2", "--duration=0.5", "--rate=40",
		"--format=json", "--placement=single", "--cluster-replicas=-1")
	if code != exitPass {
		t.Fatalf("single: exit %d\n%s", code, errs)
	}
	if doc, err = report.ReadDocument(strings.NewReader(out)); err != nil {
		t.Fatal(err)
	}
	if cl := doc.Server.Cluster; doc.Config.SpreadOver != 0 || cl == nil || len(cl.Nodes) != 3 || cl.Replicas != 0 ||
		cl.Nodes[0].Stats == nil || cl.Nodes[0].Stats.PublishCalls != doc.Totals.Published {
		t.Errorf("single placement: spread %d, cluster %+v, published %d", doc.Config.SpreadOver, cl, doc.Totals.Published)
	}
	code, _, errs = invoke(t, context.Background(), "--redis=server", "--cluster-masters=5")
	if code != exitUsage || !strings.Contains(errs, "--cluster-masters and --cluster-replicas apply to --redis=cluster") {
		t.Errorf("cluster flags without cluster mode: exit %d, %s", code, errs)
	}
}

// --redis=sentinel: a master, a replica and three sentinels; the run
// measures the master, and nothing is left running.
func TestSentinelModeRun(t *testing.T) {
	redistest.NeedServerBinary(t)
	redistest.DeploymentTurn(t) // see DeploymentTurn
	before := serverChildren(t)
	code, out, errs := invoke(t, context.Background(), "--redis=sentinel", "--instances=2", "--duration=0.5", "--rate=40")
	if code != exitPass || !strings.Contains(errs, `using a local Sentinel set: master 127.0.0.1:`) ||
		!strings.Contains(errs, `3 sentinels watching "mymaster"`) || !strings.Contains(out, "mode sentinel") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if n := serverChildren(t); n != before {
		t.Errorf("%d redis-server children left, %d before", n, before)
	}
}

// --sentinel and --sentinel-master reach a master through its sentinels,
// and the report names the sentinel URL; a sentinel named with a URL too,
// or a pub/sub mode that does not exist, is bad usage.
func TestSentinelFlags(t *testing.T) {
	inst := redistest.Sentinel(t)
	code, out, errs := invoke(t, context.Background(), "--sentinel="+strings.Join(inst.Sentinels, ","), "--sentinel-master="+inst.MasterName,
		"--instances=2", "--duration=0.5", "--rate=40", "--format=json")
	doc, err := report.ReadDocument(strings.NewReader(out))
	if code != exitPass || err != nil || !strings.HasPrefix(doc.Redis, "redis+sentinel://"+inst.Sentinels[0]) || doc.Totals.Missing != 0 {
		t.Fatalf("exit %d, %v\n%s\n%s", code, err, out, errs)
	}
	for _, args := range [][]string{
		{"--sentinel=127.0.0.1:26379", "--redis-url=redis://127.0.0.1:6379"},
		{"--pubsub=fancy"},
		{"--redis-url=redis+sentinel://127.0.0.1:26379"},
	} {
		code, _, errs := invoke(t, context.Background(), args...)
		if code != exitUsage || strings.Count(strings.TrimSpace(errs), "\n") > 1 {
			t.Errorf("%v: exit %d\n%s", args, code, errs)
		}
	}
}

// Flags come from REDISLOAD_<FLAG> when the command line leaves them out:
// the command line wins, a bad value names its variable, and help lists
// the rule.
func TestFlagsFromEnvironment(t *testing.T) {
	srv := redistest.Start(t)
	t.Setenv("REDISLOAD_INSTANCES", "4")
	t.Setenv("REDISLOAD_DURATION", "1s")
	t.Setenv("REDISLOAD_RATE", "40")
	t.Setenv("REDISLOAD_KEY_PREFIX", "envtest:")
	t.Setenv("REDISLOAD_CONTROL_URL", "redis://127.0.0.1:1") // the worker's: not a plain run's
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--rate=20", "--format=json")
	doc, err := report.ReadDocument(strings.NewReader(out))
	if code != exitPass || err != nil {
		t.Fatalf("exit %d, %v\n%s", code, err, errs)
	}
	if c := doc.Config; c.Instances != 4 || c.DurationSeconds != 1 || c.Rate != 20 || doc.KeyPrefix != "envtest:" {
		t.Errorf("config %+v, prefix %q: want 4 instances, 1 s and the command line's 20/s", c, doc.KeyPrefix)
	}
	t.Setenv("REDISLOAD_INSTANCES", "many")
	if code, _, errs := invoke(t, context.Background(), "--redis-url="+srv.URL); code != exitUsage ||
		!strings.Contains(errs, `redisload: $REDISLOAD_INSTANCES: invalid argument "many" for "--instances" flag`) {
		t.Errorf("exit %d\n%s", code, errs)
	}
	if _, out, _ := invoke(t, context.Background(), "--help"); !strings.Contains(out, "REDISLOAD_<FLAG>") {
		t.Error("--help does not say how to set flags from the environment")
	}
}

// squeeze collapses runs of spaces, so that a test reads a table's row
// whatever its columns' widths.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }
