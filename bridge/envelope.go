package bridge

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
)

// Event is one message received from Redis, handed to a Handler.
//
// The bridge reuses one Event per subscriber connection, so a Handler must not
// keep the pointer after it returns; copy the fields it needs. Strings are
// slices of the received payload and stay valid.
type Event struct {
	// Channel is the Redis channel the message arrived on, e.g. "ws:ticker".
	Channel string
	// Type is the event type from the envelope, e.g. "ticker".
	Type string
	// Source is the publishing instance's ID. A TypeScript bridge that
	// publishes its process.pid as a number shows up as that number's text.
	Source string
	// Seq is the publisher's sequence number, counting from 1; 0 when the
	// publisher does not write one (a TypeScript bridge, for example).
	Seq uint64
	// SentNs is the publisher's wall clock in Unix nanoseconds when it built
	// the message; 0 when absent. A load test's publisher writes the
	// event's intended send time here instead (see Batch.AddAt).
	SentNs int64
	// PubNs is, from a load test's publisher, when the event was handed to
	// its connection (see Batch.AddTimed): ReceivedNs - PubNs is its
	// transit, the part of its latency after the publisher's own delay.
	// 0 when absent.
	PubNs int64
	// Timestamp is the envelope's Unix millisecond timestamp.
	Timestamp int64
	// Data is the event's payload as raw JSON text; Decode unmarshals it.
	Data string
	// ReceivedNs is the receiver's wall clock in Unix nanoseconds, read once
	// per message as it came off the connection.
	ReceivedNs int64
	// Tag is the message's authentication tag (see TagKey); 0 when it has
	// none or it is not the canonical 11 characters (see AppendEnvelope).
	Tag uint64
}

// Decode unmarshals the event's payload into v.
func (e *Event) Decode(v any) error {
	return json.Unmarshal([]byte(e.Data), v)
}

