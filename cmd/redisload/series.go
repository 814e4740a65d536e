package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/outfile"
)

// seriesFile writes the run's per-second series as the run goes
// (--series-out): one JSON line a point, written through to the file and
// synced, so that `tail -f` follows a long soak and a crash loses at
// most the second in progress. The first write error stops the writing
// and is reported at the end.
type seriesFile struct {
	f          *outfile.File
	enc        *json.Encoder
	repetition int // from 1 with --repeat above 1; 0 otherwise
	err        error
}

// seriesLine is one line: a point, and which repetition it is of.
type seriesLine struct {
	Repetition int `json:"repetition,omitempty"`
	harness.SeriesPoint
}

// createSeriesFile creates (or empties) path for the series: written as it
// goes, so that a regular file can be followed, and through outfile, so
// that a link, a device or a FIFO stays what it is.
func createSeriesFile(ctx context.Context, path string) (*seriesFile, error) {
	f, err := outfile.CreateStream(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("--series-out: %w", err)
	}
	return &seriesFile{f: f, enc: json.NewEncoder(f)}, nil
}

// Write is a Progress callback: it writes one point.
func (s *seriesFile) Write(p harness.SeriesPoint) {
	if s.err != nil || s.f == nil {
		return
	}
	if s.err = s.enc.Encode(seriesLine{s.repetition, p}); s.err == nil {
		s.err = s.f.Sync()
	}
}

// Close closes the file and returns the first error of the series; a
// second Close returns the same.
func (s *seriesFile) Close() error {
	if s.f != nil {
		if err := s.f.Commit(); s.err == nil && err != nil {
			s.err = err
		}
		s.f = nil
	}
	if s.err != nil {
		return fmt.Errorf("--series-out: %w", s.err)
	}
	return nil
}

// fanOut calls every non-nil progress callback with each point.
func fanOut(fs ...func(harness.SeriesPoint)) func(harness.SeriesPoint) {
	var live []func(harness.SeriesPoint)
	for _, f := range fs {
		if f != nil {
			live = append(live, f)
		}
	}
	switch len(live) {
	case 0:
		return nil
	case 1:
		return live[0]
	}
	return func(p harness.SeriesPoint) {
		for _, f := range live {
			f(p)
		}
	}
}

// listenMetrics listens on addr for --metrics-addr: on the loopback
// interface unless addr names a host (":9090" is 127.0.0.1:9090), since
// the metrics describe the deployment under test.
func listenMetrics(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.Listen("tcp", net.JoinHostPort(host, port))
}

// serveMetrics serves h at /metrics on ln until stop, which closes the
// server and waits for it.
func serveMetrics(ln net.Listener, h http.Handler) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // ErrServerClosed once stopped
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
}
