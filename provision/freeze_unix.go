//go:build unix

package provision

import (
	"os"
	"syscall"
)

// signalFreeze stops or continues the process.
func signalFreeze(p *os.Process, freeze bool) error {
	if freeze {
		return p.Signal(syscall.SIGSTOP)
	}
	return p.Signal(syscall.SIGCONT)
}
