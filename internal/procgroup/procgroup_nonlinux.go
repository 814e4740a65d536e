//go:build unix && !linux

package procgroup

import "syscall"

// Outside Linux there is no parent-death signal: a redisload killed
// outright leaves its children running.
func attr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
