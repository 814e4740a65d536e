//go:build unix

package main

import "syscall"

// workerAttr puts a spawned worker in a process group of its own: Ctrl-C
// at the terminal reaches the coordinator alone, which stops the run on
// every worker (its stop key) and reports it as far as it went.
func workerAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
