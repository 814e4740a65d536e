//go:build !unix

package provision

import (
	"errors"
	"os"
	"syscall"
)

// childAttr has nothing to set where there are no process groups (Windows):
// Close stops the server; a redisload killed outright leaves it running.
func childAttr() *syscall.SysProcAttr { return nil }

// signalFreeze is impossible without job-control signals.
func signalFreeze(*os.Process, bool) error {
	return errors.New("freezing a process needs SIGSTOP, which this system does not have")
}
