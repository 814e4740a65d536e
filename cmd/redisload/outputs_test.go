package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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

// Every output flag keeps what its path is: a device node stays a device
// (and swallows the report, as /dev/null), a FIFO's reader gets the
// report, a symlink stays a link and its target gets it, a dangling link
// gets its target made; the series goes to /dev/null without an error.
// The old code renamed a regular file over each.
func TestOutputsKeepWhatTheirPathsAre(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	srv := redistest.Start(t)
	dir := t.TempDir()
	dev := filepath.Join(dir, "mynull")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Skipf("mknod: %v", err)
	}
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		r, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(r)
		_ = r.Close()
		got <- string(b)
	}()
	target := filepath.Join(dir, "real.json")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "report.json")
	if err := os.Symlink("real.json", link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "junit.xml")
	if err := os.Symlink(filepath.Join(dir, "made.xml"), dangling); err != nil {
		t.Fatal(err)
	}
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--key-prefix=devs:", "--duration=0.5", "--rate=20",
		"-o", dev, "--json-out="+link, "--markdown-out="+fifo, "--junit-out="+dangling, "--series-out=/dev/null", "--cpuprofile="+dev)
	if code != exitPass || out != "" {
		t.Fatalf("exit %d, stdout %q\n%s", code, out, errs)
	}
	if fi, err := os.Lstat(dev); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s is now %v (%v)", dev, fi.Mode(), err)
	}
	for _, l := range []string{link, dangling} {
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s is no longer a link: %v", l, fi.Mode())
		}
	}
	doc, err := report.ReadFile(target)
	if err != nil || doc.Totals.Delivered != 20 {
		t.Fatalf("the link's target: %v %+v", err, doc)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "made.xml")); err != nil || !strings.Contains(string(b), "<testsuites") {
		t.Fatalf("the dangling link's target: %v\n%s", err, b)
	}
	select {
	case s := <-got:
		if !strings.HasPrefix(s, "## redisload: PASS") {
			t.Fatalf("the FIFO's reader got:\n%s", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the FIFO's reader got nothing")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("%s is now %v", fifo, fi.Mode())
	}
	// Nothing else was made beside them: no temporary file left over.
	if ents, _ := os.ReadDir(dir); len(ents) != 6 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("the directory holds %v", names)
	}
}

// A directory is refused for every output flag, before the run (the URL
// reaches nothing, so exit 2 proves nothing was tried), in one line.
func TestDirectoryOutputRefused(t *testing.T) {
	dir := t.TempDir()
	for _, flag := range []string{"--output", "--json-out", "--markdown-out", "--junit-out", "--html", "--hdr-out", "--series-out", "--cpuprofile", "--memprofile"} {
		code, _, errs := invoke(t, context.Background(), flag+"="+dir, "--redis-url=redis://127.0.0.1:1")
		if code != exitUsage || !strings.Contains(errs, flag+": "+dir+" is a directory") || strings.Count(errs, "\n") != 2 {
			t.Errorf("%s: exit %d\n%s", flag, code, errs)
		}
	}
}
