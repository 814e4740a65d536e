package bridge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The subscriber connection speaks RESP2 itself instead of through
// go-redis's PubSub. go-redis parses every reply into a []interface{} of
// fresh strings and a *Message: 9 allocations (456 B) per message, on the
// path every delivered message takes once per receiving instance. This
// reader resolves the channel against the known channels without
// allocating and reads the payload in place from its buffer; the one
// allocation left per message is the payload string the Event hands out,
// which a Handler may keep.
//
// The publisher stays on go-redis for an application; a load run on one
// server publishes through a Pipe (pipe.go), which speaks RESP the same way
// on a connection of its own.

// defaultBufferSize is the subscriber's read buffer (and the publisher's
// pipeline write buffer) unless LoadTestOptions.BufferSize says otherwise:
// payloads up to this size are read in place, larger ones through a
// scratch buffer. go-redis's default is the same.
const defaultBufferSize = 32 << 10

// maxBulk is Redis's own limit on a bulk string (proto-max-bulk-len): a
// longer length is a corrupt stream, not a reason to allocate gigabytes.
const maxBulk = 512 << 20

// errProtocol reports a reply this reader does not understand; the
// connection is dropped and dialled again, as for any broken connection.
var errProtocol = errors.New("bridge: RESP protocol error on the subscriber connection")

// subConn is one subscriber connection. Commands are written under the
// bridge's wmu; only the receive loop (or Connect, before the loop starts)
// reads.
type subConn struct {
	conn    net.Conn
	stamp   *stampedReader // what rd reads from: conn, timed
	rd      *bufio.Reader
	scratch []byte // bulk strings larger than rd's buffer
	// lastChannel is the known channel of the last message read.
	lastChannel string
	cmd         []byte // the command being written, reused
}

// newSubConn reads conn through a stampedReader, with a buffer of size.
func newSubConn(conn net.Conn, size int) *subConn {
	st := &stampedReader{r: conn}
	return &subConn{conn: conn, stamp: st, rd: bufio.NewReaderSize(st, size)}
}

// stampedReader notes when each read from the socket returned. Every
// message a read completes arrived with it, so that instant is each one's
// receipt: one clock read per socket read instead of one per message,
// which under load was 9 % of the client's CPU (time.Now for each of ~80
// messages a read brings).
type stampedReader struct {
	r  io.Reader
	at int64 // Unix ns of the last read's return
}

func (s *stampedReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.at = time.Now().UnixNano()
	return n, err
}

// pushKind says what a pub/sub reply was.
type pushKind int

const (
	pushOther pushKind = iota // anything the bridge ignores (PONG, OK, ...)
	pushMessage
	pushSubscribe
	pushUnsubscribe
	pushError // a top-level error reply; text in push.payload
	pushPong  // the reply to a PING sent while subscribed
)

// push is one reply read from the subscriber connection. payload aliases
// the read buffer: it is valid until the next read.
type push struct {
	kind    pushKind
	channel string
	payload []byte
}

// dialSubscriber connects to addr ("": the bridge's server, see dialTo),
// authenticates, selects the database, names the connection and checks it
// with a PING, all bounded by ctx. Server errors come back with their text
// (WRONGPASS, NOAUTH, ...) for classify.
func (b *Bridge) dialSubscriber(ctx context.Context, addr string) (*subConn, error) {
	return b.dialRESP(ctx, addr, RoleSubscriber, b.opts.LoadTest.SubscriberReadBuffer)
}

