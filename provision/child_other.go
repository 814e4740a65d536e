//go:build unix && !linux

package provision

import "syscall"

// childAttr puts redis-server in its own process group, so that the
// terminal's Ctrl-C reaches only redisload, which stops the server itself.
// Outside Linux there is no parent-death signal: a redisload killed
// outright leaves the server running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
