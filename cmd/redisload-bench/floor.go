//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// floor is the least a publisher can do per event on this machine, to put
// redisload's send delay in proportion: no client library, no envelope,
// no accounting, no batching and no hand-off. The pacing thread itself
// (locked, timer slack 1 ns, nanosleep, as redisload's scheduler) writes
// each PUBLISH to a raw socket at its intended time; a goroutine per
// connection reads the replies without ever being waited for, and raw
// subscribers read the messages, whose payload is the intended send time.
// Its send delay is therefore the pacer thread's own lag: what remains is
// the machine's (the thread's wake-ups on cores shared with Redis and the
// subscribers), not a client's.
func floor(ctx context.Context, rawURL string, n int, rate float64, d time.Duration, out io.Writer) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	addr := u.Host
	const channel = "floor:ticker"
	dial := func() (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "tcp", addr) }

	connectStart := time.Now()
	subs := make([]net.Conn, n)
	hists := make([]*hdrhistogram.Histogram, n)
	counts := make([]uint64, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range subs {
		c, err := dial()
		if err != nil {
			return err
		}
		defer c.Close()
		subs[i], hists[i] = c, hdrhistogram.New(1, 60_000_000, 3)
		if _, err := c.Write(respCommand(nil, "SUBSCRIBE", channel)); err != nil {
			return err
		}
		r := bufio.NewReaderSize(c, 32<<10)
		// The confirmation is a 3-element push of 6 lines.
		for range 6 {
			if _, err := r.ReadSlice('\n'); err != nil {
				return err
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			readFloorMessages(r, hists[i], &counts[i])
		}()
	}
	pubs := make([]net.Conn, n)
	for i := range pubs {
		c, err := dial()
		if err != nil {
			return err
		}
		defer c.Close()
		pubs[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReaderSize(c, 4<<10)
			for { // replies are read, never waited for
				if _, err := r.ReadSlice('\n'); err != nil {
					return
				}
			}
		}()
	}
	connectS := time.Since(connectStart).Seconds()

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	send := hdrhistogram.New(1, 60_000_000, 2)
	total := uint64(rate * d.Seconds())
	seed := uint64(1)
	// One PUBLISH, rewritten in place per event: the payload is the
	// intended time, zero-padded to a fixed width, then spaces to a
	// ticker's size, so that no event allocates.
	const payloadLen = 160
	msg := respCommand(nil, "PUBLISH", channel, strings.Repeat(" ", payloadLen))
	digits := msg[len(msg)-2-payloadLen:]
	start := time.Now()
	var sent uint64
	for sent < total && ctx.Err() == nil {
		// Event k is due at k/rate: at t, events 0..floor(t·rate) are
		// (as redisload's ConstantPacer counts them).
		due := min(uint64(time.Since(start).Seconds()*rate)+1, total)
		for ; sent < due; sent++ {
			seed = seed*6364136223846793005 + 1442695040888963407 // an LCG: the instance of each event
			intended := start.UnixNano() + int64(float64(sent)/rate*1e9)
			now := time.Now().UnixNano()
			_ = send.RecordValue(max((now-intended)/1000, 1))
			for i, v := 18, intended; i >= 0; i-- { // 19 digits: every Unix time in ns until 2286
				digits[i] = byte('0' + v%10)
				v /= 10
			}
			if _, err := pubs[int(seed>>33)%n].Write(msg); err != nil {
				return err
			}
		}
		if w := time.Until(start.Add(time.Duration(float64(sent) / rate * 1e9))); w > 0 {
			ts := unix.NsecToTimespec(int64(w))
			_ = unix.Nanosleep(&ts, nil)
		}
	}
	seconds := time.Since(start).Seconds()
	time.Sleep(500 * time.Millisecond) // the last deliveries
	for i := range subs {
		_ = subs[i].Close()
		_ = pubs[i].Close()
	}
	wg.Wait()
	h := hdrhistogram.New(1, 60_000_000, 3)
	var received uint64
	for i := range hists {
		h.Merge(hists[i])
		received += counts[i]
	}
	return json.NewEncoder(out).Encode(refResult{
		Published: sent, Received: received, Expected: sent * uint64(n), Seconds: seconds, ConnectS: connectS,
		P50: h.ValueAtQuantile(50), P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9),
		SendP50: send.ValueAtQuantile(50), SendP99: send.ValueAtQuantile(99),
	})
}

// readFloorMessages reads a subscriber's messages until its connection
// closes, recording each one's latency from the send time it carries; the
// receive time is read once per socket read, as redisload does.
func readFloorMessages(r *bufio.Reader, h *hdrhistogram.Histogram, count *uint64) {
	var nowNs int64
	for {
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err != nil {
				return
			}
			nowNs = time.Now().UnixNano()
		}
		// *3, $7, message, $len, channel, $len, payload: the payload line
		// is the 7th.
		var line []byte
		for range 7 {
			var err error
			if line, err = r.ReadSlice('\n'); err != nil {
				return
			}
		}
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		if sent, err := strconv.ParseInt(string(line[:sp]), 10, 64); err == nil {
			_ = h.RecordValue(max((nowNs-sent)/1000, 1))
			*count++
		}
	}
}

// respCommand appends a command in RESP to b.
func respCommand(b []byte, args ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}