// dialRESP is dialSubscriber for a connection of the given role (a
// Pipe's is the publisher's), with a socket receive buffer of readBuffer
// bytes when positive.
func (b *Bridge) dialRESP(ctx context.Context, addr string, role Role, readBuffer int) (*subConn, error) {
	ro := b.redisOpt
	network := ro.Network
	if network == "" {
		network = "tcp"
	}
	conn, err := b.dialTo(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if readBuffer > 0 {
		raw := conn
		if tc, ok := conn.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		if tcp, ok := raw.(*net.TCPConn); ok {
			_ = tcp.SetReadBuffer(readBuffer) // best effort: a smaller buffer only speeds up the fault
		}
	}
	sc := newSubConn(conn, b.bufferSize())
	// The handshake obeys ctx: a deadline becomes the socket's, and a
	// cancellation interrupts a read in progress.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err = sc.handshake(ro, ClientName(b.opts.InstanceID, role))
	if !stop() || ctx.Err() != nil {
		err = errors.Join(ctx.Err(), err)
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return sc, nil
}

// handshake sends AUTH, SELECT, CLIENT SETNAME and PING in one write and
// reads their replies in order; the first error reply is returned as an
// error carrying the server's text.
func (sc *subConn) handshake(ro *redis.Options, name string) error {
	n := 0
	if ro.Password != "" {
		if ro.Username != "" {
			sc.appendCommand("AUTH", ro.Username, ro.Password)
		} else {
			sc.appendCommand("AUTH", ro.Password)
		}
		n++
	}
	if ro.DB != 0 {
		sc.appendCommand("SELECT", strconv.Itoa(ro.DB))
		n++
	}
	// Named so that CLIENT LIST on the server maps connections to
	// instances (the harness reads subscribers' buffers that way).
	sc.appendCommand("CLIENT", "SETNAME", name)
	sc.appendCommand("PING")
	n += 2
	if err := sc.flush(); err != nil {
		return err
	}
	var first error
	for range n {
		p, err := sc.read()
		if err != nil {
			return err
		}
		if p.kind == pushError && first == nil {
			first = errors.New(string(p.payload))
		}
	}
	return first
}

// appendCommand adds one command in RESP to the pending write.
func (sc *subConn) appendCommand(args ...string) {
	sc.cmd = append(sc.cmd, '*')
	sc.cmd = strconv.AppendInt(sc.cmd, int64(len(args)), 10)
	sc.cmd = append(sc.cmd, '\r', '\n')
	for _, a := range args {
		sc.cmd = append(sc.cmd, '$')
		sc.cmd = strconv.AppendInt(sc.cmd, int64(len(a)), 10)
		sc.cmd = append(sc.cmd, '\r', '\n')
		sc.cmd = append(sc.cmd, a...)
		sc.cmd = append(sc.cmd, '\r', '\n')
	}
}

// flush writes the pending commands.
func (sc *subConn) flush() error {
	_, err := sc.conn.Write(sc.cmd)
	sc.cmd = sc.cmd[:0]
	return err
}

// send writes one command with the given channels, e.g. SUBSCRIBE a b c.
func (sc *subConn) send(command string, channels []string) error {
	sc.appendCommand(append([]string{command}, channels...)...)
	return sc.flush()
}

// read reads one reply. known resolves channel names without allocating
// for the channels the bridge knows; others are copied.
func (sc *subConn) read() (push, error) {
	return sc.readKnown(nil)
}

// readKnown is read with a table of known channels.
func (sc *subConn) readKnown(known map[string]string) (push, error) {
	if p, ok := sc.bufferedMessage(known); ok {
		return p, nil
	}
	line, err := sc.line()
	if err != nil {
		return push{}, err
	}
	switch line[0] {
	case '+', ':':
		if string(line) == "+PONG" { // PING without any subscription
			return push{kind: pushPong}, nil
		}
		return push{kind: pushOther}, nil
	case '-':
		return push{kind: pushError, payload: line[1:]}, nil
	case '$':
		n, err := parseLen(line[1:])
		if err != nil {
			return push{}, err
		}
		_, err = sc.bulkBody(n)
		return push{kind: pushOther}, err
	case '*':
	default:
		return push{}, errProtocol
	}
	n, err := parseLen(line[1:])
	if err != nil || n < 1 {
		return push{}, errProtocolIf(err)
	}
	kind, err := sc.bulk()
	if err != nil {
		return push{}, err
	}
	// Each slice is used before the next read, which may move the buffer.
	var p push
	switch {
	case (string(kind) == "message" || string(kind) == "smessage") && n == 3:
		p.kind = pushMessage
	case (string(kind) == "subscribe" || string(kind) == "ssubscribe") && n == 3:
		p.kind = pushSubscribe
	case (string(kind) == "unsubscribe" || string(kind) == "sunsubscribe") && n == 3:
		p.kind = pushUnsubscribe
	case string(kind) == "pong" && n == 2:
		return push{kind: pushPong}, sc.skip(1)
	default:
		return push{kind: pushOther}, sc.skip(n - 1) // pong, pmessage, ...
	}
	ch, err := sc.bulk()
	if err != nil {
		return push{}, err
	}
	if c, ok := known[string(ch)]; ok { // no allocation: a map index
		p.channel = c
	} else {
		p.channel = string(ch)
	}
	if p.kind != pushMessage {
		return p, sc.skip(1) // the subscription count
	}
	p.payload, err = sc.bulk()
	return p, err
}

// The headers of a message push, up to its channel's length.
const (
	messageHead  = "*3\r\n$7\r\nmessage\r\n$"
	smessageHead = "*3\r\n$8\r\nsmessage\r\n$"
)

// bufferedMessage reads a message push that is whole in the read buffer
// without reading the socket: a check of its fixed header and two lengths,
// then the channel and payload in place. Under load nearly every push is
// one, and this took the reader's line-by-line bufio calls (30 % of a
// loaded client's CPU) out of its path. Anything else, or a message cut
// by the buffer's end, is left to the general reader (ok false, nothing
// consumed).
func (sc *subConn) bufferedMessage(known map[string]string) (push, bool) {
	buf, _ := sc.rd.Peek(sc.rd.Buffered()) // what is there: never reads
	var i int
	switch {
	case len(buf) > len(messageHead) && string(buf[:len(messageHead)]) == messageHead:
		i = len(messageHead)
	case len(buf) > len(smessageHead) && string(buf[:len(smessageHead)]) == smessageHead:
		i = len(smessageHead)
	default:
		return push{}, false
	}
	chLen, i, ok := lenAt(buf, i)
	if !ok || len(buf) < i+chLen+3 || buf[i+chLen] != '\r' || buf[i+chLen+1] != '\n' || buf[i+chLen+2] != '$' {
		return push{}, false
	}
	ch := buf[i : i+chLen]
	n, j, ok := lenAt(buf, i+chLen+3)
	if !ok || len(buf) < j+n+2 || buf[j+n] != '\r' || buf[j+n+1] != '\n' {
		return push{}, false
	}
	p := push{kind: pushMessage, payload: buf[j : j+n]}
	if string(ch) == sc.lastChannel && sc.lastChannel != "" {
		p.channel = sc.lastChannel // the previous message's channel: no hashing
	} else if c, ok := known[string(ch)]; ok { // no allocation: a map index
		p.channel, sc.lastChannel = c, c
	} else {
		p.channel = string(ch)
	}
	_, _ = sc.rd.Discard(j + n + 2) // cannot fail: they are buffered
	return p, true
}

// lenAt reads a RESP length and its CRLF at buf[i:]: at most 10 digits, no
// sign. It returns the length and the index after the CRLF.
func lenAt(buf []byte, i int) (int, int, bool) {
	n, j := 0, i
	for ; j < len(buf) && j-i <= 10 && buf[j] >= '0' && buf[j] <= '9'; j++ {
		n = n*10 + int(buf[j]-'0')
	}
	if j == i || j-i > 10 || j+1 >= len(buf) || buf[j] != '\r' || buf[j+1] != '\n' {
		return 0, i, false
	}
	return n, j + 2, true
}

// line reads one header line and returns it without its CRLF. It aliases
// the read buffer.
func (sc *subConn) line() ([]byte, error) {
	l, err := sc.rd.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errProtocol
		}
		return nil, err
	}
	if len(l) < 3 || l[len(l)-2] != '\r' {
		return nil, errProtocol
	}
	return l[:len(l)-2], nil
}

