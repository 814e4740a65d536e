//go:build unix

package rusage

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Self is the CPU time this process has used, user and system, and the
// most resident memory it has had, in bytes.
func Self() (cpu time.Duration, maxRSS int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	rss := int64(ru.Maxrss) * 1024 // KiB on Linux and the BSDs
	if runtime.GOOS == "darwin" {
		rss = int64(ru.Maxrss) // bytes on macOS
	}
	// On Linux ru_maxrss belongs to the process, not its memory, and
	// survives exec: a process Go started (vfork, sharing its parent's
	// memory until exec) reports its parent's peak if that was higher. A
	// spawned worker of a 200 MB coordinator said 200 MB. VmHWM is the
	// peak of this process's own memory since exec.
	if hwm, ok := PeakRSS(os.Getpid()); ok {
		rss = hwm
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), rss
}

// PeakRSS reads a process's peak resident memory since its exec, in
// bytes, from /proc/<pid>/status (Linux only: ok is false elsewhere).
func PeakRSS(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}
