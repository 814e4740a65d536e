package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/report"
)

// workerChildren are the worker processes --spawn-workers started: this
// test binary, run as `worker`.
func workerChildren(t *testing.T) []int {
	return children(t, filepath.Base(os.Args[0])[:min(len(filepath.Base(os.Args[0])), 15)])
}

// --spawn-workers 3: three worker processes run the instances, the report
// is exact and has a row per worker, and no worker is left running.
func TestSpawnWorkersExact(t *testing.T) {
	srv := redistest.StartOwn(t)
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--spawn-workers=3", "--instances=9",
		"--duration=2s", "--rate=900", "--event-types=all", "--format=json")
	doc, err := report.ReadDocument(strings.NewReader(out))
	if code != exitPass || err != nil {
		t.Fatalf("exit %d, %v\n%s", code, err, errs)
	}
	tot := doc.Totals
	if tot.Published != tot.TargetEvents || tot.Delivered != tot.Expected || tot.Delivered != 8*tot.Published || tot.Missing != 0 ||
		tot.Duplicates != 0 || tot.Forged != 0 || doc.Latency.Count != int64(tot.Delivered) {
		t.Fatalf("totals %+v, %d latency samples", tot, doc.Latency.Count)
	}
	if len(doc.Workers) != 3 || !strings.Contains(errs, "over 3 worker processes (started here)") {
		t.Fatalf("%d workers\n%s", len(doc.Workers), errs)
	}
	for _, w := range doc.Workers {
		if w.Hi-w.Lo != 3 || w.Lost != "" || w.PID == os.Getpid() {
			t.Errorf("worker %+v", w)
		}
	}
	if left := workerChildren(t); len(left) != 0 {
		t.Errorf("worker processes left: %v", left)
	}
}

// A spawned worker killed mid-run: the run ends in bounded time with its
// instances not connected, the reason said, and exit 1; nothing is left
// running.
func TestSpawnedWorkerKilledIsHonest(t *testing.T) {
	srv := redistest.StartOwn(t)
	go func() {
		time.Sleep(2500 * time.Millisecond) // connected, publishing
		if pids := workerChildren(t); len(pids) > 0 {
			_ = syscall.Kill(pids[0], syscall.SIGKILL)
		}
	}()
	start := time.Now()
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--spawn-workers=2", "--instances=4",
		"--duration=4s", "--rate=200", "--format=json")
	took := time.Since(start)
	doc, err := report.ReadDocument(strings.NewReader(out))
	if err != nil {
		t.Fatalf("exit %d, %v\n%s", code, err, errs)
	}
	if code != exitFail || doc.Totals.Connected != 2 || took > 30*time.Second {
		t.Fatalf("exit %d, %d connected, took %v\n%s", code, doc.Totals.Connected, took, errs)
	}
	lost := 0
	for _, w := range doc.Workers {
		if w.Lost != "" {
			lost++
			if !strings.Contains(w.Lost, "no heartbeat") {
				t.Errorf("lost worker: %q", w.Lost)
			}
		}
	}
	if lost != 1 || len(doc.Warnings) == 0 {
		t.Errorf("%d workers lost, warnings %q", lost, doc.Warnings)
	}
	if left := workerChildren(t); len(left) != 0 {
		t.Errorf("worker processes left: %v", left)
	}
}

// Worker flags are checked before anything starts.
func TestWorkerFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--workers=2", "--spawn-workers=2"}, "give one"},
		{[]string{"--spawn-workers=5", "--instances=3"}, "at most one worker per instance"},
		{[]string{"--control-url=redis://127.0.0.1:1"}, "--control-url applies to --workers"},
		{[]string{"worker"}, "--control-url (or $REDISLOAD_CONTROL_URL, or $REDIS_URL) is needed"},
		{[]string{"worker", "--control-url=http://x"}, "--control-url"},
	} {
		t.Setenv("REDIS_URL", "")
		code, _, errs := invoke(t, context.Background(), c.args...)
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d\n%s", c.args, code, errs)
		}
	}
}