// appendEnvelope appends the wire form of one event to dst and returns it.
//
// The envelope is the TypeScript bridge's {type, data, timestamp, source}
// plus seq, sent_ns, when pubNs is not 0 pub_ns, and, when tag is not 0, an
// authentication tag: its 8
// bytes, big-endian, in unpadded base64url (RFC 4648 §5), 11 characters. redisload's own fields come first, in this fixed
// order, so that decodeEnvelope can read them by scanning instead of parsing:
//
//	{"source":"id","seq":1,"sent_ns":1700000000000000000,"pub_ns":1700000000000050000,"tag":"ASNFZ4mrze8","type":"ticker","timestamp":1700000000000,"data":{...}}
//
// source and eventType must already be valid JSON string contents (see
// validName); data must be one valid JSON value. Peers that do not know a
// field (the TypeScript bridge) ignore it.
func appendEnvelope(dst []byte, source string, seq uint64, sentNs, pubNs int64, tag uint64, eventType string, data []byte) []byte {
	dst = append(dst, `{"source":"`...)
	dst = append(dst, source...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"sent_ns":`...)
	dst = strconv.AppendInt(dst, sentNs, 10)
	if pubNs != 0 {
		dst = append(dst, `,"pub_ns":`...)
		dst = strconv.AppendInt(dst, pubNs, 10)
	}
	if tag != 0 {
		dst = append(dst, `,"tag":"`...)
		dst = appendTag(dst, tag)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"type":"`...)
	dst = append(dst, eventType...)
	dst = append(dst, `","timestamp":`...)
	dst = strconv.AppendInt(dst, sentNs/1e6, 10)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	dst = append(dst, '}')
	return dst
}

// AppendEnvelope is the wire format for a load test's own publisher (the
// benchmark's reference client builds the same bytes with it): see the
// envelope's layout at appendEnvelope. An application publishes through a
// Bridge instead.
func (LoadTestOptions) AppendEnvelope(dst []byte, source string, seq uint64, sentNs int64, tag uint64, eventType string, data []byte) []byte {
	return appendEnvelope(dst, source, seq, sentNs, 0, tag, eventType, data)
}

// errMalformed reports a payload that is not an event envelope at all.
var errMalformed = errors.New("malformed event envelope")

// decodeEnvelope fills ev from payload. It tries the fixed-order scan first
// and falls back to a full JSON decode for anything else, which is how
// messages from other publishers (the TypeScript bridge) are read. Only a
// payload that is not a JSON object with a string "type" is an error.
func decodeEnvelope(payload string, ev *Event) error {
	if scanEnvelope(payload, ev) {
		return nil
	}
	return decodeEnvelopeJSON(payload, ev)
}

// decodeEnvelopeUnscanned is decodeEnvelope for LoadTestOptions.SkipData:
// the data of a message in redisload's layout is what lies between
// "data": and the closing brace, not scanned.
func decodeEnvelopeUnscanned(payload string, ev *Event) error {
	if i, ok := scanHead(payload, ev); ok && i < len(payload)-1 && payload[len(payload)-1] == '}' {
		ev.Data = payload[i : len(payload)-1]
		return nil
	}
	return decodeEnvelopeJSON(payload, ev)
}

// scanEnvelope reads an envelope written by AppendEnvelope without decoding
// its data. It reports false, leaving ev in an unspecified state, on the
// first byte that differs from that exact layout; the caller then falls back
// to decodeEnvelopeJSON. Full JSON decoding was 42 % of a harness's CPU,
// which is why this exists.
func scanEnvelope(p string, ev *Event) bool {
	i, ok := scanHead(p, ev)
	if !ok {
		return false
	}
	// The data is the last field: one value, then the envelope's closing
	// brace. Anything after the value (more fields) sends the message to
	// the fallback decoder.
	end, ok := skipValue(p, i)
	if !ok || end != len(p)-1 || p[end] != '}' {
		return false
	}
	ev.Data = p[i:end]
	return true
}

// scanHead reads every field of the envelope before its data, in
// AppendEnvelope's layout, and returns the index where the data starts.
func scanHead(p string, ev *Event) (int, bool) {
	var ok bool
	i := 0
	if i, ok = expect(p, i, `{"source":"`); !ok {
		return 0, false
	}
	if ev.Source, i, ok = plainString(p, i); !ok {
		return 0, false
	}
	if i, ok = expect(p, i, `,"seq":`); !ok {
		return 0, false
	}
	var seq, sent int64
	if seq, i, ok = digits(p, i); !ok {
		return 0, false
	}
	if i, ok = expect(p, i, `,"sent_ns":`); !ok {
		return 0, false
	}
	if sent, i, ok = digits(p, i); !ok {
		return 0, false
	}
	ev.PubNs = 0
	if j, stamped := expect(p, i, `,"pub_ns":`); stamped {
		if ev.PubNs, i, ok = digits(p, j); !ok {
			return 0, false
		}
	}
	ev.Tag = 0
	if j, tagged := expect(p, i, `,"tag":"`); tagged {
		if ev.Tag, ok = parseTag(p, j); !ok || len(p) <= j+tagLen || p[j+tagLen] != '"' {
			return 0, false
		}
		i = j + tagLen + 1
	}
	if i, ok = expect(p, i, `,"type":"`); !ok {
		return 0, false
	}
	if ev.Type, i, ok = plainString(p, i); !ok || ev.Type == "" {
		return 0, false
	}
	if i, ok = expect(p, i, `,"timestamp":`); !ok {
		return 0, false
	}
	if ev.Timestamp, i, ok = digits(p, i); !ok {
		return 0, false
	}
	if i, ok = expect(p, i, `,"data":`); !ok {
		return 0, false
	}
	ev.Seq = uint64(seq)
	ev.SentNs = sent
	return i, true
}

// expect reports whether p holds lit at i, and the index after it.
func expect(p string, i int, lit string) (int, bool) {
	if len(p)-i < len(lit) || p[i:i+len(lit)] != lit {
		return i, false
	}
	return i + len(lit), true
}

// plainString reads a JSON string body up to its closing quote, starting
// after the opening quote. Escapes and non-ASCII bytes make it give up: the
// fallback decoder handles those (and replaces invalid UTF-8 as
// encoding/json does), and redisload never writes them.
func plainString(p string, i int) (string, int, bool) {
	for j := i; j < len(p); j++ {
		switch c := p[j]; {
		case c == '"':
			return p[i:j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", i, false
		}
	}
	return "", i, false
}

// digits reads a non-negative decimal integer that fits an int64. Up to 19
// digits cannot overflow the uint64 it is summed in; the int64 bound is
// checked after. Every message carries three such numbers, 40 digits: it
// takes them eight at a time where it can (SWAR), which halved their cost
// (9 % of a loaded client's CPU).
func digits(p string, i int) (int64, int, bool) {
	var n uint64
	j := i
	for j+8 <= len(p) && j-i <= 11 { // two chunks at most: 16 of the 19 digits
		v := le64(p[j : j+8])
		if !eightDigits(v) {
			break
		}
		n = n*100_000_000 + parseEight(v)
		j += 8
	}
	for ; j < len(p) && j-i < 20; j++ {
		c := p[j]
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	if j == i || j-i > 19 || n > math.MaxInt64 {
		return 0, i, false
	}
	return int64(n), j, true
}

// le64 reads eight bytes little-endian (the compiler makes it one load).
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// eightDigits reports whether every byte of v is an ASCII digit
// (simdjson's is_made_of_eight_digits_fast).
func eightDigits(v uint64) bool {
	return (v&0xF0F0F0F0F0F0F0F0)|(((v+0x0606060606060606)&0xF0F0F0F0F0F0F0F0)>>4) == 0x3333333333333333
}

// parseEight is the value of eight ASCII digits, the first in the lowest
// byte: pairs, then quads, then the eight, each step one multiply.
func parseEight(v uint64) uint64 {
	v = (v & 0x0F0F0F0F0F0F0F0F) * (10<<8 + 1) >> 8
	v = (v & 0x00FF00FF00FF00FF) * (100<<16 + 1) >> 16
	return (v & 0x0000FFFF0000FFFF) * (10000<<32 + 1) >> 32
}

// skipValue returns the index just past the JSON value that starts at i.
// It tracks strings and nesting only, without allocating; whether the value
// is valid JSON inside is left to whoever decodes it. It walks the data of
// every message received, so it looks at the bytes that matter only: a
// table skips the others, and a string's end is found with IndexByte (a
// vector search); together 2.4x faster than a switch on every byte, which
// was 19 % of the client's CPU at the highest rate.
func skipValue(p string, i int) (int, bool) {
	depth := 0
	for j := i; j < len(p); j++ {
		c := p[j]
		if !skipStops[c] {
			continue
		}
		switch c {
		case '"':
			end, ok := stringEnd(p, j+1)
			if !ok {
				return i, false
			}
			j = end
			if depth == 0 {
				return j + 1, true
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 { // a bare value ends at the envelope's brace
				return j, j > i
			}
			if depth--; depth == 0 {
				return j + 1, true
			}
		case ',':
			if depth == 0 {
				return j, j > i
			}
		}
	}
	return i, false
}

// skipStops are the bytes skipValue acts on outside strings.
var skipStops = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true, ',': true}

// stringEnd returns the index of the quote that closes the string whose
// body starts at k, a backslash escaping the byte after it.
func stringEnd(p string, k int) (int, bool) {
	for ; k < len(p); k++ {
		switch p[k] {
		case '\\':
			k++
		case '"':
			return k, true
		}
	}
	return 0, false
}

// jsonEnvelope is the general form of the envelope, for the fallback path.
// source is raw because the TypeScript bridge publishes process.pid, a
// number, by default.
type jsonEnvelope struct {
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	Timestamp float64         `json:"timestamp"`
	Source    json.RawMessage `json:"source"`
	Seq       uint64          `json:"seq"`
	SentNs    int64           `json:"sent_ns"`
	PubNs     int64           `json:"pub_ns"`
	Tag       string          `json:"tag"`
}

// decodeEnvelopeJSON decodes any JSON object with a string "type" field.
func decodeEnvelopeJSON(payload string, ev *Event) error {
	var env jsonEnvelope
	if err := json.Unmarshal([]byte(payload), &env); err != nil || env.Type == "" {
		return errMalformed
	}
	ev.Type = env.Type
	ev.Data = string(env.Data)
	ev.Timestamp = int64(env.Timestamp)
	ev.Seq = env.Seq
	ev.SentNs = env.SentNs
	ev.PubNs = env.PubNs
	ev.Tag = 0
	if len(env.Tag) == tagLen {
		ev.Tag, _ = parseTag(env.Tag, 0) // 0, "none", when not canonical
	}
	ev.Source = ""
	if len(env.Source) > 0 {
		var s string
		if json.Unmarshal(env.Source, &s) == nil {
			ev.Source = s
		} else {
			// A number (a pid) or anything else: its JSON text identifies it.
			ev.Source = string(env.Source)
		}
	}
	return nil
}

// The tag's text is base64url because it is the shortest JSON-safe text
// of 64 bits: every message carries it, and its bytes cost Redis and each
// receiver (16 hexadecimal digits cost 9 % of the highest lossless rate, 11
// characters with a table per character under 5 %).
const (
	tagAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	tagLen      = 11
)

// appendTag appends v as 11 base64url characters: the 8 bytes big-endian,
// 6 bits a character, the last one's low 2 bits 0.
func appendTag(dst []byte, v uint64) []byte {
	for shift := 58; shift >= 4; shift -= 6 {
		dst = append(dst, tagAlphabet[(v>>uint(shift))&0x3f])
	}
	return append(dst, tagAlphabet[(v&0xf)<<2])
}

// tagValue maps a byte to its value as a base64url character, and every
// other byte to 0x40, which marks it invalid.
var tagValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0x40
	}
	for i, c := range tagAlphabet {
		t[c] = byte(i)
	}
	return t
}()

// parseTag reads the 11 characters of a tag at i, in their canonical form
// only (the last character's unused bits 0), so that a tag has one
// spelling and the scanner and the JSON fallback can never read one
// message two ways. A table and no branch per character.
func parseTag(p string, i int) (uint64, bool) {
	if len(p)-i < tagLen {
		return 0, false
	}
	var v uint64
	var bad byte
	for _, c := range []byte(p[i : i+tagLen-1]) {
		d := tagValue[c]
		bad |= d
		v = v<<6 | uint64(d&0x3f)
	}
	last := tagValue[p[i+tagLen-1]]
	if (bad|last)&0x40 != 0 || last&3 != 0 {
		return 0, false
	}
	return v<<4 | uint64(last>>2), true
}

// validName reports whether s can be written into an envelope verbatim: a
// non-empty string without quotes, backslashes, control characters or
// spaces. Instance IDs and event types are checked with it once, up front,
// so that the publish path never needs to escape anything.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
