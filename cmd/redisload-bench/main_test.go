//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redisload/redisload/internal/redistest"
)

// The reference and the floor deliver every message to every subscriber
// and spread a schedule smaller than the instance count over time, as
// redisload does.
func TestChildrenCountExactly(t *testing.T) {
	srv := redistest.Start(t)
	for name, load := range map[string]loadFunc{"reference": reference, "floor": floor} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := load(context.Background(), srv.URL, 4, 30, 500*time.Millisecond, &out); err != nil {
				t.Fatal(err)
			}
			var r refResult
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			if r.Published != 15 || r.Expected != 60 || r.Received != 60 || r.P50 <= 0 || r.P99 < r.P50 || r.SendP50 <= 0 {
				t.Fatalf("%+v: want 15 published, 60 received by 4 subscribers", r)
			}
			if r.Seconds < 0.4 {
				t.Fatalf("15 events at 30/s published in %.2fs: not spread over the duration", r.Seconds)
			}
		})
	}
}

func TestRunChildUsage(t *testing.T) {
	for _, name := range []string{"reference", "floor"} {
		if code := runChild(name, floor, []string{"redis://x", "0", "10", "1s"}); code != 2 {
			t.Fatalf("%s: exit %d", name, code)
		}
	}
}
