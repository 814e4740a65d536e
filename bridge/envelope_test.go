package bridge

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func TestEnvelopeRoundTripScans(t *testing.T) {
	data := `{"symbol":"BTC/USDT","price":65000.5}`
	p := string(appendEnvelope(nil, "run-1", 42, 1700000000123456789, 0, 0, "exchange:error", []byte(data)))
	want := `{"source":"run-1","seq":42,"sent_ns":1700000000123456789,"type":"exchange:error","timestamp":1700000000123,"data":{"symbol":"BTC/USDT","price":65000.5}}`
	if p != want {
		t.Fatalf("envelope:\n got %s\nwant %s", p, want)
	}
	if !json.Valid([]byte(p)) {
		t.Fatal("envelope is not valid JSON")
	}
	var ev Event
	if !scanEnvelope(p, &ev) {
		t.Fatal("scanEnvelope rejected its own format")
	}
	if ev.Source != "run-1" || ev.Seq != 42 || ev.SentNs != 1700000000123456789 ||
		ev.Type != "exchange:error" || ev.Timestamp != 1700000000123 || ev.Data != data {
		t.Fatalf("scanned %+v", ev)
	}
}

// A load test's publish time travels as pub_ns, after sent_ns; the scanner
// and the JSON fallback read it alike, an envelope without it reads 0, and
// the tag covers it: a message whose stamp was changed does not verify.
func TestEnvelopePublishTime(t *testing.T) {
	key := TagKey{K0: 1, K1: 2}.For("run-1")
	tag := key.Tag(42, 7, 9)
	p := string(appendEnvelope(nil, "run-1", 42, 7, 9, tag, "ticker", []byte("1")))
	want := `{"source":"run-1","seq":42,"sent_ns":7,"pub_ns":9,"tag":"` + string(appendTag(nil, tag)) + `","type":"ticker","timestamp":0,"data":1}`
	if p != want {
		t.Fatalf("envelope:\n got %s\nwant %s", p, want)
	}
	var ev Event
	if !scanEnvelope(p, &ev) || ev.PubNs != 9 || ev.SentNs != 7 || ev.Tag != tag || !key.Verify(&ev) {
		t.Fatalf("scanned %+v", ev)
	}
	ev = Event{}
	if err := decodeEnvelopeJSON(p, &ev); err != nil || ev.PubNs != 9 || !key.Verify(&ev) {
		t.Fatalf("decoded %+v, %v", ev, err)
	}
	ev.PubNs = 8 // a forged stamp
	if key.Verify(&ev) {
		t.Fatal("a changed pub_ns verified")
	}
	if !scanEnvelope(string(appendEnvelope(nil, "run-1", 42, 7, 0, 0, "ticker", []byte("1"))), &ev) || ev.PubNs != 0 {
		t.Fatalf("an envelope without pub_ns scanned as %+v", ev)
	}
	if scanEnvelope(`{"source":"a","seq":1,"sent_ns":7,"pub_ns":x,"type":"ticker","timestamp":0,"data":1}`, &ev) {
		t.Fatal("scan accepted a pub_ns that is not a number")
	}
}

// The TypeScript bridge's own messages have no seq and a numeric pid as
// source; they must decode through the fallback.
// A tag travels as unpadded base64url of its 8 big-endian bytes, between
// sent_ns and type; the scanner and the JSON fallback read it alike, and
// anything but the canonical spelling is no tag (which fails verification).
func TestEnvelopeTag(t *testing.T) {
	const tag = 0x0123456789abcdef
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], tag)
	text := base64.RawURLEncoding.EncodeToString(be[:])
	p := string(appendEnvelope(nil, "run-1", 42, 7, 0, tag, "ticker", []byte("1")))
	want := `{"source":"run-1","seq":42,"sent_ns":7,"tag":"` + text + `","type":"ticker","timestamp":0,"data":1}`
	if p != want || text != "ASNFZ4mrze8" {
		t.Fatalf("envelope:\n got %s\nwant %s", p, want)
	}
	var ev Event
	if !scanEnvelope(p, &ev) || ev.Tag != tag || ev.Seq != 42 || ev.Type != "ticker" {
		t.Fatalf("scanned %+v", ev)
	}
	if err := decodeEnvelopeJSON(p, &ev); err != nil || ev.Tag != tag {
		t.Fatalf("decoded %+v, %v", ev, err)
	}
	for _, v := range []uint64{1, 1 << 63, ^uint64(0), 0xf0, 0x0f} {
		binary.BigEndian.PutUint64(be[:], v)
		if got := string(appendTag(nil, v)); got != base64.RawURLEncoding.EncodeToString(be[:]) {
			t.Errorf("appendTag(%x) = %s, want base64url", v, got)
		}
		if back, ok := parseTag(string(appendTag(nil, v)), 0); !ok || back != v {
			t.Errorf("parseTag(appendTag(%x)) = %x, %v", v, back, ok)
		}
	}
	// Too short, too long, not base64url, a non-canonical last character
	// (its unused bits set), padding.
	for _, bad := range []string{"ASNFZ4mrze", "ASNFZ4mrze8A", "ASNFZ4mr+e8", "ASNFZ4mrze9", "ASNFZ4mrz=="} {
		p := `{"source":"run-1","seq":42,"sent_ns":7,"tag":"` + bad + `","type":"ticker","timestamp":0,"data":1}`
		ev = Event{Tag: 99}
		if scanEnvelope(p, &ev) {
			t.Errorf("scan accepted tag %q", bad)
		}
		if err := decodeEnvelope(p, &ev); err != nil || ev.Tag != 0 {
			t.Errorf("tag %q decoded as %x, %v; want no tag", bad, ev.Tag, err)
		}
	}
	// An untagged message after a tagged one carries no stale tag.
	ev = Event{Tag: 99}
	if !scanEnvelope(string(appendEnvelope(nil, "a", 1, 1, 0, 0, "ticker", []byte("1"))), &ev) || ev.Tag != 0 {
		t.Fatalf("untagged scan left tag %x", ev.Tag)
	}
}

