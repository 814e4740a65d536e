//go:build unix

package procgroup

import "syscall"

// killGroup sends SIGKILL to the group pid leads.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
