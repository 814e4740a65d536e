package bridge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// readerOf returns a subConn reading the given bytes through a 48-byte
// buffer, so that short test input exercises the large-payload path.
func readerOf(s string) *subConn {
	st := &stampedReader{r: strings.NewReader(s)}
	return &subConn{stamp: st, rd: bufio.NewReaderSize(st, 48)}
}

// The reader understands every reply a subscriber connection can see and
// skips what the bridge does not use, whatever its shape.
func TestReadReplies(t *testing.T) {
	known := map[string]string{"ws:ticker": "ws:ticker"}
	in := "+OK\r\n" +
		"-NOAUTH Authentication required.\r\n" +
		"*3\r\n$9\r\nsubscribe\r\n$9\r\nws:ticker\r\n:1\r\n" +
		"*3\r\n$7\r\nmessage\r\n$9\r\nws:ticker\r\n$5\r\nhello\r\n" +
		"*2\r\n$4\r\npong\r\n$0\r\n\r\n" +
		"*4\r\n$8\r\npmessage\r\n$4\r\nws:*\r\n$8\r\nws:trade\r\n$2\r\nhi\r\n" +
		"*3\r\n$7\r\nmessage\r\n$8\r\nws:other\r\n$60\r\n012345678901234567890123456789012345678901234567890123456789\r\n" +
		"*3\r\n$5\r\nweird\r\n*2\r\n:1\r\n$-1\r\n*-1\r\n" +
		"$-1\r\n" +
		"*3\r\n$11\r\nunsubscribe\r\n$9\r\nws:ticker\r\n:0\r\n"
	want := []struct {
		kind    pushKind
		channel string
		payload string
	}{
		{pushOther, "", ""},
		{pushError, "", "NOAUTH Authentication required."},
		{pushSubscribe, "ws:ticker", ""},
		{pushMessage, "ws:ticker", "hello"},
		{pushPong, "", ""},
		{pushOther, "", ""}, // pmessage: the bridge never pattern-subscribes
		{pushMessage, "ws:other", "012345678901234567890123456789012345678901234567890123456789"}, // > buffer
		{pushOther, "", ""}, // unknown push with a nested array
		{pushOther, "", ""}, // null bulk string
		{pushUnsubscribe, "ws:ticker", ""},
	}
	sc := readerOf(in)
	for i, w := range want {
		p, err := sc.readKnown(known)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if p.kind != w.kind || p.channel != w.channel || string(p.payload) != w.payload {
			t.Fatalf("reply %d: %d %q %q, want %d %q %q", i, p.kind, p.channel, p.payload, w.kind, w.channel, w.payload)
		}
	}
	if _, err := sc.readKnown(known); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last reply: %v, want EOF", err)
	}
}

// Anything that is not RESP breaks the connection instead of being
// misread.
func TestReadRejectsGarbage(t *testing.T) {
	for _, in := range []string{
		"hello\r\n",                               // no type byte
		"*3\r\n$7\r\nmessage\r\n$2\r\nabc\r\n",    // bulk longer than said
		"*3\r\n$7\r\nmessage\r\n$x\r\n",           // bad length
		"*3\r\n$7\r\nmessage\r\n$99999999999\r\n", // absurd length
		"*3\r\n$7\r\nmessage\r\n$9999999999\r\n",  // over Redis's own limit
		"*3\n$7\r\nmessage\r\n",                   // LF without CR
		"*3\r\n$7\r\nmessageXY",                   // bulk without its CRLF
		"*3\r\n$7\r\nmessage\r\n:5\r\n",           // channel not a bulk string
		"*0\r\n",                                  // empty push
		"*2\r\n$4\r\npong\r\n!\r\n",               // unknown type inside a skip
		"+" + strings.Repeat("x", 64) + "\r\n",    // a line longer than the buffer
	} {
		if _, err := readerOf(in).readKnown(nil); !errors.Is(err, errProtocol) {
			t.Errorf("%q: %v, want a protocol error", in, err)
		}
	}
}

// Messages whole in the buffer are read in place, and give what the
// general reader gives; anything else (another push, a message cut by the
// buffer's end) is left where it is for the general reader.
func TestBufferedMessages(t *testing.T) {
	known := map[string]string{"ws:ticker": "ws:ticker", "ws:trade": "ws:trade"}
	in := "*3\r\n$7\r\nmessage\r\n$9\r\nws:ticker\r\n$5\r\nhello\r\n" +
		"*3\r\n$7\r\nmessage\r\n$9\r\nws:ticker\r\n$3\r\nabc\r\n" +
		"*3\r\n$8\r\nsmessage\r\n$8\r\nws:trade\r\n$0\r\n\r\n" +
		"*3\r\n$7\r\nmessage\r\n$8\r\nws:other\r\n$2\r\nhi\r\n" +
		"*3\r\n$9\r\nsubscribe\r\n$8\r\nws:trade\r\n:2\r\n" +
		"*3\r\n$7\r\nmessage\r\n$8\r\nws:trade\r\n$40\r\n0123456789012345678901234567890123456789\r\n"
	want := "1 ws:ticker hello|1 ws:ticker abc|1 ws:trade |1 ws:other hi|2 ws:trade |1 ws:trade 0123456789012345678901234567890123456789"
	// Through readKnown, with buffers that cut the messages anywhere and
	// one that holds them all: the same replies.
	for _, size := range []int{16, 40, 64, 4096} {
		st := &stampedReader{r: strings.NewReader(in)}
		sc := &subConn{stamp: st, rd: bufio.NewReaderSize(st, size)}
		var got []string
		for {
			p, err := sc.readKnown(known)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			got = append(got, fmt.Sprintf("%d %s %s", p.kind, p.channel, p.payload))
		}
		if strings.Join(got, "|") != want {
			t.Errorf("size %d: %q", size, got)
		}
	}
	// Directly: the four messages in place, then nothing consumed at the
	// subscribe reply.
	st := &stampedReader{r: strings.NewReader(in)}
	sc := &subConn{stamp: st, rd: bufio.NewReaderSize(st, 4096)}
	if _, err := sc.rd.Peek(1); err != nil { // fill the buffer
		t.Fatal(err)
	}
	for k, w := range []string{"ws:ticker hello", "ws:ticker abc", "ws:trade ", "ws:other hi"} {
		p, ok := sc.bufferedMessage(known)
		if !ok || p.kind != pushMessage || p.channel+" "+string(p.payload) != w {
			t.Fatalf("message %d: %+v, %v; want %q", k, p, ok, w)
		}
	}
	left := sc.rd.Buffered()
	if _, ok := sc.bufferedMessage(known); ok || sc.rd.Buffered() != left {
		t.Errorf("the subscribe reply was taken for a message, or bytes consumed (%d -> %d)", left, sc.rd.Buffered())
	}
	for _, bad := range []string{"*3\r\n$7\r\nmessage\r\n$x\r\n", "*3\r\n$7\r\nmessage\r\n$3\r\nabcd\r\n$1\r\nx\r\n",
		"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$3\r\nxyzw\r\n"} {
		st := &stampedReader{r: strings.NewReader(bad)}
		sc := &subConn{stamp: st, rd: bufio.NewReaderSize(st, 4096)}
		if p, err := sc.readKnown(known); err == nil {
			t.Errorf("%q read as %+v", bad, p)
		}
	}
}