// bulk reads one bulk string ($n) and returns its bytes, aliasing the read
// buffer or the scratch buffer; a null bulk string is nil.
func (sc *subConn) bulk() ([]byte, error) {
	l, err := sc.line()
	if err != nil {
		return nil, err
	}
	if l[0] != '$' {
		return nil, errProtocol
	}
	n, err := parseLen(l[1:])
	if err != nil {
		return nil, err
	}
	return sc.bulkBody(n)
}

// bulkBody reads the n bytes and CRLF that follow a bulk string header.
func (sc *subConn) bulkBody(n int) ([]byte, error) {
	if n < 0 {
		return nil, nil
	}
	if n > maxBulk {
		return nil, errProtocol
	}
	var b []byte
	if n+2 <= sc.rd.Size() {
		var err error
		if b, err = sc.rd.Peek(n + 2); err != nil {
			return nil, err
		}
		_, _ = sc.rd.Discard(n + 2) // cannot fail: Peek returned them
	} else {
		if cap(sc.scratch) < n+2 {
			sc.scratch = make([]byte, n+2)
		}
		b = sc.scratch[:n+2]
		if _, err := io.ReadFull(sc.rd, b); err != nil {
			return nil, err
		}
	}
	if b[n] != '\r' || b[n+1] != '\n' {
		return nil, errProtocol
	}
	return b[:n], nil
}

// skip reads and discards n replies of any type, nested arrays included.
func (sc *subConn) skip(n int) error {
	for ; n > 0; n-- {
		l, err := sc.line()
		if err != nil {
			return err
		}
		switch l[0] {
		case '+', '-', ':':
		case '$':
			size, err := parseLen(l[1:])
			if err != nil {
				return err
			}
			if _, err := sc.bulkBody(size); err != nil {
				return err
			}
		case '*':
			size, err := parseLen(l[1:])
			if err != nil {
				return err
			}
			if err := sc.skip(size); err != nil {
				return err
			}
		default:
			return errProtocol
		}
	}
	return nil
}

// parseLen parses a RESP length: a decimal number, or -1 for null.
func parseLen(b []byte) (int, error) {
	if len(b) == 2 && b[0] == '-' && b[1] == '1' {
		return -1, nil
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, errProtocol
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errProtocol
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// errProtocolIf returns err, or errProtocol when err is nil (a reply that
// parsed but cannot be a pub/sub reply).
func errProtocolIf(err error) error {
	if err == nil {
		return errProtocol
	}
	return err
}
