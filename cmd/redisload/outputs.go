package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/report"
)

// The report's destinations: the main format on stdout (or --output),
// further formats and the histograms in files, all opened before the run.

// formats are the report formats; the first is the default.
var formats = []string{"table", "json", "markdown", "junit"}

// output is one report to write: a format and where.
type output struct {
	format string
	w      io.Writer
}

// openOutputs opens the main report's destination (stdout unless
// --output) and every --<format>-out file, and creates --hdr-out-dir.
func (o *options) openOutputs(stdout io.Writer) ([]output, func(), error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	create := func(flag, path string) (io.Writer, error) {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("--%s: %v", flag, err)
		}
		files = append(files, f)
		return f, nil
	}
	outs := []output{{o.format, stdout}}
	if o.output != "" {
		w, err := create("output", o.output)
		if err != nil {
			return nil, func() {}, err
		}
		outs[0].w = w
	}
	for _, f := range formats[1:] {
		if path := *o.extraOut[f]; path != "" {
			w, err := create(f+"-out", path)
			if err != nil {
				closeAll()
				return nil, func() {}, err
			}
			outs = append(outs, output{f, w})
		}
	}
	if o.html != "" {
		w, err := create("html", o.html)
		if err != nil {
			closeAll()
			return nil, func() {}, err
		}
		outs = append(outs, output{"html", w})
	}
	if o.hdrOutDir != "" {
		if err := os.MkdirAll(o.hdrOutDir, 0o755); err != nil {
			closeAll()
			return nil, func() {}, fmt.Errorf("--hdr-out-dir: %v", err)
		}
	}
	if o.hdrOut != "" {
		// Created now to fail fast; written after the run.
		if _, err := create("hdr-out", o.hdrOut); err != nil {
			closeAll()
			return nil, func() {}, err
		}
	}
	return outs, closeAll, nil
}

// reporter returns the renderer of one format.
func (o *options) reporter(format string, res *harness.Result, v report.Verdict) report.Reporter {
	switch format {
	case "json":
		return report.NewJSONReporter(res, v, toolVersion())
	case "markdown":
		return report.NewMarkdownReporter(res, v)
	case "junit":
		return report.NewJUnitReporter(res, v)
	case "html":
		return report.NewHTMLReporter(res, v)
	}
	return report.NewTableReporter(res, v, report.Options{Matrix: o.matrix || o.verbose, ServerStats: o.verbose})
}

// writeHistograms writes --hdr-out and --hdr-out-dir.
func (o *options) writeHistograms(res *harness.Result) error {
	write := func(flag, path string, h *hdrhistogram.Histogram) error {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--%s: %v", flag, err)
		}
		if err := report.WriteHDR(f, h); err != nil {
			_ = f.Close()
			return fmt.Errorf("--%s: %v", flag, err)
		}
		return f.Close()
	}
	if o.hdrOut != "" {
		if err := write("hdr-out", o.hdrOut, res.Histogram); err != nil {
			return err
		}
	}
	if o.hdrOutDir != "" {
		for i, h := range res.InstanceHistograms {
			if err := write("hdr-out-dir", filepath.Join(o.hdrOutDir, fmt.Sprintf("instance-%d.hgrm", i)), h); err != nil {
				return err
			}
		}
	}
	return nil
}
