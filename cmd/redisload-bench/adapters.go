//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redisload/redisload/clients"
)

// adapterInstances and adapterRate are the adapters' rows' load: the
// client matrix's instance count, and a fixed rate each adapter carries
// with room to spare, at which the CPU per message compares fairly (at
// --rate=max each would be measured at a rate of its own).
const (
	adapterInstances = 3
	adapterRate      = 3000
)

// adapterRows measures the external-instance path (the instance
// protocol) against redisload's own bridge, one client at a time: each
// adapter's highest lossless rate (--rate=max), then every client at the
// same fixed rate, where the CPU per message of redisload and its
// adapters together, beside the in-process bridge's, is the protocol's
// cost (with the difference between the clients' own costs in it). An
// adapter whose runtime is missing is a row saying what to install.
func adapterRows(redisload, url, dir string, dur time.Duration) {
	tmp, err := os.MkdirTemp("", "redisload-bench-adapters-")
	if err != nil {
		fmt.Println("adapters:", err)
		return
	}
	defer os.RemoveAll(tmp)
	fmt.Printf("\nExternal instances (the instance protocol), %d instances, every one the client's:\n", adapterInstances)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "client\tevents/s\treceived/s\tlost\tp50 ms\tp99 ms\tclient µs/msg\tRedis µs/msg\tvs in-process\t")
	var inProcess [2]float64 // CPU µs/msg at max and at the fixed rate
	for _, rate := range []string{"max", strconv.Itoa(adapterRate)} {
		for _, c := range clients.All {
			argv, err := c.Command(context.Background(), dir, tmp)
			if err != nil {
				fmt.Fprintf(tw, "%s\t%s\tnot available: %v\t\t\t\t\t\t\t\n", c.Name, rate, err)
				continue
			}
			args := []string{"--redis-url=" + url, "--instances=" + strconv.Itoa(adapterInstances), "--rate=" + rate,
				"--duration=" + dur.String(), "--format=json", "--drain-timeout=2s"}
			if argv != nil {
				args = append(args, "--instance-cmd="+shellJoin(argv))
			}
			r, err := measure(redisload, args...)
			if err != nil {
				fmt.Fprintf(tw, "%s\t%s\terror: %v\t\t\t\t\t\t\t\n", c.Name, rate, err)
				continue
			}
			k := 0
			if rate != "max" {
				k = 1
			}
			ratio := ""
			if argv == nil {
				inProcess[k] = r.cpuPerM
			} else if inProcess[k] > 0 {
				ratio = fmt.Sprintf("%.2f×", r.cpuPerM/inProcess[k])
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%d\t%.3f\t%.3f\t%.2f\t%.2f\t%s\t\n", c.Name, rate, r.receivedPerS, r.lost,
				r.p50/1000, r.p99/1000, r.cpuPerM, r.redisPerM, ratio)
			fmt.Fprintf(os.Stderr, "redisload-bench: adapter %s at %s done\n", c.Name, rate)
		}
	}
	_ = tw.Flush()
	fmt.Printf(`
events/s max: the highest lossless rate (--rate=max: each instance keeps
at most its in-flight limit outstanding), so received/s there is the
adapter's throughput; its latency is the queue that limit allows, not
the client's. At %d/s every client carries the load, and client µs/msg
(redisload and its adapter processes together, from the kernel's
accounting) beside the in-process bridge's is what an external instance
costs: the protocol's JSON lines both ways plus the client's own work.
`, adapterRate)
}

// shellJoin quotes argv for --instance-cmd, which splits as a shell does.
func shellJoin(argv []string) string {
	var out []string
	for _, a := range argv {
		out = append(out, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	return strings.Join(out, " ")
}
