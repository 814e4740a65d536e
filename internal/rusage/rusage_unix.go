//go:build unix

package rusage

import (
	"runtime"
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
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), rss
}
