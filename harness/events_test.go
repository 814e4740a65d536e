package harness

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/redisload/redisload/bridge"
)

// Every event type's payload is valid JSON with the fields a consumer of
// that type reads.
func TestEventPayloads(t *testing.T) {
	g := newEventGen(rand.New(rand.NewPCG(1, 2)))
	want := map[string][]string{
		bridge.TypeTicker:               {"exchange", "symbol", "price", "bid", "ask", "volume"},
		bridge.TypeTrade:                {"exchange", "symbol", "id", "price", "amount", "side"},
		bridge.TypeOrderbook:            {"exchange", "symbol", "bids", "asks"},
		bridge.TypeCandle:               {"exchange", "symbol", "interval", "open", "high", "low", "close", "volume"},
		bridge.TypeExchangeConnected:    {"exchange"},
		bridge.TypeExchangeDisconnected: {"exchange", "reason"},
		bridge.TypeExchangeReconnecting: {"exchange", "attempt", "delayMs"},
		bridge.TypeExchangeError:        {"exchange", "code", "message"},
	}
	for _, typ := range bridge.EventTypes {
		for i := 0; i < 50; i++ {
			p := g.appendPayload(nil, typ)
			var m map[string]any
			if err := json.Unmarshal(p, &m); err != nil {
				t.Fatalf("%s payload %s: %v", typ, p, err)
			}
			for _, f := range want[typ] {
				if _, ok := m[f]; !ok {
					t.Fatalf("%s payload %s lacks %q", typ, p, f)
				}
			}
			if len(m) != len(want[typ]) && typ != bridge.TypeTicker {
				t.Fatalf("%s payload has fields %v", typ, m)
			}
			if typ == bridge.TypeOrderbook && (len(m["bids"].([]any)) != 10 || len(m["asks"].([]any)) != 10) {
				t.Fatalf("orderbook %s", p)
			}
			if typ == bridge.TypeCandle {
				hi, lo := m["high"].(float64), m["low"].(float64)
				for _, k := range []string{"open", "close"} {
					if v := m[k].(float64); v > hi || v < lo {
						t.Fatalf("candle %s: %s outside [low, high]", p, k)
					}
				}
			}
		}
	}
}

func TestEventGenIsDeterministic(t *testing.T) {
	a := newEventGen(rand.New(rand.NewPCG(7, 7)))
	b := newEventGen(rand.New(rand.NewPCG(7, 7)))
	for i := 0; i < 100; i++ {
		typ := bridge.EventTypes[i%len(bridge.EventTypes)]
		if pa, pb := a.appendPayload(nil, typ), b.appendPayload(nil, typ); string(pa) != string(pb) {
			t.Fatalf("%s differs:\n%s\n%s", typ, pa, pb)
		}
	}
}

func BenchmarkAppendPayloadTicker(b *testing.B) {
	g := newEventGen(rand.New(rand.NewPCG(1, 2)))
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = g.appendPayload(buf[:0], bridge.TypeTicker)
	}
}

// BenchmarkReceiverHandle is the accounting cost per delivered message,
// without tags.
func BenchmarkReceiverHandle(b *testing.B) {
	benchmarkReceiverHandle(b, bridge.TagKey{})
}

// BenchmarkReceiverHandleTagged adds the tag's cost: verified by the
// receiver, and computed here in the loop as the publisher would, so the
// difference from BenchmarkReceiverHandle is both sides' cost.
func BenchmarkReceiverHandleTagged(b *testing.B) {
	benchmarkReceiverHandle(b, bridge.TagKey{K0: 1, K1: 2})
}

