package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/report"
)

// netnsHost is a "host" of the test: a network namespace joined to this
// one by a veth pair, 10.231.<k>.2 on its side and 10.231.<k>.1 here.
type netnsHost struct {
	name     string
	hostSide string // the address of this namespace on the pair
}

// newNetnsHost makes host k, and removes it when the test ends; it skips
// the test where namespaces cannot be made, and fails it under CI=true,
// where they must be.
func newNetnsHost(t *testing.T, k int) *netnsHost {
	t.Helper()
	name := fmt.Sprintf("rlt%d-%d", os.Getpid()%10000, k)
	veth := fmt.Sprintf("rlv%d-%d", os.Getpid()%10000, k)
	ipcmd := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if _, err := exec.LookPath("ip"); err != nil || os.Geteuid() != 0 {
		t.Skipf("network namespaces need root and iproute2's ip (euid %d, ip: %v)", os.Geteuid(), err)
	}
	if err := ipcmd("netns", "add", name); err != nil {
		// As root with ip at hand they can be made: CI must not skip.
		if os.Getenv("CI") == "true" {
			t.Fatalf("network namespaces are required under CI=true where root can make them: %v", err)
		}
		t.Skipf("cannot make network namespaces here: %v", err)
	}
	t.Cleanup(func() {
		_ = ipcmd("link", "del", veth) // removes its peer too
		_ = ipcmd("netns", "del", name)
	})
	h := &netnsHost{name: name, hostSide: fmt.Sprintf("10.231.%d.1", k)}
	for _, args := range [][]string{
		{"link", "add", veth, "type", "veth", "peer", "name", veth + "p"},
		{"link", "set", veth + "p", "netns", name},
		{"addr", "add", h.hostSide + "/24", "dev", veth},
		{"link", "set", veth, "up"},
		{"-n", name, "addr", "add", fmt.Sprintf("10.231.%d.2/24", k), "dev", veth + "p"},
		{"-n", name, "link", "set", veth + "p", "up"},
		{"-n", name, "link", "set", "lo", "up"},
	} {
		if err := ipcmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// worker starts `<this binary> worker --once` inside the namespace, with
// the Redis under test at redisAddr and the control Redis at ctlAddr; it
// is killed, if still running, when the test ends.
func (h *netnsHost) worker(t *testing.T, redisAddr, ctlAddr string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", h.name, exe, "worker", "--once", "--join-timeout=30s")
	cmd.Env = append(os.Environ(), "REDIS_URL=redis://"+redisAddr, controlEnv+"=redis://"+ctlAddr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

// Workers on two "hosts" (network namespaces, a veth hop each) run one
// test against a Redis here: the accounting is exact, and 30 ms added by a
// proxy on one host's path shows in that host's receivers' latency and not
// in the other's.
func TestWorkersInNetworkNamespaces(t *testing.T) {
	a, b := newNetnsHost(t, 1), newNetnsHost(t, 2)
	srv := redistest.StartOwn(t, "--bind", "127.0.0.1 "+a.hostSide+" "+b.hostSide, "--protected-mode", "no")
	_, port, _ := strings.Cut(srv.Addr, ":")
	// Host b reaches Redis through a proxy that delays what Redis sends.
	px := toxiproxy.NewProxy(toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop()),
		"host-b", b.hostSide+":0", srv.Addr)
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	defer px.Stop()
	if _, err := px.Toxics.AddToxicJson(strings.NewReader(`{"name":"delay","type":"latency","stream":"downstream","attributes":{"latency":30}}`)); err != nil {
		t.Fatal(err)
	}
	a.worker(t, a.hostSide+":"+port, a.hostSide+":"+port)
	b.worker(t, px.Listen, b.hostSide+":"+port)

	// A low rate: a publisher on the delayed path waits 30 ms for each
	// reply, and at a higher rate its next events would be late too, which
	// the other host's receivers would rightly count as latency.
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--workers=2", "--instances=4",
		"--duration=3s", "--rate=20", "--join-timeout=20s", "--format=json")
	doc, err := report.ReadDocument(strings.NewReader(out))
	if code != exitPass || err != nil {
		t.Fatalf("exit %d, %v\n%s", code, err, errs)
	}
	tot := doc.Totals
	if tot.Published != tot.TargetEvents || tot.Delivered != tot.Expected || tot.Delivered != 3*tot.Published || tot.Forged != 0 {
		t.Fatalf("totals %+v", tot)
	}
	if len(doc.Workers) != 2 {
		t.Fatalf("%d workers", len(doc.Workers))
	}
	// Which worker is on which host: the delayed one's receivers are late.
	for _, w := range doc.Workers {
		var slow, fast int
		for _, ir := range doc.Instances[w.Lo:w.Hi] {
			switch {
			case ir.Latency.Mean >= 30_000:
				slow++
			case ir.Latency.Mean < 10_000:
				fast++
			}
		}
		if slow+fast != w.Hi-w.Lo || slow != 0 && fast != 0 {
			t.Errorf("worker %s: %d instances ≥ 30 ms, %d under 10 ms, of %d (means %v)", w.ID, slow, fast, w.Hi-w.Lo, means(doc.Instances[w.Lo:w.Hi]))
		}
	}
	var slowWorkers int
	for _, w := range doc.Workers {
		if doc.Instances[w.Lo].Latency.Mean >= 30_000 {
			slowWorkers++
		}
	}
	if slowWorkers != 1 {
		t.Errorf("%d workers with the delay, want exactly 1", slowWorkers)
	}
}

// means lists instances' mean latencies in µs, for a failure message.
func means(irs []harness.InstanceResult) []float64 {
	var out []float64
	for _, ir := range irs {
		out = append(out, ir.Latency.Mean)
	}
	return out
}
