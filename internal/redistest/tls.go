package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TLSFiles are PEM files for a TLS test: a CA, a server certificate for
// 127.0.0.1 signed by it, and a client certificate signed by it.
type TLSFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// TLSServer is a redis-server with a plain port (Addr, URL) and a TLS port.
type TLSServer struct {
	*Server
	// TLSAddr is host:port of the TLS listener.
	TLSAddr string
	Files   TLSFiles
}

// StartTLS starts a redis-server of the test's own that listens on a plain
// port and on a TLS port, with certificates made for the test; clients
// need no certificate unless requireClientCert is set.
func StartTLS(t testing.TB, requireClientCert bool) *TLSServer {
	t.Helper()
	files := MakeTLSFiles(t)
	port := FreePort(t)
	auth := "no"
	if requireClientCert {
		auth = "yes"
	}
	srv := StartOwn(t, "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", files.ServerCert, "--tls-key-file", files.ServerKey,
		"--tls-ca-cert-file", files.CA, "--tls-auth-clients", auth)
	return &TLSServer{Server: srv, TLSAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Files: files}
}

// MakeTLSFiles writes a fresh CA and certificates into a temporary folder.
func MakeTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	// A private CA per test: nothing outside the test trusts it, and the
	// "unknown authority" case is just a client without it.
	caKey, caCert, caDER := newCert(t, "redisload test CA", nil, nil, true)
	f := TLSFiles{
		CA:         writePEM(t, dir, "ca.crt", "CERTIFICATE", caDER),
		ServerCert: filepath.Join(dir, "server.crt"),
		ServerKey:  filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.crt"),
		ClientKey:  filepath.Join(dir, "client.key"),
	}
	for _, c := range []struct{ name, cert, key string }{
		{"127.0.0.1", f.ServerCert, f.ServerKey},
		{"redisload client", f.ClientCert, f.ClientKey},
	} {
		key, _, der := newCert(t, c.name, caCert, caKey, false)
		writePEM(t, "", c.cert, "CERTIFICATE", der)
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, "", c.key, "EC PRIVATE KEY", kb)
	}
	return f
}

// newCert makes a P-256 certificate valid for an hour, for 127.0.0.1 and
// localhost, signed by parent (self-signed when parent is nil).
func newCert(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	// P-256: fast to generate (tests make several per run) and accepted by
	// every TLS stack Redis is built with.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

// writePEM writes one PEM block, readable only by the owner as a key
// file must be for redis-server to accept it.
func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