func TestEnvelopeDecodesTypeScriptMessages(t *testing.T) {
	var ev Event
	p := `{"type":"ticker","data":{"symbol":"ETH/USDT"},"timestamp":1700000000000,"source":4242}`
	if err := decodeEnvelope(p, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "ticker" || ev.Source != "4242" || ev.Seq != 0 || ev.SentNs != 0 ||
		ev.Timestamp != 1700000000000 || ev.Data != `{"symbol":"ETH/USDT"}` {
		t.Fatalf("decoded %+v", ev)
	}
	p = `{"type":"trade","data":null,"timestamp":1,"source":"test-instance-0"}`
	if err := decodeEnvelope(p, &ev); err != nil || ev.Source != "test-instance-0" || ev.Type != "trade" {
		t.Fatalf("decoded %+v, %v", ev, err)
	}
}

func TestEnvelopeFallbackHandlesReorderedAndEscaped(t *testing.T) {
	var ev Event
	p := `{"seq":7,"source":"a\"b","type":"candle","sent_ns":5,"timestamp":0,"data":[1]}`
	if scanEnvelope(p, &ev) {
		t.Fatal("scan accepted a reordered envelope")
	}
	if err := decodeEnvelope(p, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Source != `a"b` || ev.Seq != 7 || ev.SentNs != 5 || ev.Type != "candle" || ev.Data != "[1]" {
		t.Fatalf("decoded %+v", ev)
	}
}

func TestEnvelopeRejectsGarbage(t *testing.T) {
	for _, p := range []string{"", "hello", "{}", `{"type":""}`, `{"type":5}`, `[1,2]`, `{"source":"x","seq":1`} {
		var ev Event
		if err := decodeEnvelope(p, &ev); err == nil {
			t.Errorf("decodeEnvelope(%q) accepted garbage: %+v", p, ev)
		}
	}
}

func TestScanRejectsOverlongNumbers(t *testing.T) {
	p := `{"source":"a","seq":1234567890123456789012,"sent_ns":1,"type":"t","timestamp":1,"data":1}`
	var ev Event
	if scanEnvelope(p, &ev) {
		t.Fatal("scan accepted a number that overflows")
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"ticker": true, "exchange:error": true, "run-ab12-3": true,
		"": false, "a b": false, `a"b`: false, `a\b`: false, "a\nb": false,
	} {
		if got := validName(s); got != want {
			t.Errorf("validName(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzScanAgreesWithJSON: whatever the scanner accepts, a full JSON decoder
// reads the same way. The scanner is a shortcut, never a second opinion.
func FuzzScanAgreesWithJSON(f *testing.F) {
	f.Add(string(appendEnvelope(nil, "i-1", 1, 2, 0, 0, "ticker", []byte(`{"a":1}`))))
	f.Add(`{"source":"x","seq":0,"sent_ns":0,"type":"t","timestamp":0,"data":"s"}`)
	f.Add(`{"type":"ticker","data":{},"timestamp":1,"source":1}`)
	f.Add(string(appendEnvelope(nil, "redisload-ab12cd34-7", 3, 1700000000123456789, 0, 0xdeadbeef00c0ffee, "ticker", []byte(`{"p":[1,"x"]}`))))
	f.Add(`{"source":"x","seq":1,"sent_ns":1,"tag":"ASNFZ4mrze8","type":"t","timestamp":0,"data":null}`)
	f.Fuzz(func(t *testing.T, p string) {
		var scanned, decoded, unscanned Event
		if !scanEnvelope(p, &scanned) {
			return
		}
		// What the scan accepts, SkipData reads the same way.
		if err := decodeEnvelopeUnscanned(p, &unscanned); err != nil || unscanned != scanned {
			t.Fatalf("unscanned %+v (%v) != scanned %+v for %q", unscanned, err, scanned, p)
		}
		if !json.Valid([]byte(p)) {
			return
		}
		if err := decodeEnvelopeJSON(p, &decoded); err != nil {
			t.Fatalf("scan accepted %q, JSON decode failed: %v", p, err)
		}
		var compact = func(s string) string {
			var v any
			if json.Unmarshal([]byte(s), &v) != nil {
				return s
			}
			b, _ := json.Marshal(v)
			return string(b)
		}
		if scanned.Source != decoded.Source || scanned.Seq != decoded.Seq || scanned.SentNs != decoded.SentNs ||
			scanned.Tag != decoded.Tag ||
			scanned.Type != decoded.Type || scanned.Timestamp != decoded.Timestamp ||
			compact(scanned.Data) != compact(decoded.Data) {
			t.Fatalf("scan %+v != json %+v for %q", scanned, decoded, p)
		}
	})
}

func BenchmarkAppendEnvelope(b *testing.B) {
	data := []byte(`{"symbol":"BTC/USDT","price":65000.12,"bid":64999.9,"ask":65000.3,"volume":1234.5}`)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = appendEnvelope(buf[:0], "redisload-ab12cd34-7", uint64(i), 1700000000123456789, 0, 0, "ticker", data)
	}
}

func BenchmarkDecodeEnvelopeScan(b *testing.B) {
	p := string(appendEnvelope(nil, "redisload-ab12cd34-7", 123456, 1700000000123456789, 0, 0, "ticker",
		[]byte(`{"symbol":"BTC/USDT","price":65000.12,"bid":64999.9,"ask":65000.3,"volume":1234.5}`)))
	var ev Event
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := decodeEnvelope(p, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEnvelopeJSON(b *testing.B) {
	p := string(appendEnvelope(nil, "redisload-ab12cd34-7", 123456, 1700000000123456789, 0, 0, "ticker",
		[]byte(`{"symbol":"BTC/USDT","price":65000.12,"bid":64999.9,"ask":65000.3,"volume":1234.5}`)))
	var ev Event
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := decodeEnvelopeJSON(p, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEnvelopeScanTagged(b *testing.B) {
	p := string(appendEnvelope(nil, "redisload-ab12cd34-7", 123456, 1700000000123456789, 0, 0x0123456789abcdef, "ticker",
		[]byte(`{"symbol":"BTC/USDT","price":65000.12,"bid":64999.9,"ask":65000.3,"volume":1234.5}`)))
	var ev Event
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := decodeEnvelope(p, &ev); err != nil || ev.Tag == 0 {
			b.Fatal(err)
		}
	}
}

// digits agrees with strconv on every length around its eight-digit
// steps, on the int64 bound, and stops at the first non-digit.
func TestDigits(t *testing.T) {
	cases := []string{"0", "7", "12345678", "123456789", "1234567890123456", "12345678901234567",
		"1700000000123456789", "9223372036854775807", "9223372036854775808", "99999999999999999999", "1234567a9012",
		"00000000000000000001", "", "x1", "18446744073709551616"}
	for k := 1; k <= 20; k++ {
		cases = append(cases, strings.Repeat("9", k), strings.Repeat("1", k)+",")
	}
	for _, c := range cases {
		n, end, ok := digits(c, 0)
		lead := len(c) - len(strings.TrimLeft(c, "0123456789"))
		want, err := strconv.ParseInt(c[:lead], 10, 64)
		wantOK := lead > 0 && lead <= 19 && err == nil
		if ok != wantOK || ok && (n != want || end != lead) {
			t.Errorf("digits(%q) = %d, %d, %v; want %d, %d, %v", c, n, end, ok, want, lead, wantOK)
		}
	}
}

// SkipData takes the data of redisload's layout as it stands, broken or
// not, and sends any other layout to the full decoder, as the scan does.
func TestDecodeEnvelopeUnscanned(t *testing.T) {
	var ev Event
	p := string(appendEnvelope(nil, "i-1", 7, 9, 0, 0, "ticker", []byte(`{"a":[1,2]}`)))
	if err := decodeEnvelopeUnscanned(p, &ev); err != nil || ev.Data != `{"a":[1,2]}` || ev.Seq != 7 || ev.SentNs != 9 {
		t.Fatalf("%+v, %v", ev, err)
	}
	broken := `{"source":"i-1","seq":1,"sent_ns":1,"type":"t","timestamp":0,"data":{"a":}`
	if err := decodeEnvelopeUnscanned(broken, &ev); err != nil || ev.Data != `{"a":` {
		t.Errorf("broken data in the layout: %+v, %v; want delivered with its data as it stands", ev, err)
	}
	if err := decodeEnvelope(broken, &ev); err == nil {
		t.Errorf("scanned, broken data was accepted: %+v", ev)
	}
	if err := decodeEnvelopeUnscanned(`{"type":"ticker","data":{"x":1},"timestamp":1,"source":"ts"}`, &ev); err != nil ||
		ev.Source != "ts" || ev.Data != `{"x":1}` {
		t.Errorf("another layout: %+v, %v", ev, err)
	}
	for _, bad := range []string{`{"source":"i-1","seq":1,"sent_ns":1,"type":"t","timestamp":0,"data":}`,
		`{"source":"i-1","seq":1,"sent_ns":1,"type":"t","timestamp":0,"data":1`} {
		if err := decodeEnvelopeUnscanned(bad, &ev); err == nil {
			t.Errorf("%q accepted: %+v", bad, ev)
		}
	}
}
