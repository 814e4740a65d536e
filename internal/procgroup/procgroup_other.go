//go:build !unix

package procgroup

import "syscall"

// Without process groups (Windows) a child is killed alone.
func attr() *syscall.SysProcAttr { return nil }

func killGroup(int) {}
