// Package units formats quantities as people read them, the same way in
// the harness's own messages (warnings, the server's limits) and in the
// reports.
package units

import (
	"fmt"
	"strconv"
)

// Bytes writes a byte count as people read it: "32 MiB", "1.5 MiB",
// "512 KiB", "900 B"; 0 is "none" (a limit of 0 means no limit).
func Bytes(n int64) string {
	unit := func(size int64, name string) string {
		if n%size == 0 {
			return fmt.Sprintf("%d %s", n/size, name)
		}
		return fmt.Sprintf("%.1f %s", float64(n)/float64(size), name)
	}
	switch {
	case n == 0:
		return "none"
	case n >= 1<<20:
		return unit(1<<20, "MiB")
	case n >= 1<<10:
		return unit(1<<10, "KiB")
	}
	return fmt.Sprintf("%d B", n)
}

// Count writes n with its noun, singular for one: "1 instance",
// "3 instances". The noun takes an s; every noun the reports count does.
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
