package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/internal/redistest"
)

const secret = "Hunter2-s3cret"

// A run with the password given every way leaves it in no output: not the
// table, not the JSON, not the verbose event log, not stderr.
func TestPasswordNeverPrinted(t *testing.T) {
	srv := redistest.StartOwn(t, "--requirepass", secret)
	t.Setenv("REDISLOAD_PW", secret)
	for _, args := range [][]string{
		{"--redis-url=redis://:" + secret + "@" + srv.Addr, "--verbose", "--matrix"},
		{"--redis-url=redis://:" + secret + "@" + srv.Addr, "--format=json"},
		{"--redis-url=redis://" + srv.Addr, "--redis-password-env=REDISLOAD_PW", "--verbose"},
	} {
		args = append(args, "--duration=0.3", "--rate=20", "--key-prefix=pw:")
		code, out, errs := invoke(t, context.Background(), args...)
		if code != exitPass {
			t.Fatalf("%v: exit %d\n%s", args, code, errs)
		}
		if strings.Contains(out, secret) || strings.Contains(errs, secret) {
			t.Fatalf("%v: the password appears in the output", args)
		}
		if !strings.Contains(out+errs, srv.Addr) {
			t.Fatalf("%v: the server is not named", args)
		}
	}
	// And not in the errors either.
	code, out, errs := invoke(t, context.Background(), "--redis-url=redis://:"+secret+"x@"+srv.Addr, "--duration=0.3")
	if code != exitUnavailable || strings.Contains(out+errs, secret) {
		t.Fatalf("exit %d, output %q", code, out+errs)
	}
}

func TestAuthErrorsExit3(t *testing.T) {
	srv := redistest.StartOwn(t, "--requirepass", secret)
	rc := srv.Client(t)
	if err := rc.Do(context.Background(), "AUTH", secret).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Do(context.Background(), "ACL", "SETUSER", "loader", "on", ">loader-pw", "+@all", "&*", "~*").Err(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LOADER_PW", "loader-pw")
	t.Setenv("REDIS_PASSWORD", "")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--redis-url=redis://:wrong@" + srv.Addr}, exitUnavailable,
			"redisload: Redis at redis://:xxxxx@" + srv.Addr + ": authentication failed: wrong username or password (WRONGPASS"},
		{[]string{"--redis-url=redis://" + srv.Addr}, exitUnavailable,
			"authentication failed: the server requires a password and none was given (NOAUTH); give it in the URL, with --redis-password-env NAME or in $REDIS_PASSWORD"},
		{[]string{"--redis-url=redis://" + srv.Addr, "--redis-username=loader", "--redis-password-env=LOADER_PW"}, exitPass, ""},
		{[]string{"--redis-url=redis://" + srv.Addr, "--redis-password-env=NO_SUCH_VAR"}, exitUsage, "--redis-password-env: $NO_SUCH_VAR is not set"},
	} {
		start := time.Now()
		code, _, errs := invoke(t, context.Background(), append(tc.args, "--duration=0.3", "--rate=20", "--key-prefix=auth:")...)
		if code != tc.code || !strings.Contains(errs, tc.want) || time.Since(start) > 5*time.Second {
			t.Errorf("%v: exit %d after %v, stderr %q; want exit %d with %q", tc.args, code, time.Since(start), errs, tc.code, tc.want)
		}
	}
	t.Setenv("REDIS_PASSWORD", secret) // the default source
	if code, _, errs := invoke(t, context.Background(), "--redis-url=redis://"+srv.Addr, "--duration=0.3", "--rate=20", "--key-prefix=auth:"); code != exitPass {
		t.Fatalf("$REDIS_PASSWORD: exit %d %s", code, errs)
	}
}

func TestTLSFlags(t *testing.T) {
	srv := redistest.StartTLS(t, false)
	mtls := redistest.StartTLS(t, true)
	f := srv.Files
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--redis-url=rediss://" + srv.TLSAddr, "--tls-ca=" + f.CA}, exitPass, ""},
		{[]string{"--redis-url=rediss://" + mtls.TLSAddr, "--tls-ca=" + mtls.Files.CA,
			"--tls-cert=" + mtls.Files.ClientCert, "--tls-key=" + mtls.Files.ClientKey}, exitPass, ""},
		{[]string{"--redis-url=rediss://" + srv.TLSAddr, "--tls-insecure"}, exitPass, "WARNING: --tls-insecure"},
		{[]string{"--redis-url=rediss://" + srv.TLSAddr}, exitUnavailable,
			"TLS: the server's certificate is not trusted (x509: certificate signed by unknown authority); give its CA with --tls-ca"},
		{[]string{"--redis-url=rediss://" + srv.Addr, "--tls-ca=" + f.CA}, exitUnavailable,
			"no answer to the TLS handshake within 3s: the port looks like plain TCP (use redis://, not rediss://)"},
		{[]string{"--redis-url=redis://" + srv.TLSAddr}, exitUnavailable, "if the port expects TLS, use a rediss:// URL"},
		{[]string{"--redis-url=redis://" + srv.Addr, "--tls-ca=" + f.CA}, exitUsage, "need a rediss:// --redis-url"},
		{[]string{"--redis-url=rediss://" + srv.TLSAddr, "--tls-cert=" + f.ClientCert}, exitUsage, "--tls-cert and --tls-key go together"},
		{[]string{"--redis-url=rediss://" + srv.TLSAddr, "--tls-ca=/no/such/ca.pem"}, exitUsage, "--tls-ca: open /no/such/ca.pem"},
		{[]string{"--redis-url=rediss://" + srv.TLSAddr, "--tls-ca=" + f.ServerKey}, exitUsage, "--tls-ca: no PEM certificate"},
	} {
		start := time.Now()
		code, _, errs := invoke(t, context.Background(), append(tc.args, "--duration=0.3", "--rate=20", "--key-prefix=tls:")...)
		took := time.Since(start)
		if code != tc.code || !strings.Contains(errs, tc.want) || took > 6*time.Second {
			t.Errorf("%v: exit %d after %v, stderr %q; want exit %d with %q", tc.args, code, took, errs, tc.code, tc.want)
		}
		if code == exitUnavailable && strings.Count(strings.TrimSpace(errs), "\n") != 1 {
			t.Errorf("%v: want the start line and one error line, got %q", tc.args, errs)
		}
	}
}
