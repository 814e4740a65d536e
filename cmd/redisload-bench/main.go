//go:build unix

// Command redisload-bench measures redisload against a minimal reference
// written directly on go-redis, side by side, against one redis-server it
// starts: the question is whether the harness itself is ever the
// bottleneck. Both run as child processes, so that CPU time and peak RSS
// come from the kernel's accounting on equal terms.
//
//	go build -o bin/redisload ./cmd/redisload
//	go run ./cmd/redisload-bench -redisload bin/redisload
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redisload/redisload/internal/rusage"
	"github.com/redisload/redisload/provision"
	"github.com/redisload/redisload/report"
)

// benchCase is one load shape, and extra flags of redisload's for it.
type benchCase struct {
	instances int
	rate      float64
	extra     []string
	// floor runs the bench's floor instead of redisload: the least a
	// publisher can do per event here (see floor).
	floor bool
}

// cases are the performance issues'; rate 0 is --rate=max. Cases 8-10
// are the batch window's trade-off at N=5, 50 k events/s: redisload
// alone, the reference has one 1 ms tick; case 11 is the floor there.
// Cases 12-14 are the seed's low load (3 instances, 10 events/s): the
// default, each event at its own time, and the floor.
var cases = []benchCase{{5, 1000, nil, false}, {5, 50000, nil, false}, {5, 200000, nil, false}, {10, 120000, nil, false},
	{1000, 500, nil, false}, {5, 0, nil, false}, {10, 0, nil, false}, {5, 50000, []string{"--batch-window=250us"}, false},
	{5, 50000, []string{"--batch-window=100us"}, false}, {5, 50000, []string{"--batch-window=-1"}, false},
	{5, 50000, nil, true}, {3, 10, nil, false}, {3, 10, []string{"--batch-window=-1"}, false}, {3, 10, nil, true}}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "reference":
			os.Exit(runChild("reference", reference, os.Args[2:]))
		case "floor":
			os.Exit(runChild("floor", floor, os.Args[2:]))
		}
	}
	redisload := flag.String("redisload", "bin/redisload", "the redisload binary to measure")
	before := flag.String("before", "", "another redisload binary (an earlier build) to measure beside it on every redisload case: a before/after from one run")
	dur := flag.Duration("duration", 10*time.Second, "publishing time of each run")
	only := flag.String("cases", "", "comma-separated case numbers to run (default all: "+caseList()+")")
	soak := flag.Bool("soak", false, "instead of the cases: N=5 at 50k events/s for 30s, then for 300s, and compare peak RSS")
	tags := flag.Bool("tags", true, "after the cases, measure the authentication tags' cost: N=10 at --rate=max with and without")
	split := flag.Bool("workers", true, "after the cases, the same load from one process and from --spawn-workers 2")
	adapters := flag.Bool("adapters", true, "after the cases, every client adapter's highest lossless rate and its CPU per message beside the in-process bridge's")
	adaptersDir := flag.String("adapters-dir", "adapters", "the repository's adapters directory (the Node ones need make adapters)")
	flag.Parse()

	ctx := context.Background()
	inst, err := provision.Start(ctx, provision.Options{Mode: provision.Server})
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisload-bench:", err)
		os.Exit(3)
	}
	defer inst.Close()
	fmt.Printf("redisload-bench: redis-server at %s, %v per run, %d CPUs\n\n", inst.URL, *dur, runtime.NumCPU())
	if ops, err := redisBenchmark(inst.URL); err == nil {
		fmt.Printf("redis-benchmark PUBLISH (no subscribers, -P 16): %.0f ops/s\n\n", ops)
	} else {
		fmt.Printf("redis-benchmark: %v\n\n", err)
	}

	if *soak {
		os.Exit(runSoak(*redisload, inst.URL))
	}

	redisCPU = serverCPU(inst.URL)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	var parts []breakdown
	fmt.Fprintln(tw, "case\tN\tevents/s\ttool\treceived/s\tlost\tp50 ms\tp99 ms\tp99.9 ms\tsend p50 ms\tsend p99 ms\tclient µs/msg\tRedis µs/msg\tclient/Redis\tpeak RSS MB\tconnect s\t")
	for i, c := range cases {
		if *only != "" && !strings.Contains(","+*only+",", ","+strconv.Itoa(i+1)+",") {
			continue
		}
		rate := fmt.Sprint(c.rate)
		if c.rate == 0 {
			rate = "max"
		}
		var ref run
		rerr := errNoReference
		if c.rate > 0 && c.extra == nil && !c.floor {
			// The reference is this binary's own subcommand, so the bench
			// needs nothing but itself and the redisload binary.
			ref, rerr = measure(os.Args[0], "reference", inst.URL, strconv.Itoa(c.instances), rate, dur.String())
		}
		var rl run
		var lerr error
		tool := "redisload"
		if c.floor {
			tool = "floor"
			rl, lerr = measure(os.Args[0], "floor", inst.URL, strconv.Itoa(c.instances), rate, dur.String())
		} else {
			rl, lerr = measure(*redisload, append([]string{"--redis-url=" + inst.URL, "--instances=" + strconv.Itoa(c.instances),
				"--rate=" + rate, "--duration=" + dur.String(), "--format=json", "--drain-timeout=2s"}, c.extra...)...)
		}
		if c.extra != nil {
			tool += " " + strings.Join(c.extra, " ")
		}
		row := func(tool string, r run, err error) {
			if err == errNoReference {
				return // --rate=max, or a variant of redisload's: no reference run
			}
			if err != nil {
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\terror: %v\t\t\t\t\t\t\t\t\t\t\t\t\n", i+1, c.instances, rate, tool, err)
				return
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.0f\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%.0f\t%.2f\t\n", i+1, c.instances, rate, tool,
				r.receivedPerS, r.lost, r.p50/1000, r.p99/1000, r.p999/1000, r.sendP50/1000, r.sendP99/1000,
				r.cpuPerM, r.redisPerM, r.cpuPerM/r.redisPerM, r.rssMB, r.connectS)
		}
		row("reference", ref, rerr)
		if *before != "" && !c.floor {
			// The same case, same server, just before: the machine's
			// drift between the two is as small as one run can make it.
			old, oerr := measure(*before, append([]string{"--redis-url=" + inst.URL, "--instances=" + strconv.Itoa(c.instances),
				"--rate=" + rate, "--duration=" + dur.String(), "--format=json", "--drain-timeout=2s"}, c.extra...)...)
			row(tool+" (before)", old, oerr)
			if oerr == nil && c.rate > 0 && (c.rate == 50000 || c.rate == 10) && c.instances <= 5 {
				parts = append(parts, breakdown{i + 1, c.instances, rate, tool + " (before)", old})
			}
		}
		row(tool, rl, lerr)
		if lerr == nil && c.rate > 0 && (c.rate == 50000 || c.rate == 10) && c.instances <= 5 {
			parts = append(parts, breakdown{i + 1, c.instances, rate, tool, rl})
		}
		if rerr == nil && lerr == nil {
			fmt.Fprintf(tw, "%d\t\t\tratio\t%.2f\t\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\t%.2f\t\t\n", i+1,
				rl.receivedPerS/ref.receivedPerS, rl.p50/ref.p50, rl.p99/ref.p99, rl.p999/ref.p999, rl.sendP50/ref.sendP50,
				rl.sendP99/ref.sendP99, rl.cpuPerM/ref.cpuPerM, rl.redisPerM/ref.redisPerM, rl.rssMB/ref.rssMB)
		}
		fmt.Fprintf(os.Stderr, "redisload-bench: case %d done\n", i+1)
	}
	_ = tw.Flush()
	fmt.Println(`
received/s: messages subscribers read from Redis per second of publishing
(every instance receives every message, its own included). Latency: both
from each event's intended send time (coordinated-omission free), so each
includes its own publisher's lag; send p50/p99: that lag alone. client
µs/msg and Redis µs/msg: CPU time (user + system) per message received,
the client's from the kernel's accounting of its process, Redis's from
INFO cpu before and after; client/Redis is their ratio (target at N=10
--rate=max: <= 1.0, Redis saturating first).
Cases 6 and 7 are --rate=max: the highest rate without loss, which a
closed loop without back-pressure (the reference's) cannot find: it
overruns the subscribers until Redis disconnects them. Cases 8-10 are
case 2 with shorter batch windows: the send delay against CPU. Case 11 is
the floor: case 2 from raw sockets, each PUBLISH written by the pacing
thread itself at its time, replies never waited for, no envelope and no
accounting: the least send delay and client CPU this machine allows.`)
	printBreakdown(parts)
	if *tags {
		tagCost(*redisload, inst.URL, *dur)
	}
	if *split {
		workersRow(*redisload, inst.URL, *dur)
	}
	if *adapters {
		adapterRows(*redisload, inst.URL, *adaptersDir, *dur)
	}
}

