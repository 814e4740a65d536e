package harness

import (
	"strings"
	"testing"
	"time"
)

// The two answers of a pacer agree: every event counted due by t is due
// at or before t, the next one after it, at rates that do not divide a
// second evenly too.
func TestConstantPacerAgrees(t *testing.T) {
	for _, rate := range []float64{1, 3, 7.5, 1000, 33333, 1e6} {
		p := ConstantPacer{Rate: rate}
		for _, at := range []time.Duration{0, time.Nanosecond, 299 * time.Millisecond, time.Second, 1234567891 * time.Nanosecond} {
			due := p.Due(at)
			if due == 0 || p.At(due-1) > at {
				t.Errorf("rate %g: Due(%v) = %d, but event %d is due at %v", rate, at, due, due-1, p.At(due-1))
			}
			if p.At(due) <= at && p.At(due) != p.At(due-1) {
				t.Errorf("rate %g: Due(%v) = %d, but event %d is due at %v, not after", rate, at, due, due, p.At(due))
			}
		}
	}
	if got := (ConstantPacer{Rate: 10}).total(300 * time.Millisecond); got != 3 {
		t.Errorf("10/s for 0.3s: %d events, want 3", got)
	}
	if got := (ConstantPacer{Rate: 0.5}).total(time.Second); got != 0 {
		t.Errorf("0.5/s for 1s: %d events, want 0", got)
	}
}

// A staged pacer schedules the area under its ramps exactly: 0→1000 over
// 2 s is 1000 events, a hold at 1000 for 3 s 3000, 1000→0 over 2 s 1000;
// Due and At agree everywhere, events are in order, and each stage's
// events fall inside it.
func TestStagedPacer(t *testing.T) {
	stages := []Stage{{2 * time.Second, 1000}, {3 * time.Second, 1000}, {2 * time.Second, 0}}
	p := NewStagedPacer(stages)
	if got := p.total(0); got != 5000 {
		t.Fatalf("%d events, want 5000", got)
	}
	for _, tc := range []struct {
		at   time.Duration
		want uint64 // events due: the integral, floored, plus event 0
	}{
		{0, 1}, {time.Second, 251}, {2 * time.Second, 1001}, {3500 * time.Millisecond, 2501},
		{5 * time.Second, 4001}, {6 * time.Second, 4751}, {7 * time.Second, 5000}, {time.Hour, 5000},
	} {
		if got := p.Due(tc.at); got != tc.want {
			t.Errorf("Due(%v) = %d, want %d", tc.at, got, tc.want)
		}
	}
	if r := p.TargetRate(time.Second); r != 500 {
		t.Errorf("rate at 1 s %v, want 500", r)
	}
	var prev time.Duration
	for k := range uint64(5000) {
		at := p.At(k)
		if at < prev || at > 7*time.Second {
			t.Fatalf("At(%d) = %v after At(%d) = %v", k, at, k-1, prev)
		}
		if due := p.Due(at); due <= k {
			t.Fatalf("At(%d) = %v, but Due there is %d", k, at, due)
		}
		prev = at
	}
	// The 1000th event (k = 999) is the ramp's last, just before 2 s.
	if at := p.At(999); at < 1990*time.Millisecond || at >= 2*time.Second {
		t.Errorf("At(999) = %v, want just under 2s", at)
	}
}

func TestParseStages(t *testing.T) {
	got, err := ParseStages("10s:1000, 30s:20000,10s:0")
	if err != nil || StagesText(got) != "10s:1000,30s:20000,10s:0" {
		t.Fatalf("%v, %v", got, err)
	}
	for _, bad := range []string{"", "10s", "10s:x", "ten:5", "10s:5,"} {
		if _, err := ParseStages(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Stages: []Stage{{0, 10}}}, "stage 1 (0s:10) must have a positive duration"},
		{Config{Stages: []Stage{{time.Second, -1}}}, "must have a positive duration and a rate of 0 or more"},
		{Config{Stages: []Stage{{time.Second, 0}}}, "are all at 0 events/s"},
		{Config{Stages: []Stage{{time.Second, 10}}, Duration: 5 * time.Second}, "last 1s in all, but Duration is 5s"},
		{Config{Stages: []Stage{{time.Second, 10}}, MaxRate: true, Instances: 2}, "MaxRate has none"},
	} {
		if err := tc.cfg.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg.Stages, err, tc.want)
		}
	}
	if c := (Config{Stages: []Stage{{time.Second, 10}, {2 * time.Second, 40}}}).WithDefaults(); c.Duration != 3*time.Second || c.Rate != 40 || c.Validate() != nil {
		t.Errorf("defaults: %v at %v: %v", c.Duration, c.Rate, c.Validate())
	}
}
