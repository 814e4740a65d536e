//go:build unix

package redistest

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes f's exclusive lock if it is free.
func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// unlockTurn gives the lock back; closing the file would too.
func unlockTurn(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	_ = f.Close()
}