// workersRow runs the highest lossless rate (--rate=max, N=10) from one
// process and from two worker processes (--spawn-workers 2), side by
// side: on a machine where the generator's CPU is the limit, the split
// shows whether more processes carry more.
func workersRow(redisload, url string, dur time.Duration) {
	fmt.Println()
	for _, extra := range []string{"--seed=1", "--spawn-workers=2"} {
		r, err := maxRateN10(redisload, url, dur, extra)
		if err != nil {
			fmt.Println("workers:", err)
			return
		}
		// CPU includes the workers': wait4 counts a child's waited-for
		// children.
		fmt.Printf("N=10 --rate=max, %-18s %10.0f received/s, lost %d, p50 %.2f ms, p99 %.2f ms, CPU %.2f s per M messages\n",
			extra+":", r.receivedPerS, r.lost, r.p50/1000, r.p99/1000, r.cpuPerM)
	}
}

// tagCost measures the authentication tags (the trust issue): the same
// closed-loop run, the highest lossless rate at N=10, with tags and with
// --no-auth-tags, alternated twice so that a drift in the machine's load
// falls on both. The target is a throughput cost under 5 %.
func tagCost(redisload, url string, dur time.Duration) {
	var sum [2]run
	for range 2 {
		for k, extra := range []string{"--seed=1", "--no-auth-tags"} {
			r, err := maxRateN10(redisload, url, dur, extra)
			if err != nil {
				fmt.Println("tag cost:", err)
				return
			}
			sum[k].receivedPerS += r.receivedPerS / 2
			sum[k].cpuPerM += r.cpuPerM / 2
			sum[k].lost += r.lost
		}
	}
	cost := (1 - sum[0].receivedPerS/sum[1].receivedPerS) * 100
	verdict := "met"
	if cost >= 5 {
		verdict = "NOT met"
	}
	fmt.Printf("\nAuthentication tags, N=10 --rate=max, two runs each: %.0f received/s with tags, %.0f without (%.1f%% cost; target < 5%%: %s); CPU %.2f vs %.2f s per M messages; lost %d vs %d\n",
		sum[0].receivedPerS, sum[1].receivedPerS, cost, verdict, sum[0].cpuPerM, sum[1].cpuPerM, sum[0].lost, sum[1].lost)
}

