//go:build !unix

package main

import "syscall"

// workerAttr has nothing to set where there are no process groups
// (Windows): the coordinator stops its workers itself, as everywhere.
func workerAttr() *syscall.SysProcAttr { return nil }
