package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/verdict"
)

// One run writes every format at once: Markdown on stdout, JSON, JUnit and
// the histograms to files, all telling the same story.
func TestSeveralOutputsAtOnce(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	js, ju, hgrm, hdir := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.xml"), filepath.Join(dir, "all.hgrm"), filepath.Join(dir, "per")
	page := filepath.Join(dir, "r.html")
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--key-prefix=outs:", "--duration=1",
		"--rate=50", "--format=markdown", "--json-out="+js, "--junit-out="+ju, "--hdr-out="+hgrm, "--hdr-out-dir="+hdir, "--html="+page)
	if code != exitPass {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	if !strings.HasPrefix(out, "## redisload: PASS") {
		t.Fatalf("stdout is not the Markdown report:\n%s", out)
	}
	doc, err := report.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Verdict.Status != verdict.Pass || doc.Totals.Delivered != 100 {
		t.Fatalf("JSON: %+v %+v", doc.Verdict, doc.Totals)
	}
	// --html collects the series: a point a second, in the JSON too.
	if len(doc.Series) < 1 || doc.Series[len(doc.Series)-1].Delivered != 100 {
		t.Fatalf("series %+v", doc.Series)
	}
	if h, err := os.ReadFile(page); err != nil || !strings.Contains(string(h), `<span class="status pass">PASS</span>`) ||
		strings.Count(string(h), `class="series"`) < 6 {
		// A line of one point (a one-second run) is a dot, not a polyline.
		t.Fatalf("html: %v, %d lines or dots", err, strings.Count(string(h), `class="series"`))
	}
	data, err := os.ReadFile(ju)
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil || suites.Tests != len(doc.Verdict.Checks) || suites.Failures != 0 {
		t.Fatalf("JUnit: %+v, %v", suites, err)
	}
	// The merged histogram counts every delivery; each instance's file
	// counts its own.
	if h, err := os.ReadFile(hgrm); err != nil || !strings.Contains(string(h), "Total count    =          100]") {
		t.Fatalf("hdr-out: %v\n%s", err, h)
	}
	for i, ir := range doc.Instances {
		h, err := os.ReadFile(filepath.Join(hdir, fmt.Sprintf("instance-%d.hgrm", i)))
		if err != nil || !strings.Contains(string(h), fmt.Sprintf("Total count    = %12d]", ir.Delivered)) {
			t.Fatalf("instance %d: %v\n%s", i, err, h)
		}
	}
}

// A bad output path fails before the run, naming the flag.
func TestBadOutputPathsExit2(t *testing.T) {
	for _, flag := range []string{"--json-out", "--junit-out", "--markdown-out", "--hdr-out", "--output"} {
		code, _, errs := invoke(t, context.Background(), flag+"=/nonexistent/dir/file", "--redis-url=redis://127.0.0.1:1")
		if code != exitUsage || !strings.Contains(errs, flag) || strings.Count(errs, "\n") != 2 {
			t.Errorf("%s: exit %d\n%s", flag, code, errs)
		}
	}
	code, _, errs := invoke(t, context.Background(), "--format=xml")
	if code != exitUsage || !strings.Contains(errs, "--format must be one of table, html, json, junit, markdown") {
		t.Errorf("--format=xml: exit %d\n%s", code, errs)
	}
}
