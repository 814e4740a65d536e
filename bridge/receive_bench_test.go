package bridge_test

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/redistest"
)

// BenchmarkReceivePath measures the receive path end to end against a real
// Redis: the subscriber's RESP reader, the envelope scan, dispatch. The
// publisher is a raw TCP connection writing pre-encoded PUBLISH commands,
// so allocs/op are the receiving side's allocations per message.
func BenchmarkReceivePath(b *testing.B) {
	srv := redistest.Start(b)
	got := make(chan struct{}, 1)
	n, want := 0, b.N // set before the receive loop exists
	br, err := bridge.New(bridge.Options{URL: srv.URL, InstanceID: "recv", KeyPrefix: "rb:",
		Handler: func(*bridge.Event) {
			if n++; n == want {
				got <- struct{}{}
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := br.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	if err := br.Subscribe(ctx, "ticker"); err != nil {
		b.Fatal(err)
	}
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// Drain the publisher's integer replies so that Redis never blocks.
	go func() {
		r := bufio.NewReader(conn)
		for {
			if _, err := r.ReadSlice('\n'); err != nil {
				return
			}
		}
	}()
	msg := string(bridge.LoadTestOptions{}.AppendEnvelope(nil, "pub", 1, time.Now().UnixNano(), 0, "ticker",
		[]byte(`{"exchange":"binance","symbol":"BTC/USDT","price":65000.12,"bid":64999.9,"ask":65000.3,"volume":1234.5}`)))
	cmd := []byte("*3\r\n$7\r\nPUBLISH\r\n$9\r\nrb:ticker\r\n$" + strconv.Itoa(len(msg)) + "\r\n" + msg + "\r\n")
	batch := make([]byte, 0, len(cmd)*100)
	for i := 0; i < 100; i++ {
		batch = append(batch, cmd...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += 100 {
		chunk := batch
		if left := b.N - sent; left < 100 {
			chunk = batch[:left*len(cmd)]
		}
		if _, err := conn.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-got:
	case <-ctx.Done():
		b.Fatalf("received %d of %d", n, b.N)
	}
}
