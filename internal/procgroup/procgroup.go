// Package procgroup starts redisload's child processes (redis-server,
// instance adapters) in process groups of their own and ends them with
// their whole group: the terminal's Ctrl-C reaches only redisload, which
// reports before it stops them, and a child's own children (an adapter
// run through a shell or npx) go with it.
package procgroup

import "os/exec"

// Start starts cmd in a group of its own; on Linux the kernel also kills
// it should redisload die first, so that none is left behind.
func Start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = attr()
	return cmd.Start()
}

// Kill kills cmd's whole group (SIGKILL); the caller still waits for cmd.
func Kill(cmd *exec.Cmd) {
	if cmd.Process != nil {
		killGroup(cmd.Process.Pid)
		_ = cmd.Process.Kill()
	}
}
