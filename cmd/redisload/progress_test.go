package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
)

// On a terminal the status line is redrawn in place every point and ended
// once; elsewhere a plain line every 5 s of the run.
func TestProgressPrinter(t *testing.T) {
	points := []harness.SeriesPoint{
		{Seconds: 1, Published: 10, PublishRate: 10, Delivered: 20, DeliveryRate: 20},
		{Seconds: 2.01, Published: 20}, {Seconds: 5.02, Published: 50, P99SoFar: 1234},
		{Seconds: 6, Published: 60}, {Seconds: 10.3, Published: 100}, {Seconds: 11, Published: 110},
	}
	var tty bytes.Buffer
	update, finish := progressPrinter(&tty, true, 10e9)
	for _, p := range points {
		update(p)
	}
	finish()
	finish() // idempotent
	out := tty.String()
	if strings.Count(out, "\r\033[K") != len(points) || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") ||
		!strings.Contains(out, "redisload:   1.0/10s  published 10 (10/s)  delivered 20 (20/s)  pending 0  p99 -  errors 0") ||
		!strings.Contains(out, "p99 1.234 ms") {
		t.Errorf("terminal output %q", out)
	}
	var plain bytes.Buffer
	update, finish = progressPrinter(&plain, false, 10e9)
	for _, p := range points {
		update(p)
	}
	finish()
	lines := strings.Split(strings.TrimSuffix(plain.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "  5.0/10s  published 50") || !strings.Contains(lines[1], " 10.3/10s  published 100") ||
		strings.Contains(plain.String(), "\r") {
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