// maxRateN10 measures redisload at its highest lossless rate with 10
// instances, with one extra flag: the runs the tags' cost and the
// workers' row compare.
func maxRateN10(redisload, url string, dur time.Duration, extra string) (run, error) {
	return measure(redisload, "--redis-url="+url, "--instances=10", "--rate=max", "--duration="+dur.String(),
		"--format=json", "--drain-timeout=2s", extra)
}

// errNoReference marks the --rate=max case: a closed loop without
// back-pressure overruns the subscribers, so there is no fair reference.
var errNoReference = errors.New("no reference")

// run is one measured child process.
type run struct {
	receivedPerS, p50, p99, p999, cpuPerM, rssMB, connectS float64
	sendP50, sendP99                                       float64
	rttP50, rttP99                                         float64 // publish round trip (redisload only)
	transitP50, transitP99                                 float64 // write to receipt (redisload only)
	redisPerM                                              float64 // the server's CPU per message, µs
	lost                                                   uint64
}

// redisCPU reads the bench server's CPU seconds so far (0 when it cannot).
var redisCPU = func() float64 { return 0 }

// serverCPU reads used_cpu_sys + used_cpu_user from INFO cpu.
func serverCPU(url string) func() float64 {
	return func() float64 {
		port := url[strings.LastIndexByte(url, ':')+1:]
		out, err := exec.Command("redis-cli", "-p", port, "INFO", "cpu").Output()
		if err != nil {
			return 0
		}
		var total float64
		for _, line := range strings.Split(string(out), "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				f, _ := strconv.ParseFloat(v, 64)
				total += f
			}
		}
		return total
	}
}

