package bridge

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/dchest/siphash"
)

// Anyone who can publish on a channel can write a message that claims to
// come from any instance: the source, sequence number and send time are
// plain text. A load test that counts such a message as a delivery, a
// duplicate or a latency sample can be made to print PASS for a run that
// lost messages. An authentication tag closes that: a keyed hash of the
// fields the accounting trusts, with a key that never travels on a data
// channel, so that a message without a valid tag is known to be foreign.
//
// SipHash-2-4 is a PRF built for short inputs and keyed with 128 bits;
// dchest/siphash hashes a 40-byte input in about 20 ns on amd64 without
// allocating, which keeps the tag affordable on the receive path.

// TagKey is the secret key of message authentication tags. The zero key
// means "no tags": a bridge with it writes none.
type TagKey struct {
	K0, K1 uint64
}

// NewTagKey returns a random key from the system's secure generator.
func NewTagKey() (TagKey, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return TagKey{}, fmt.Errorf("bridge: tag key: %w", err)
	}
	k := TagKey{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
	if k.IsZero() {
		k.K0 = 1 // 2^-128; the zero key would switch tags off
	}
	return k, nil
}

// IsZero reports whether k is the zero key (no tags).
func (k TagKey) IsZero() bool { return k.K0 == 0 && k.K1 == 0 }

// maxTagSource is the longest source hashed from a stack buffer; longer IDs
// (never the harness's) cost an allocation.
const maxTagSource = 80

// For returns the key of source's tags: a key derived from k and the
// source, so that each message's tag hashes only its sequence number and
// send time and publish time, 24 bytes. Hashing the source with every message cost a
// receiver 9 % of its throughput at the highest lossless rate; derived
// once per source, 16 bytes cost under 5 % (24 bytes, since the publish
// time, are one SipHash block more).
func (k TagKey) For(source string) SourceKey {
	var arr [maxTagSource + 1]byte
	buf := arr[:0]
	if len(source) > maxTagSource {
		buf = make([]byte, 0, len(source)+1)
	}
	buf = append(append(buf, 0), source...)
	k0 := siphash.Hash(k.K0, k.K1, buf)
	buf[0] = 1
	return SourceKey{k0, siphash.Hash(k.K0, k.K1, buf)}
}

// SourceKey tags the messages of one source; see TagKey.For.
type SourceKey struct{ k0, k1 uint64 }

// Tag returns the authentication tag of message seq sent at sentNs and
// handed to its connection at pubNs (0: not stamped). It is never 0, so
// that 0 can mean "no tag" on the wire. pubNs is hashed too: a report's
// transit is a figure a forged stamp could otherwise skew.
func (sk SourceKey) Tag(seq uint64, sentNs, pubNs int64) uint64 {
	var buf [24]byte
	binary.LittleEndian.PutUint64(buf[:8], seq)
	binary.LittleEndian.PutUint64(buf[8:16], uint64(sentNs))
	in := buf[:16] // unstamped (a closed loop's): one SipHash block less
	if pubNs != 0 {
		binary.LittleEndian.PutUint64(buf[16:], uint64(pubNs))
		in = buf[:]
	}
	if t := siphash.Hash(sk.k0, sk.k1, in); t != 0 {
		return t
	}
	return 1
}

// Verify reports whether ev carries the tag sk gives its sequence number
// and send time; the caller has matched sk to ev's source.
func (sk SourceKey) Verify(ev *Event) bool {
	return ev.Tag != 0 && ev.Tag == sk.Tag(ev.Seq, ev.SentNs, ev.PubNs)
}

// Tag returns the authentication tag of a message of source: k.For(source)
// .Tag(seq, sentNs, pubNs).
func (k TagKey) Tag(source string, seq uint64, sentNs, pubNs int64) uint64 {
	return k.For(source).Tag(seq, sentNs, pubNs)
}

// Verify reports whether ev carries the tag k gives its fields.
func (k TagKey) Verify(ev *Event) bool {
	return k.For(ev.Source).Verify(ev)
}
