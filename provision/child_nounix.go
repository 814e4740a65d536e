//go:build !unix

package provision

import (
	"errors"
	"os"
)

// signalFreeze is impossible without job-control signals.
func signalFreeze(*os.Process, bool) error {
	return errors.New("freezing a process needs SIGSTOP, which this system does not have")
}
