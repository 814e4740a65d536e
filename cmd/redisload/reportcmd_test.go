package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redisload/redisload/internal/redistest"
)

// A saved JSON report renders again byte for byte as the run rendered it,
// as a table and as HTML (its percentile plot from the histogram the JSON
// carries), with the run's verdict and exit code; no Redis is needed.
func TestReportRendersAgain(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	code, _, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=2", "--duration=1", "--rate=40",
		"-o", p("run.txt"), "--json-out="+p("run.json"), "--html="+p("run.html"), "--max-p99-latency=1ns", "--key-prefix=rpt:")
	if code != exitFail {
		t.Fatalf("exit %d: %s", code, errs)
	}
	code, _, errs = invoke(t, context.Background(), "report", p("run.json"), "-o", p("again.txt"), "--html="+p("again.html"))
	if code != exitFail {
		t.Fatalf("report: exit %d (the saved verdict failed: want 1): %s", code, errs)
	}
	for _, pair := range [][2]string{{"run.txt", "again.txt"}, {"run.html", "again.html"}} {
		a, errA := os.ReadFile(p(pair[0]))
		b, errB := os.ReadFile(p(pair[1]))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s and %s differ (%v, %v)", pair[0], pair[1], errA, errB)
		}
	}
	if html, _ := os.ReadFile(p("again.html")); !bytes.Contains(html, []byte("Latency by percentile")) {
		t.Error("the HTML has no percentile plot: the histogram did not travel")
	}
	code, out, _ := invoke(t, context.Background(), "report", p("run.json"), "--format=markdown")
	if code != exitFail || !strings.Contains(out, "FAIL") {
		t.Errorf("markdown: exit %d\n%s", code, out)
	}
	// A run against a baseline draws it in its HTML; report --baseline
	// draws the same page again. (Its regression limit is one no run of a
	// second can miss: the default p99 limit would judge the noise.)
	code, _, errs = invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=2", "--duration=1", "--rate=40",
		"-o", p("run2.txt"), "--json-out="+p("run2.json"), "--html="+p("run2.html"), "--baseline="+p("run.json"),
		"--max-regression=errors=1000", "--key-prefix=rpt2:")
	if code != exitPass {
		t.Fatalf("run against the baseline: exit %d: %s", code, errs)
	}
	code, _, errs = invoke(t, context.Background(), "report", p("run2.json"), "--baseline", p("run.json"), "-o", p("again2.txt"), "--html="+p("again2.html"))
	a, _ := os.ReadFile(p("run2.html"))
	b, _ := os.ReadFile(p("again2.html"))
	if code != exitPass || !bytes.Equal(a, b) || !bytes.Contains(a, []byte("<title>baseline p99</title>")) {
		t.Errorf("report --baseline: exit %d (%s); the pages are equal: %v; the baseline drawn: %v", code, errs, bytes.Equal(a, b),
			bytes.Contains(a, []byte("<title>baseline p99</title>")))
	}
	code, _, errs = invoke(t, context.Background(), "report", p("run2.json"), "--baseline", p("nope.json"))
	if code != exitUsage || !strings.HasPrefix(errs, "redisload report: --baseline: open ") {
		t.Errorf("a missing baseline: exit %d, %q", code, errs)
	}
}

func TestReportUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"schema_version":1,"tool":"redisload"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report"}, "want one JSON report, got 0 arguments"},
		{[]string{"report", bad}, "no instances: not a complete redisload JSON report"},
		{[]string{"report", bad, "--format=pdf"}, "--format must be one of"},
		{[]string{"report", bad, "-o", bad}, "--output"},
	} {
		code, _, errs := invoke(t, context.Background(), tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errs, tc.want)
		}
	}
}
