package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/pflag"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
)

// securityFlags are the credential and TLS flags.
type securityFlags struct {
	username    string
	passwordEnv string
	tlsCA       string
	tlsCert     string
	tlsKey      string
	tlsInsecure bool
}

// register declares the flags on fs: the run and capacity share them.
func (s *securityFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.username, "redis-username", "", "ACL user name (or in the URL)")
	fs.StringVar(&s.passwordEnv, "redis-password-env", "", "read the password from this environment variable (default $REDIS_PASSWORD, when the URL has none)")
	fs.StringVar(&s.tlsCA, "tls-ca", "", "PEM file of the CA that signed the server's certificate (rediss:// URLs)")
	fs.StringVar(&s.tlsCert, "tls-cert", "", "PEM client certificate, for servers that require one (with --tls-key)")
	fs.StringVar(&s.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	fs.BoolVar(&s.tlsInsecure, "tls-insecure", false, "do not verify the server's certificate (prints a warning)")
}

// apply fills the bridge options from the flags. The password is read from
// an environment variable, never from a flag: a flag's value shows in ps
// and in shell history. An explicit --redis-password-env must name a set
// variable; $REDIS_PASSWORD is used when set and the URL has no password.
func (s securityFlags) apply(o *bridge.Options, redisURL string, warn io.Writer) error {
	// The ACL user may also come with the URL; a flag given wins, as the
	// more specific source.
	o.Username = s.username
	switch {
	case s.passwordEnv != "":
		pw, ok := os.LookupEnv(s.passwordEnv)
		if !ok || pw == "" {
			return fmt.Errorf("--redis-password-env: $%s is not set", s.passwordEnv)
		}
		o.Password = pw
	// A password in the URL wins over $REDIS_PASSWORD: it was given for
	// this server, the variable maybe for another.
	case os.Getenv("REDIS_PASSWORD") != "" && !urlHasPassword(redisURL):
		o.Password = os.Getenv("REDIS_PASSWORD")
	}

	// TLS flags are refused with a plain URL rather than turning TLS on:
	// the URL is what a user reads to know how the connection is made.
	usesTLS := s.tlsCA != "" || s.tlsCert != "" || s.tlsKey != "" || s.tlsInsecure
	if !usesTLS {
		return nil
	}
	if !strings.HasPrefix(redisURL, "rediss://") {
		return errors.New("--tls-ca, --tls-cert, --tls-key and --tls-insecure need a rediss:// --redis-url")
	}
	if (s.tlsCert == "") != (s.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	// TLS 1.2: Redis's default minimum (tls-protocols) and the oldest
	// version still considered safe.
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.tlsCA != "" {
		pem, err := os.ReadFile(s.tlsCA)
		if err != nil {
			return fmt.Errorf("--tls-ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--tls-ca: no PEM certificate in %s", s.tlsCA)
		}
	}
	if s.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(s.tlsCert, s.tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if s.tlsInsecure {
		cfg.InsecureSkipVerify = true
		fmt.Fprintln(warn, "redisload: WARNING: --tls-insecure: the server's certificate is not verified")
	}
	o.TLSConfig = cfg
	return nil
}

// urlHasPassword says whether the URL carries its own password, which
// then wins over $REDIS_PASSWORD: the more specific source.
func urlHasPassword(raw string) bool {
	u, err := bridge.ParseURL(raw)
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

// connectPrefix is what the harness and bridge put before a connect error;
// the CLI names the server itself, once.
var connectPrefix = regexp.MustCompile(`^(` + regexp.QuoteMeta(harness.ErrUnavailable.Error()) +
	`: )?instance \d+: (bridge: )?connect (publisher|subscriber) to \S+: `)

// explainConnectError is the one line printed when Redis cannot be used:
// the cause first, then the flag that fixes it where there is one.
func explainConnectError(where string, err error) string {
	// The address is already in the line; the harness's and bridge's
	// prefixes would say it twice.
	cause := strings.TrimPrefix(connectPrefix.ReplaceAllString(err.Error(), ""), "bridge: ")
	switch {
	case errors.Is(err, bridge.ErrPasswordRequired):
		return fmt.Sprintf("Redis at %s: %s; give it in the URL, with --redis-password-env NAME or in $REDIS_PASSWORD", where, cause)
	case errors.Is(err, bridge.ErrAuthFailed):
		return fmt.Sprintf("Redis at %s: %s", where, cause)
	case errors.Is(err, bridge.ErrTLSUntrusted):
		return fmt.Sprintf("Redis at %s: %s; give its CA with --tls-ca, or skip verification with --tls-insecure", where, cause)
	case errors.Is(err, bridge.ErrTLSMismatch), errors.Is(err, bridge.ErrMaxClients):
		return fmt.Sprintf("Redis at %s: %s", where, cause)
	}
	if re := (*bridge.RefusedError)(nil); errors.As(err, &re) {
		// Reached, and answered: the user's ACL lacks what the run needs.
		hint := "the run's user needs every channel of the run: an ACL rule such as &<key-prefix>*"
		if strings.Contains(re.Reply, "command") {
			hint = "the run's user needs the command: an ACL rule such as +" + strings.ToLower(re.Command)
		}
		return fmt.Sprintf("Redis at %s refused %s %s: %s (%s)", where, re.Command, strings.Join(re.Channels, ", "), re.Reply, hint)
	}
	if strings.Contains(cause, "NOPERM") {
		return fmt.Sprintf("Redis at %s refused the run's user a command it needs: %s", where, cause)
	}
	return fmt.Sprintf("cannot reach Redis at %s: %s", where, cause)
}