// measure runs a child and reads its JSON and its rusage.
func measure(bin string, args ...string) (run, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	serverBefore := redisCPU()
	if err := cmd.Start(); err != nil {
		return run{}, err
	}
	// The child's own peak memory, sampled: ru_maxrss from wait4 would
	// carry this process's peak into it (it survives exec).
	var peak int64
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if v, ok := rusage.PeakRSS(cmd.Process.Pid); ok {
				peak = max(peak, v)
			}
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	close(stopSampling)
	<-sampled
	serverCPUs := redisCPU() - serverBefore
	if cmd.ProcessState == nil {
		return run{}, err
	}
	code := cmd.ProcessState.ExitCode()
	if code != 0 && code != 1 { // 1: a redisload check failed; still measured
		return run{}, fmt.Errorf("exit %d: %s", code, lastLine(errb.String()))
	}
	// rusage of the child alone: user+system CPU, exact. Its ru_maxrss
	// (KiB, bytes on macOS) is the fallback where /proc is not there to
	// sample: it may carry this process's own peak (see above).
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	rssKiB := float64(ru.Maxrss)
	if runtime.GOOS == "darwin" {
		rssKiB /= 1024
	}
	if peak > 0 {
		rssKiB = float64(peak) / 1024 // sampled: the last 50 ms may be missed
	}
	r := run{rssMB: rssKiB / 1024}
	var received uint64
	if args[0] == "reference" || args[0] == "floor" {
		var rr refResult
		if err := json.Unmarshal(out.Bytes(), &rr); err != nil {
			return run{}, err
		}
		received, r.connectS = rr.Received, rr.ConnectS
		r.receivedPerS = float64(rr.Received) / rr.Seconds
		if rr.Expected > rr.Received {
			r.lost = rr.Expected - rr.Received
		}
		r.p50, r.p99, r.p999 = float64(rr.P50), float64(rr.P99), float64(rr.P999)
		r.sendP50, r.sendP99 = float64(rr.SendP50), float64(rr.SendP99)
	} else {
		doc, err := report.ReadDocument(&out)
		if err != nil {
			return run{}, err
		}
		t := doc.Totals
		// Count what subscribers read from Redis, as the reference does:
		// redisload's own echoes are read too, then dropped.
		received = t.Received + t.SelfFiltered
		r.receivedPerS = float64(received) / doc.ElapsedSeconds
		r.lost, r.connectS = t.Missing, doc.ConnectSeconds
		r.p50, r.p99, r.p999 = float64(doc.Latency.P50), float64(doc.Latency.P99), float64(doc.Latency.P999)
		r.sendP50, r.sendP99 = float64(doc.SendDelay.P50), float64(doc.SendDelay.P99)
		r.rttP50, r.rttP99 = float64(doc.PublishRTT.P50), float64(doc.PublishRTT.P99)
		r.transitP50, r.transitP99 = float64(doc.Transit.P50), float64(doc.Transit.P99)
	}
	if received > 0 {
		r.cpuPerM = cpu / float64(received) * 1e6
		r.redisPerM = serverCPUs / float64(received) * 1e6
	}
	return r, nil
}

