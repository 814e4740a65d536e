package bridge_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/redistest"
)

// connect tries one bridge with o and returns Connect's error and how long
// it took.
func connect(t *testing.T, o bridge.Options) (time.Duration, error) {
	t.Helper()
	b, err := bridge.New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err = b.Connect(c)
	return time.Since(start), err
}

// expectConnect checks Connect's error: nil when want is nil, else one
// that wraps want and says text.
func expectConnect(t *testing.T, name string, err, want error, text string) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: %v", name, err)
	case want != nil && (!errors.Is(err, want) || !strings.Contains(err.Error(), text)):
		t.Errorf("%s: %v, want %v with %q", name, err, want, text)
	}
}

func caPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in CA file")
	}
	return p
}

func TestAuthentication(t *testing.T) {
	srv := redistest.StartOwn(t, "--requirepass", "s3cret-pw")
	rc := srv.Client(t)
	if err := rc.Do(context.Background(), "AUTH", "s3cret-pw").Err(); err != nil {
		t.Fatal(err)
	}
	// An ACL user with its own password, allowed pub/sub and PING.
	if err := rc.Do(context.Background(), "ACL", "SETUSER", "loader", "on", ">loader-pw", "+@all", "&*", "~*").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    bridge.Options
		want error // nil: connects
		text string
	}{
		{"password in URL", bridge.Options{URL: "redis://:s3cret-pw@" + srv.Addr}, nil, ""},
		{"password option", bridge.Options{Addr: srv.Addr, Password: "s3cret-pw"}, nil, ""},
		{"ACL user", bridge.Options{Addr: srv.Addr, Username: "loader", Password: "loader-pw"}, nil, ""},
		{"wrong password", bridge.Options{Addr: srv.Addr, Password: "nope"}, bridge.ErrAuthFailed, "wrong username or password (WRONGPASS"},
		{"wrong user", bridge.Options{Addr: srv.Addr, Username: "ghost", Password: "s3cret-pw"}, bridge.ErrAuthFailed, "wrong username or password"},
		{"no password", bridge.Options{Addr: srv.Addr}, bridge.ErrPasswordRequired, "requires a password and none was given (NOAUTH)"},
	} {
		took, err := connect(t, tc.o)
		expectConnect(t, tc.name, err, tc.want, tc.text)
		if err != nil && (strings.Contains(err.Error(), "s3cret-pw") || strings.Contains(err.Error(), "nope")) {
			t.Errorf("%s: password in error %q", tc.name, err)
		}
		if took > 2*time.Second {
			t.Errorf("%s: took %v", tc.name, took)
		}
	}
	if !errors.Is(bridge.ErrPasswordRequired, bridge.ErrAuthFailed) {
		t.Error("ErrPasswordRequired must wrap ErrAuthFailed")
	}
}

func TestTLS(t *testing.T) {
	srv := redistest.StartTLS(t, false)
	ca := caPool(t, srv.Files.CA)
	for _, tc := range []struct {
		name string
		o    bridge.Options
		want error
		text string
	}{
		{"verified by CA", bridge.Options{URL: "rediss://" + srv.TLSAddr, TLSConfig: &tls.Config{RootCAs: ca}}, nil, ""},
		{"insecure", bridge.Options{URL: "rediss://" + srv.TLSAddr, TLSConfig: &tls.Config{InsecureSkipVerify: true}}, nil, ""},
		{"TLSConfig with a redis:// URL", bridge.Options{Addr: srv.TLSAddr, TLSConfig: &tls.Config{RootCAs: ca}}, nil, ""},
		{"unknown CA", bridge.Options{URL: "rediss://" + srv.TLSAddr}, bridge.ErrTLSUntrusted, "certificate signed by unknown authority"},
		{"TLS to the plain port", bridge.Options{URL: "rediss://" + srv.Addr, TLSConfig: &tls.Config{RootCAs: ca}}, bridge.ErrTLSMismatch, "use redis://, not rediss://"},
		{"plain to the TLS port", bridge.Options{URL: "redis://" + srv.TLSAddr}, bridge.ErrTLSMismatch, "use a rediss:// URL"},
	} {
		took, err := connect(t, tc.o)
		expectConnect(t, tc.name, err, tc.want, tc.text)
		if took > 4*time.Second {
			t.Errorf("%s: took %v", tc.name, took)
		}
		if err != nil && strings.Count(err.Error(), "\n") > 0 {
			t.Errorf("%s: error spans lines: %q", tc.name, err)
		}
	}
}

// A server that requires client certificates accepts the bridge's.
func TestTLSClientCertificate(t *testing.T) {
	srv := redistest.StartTLS(t, true)
	cert, err := tls.LoadX509KeyPair(srv.Files.ClientCert, srv.Files.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	ca := caPool(t, srv.Files.CA)
	if _, err := connect(t, bridge.Options{URL: "rediss://" + srv.TLSAddr,
		TLSConfig: &tls.Config{RootCAs: ca, Certificates: []tls.Certificate{cert}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, bridge.Options{URL: "rediss://" + srv.TLSAddr, TLSConfig: &tls.Config{RootCAs: ca}}); err == nil {
		t.Fatal("connected without the client certificate the server requires")
	}
}
