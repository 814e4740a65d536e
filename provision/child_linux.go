package provision

import "syscall"

// childAttr puts redis-server in its own process group, so that the
// terminal's Ctrl-C (sent to the whole foreground group) reaches only
// redisload, which drains and reports before stopping the server itself;
// and asks the kernel to kill it if redisload dies first (a second Ctrl-C,
// a crash), so that no server is ever left behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
