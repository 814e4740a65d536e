// Package rusage reads this process's own resource use, for the reports
// that show what the load generator cost: a capacity sweep's client CPU,
// a worker's CPU and memory.
package rusage
