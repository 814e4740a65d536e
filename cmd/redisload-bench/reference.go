//go:build unix

package main

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/redisload/redisload/bridge"
)

// refResult is what the reference prints: enough to compare, nothing of
// redisload's accounting.
type refResult struct {
	Published uint64  `json:"published"`
	Received  uint64  `json:"received"`
	Expected  uint64  `json:"expected"`
	Seconds   float64 `json:"seconds"`
	ConnectS  float64 `json:"connect_s"`
	P50       int64   `json:"p50_us"`
	P99       int64   `json:"p99_us"`
	P999      int64   `json:"p99_9_us"`
	// SendP50 and SendP99 are its send delay: intended to actual publish.
	SendP50 int64 `json:"send_p50_us"`
	SendP99 int64 `json:"send_p99_us"`
}

// reference is the ceiling of "go-redis on this machine": the same message
// shape and instance count as redisload, tuned as the performance issue
// measured it (one pipeline per instance per 1 ms tick, a ReceiveMessage
// loop, the send time read by a string search), and no accounting. Every
// subscriber receives every message, its own included, as Redis sends it.
func reference(ctx context.Context, url string, n int, rate float64, d time.Duration, out io.Writer) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	opt.MaxRetries = -1
	channel := "ref:ticker"
	type inst struct {
		pub  *redis.Client
		sub  *redis.Client
		ps   *redis.PubSub
		hist *hdrhistogram.Histogram
		recv atomic.Uint64
	}
	insts := make([]*inst, n)
	connectStart := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for i := range insts {
		g.Go(func() error {
			in := &inst{pub: redis.NewClient(opt), sub: redis.NewClient(opt), hist: hdrhistogram.New(1, 60_000_000, 3)}
			// Wait for the subscribe reply, as redisload's barrier does, so
			// that neither counts messages lost before it subscribed.
			in.ps = in.sub.Subscribe(gctx, channel)
			if _, err := in.ps.Receive(gctx); err != nil {
				return err
			}
			insts[i] = in
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	connectS := time.Since(connectStart).Seconds()
	defer func() {
		for _, in := range insts {
			_ = in.ps.Close()
			_ = in.pub.Close()
			_ = in.sub.Close()
		}
	}()

	var wg sync.WaitGroup
	for _, in := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// ReceiveMessage, not Channel(): measured cheaper, and it
				// never drops a message.
				m, err := in.ps.ReceiveMessage(context.Background())
				if err != nil {
					return // closed
				}
				now := time.Now().UnixNano()
				if i := strings.Index(m.Payload, `"sent_ns":`); i >= 0 {
					rest := m.Payload[i+len(`"sent_ns":`):]
					if j := strings.IndexByte(rest, ','); j > 0 {
						if sent, err := strconv.ParseInt(rest[:j], 10, 64); err == nil {
							_ = in.hist.RecordValue(max(1, (now-sent)/1000))
						}
					}
				}
				in.recv.Add(1)
			}
		}()
	}

	// Open loop: each instance publishes its share of the rate, whatever is
	// due at each 1 ms tick, in one pipeline.
	data := []byte(`{"exchange":"binance","symbol":"BTC/USDT","price":65000.12,"bid":64999.9,"ask":65000.3,"volume":1234.5,"change24h":-1.23}`)
	total := uint64(rate * d.Seconds())
	start := time.Now()
	var published atomic.Uint64
	var pg sync.WaitGroup
	delays := make([]*hdrhistogram.Histogram, n) // each publisher's own
	for i, in := range insts {
		delays[i] = hdrhistogram.New(1, 60_000_000, 2)
		pg.Add(1)
		go func() {
			defer pg.Done()
			id := "ref-" + strconv.Itoa(i)
			buf := make([]byte, 0, 64<<10)
			var sent, seq uint64 // this instance's events so far
			// Global event k is due at k/rate and belongs to instance
			// k mod n: the same schedule as redisload's, spread evenly.
			mine := func(global uint64) uint64 {
				if global <= uint64(i) {
					return 0
				}
				return (global - uint64(i) + uint64(n) - 1) / uint64(n)
			}
			share := mine(total)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for sent < share {
				<-tick.C
				due := min(mine(uint64(time.Since(start).Seconds()*rate)+1), share)
				if due <= sent {
					continue
				}
				pipe := in.pub.Pipeline()
				buf = buf[:0]
				var ends []int
				now := time.Now().UnixNano()
				for k := sent; k < due; k++ {
					seq++
					// Latency from the intended send time, as redisload
					// measures it, so that both count their own lag.
					global := k*uint64(n) + uint64(i)
					intended := start.UnixNano() + int64(float64(global)/rate*1e9)
					buf = bridge.LoadTestOptions{}.AppendEnvelope(buf, id, seq, intended, 0, "ticker", data)
					_ = delays[i].RecordValue(max(1, (now-intended)/1000))
					ends = append(ends, len(buf))
				}
				s := 0
				for _, e := range ends {
					pipe.Publish(ctx, channel, buf[s:e])
					s = e
				}
				if _, err := pipe.Exec(ctx); err == nil {
					published.Add(due - sent)
				}
				sent = due
			}
		}()
	}
	pg.Wait()
	elapsed := time.Since(start)
	// Drain: wait until every copy arrived, at most 2 s.
	want := published.Load() * uint64(n)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		var got uint64
		for _, in := range insts {
			got += in.recv.Load()
		}
		if got >= want {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	for _, in := range insts {
		_ = in.ps.Close() // ends the receive loops
	}
	wg.Wait()
	h := hdrhistogram.New(1, 60_000_000, 3)
	sd := hdrhistogram.New(1, 60_000_000, 2)
	for _, d := range delays {
		sd.Merge(d)
	}
	var recv uint64
	for _, in := range insts {
		h.Merge(in.hist)
		recv += in.recv.Load()
	}
	return json.NewEncoder(out).Encode(refResult{
		Published: published.Load(), Received: recv, Expected: want,
		Seconds: elapsed.Seconds(), ConnectS: connectS,
		P50: h.ValueAtQuantile(50), P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9),
		SendP50: sd.ValueAtQuantile(50), SendP99: sd.ValueAtQuantile(99),
	})
}
