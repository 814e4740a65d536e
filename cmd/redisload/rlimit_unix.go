//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// checkFileLimit fails early, with what to do, when the process may not
// open the connections --instances needs: two per instance and a margin.
// The Go runtime already raises the soft limit to the hard one at start-up,
// so only the hard limit can stand in the way.
func checkFileLimit(instances int) error {
	need := uint64(instances)*2 + 64
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // unknown: let the dials say so
	}
	// The fields are uint64 on Linux and int64 on the BSDs.
	if uint64(lim.Cur) >= need {
		return nil
	}
	if uint64(lim.Max) >= need {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
			return nil
		}
	}
	// Past the hard limit only a privileged process may go (root, or
	// CAP_SYS_RESOURCE); a server it starts inherits the new limit.
	raised := lim
	raised.Cur, raised.Max = need, need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
		return nil
	}
	return fmt.Errorf("--instances=%d needs about %d open files, and this process may open %d (raise it with ulimit -n, or lower --instances)",
		instances, need, uint64(lim.Cur))
}
