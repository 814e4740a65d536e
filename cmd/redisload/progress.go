package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/redisload/redisload/harness"
)

// progressEvery is how often the plain (non-terminal) progress line is
// printed: often enough to show a CI log is alive, rarely enough not to
// flood it.
const progressEvery = 5 * time.Second

// isTerminal reports whether w is a terminal, where a status line can be
// redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressPrinter returns the harness's Progress callback: on a terminal
// it redraws one status line each second; elsewhere it prints a line every
// progressEvery. finish ends a redrawn line so that what follows starts on
// a line of its own.
func progressPrinter(w io.Writer, tty bool, total time.Duration) (update func(harness.SeriesPoint), finish func()) {
	next := progressEvery.Seconds()
	drawn := false
	update = func(p harness.SeriesPoint) {
		// The cumulative p99 and the pending count are the two numbers a
		// watcher acts on: latency drifting up, messages not arriving.
		line := fmt.Sprintf("redisload: %5.1f/%.0fs  published %d (%.0f/s)  delivered %d (%.0f/s)  pending %d  p99 %s  errors %d",
			p.Seconds, total.Seconds(), p.Published, p.PublishRate, p.Delivered, p.DeliveryRate, p.Pending,
			msText(p.P99SoFar), p.Errors)
		if tty {
			fmt.Fprint(w, "\r\033[K"+line) // clear the line, then draw
			drawn = true
			return
		}
		// Not a terminal (a CI log): a line every progressEvery, catching
		// up if the callback came late, never a burst of lines.
		if p.Seconds >= next {
			fmt.Fprintln(w, line)
			for next <= p.Seconds {
				next += progressEvery.Seconds()
			}
		}
	}
	// finish runs before the report: the report must not start on the
	// end of a status line.
	finish = func() {
		if drawn {
			fmt.Fprintln(w)
			drawn = false
		}
	}
	return update, finish
}

// msText writes microseconds as milliseconds, or "-" before any delivery.
func msText(us int64) string {
	if us <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f ms", float64(us)/1000)
}
