package harness

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/redistest"
)

func TestPubsubLimit(t *testing.T) {
	l, hard, ok := pubsubLimit("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
	if !ok || l != "hard 32 MiB, soft 8 MiB for 60s" || hard != 33554432 {
		t.Fatal(l, hard, ok)
	}
	if l, hard, ok := pubsubLimit("normal 0 0 0 pubsub 0 0 0"); !ok || l != "hard none, soft none for 0s" || hard != 0 {
		t.Fatal(l, hard, ok)
	}
	if _, _, ok := pubsubLimit("normal 0 0 0"); ok {
		t.Fatal("parsed a value without pubsub")
	}
}

func TestPeakOutputBufferParsesClientList(t *testing.T) {
	list := "id=3 addr=127.0.0.1:1 name=redisload-ab-0/sub omem=0 cmd=subscribe\n" +
		"id=4 addr=127.0.0.1:2 name=redisload-ab-12/sub omem=40960 cmd=subscribe\n" +
		"id=5 addr=127.0.0.1:3 name=redisload-ab-3/pub omem=99999 cmd=publish\n" +
		"id=6 addr=127.0.0.1:4 name=other-7/sub omem=88888 cmd=subscribe\n"
	ob := OutputBuffers{PeakInstance: -1}
	peakOutputBuffer(list, "redisload-ab-", &ob)
	if ob.PeakBytes != 40960 || ob.PeakInstance != 12 {
		t.Fatalf("%+v: want 40960 from instance 12 (publishers and other runs ignored)", ob)
	}
}

// A subscriber that stops reading makes its server-side buffer grow; the
// sampler sees it and names the instance.
func TestSampleOutputBuffersSeesAStalledSubscriber(t *testing.T) {
	srv := redistest.StartOwn(t)
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A raw subscriber named like instance 7 of run "pfx", which reads the
	// replies to its two commands and then nothing.
	fmt.Fprintf(conn, "CLIENT SETNAME pfx-7/sub\r\nSUBSCRIBE ch\r\n")
	rd := bufio.NewReader(conn)
	for i := 0; i < 4; i++ { // +OK, then the 3-line subscribe reply header...
		if _, err := rd.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	rc := srv.Client(t)
	payload := strings.Repeat("x", 64<<10)
	// 16 MiB the subscriber does not read: the kernel's socket buffers take
	// a few MiB, Redis's output buffer the rest (under the default 32 MiB
	// hard limit, so the subscriber is not disconnected).
	for i := 0; i < 256; i++ {
		if err := rc.Publish(t.Context(), "ch", payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	probe, err := newServerProbe(bridge.Options{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.close()
	stop := make(chan struct{})
	time.AfterFunc(250*time.Millisecond, func() { close(stop) })
	ob := probe.sampleOutputBuffers("pfx-", 1, stop, nil)
	if ob.Samples < 2 || ob.PeakInstance != 7 || ob.PeakBytes < 4<<20 {
		t.Fatalf("%+v: want instance 7 with over 4 MiB queued", ob)
	}
}

func TestWarnsNearTheOutputBufferLimit(t *testing.T) {
	res := &Result{OutputBuffers: OutputBuffers{Samples: 5, PeakBytes: 3 << 20, PeakInstance: 2, LimitBytes: 4 << 20}, Drained: true}
	res.Totals.Instances, res.Totals.Connected = 3, 3
	w := strings.Join(warnings(res, Config{}.WithDefaults()), "\n")
	if !strings.Contains(w, "instance 2's output buffer on the server reached 3 MiB, 75% of the pubsub hard limit") {
		t.Fatalf("warnings: %q", w)
	}
	res.OutputBuffers.PeakBytes = 1 << 20 // 25 %: no warning
	if w := warnings(res, Config{}.WithDefaults()); len(w) != 0 {
		t.Fatalf("warnings at 25%%: %q", w)
	}
}

// Sampling slows with the number of subscribers, one step per hundred.
func TestOutputBufferInterval(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 199: 100 * time.Millisecond,
		200: 200 * time.Millisecond, 1000: time.Second} {
		if got := outputBufferInterval(n); got != want {
			t.Errorf("outputBufferInterval(%d) = %v, want %v", n, got, want)
		}
	}
}

// CLUSTER NODES as Redis 7.0 writes it: masters first by their slots,
// replicas after, a failed node marked, a migrating slot left out.
func TestParseClusterNodes(t *testing.T) {
	txt := `r1 127.0.0.1:30004@40004 slave m2 0 1 2 connected
m2 127.0.0.1:30002@40002 master - 0 1 2 connected 5461-10922
m1 127.0.0.1:30001@40001,host myself,master - 0 0 1 connected 0-5460 [5461->-m2]
m3 127.0.0.1:30003@40003 master,fail - 0 1 3 disconnected 10923-16383
r3 127.0.0.1:30006@40006 slave,fail? m3 0 1 3 connected
`
	top := parseClusterNodes(txt)
	if top == nil || top.Masters != 3 || top.Replicas != 2 || len(top.Nodes) != 5 {
		t.Fatalf("%+v", top)
	}
	if n := top.Nodes[0]; n.ID != "m1" || n.Addr != "127.0.0.1:30001" || n.SlotCount != 5461 || len(n.Slots) != 1 {
		t.Errorf("first: %+v", n)
	}
	if n := top.Nodes[2]; n.ID != "m3" || !n.Failed || n.SlotCount != 5461 {
		t.Errorf("third: %+v", n)
	}
	if n := top.Nodes[3]; n.ID != "r1" || n.Role != "replica" || n.MasterID != "m2" {
		t.Errorf("fourth: %+v", n)
	}
	want := "3 masters, 2 replicas: 127.0.0.1:30001 master 0-5460; 127.0.0.1:30002 master 5461-10922; " +
		"127.0.0.1:30003 master 10923-16383 FAILED; 127.0.0.1:30004 replica; 127.0.0.1:30006 replica FAILED"
	if got := top.String(); got != want {
		t.Errorf("String:\n got %s\nwant %s", got, want)
	}
	if parseClusterNodes("") != nil {
		t.Error("empty text gave a topology")
	}
}

// The server's own count of output-buffer disconnections is its delta
// over the run, and absent where the server keeps none or restarted.
func TestLimitDisconnections(t *testing.T) {
	const k = "client_output_buffer_limit_disconnections"
	for _, tc := range []struct {
		before, after map[string]string
		want          string
	}{
		{map[string]string{k: "3"}, map[string]string{k: "5"}, "2"},
		{map[string]string{k: "3"}, map[string]string{k: "3"}, "0"},
		{map[string]string{}, map[string]string{k: "5"}, "<nil>"},                               // not in the reading before
		{map[string]string{k: "9"}, map[string]string{k: "1"}, "<nil>"},                         // restarted
		{map[string]string{"used_memory": "1"}, map[string]string{"used_memory": "2"}, "<nil>"}, // Redis 7.0
	} {
		got := "<nil>"
		if d := limitDisconnections(tc.before, tc.after); d != nil {
			got = strconv.FormatInt(*d, 10)
		}
		if got != tc.want {
			t.Errorf("%v → %v: %s, want %s", tc.before, tc.after, got, tc.want)
		}
	}
}