func benchmarkReceiverHandle(b *testing.B, key bridge.TagKey) {
	limits := make([]seqLimit, 5)
	limits[3].Store(1 << 62)
	tr := trust{limits: limits}
	ev := &bridge.Event{Source: "redisload-abcd1234-3", Type: "ticker", SentNs: 1_000_000_000}
	var sk bridge.SourceKey
	if !key.IsZero() {
		sk = key.For(ev.Source)
		tr.keys = make([]bridge.SourceKey, 5)
		tr.keys[3] = sk
	}
	r := newReceiver(0, 5, "redisload-abcd1234-", tr, nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ev.Seq = uint64(i + 1)
		ev.ReceivedNs = ev.SentNs + int64(200_000+i%1000)
		if !key.IsZero() {
			ev.Tag = sk.Tag(ev.Seq, ev.SentNs, ev.PubNs)
		}
		r.handle(ev)
	}
	if r.forged != 0 || r.sources[3].unique() != uint64(b.N) {
		b.Fatalf("forged %d, delivered %d of %d", r.forged, r.sources[3].unique(), b.N)
	}
}

// appendFixed writes what strconv does, but for the last digit of a tie,
// over the ranges the generator draws from and at every scale.
func TestAppendFixed(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for k := range 200_000 {
		dec := k % 7
		v := (rng.Float64() - 0.3) * math.Pow(10, float64(rng.IntN(10)-3))
		got := string(appendFixed(nil, v, dec))
		want := strconv.FormatFloat(v, 'f', dec, 64)
		if got == want || want == "-"+got { // -0.00 and 0.00 alike
			continue
		}
		// Only a tie, to float precision, may round the other way, and
		// only by one in the last digit.
		scaled := math.Abs(v) * math.Pow(10, float64(dec))
		g, _ := strconv.ParseFloat(got, 64)
		w, _ := strconv.ParseFloat(want, 64)
		if math.Abs(scaled-math.Floor(scaled)-0.5) > 1e-6 || math.Abs(g-w) > 1.01/math.Pow(10, float64(dec)) {
			t.Fatalf("appendFixed(%v, %d) = %s, strconv %s", v, dec, got, want)
		}
	}
	for _, c := range []struct {
		v    float64
		dec  int
		want string
	}{{0.60001, 5, "0.60001"}, {65000.12, 2, "65000.12"}, {-1.23, 2, "-1.23"}, {0.004, 2, "0.00"}, {12, 0, "12"},
		{1e13, 2, "10000000000000.00"}, {math.Inf(1), 2, "+Inf"}} {
		if got := string(appendFixed(nil, c.v, c.dec)); got != c.want {
			t.Errorf("appendFixed(%v, %d) = %s, want %s", c.v, c.dec, got, c.want)
		}
	}
}

// Padding brings every payload to the size drawn for it, from the seed,
// and keeps it one valid JSON object; a payload already larger is left
// as it is.
func TestPayloadPadding(t *testing.T) {
	g := newEventGen(rand.New(rand.NewPCG(3, 4)))
	g.padMin, g.padMax = 300, 900
	sizes := map[int]bool{}
	for k := range 2000 {
		typ := bridge.EventTypes[k%len(bridge.EventTypes)]
		p := g.appendPayload(nil, typ)
		var v map[string]any
		if err := json.Unmarshal(p, &v); err != nil {
			t.Fatalf("%s: %v: %s", typ, err, p)
		}
		if len(p) < 300 || len(p) > 900 {
			t.Fatalf("%s: %d bytes, want 300 to 900", typ, len(p))
		}
		sizes[len(p)] = true
	}
	if len(sizes) < 100 {
		t.Errorf("%d distinct sizes over 2000 events: not drawn from the range", len(sizes))
	}
	g.padMin, g.padMax = 100, 0
	for _, typ := range []string{bridge.TypeOrderbook, bridge.TypeExchangeConnected} {
		p := g.appendPayload(nil, typ)
		if typ == bridge.TypeExchangeConnected && len(p) != 100 || typ == bridge.TypeOrderbook && (len(p) < 300 || strings.Contains(string(p), `"pad"`)) {
			t.Errorf("%s padded to 100: %d bytes: %s", typ, len(p), p)
		}
	}
}