// runSoak checks that memory does not grow with run length: the same load
// for 30 s and for 300 s must peak within 10 % of each other in RSS.
func runSoak(redisload, url string) int {
	var rss [2]float64
	for i, d := range []string{"30s", "300s"} {
		r, err := measure(redisload, "--redis-url="+url, "--instances=5", "--rate=50000", "--duration="+d, "--format=json")
		if err != nil {
			fmt.Println("soak:", err)
			return 1
		}
		rss[i] = r.rssMB
		fmt.Printf("N=5 at 50000 events/s for %5s: peak RSS %.1f MB, %.0f received/s, %d lost, p99 %.3f ms\n",
			d, r.rssMB, r.receivedPerS, r.lost, r.p99/1000)
	}
	ratio := rss[1] / rss[0]
	verdict := "met"
	if ratio > 1.1 {
		verdict = "NOT met"
	}
	fmt.Printf("RSS 300s / 30s = %.2f (target <= 1.10: %s)\n", ratio, verdict)
	return 0
}

// loadFunc is a measured child of the bench's own: the reference or the
// floor, each printing a refResult.
type loadFunc func(ctx context.Context, url string, n int, rate float64, d time.Duration, out io.Writer) error

// runChild runs the reference or floor subcommand: URL INSTANCES RATE
// DURATION.
func runChild(name string, load loadFunc, args []string) int {
	usage := "usage: redisload-bench " + name + " URL INSTANCES RATE DURATION"
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	n, err1 := strconv.Atoi(args[1])
	rate, err2 := strconv.ParseFloat(args[2], 64)
	d, err3 := time.ParseDuration(args[3])
	if err1 != nil || err2 != nil || err3 != nil || n < 1 || rate <= 0 || d <= 0 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	if err := load(context.Background(), args[0], n, rate, d, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 3
	}
	return 0
}

var rpsLine = regexp.MustCompile(`PUBLISH [^:]*: ([0-9.]+) requests per second`)

// redisBenchmark is redis-benchmark's PUBLISH rate on the same server, for
// scale: what Redis does with no subscriber to deliver to.
func redisBenchmark(url string) (float64, error) {
	port := url[strings.LastIndexByte(url, ':')+1:]
	out, err := exec.Command("redis-benchmark", "-p", port, "-n", "500000", "-P", "16", "-q", "PUBLISH", "benchch", "hello").CombinedOutput()
	if err != nil {
		return 0, err
	}
	m := rpsLine.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return 0, fmt.Errorf("no rate in %q", lastLine(string(out)))
	}
	return strconv.ParseFloat(string(m[len(m)-1][1]), 64)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func caseList() string {
	var b []string
	for i, c := range cases {
		b = append(b, fmt.Sprintf("%d: N=%d at %g/s", i+1, c.instances, c.rate))
	}
	return strings.Join(b, "; ")
}

// msOrDash is µs as ms, or "-" for a part the tool did not measure.
func msOrDash(us float64) string {
	if us == 0 {
		return "-"
	}
	return strconv.FormatFloat(us/1000, 'f', 3, 64)
}

// breakdown is one case's latency split into its parts.
type breakdown struct {
	n          int
	instances  int
	rate, tool string
	r          run
}

// printBreakdown splits the latency of the batch-window and low-load
// cases into the send delay (the generator's), the transit (the write to
// the receipt) and the publish round trip (network and server, from the
// publisher), beside the floor's: whose each part of the latency is, and
// what this machine allows.
func printBreakdown(parts []breakdown) {
	if len(parts) == 0 {
		return
	}
	fmt.Println("\nWhose latency (p50 / p99, ms): the send delay is the generator's; the transit (each event's")
	fmt.Println("write to its receipt) the network's, Redis's and the subscriber's; the publish round trip, the")
	fmt.Println("publisher's view of part of the transit (its write to its reply). The floor measures neither.")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tN\tevents/s\ttool\tlatency p50\tp99\tsend p50\tp99\ttransit p50\tp99\tround trip p50\tp99\tclient µs/msg\t")
	for _, b := range parts {
		r := b.r
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t%s\t%s\t%s\t%.3f\t\n", b.n, b.instances, b.rate, b.tool,
			r.p50/1000, r.p99/1000, r.sendP50/1000, r.sendP99/1000, msOrDash(r.transitP50), msOrDash(r.transitP99),
			msOrDash(r.rttP50), msOrDash(r.rttP99), r.cpuPerM)
	}
	_ = tw.Flush()
}
