//go:build !unix

package provision

import "syscall"

// childAttr has nothing to set where there are no process groups (Windows):
// Close stops the server; a redisload killed outright leaves it running.
func childAttr() *syscall.SysProcAttr { return nil }
