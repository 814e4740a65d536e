package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Connection failures that have a cause a user can act on. Connect's
// errors wrap one of them where it applies (test with errors.Is).
var (
	// ErrAuthFailed: the server refused the credentials.
	ErrAuthFailed = errors.New("bridge: authentication failed")
	// ErrPasswordRequired: the server wants a password and none was given.
	// It wraps ErrAuthFailed.
	ErrPasswordRequired = fmt.Errorf("%w: the server requires a password and none was given (NOAUTH)", ErrAuthFailed)
	// ErrTLSUntrusted: the server's certificate does not verify.
	ErrTLSUntrusted = errors.New("bridge: TLS: the server's certificate is not trusted")
	// ErrTLSMismatch: one side speaks TLS and the other does not.
	ErrTLSMismatch = errors.New("bridge: TLS mismatch")
	// ErrMaxClients: the server has as many clients as its maxclients
	// setting allows and refused this connection.
	ErrMaxClients = errors.New("bridge: the server refused the connection: max number of clients reached (raise its maxclients, or run fewer instances)")
)

// tlsHandshakeTimeout bounds a TLS handshake. A plain-TCP Redis answers a
// TLS hello with silence (it waits for the rest of a "command"), so without
// a bound of its own the mistake would show as a timeout of the whole
// connect, with no hint of the cause.
const tlsHandshakeTimeout = 3 * time.Second

// tlsDialer dials TCP and completes the TLS handshake within
// min(dialTimeout, tlsHandshakeTimeout), naming the likely cause when the
// server stays silent.
func tlsDialer(cfg *tls.Config, dialTimeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := netDialer(dialTimeout)
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		hctx, cancel := context.WithTimeout(ctx, min(dialTimeout, tlsHandshakeTimeout))
		defer cancel()
		conn := tls.Client(raw, cfg)
		if err := conn.HandshakeContext(hctx); err != nil {
			_ = raw.Close()
			if hctx.Err() != nil && ctx.Err() == nil {
				return nil, fmt.Errorf("%w: no answer to the TLS handshake within %v: the port looks like plain TCP (use redis://, not rediss://)",
					ErrTLSMismatch, min(dialTimeout, tlsHandshakeTimeout))
			}
			return nil, err
		}
		return conn, nil
	}
}

// netDialer returns the TCP dialer of the bridge's own connections, with
// keep-alive as go-redis's dialer sets it: a peer that vanishes without a
// FIN (a partition) is noticed within a minute even on an idle connection.
func netDialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}}
}

// classify turns a connection error into one that says what to fix, keeping
// the original text. Errors it does not recognise pass unchanged.
func classify(err error, usingTLS bool) error {
	msg := err.Error()
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, ErrTLSMismatch), errors.Is(err, ErrMaxClients):
		return err
	case strings.Contains(msg, "max number of clients reached"):
		return fmt.Errorf("%w (%s)", ErrMaxClients, firstSentence(msg))
	case strings.HasPrefix(msg, "WRONGPASS"):
		return fmt.Errorf("%w: wrong username or password (%s)", ErrAuthFailed, firstSentence(msg))
	case strings.HasPrefix(msg, "NOAUTH"):
		return ErrPasswordRequired
	case errors.As(err, &certErr):
		return fmt.Errorf("%w (%v)", ErrTLSUntrusted, certErr.Err)
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Errorf("%w: the server answered in plain text (use redis://, not rediss://)", ErrTLSMismatch)
	case !usingTLS && closedAtOnce(err):
		return fmt.Errorf("%w: the server closed the connection at the first command (%v): if the port expects TLS, use a rediss:// URL "+
			"(a server at its maxclients closes new connections so too, when its refusal is lost with the reset)",
			ErrTLSMismatch, err)
	}
	return err
}

// closedAtOnce reports whether err says the server closed the connection.
func closedAtOnce(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(err.Error(), "connection reset by peer")
}

// refusal connects to addr and reads, without writing, what the server
// says on its own within a moment: Redis greets a client it refuses with
// an error line. It returns that line, or "".
func refusal(addr string, dialTimeout time.Duration) string {
	c, err := net.DialTimeout("tcp", addr, min(dialTimeout, time.Second))
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 256)
	n, _ := io.ReadAtLeast(c, buf, 1)
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	if !strings.HasPrefix(line, "-") {
		return ""
	}
	return strings.TrimPrefix(line, "-")
}

// firstSentence trims a server error to its first sentence.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// ErrorReason is a short, stable text saying why a command failed, fit
// to count failures by: the server's own error reply when it refused the
// command (NOPERM, READONLY, OOM, ... in its words), else the class of
// the connection's failure ("timeout (outcome unknown)", "connection
// refused", "connection closed by the server"), never an address or a
// port, so that a thousand failures of one cause make one reason.
func ErrorReason(err error) string {
	var re redis.Error
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &re):
		return firstLine(re.Error())
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout (outcome unknown)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, ErrClosedByServer):
		return "connection closed by the server"
	case errors.Is(err, ErrNotConnected), errors.Is(err, ErrClosed), errors.Is(err, redis.ErrClosed):
		return "not connected"
	}
	// The innermost error: the wrappers add the operation, which every
	// failure of the kind shares.
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	return firstLine(err.Error())
}

// firstLine is s up to its first line break, at most 160 bytes.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:160]
	}
	return s
}
