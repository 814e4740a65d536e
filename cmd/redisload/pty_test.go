//go:build linux

package main

import (
	"errors"
	"strings"
	"unicode/utf8"

	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redisload/redisload/harness"

	"golang.org/x/sys/unix"
)

// In a pseudo-terminal 80 columns wide, every redraw of the status line
// fits in 79 (no wrap, so no line left behind per second), with the
// counts a watcher needs still in it; at 40 columns it is cut, never
// wrapped.
func TestStatusLineFitsTheTerminal(t *testing.T) {
	for _, cols := range []int{80, 40} {
		master, slave := openPTY(t, cols)
		sl := newStatusLine(slave, isTerminal(slave), 30e9, termWidth(slave))
		if !sl.tty {
			t.Fatal("the pseudo-terminal is not taken for a terminal")
		}
		sl.Phase("connecting 1000 instances...")
		for k := 1; k <= 12; k++ {
			sl.Update(harness.SeriesPoint{Seconds: float64(k) * 3, Published: uint64(k) * 123456789, PublishRate: 41152263,
				Delivered: uint64(k) * 987654321, DeliveryRate: 329218107, Pending: 1234567, P99: 123456, P99SoFar: 234567, Errors: 12345})
		}
		sl.Finish()
		_ = slave.Close()
		got := readAll(t, master)
		draws := strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\033[K")[1:]
		if len(draws) != 14 {
			t.Fatalf("%d columns: %d redraws, want 14: %q", cols, len(draws), got)
		}
		for _, d := range draws {
			if n := utf8.RuneCountInString(d); n > cols-1 || strings.ContainsAny(d, "\r\n") {
				t.Errorf("%d columns: a %d-column line: %q", cols, n, d)
			}
		}
		if cols == 80 && !strings.Contains(draws[5], "pend 1.23M p99 123.5ms/234.6ms err 12.3k pub 617M") {
			t.Errorf("80 columns: %q lacks what a watcher needs", draws[5])
		}
	}
}

// openPTY opens a pseudo-terminal of cols columns: the master to read
// what was drawn, the slave to draw on. Both are closed after the test.
func openPTY(t *testing.T, cols int) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: uint16(cols)}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// readAll reads what the master has, until the closed slave's end (EIO).
func readAll(t *testing.T, master *os.File) string {
	t.Helper()
	_ = master.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(master)
	var pe *os.PathError
	if err != nil && !(errors.As(err, &pe) && errors.Is(pe.Err, unix.EIO)) {
		t.Fatalf("reading the terminal: %v (%d bytes)", err, len(b))
	}
	return string(b)
}
