package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redisload/redisload/harness"
)

// progressEvery is how often the plain (non-terminal) progress line is
// printed: often enough to show a CI log is alive, rarely enough not to
// flood it.
const progressEvery = 5 * time.Second

// defaultWidth is a terminal's width when it cannot be asked.
const defaultWidth = 80

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

// statusLine is the live status of a run on stderr: on a terminal one line
// redrawn in place each second, never wider than the terminal (a wrapped
// line leaves a new line behind at every redraw); elsewhere (a CI log) a
// line every progressEvery. It says the phase, the counts, the last
// second's p99 beside the run's, and ends with a line of the run's
// averages rather than the last second's rates, which are 0/s once
// publishing ends.
type statusLine struct {
	w     io.Writer
	tty   bool
	total time.Duration
	width func() int // the terminal's columns; 0 when unknown
	next  float64    // plain: when the next line is due, in run seconds
	drawn bool       // a line is on the terminal, not ended
	last  *harness.SeriesPoint
}

// newStatusLine writes the status of a run of the given duration to w;
// width tells a terminal's columns.
func newStatusLine(w io.Writer, tty bool, total time.Duration, width func() int) *statusLine {
	return &statusLine{w: w, tty: tty, total: total, width: width, next: progressEvery.Seconds()}
}

// Phase draws a phase with no numbers yet (connecting): on a terminal
// only, where it is overwritten by the first point.
func (s *statusLine) Phase(what string) {
	if s.tty {
		s.draw("redisload: " + what)
	}
}

// Update is the harness's Progress callback.
func (s *statusLine) Update(p harness.SeriesPoint) {
	s.last = &p
	phase := "publishing"
	if p.Seconds > s.total.Seconds()+0.5 {
		phase = "draining" // points go on after publishing, while the run waits for the last messages
	}
	if s.tty {
		s.draw(s.fit(phase, p))
		return
	}
	// Not a terminal: a line every progressEvery, catching up if the
	// callback came late, never a burst of lines.
	if p.Seconds >= s.next {
		fmt.Fprintln(s.w, s.full(phase, p))
		for s.next <= p.Seconds {
			s.next += progressEvery.Seconds()
		}
	}
}

// Finish ends the status before the report: a line of the whole run's
// figures, so that the last thing shown is not a second of silence.
func (s *statusLine) Finish() {
	if s.last == nil {
		if s.drawn {
			fmt.Fprintln(s.w)
			s.drawn = false
		}
		return
	}
	p := *s.last
	s.last = nil
	secs := min(p.Seconds, s.total.Seconds())
	avg := func(n uint64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	line := fmt.Sprintf("redisload: done  published %d (%.0f/s)  delivered %d (%.0f/s)  pending %d  p99 %s  errors %d",
		p.Published, avg(p.Published), p.Delivered, avg(p.Delivered), p.Pending, msText(p.P99SoFar), p.Errors)
	if s.tty {
		s.draw(s.clip(line))
		fmt.Fprintln(s.w)
		s.drawn = false
		return
	}
	fmt.Fprintln(s.w, line)
}

// draw replaces the terminal's status line.
func (s *statusLine) draw(line string) {
	fmt.Fprint(s.w, "\r\033[K"+s.clip(line)) // clear the line, then draw
	s.drawn = true
}

// full is the status with every word spelled out.
func (s *statusLine) full(phase string, p harness.SeriesPoint) string {
	return fmt.Sprintf("redisload: %s %5.1f/%.0fs  published %d (%.0f/s)  delivered %d (%.0f/s)  pending %d  p99 %s (1s) %s (run)  errors %d",
		phase, p.Seconds, s.total.Seconds(), p.Published, p.PublishRate, p.Delivered, p.DeliveryRate, p.Pending,
		msText(p.P99), msText(p.P99SoFar), p.Errors)
}

// fit is the fullest form of the status the terminal's width takes.
func (s *statusLine) fit(phase string, p harness.SeriesPoint) string {
	if line := s.full(phase, p); len(line) < s.columns() {
		return line
	}
	// Narrow: what a watcher acts on first (messages not arriving,
	// latency, errors), numbers abbreviated; the rates last, where a
	// clip takes them first.
	return fmt.Sprintf("%s %.0f/%.0fs pend %s p99 %s/%s err %s pub %s %s/s del %s %s/s",
		phase, p.Seconds, s.total.Seconds(), shortCount(float64(p.Pending)), shortMs(p.P99), shortMs(p.P99SoFar),
		shortCount(float64(p.Errors)), shortCount(float64(p.Published)), shortCount(p.PublishRate),
		shortCount(float64(p.Delivered)), shortCount(p.DeliveryRate))
}

// shortCount writes a count in at most five characters: 950, 12.3k, 617M.
func shortCount(v float64) string {
	for _, u := range []struct {
		div  float64
		unit string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= u.div {
			v /= u.div
			if v >= 100 {
				return fmt.Sprintf("%.0f%s", v, u.unit)
			}
			return fmt.Sprintf("%.3g%s", v, u.unit)
		}
	}
	return fmt.Sprintf("%.0f", v)
}

// clip cuts a line to one column less than the terminal has: writing the
// last column wraps on some terminals.
func (s *statusLine) clip(line string) string {
	if n := s.columns() - 1; len(line) > n {
		return line[:max(n, 0)]
	}
	return line
}

// columns is the terminal's width, or defaultWidth.
func (s *statusLine) columns() int {
	if s.width != nil {
		if w := s.width(); w > 0 {
			return w
		}
	}
	return defaultWidth
}

// msText writes microseconds as milliseconds, or "-" before any delivery.
func msText(us int64) string {
	if us <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f ms", float64(us)/1000)
}

// shortMs is msText for a narrow line: "1.2ms".
func shortMs(us int64) string {
	if us <= 0 {
		return "-"
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(us)/1000), ".0") + "ms"
}
