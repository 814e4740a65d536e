package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
)

// On a terminal the status line is redrawn in place every point, says
// the phase and both p99s, and ends with the run's averages, not the last
// second's rates; elsewhere a plain line every 5 s of the run, and the
// same last line.
func TestProgressPrinter(t *testing.T) {
	points := []harness.SeriesPoint{
		{Seconds: 1, Published: 10, PublishRate: 10, Delivered: 20, DeliveryRate: 20},
		{Seconds: 2.01, Published: 20}, {Seconds: 5.02, Published: 50, P99: 900, P99SoFar: 1234},
		{Seconds: 6, Published: 60}, {Seconds: 10.3, Published: 100, Delivered: 400}, {Seconds: 11, Published: 100, Delivered: 400},
	}
	var tty bytes.Buffer
	wide := func() int { return 300 }
	sl := newStatusLine(&tty, true, 10e9, wide)
	sl.Phase("connecting 5 instances...")
	for _, p := range points {
		sl.Update(p)
	}
	sl.Finish()
	sl.Finish() // idempotent
	out := tty.String()
	for _, want := range []string{
		"\r\033[Kredisload: connecting 5 instances...",
		"redisload: publishing   1.0/10s  published 10 (10/s)  delivered 20 (20/s)  pending 0  p99 - (1s) - (run)  errors 0",
		"p99 0.900 ms (1s) 1.234 ms (run)",
		"redisload: draining  11.0/10s",
		"redisload: done  published 100 (10/s)  delivered 400 (40/s)  pending 0  p99 - ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, out)
		}
	}
	if strings.Count(out, "\r\033[K") != len(points)+2 || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Errorf("terminal output %q", out)
	}
	var plain bytes.Buffer
	sl = newStatusLine(&plain, false, 10e9, nil)
	sl.Phase("connecting") // nothing: a log has no line to overwrite
	for _, p := range points {
		sl.Update(p)
	}
	sl.Finish()
	lines := strings.Split(strings.TrimSuffix(plain.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "publishing   5.0/10s  published 50") || !strings.Contains(lines[1], "publishing  10.3/10s  published 100") ||
		!strings.HasPrefix(lines[2], "redisload: done  published 100 (10/s)") || strings.Contains(plain.String(), "\r") {
		t.Errorf("plain output %q", plain.String())
	}
}

// Without a terminal and without --progress, stderr carries no status
// line; with --progress and --quiet, neither.
func TestNoProgressUnlessAsked(t *testing.T) {
	srv := redistest.Start(t)
	for _, extra := range [][]string{{"--seed=1"}, {"--progress", "--quiet"}} {
		code, out, errs := invoke(t, context.Background(), append([]string{"--redis-url=" + srv.URL, "--key-prefix=pq:", "--duration=1"}, extra...)...)
		if code != exitPass || strings.Contains(errs, "published ") && strings.Contains(errs, "delivered ") || strings.Contains(out, "\r") {
			t.Errorf("%s: exit %d, stderr %q", extra, code, errs)
		}
	}
}
