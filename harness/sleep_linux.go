package harness

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// sleeper sleeps the scheduler's goroutine on an OS thread of its own,
// with a timer slack of 1 ns (the kernel's default of 50 µs would be most
// of a short window). close gives the thread back.
type sleeper struct {
	precise  bool
	oldSlack int
}

func newSleeper() *sleeper {
	runtime.LockOSThread()
	s := &sleeper{}
	old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err == nil && unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0) == nil {
		s.precise, s.oldSlack = true, old
	}
	return s
}

func (s *sleeper) nanosleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	_ = unix.Nanosleep(&ts, nil) // interrupted early: the scheduler looks at the clock anyway
}

func (s *sleeper) close() {
	if s.precise {
		_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(s.oldSlack), 0, 0, 0)
	}
	runtime.UnlockOSThread()
}
