//go:build unix

package outfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// openFIFO opens a FIFO for writing once a reader has it open. A plain
// open would block in the kernel until then, beyond any context; a
// non-blocking one fails at once (ENXIO) while there is no reader, so it
// is retried until one comes, ctx ends or FIFOWait passes, and the
// descriptor is made blocking again for the writes.
func openFIFO(ctx context.Context, path string) (*os.File, error) {
	deadline := time.Now().Add(FIFOWait)
	for {
		fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err == nil {
			if err := syscall.SetNonblock(fd, false); err != nil {
				_ = syscall.Close(fd)
				return nil, fmt.Errorf("%s: %v", path, err)
			}
			return os.NewFile(uintptr(fd), path), nil
		}
		if !errors.Is(err, syscall.ENXIO) {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s is a FIFO that no reader opened within %v", path, FIFOWait)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: waiting for a reader of the FIFO: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
