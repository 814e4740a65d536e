package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/outfile"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/verdict"
)

// The report's destinations: the main format on stdout (or --output),
// further formats and the histograms in files. Every file goes through
// internal/outfile: a regular file is written beside its path and renamed
// into place only once complete, so that a run that fails, is killed or
// loses its terminal never leaves an existing report truncated, and a
// device, FIFO, socket or link keeps being what it is.

// extraFormats are the formats with a --<format>-out flag, beside the one
// --format chooses for stdout; HTML has --html.
var extraFormats = []string{"json", "markdown", "junit"}

// output is one report to write: a format and where.
type output struct {
	format string
	w      io.Writer
}

// pendingFile is an output file being written, for the flag that named
// it: put in place by commit, dropped by abort.
type pendingFile struct {
	flag string
	*outfile.File
}

// createPending starts the file that --flag names. It fails now, before
// the run, for a path that cannot be written: a missing directory, a
// directory, no permission, a FIFO nobody reads.
func createPending(ctx context.Context, flag, path string) (*pendingFile, error) {
	f, err := outfile.Create(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %v", flag, err)
	}
	return &pendingFile{flag: flag, File: f}, nil
}

// commit puts the finished file in place of its path.
func (p *pendingFile) commit() error {
	if err := p.Commit(); err != nil {
		return fmt.Errorf("--%s: %v", p.flag, err)
	}
	return nil
}

// abort drops the file; its path is left as it was.
func (p *pendingFile) abort() { p.Abort() }

// pendingFiles are the run's output files, committed together at the end.
type pendingFiles []*pendingFile

// create starts a pending file and keeps it, so that one commit or one
// abort covers every output of the run.
func (ps *pendingFiles) create(ctx context.Context, flag, path string) (*pendingFile, error) {
	p, err := createPending(ctx, flag, path)
	if err == nil {
		*ps = append(*ps, p)
	}
	return p, err
}

// commit puts every file in place; after the first failure the rest are
// aborted, and the error names the flag.
func (ps *pendingFiles) commit() error {
	// All or nothing as far as a rename allows: after a failure the rest
	// are dropped, so the set of reports on disk stays one run's.
	var first error
	for _, p := range *ps {
		if first != nil {
			p.abort()
			continue
		}
		first = p.commit()
	}
	*ps = nil
	return first
}

// abort drops every file not yet committed; safe to call after commit.
func (ps *pendingFiles) abort() {
	for _, p := range *ps {
		p.abort()
	}
	*ps = nil
}

// pathFlag is a file named on the command line.
type pathFlag struct{ flag, path string }

// checkPaths refuses a run whose outputs would overwrite one of its inputs
// or each other: the same path, or two names of one existing file (a link).
// It runs before anything else, so a typo costs nothing.
func checkPaths(outputs, inputs []pathFlag) error {
	for i, out := range outputs {
		if out.path == "" {
			continue
		}
		for _, in := range inputs {
			if in.path != "" && samePath(out.path, in.path) {
				return fmt.Errorf("--%s and --%s name the same file (%s): the report would overwrite its input", in.flag, out.flag, out.path)
			}
		}
		for _, prev := range outputs[:i] {
			if prev.path != "" && samePath(out.path, prev.path) {
				return fmt.Errorf("--%s and --%s name the same file (%s): two outputs would write one file", prev.flag, out.flag, out.path)
			}
		}
	}
	return nil
}

// samePath reports whether a and b name one file: equal once made
// absolute and clean, or the same existing file. A character device is
// no file to overwrite: two outputs may share /dev/null or a terminal.
func samePath(a, b string) bool {
	if fi, err := os.Stat(a); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return false
	}
	aa, errA := filepath.Abs(a)
	bb, errB := filepath.Abs(b)
	if errA == nil && errB == nil && aa == bb {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// openOutputs starts the main report's destination (stdout unless
// --output) and every --<format>-out file, and creates --hdr-out-dir. The
// files are committed by the caller once every report is written.
func (o *options) openOutputs(ctx context.Context, stdout io.Writer, files *pendingFiles) ([]output, error) {
	// The main format goes to stdout unless -o names a file; the others
	// only ever to files.
	outs := []output{{o.format, stdout}}
	if o.output != "" {
		p, err := files.create(ctx, "output", o.output)
		if err != nil {
			return nil, err
		}
		outs[0].w = p
	}
	for _, f := range extraFormats {
		if path := *o.extraOut[f]; path != "" {
			p, err := files.create(ctx, f+"-out", path)
			if err != nil {
				return nil, err
			}
			outs = append(outs, output{f, p})
		}
	}
	if o.html != "" {
		p, err := files.create(ctx, "html", o.html)
		if err != nil {
			return nil, err
		}
		outs = append(outs, output{"html", p})
	}
	// The directory is made now, so that a path that cannot be one fails
	// before the run.
	if o.hdrOutDir != "" {
		if err := os.MkdirAll(o.hdrOutDir, 0o755); err != nil {
			return nil, fmt.Errorf("--hdr-out-dir: %v", err)
		}
	}
	if o.hdrOut != "" {
		if _, err := files.create(ctx, "hdr-out", o.hdrOut); err != nil {
			return nil, err
		}
	}
	return outs, nil
}

// reporter returns the renderer of one format; the format was checked
// against the registry when the flags were.
func (o *options) reporter(format string, res *harness.Result, v verdict.Verdict) report.Reporter {
	r, err := report.New(format, report.Run, report.Input{Result: res, Verdict: v, Version: toolVersion(),
		Options: report.Options{Matrix: o.matrix || o.verbose, ServerStats: o.verbose}, Baseline: o.baseResult})
	if err != nil {
		return func(io.Writer) error { return err }
	}
	return r
}

// writeHistograms writes --hdr-out (into its pending file) and each file
// of --hdr-out-dir (as pending files of files).
func (o *options) writeHistograms(ctx context.Context, res *harness.Result, files *pendingFiles) error {
	write := func(w io.Writer, flag string, h *hdrhistogram.Histogram) error {
		if err := report.WriteHDR(w, h); err != nil {
			return fmt.Errorf("--%s: %v", flag, err)
		}
		return nil
	}
	if o.hdrOut != "" {
		for _, p := range *files {
			if p.flag == "hdr-out" {
				if err := write(p, "hdr-out", res.Histogram); err != nil {
					return err
				}
			}
		}
	}
	if o.hdrOutDir != "" {
		for i, h := range res.InstanceHistograms {
			p, err := files.create(ctx, "hdr-out-dir", filepath.Join(o.hdrOutDir, fmt.Sprintf("instance-%d.hgrm", i)))
			if err != nil {
				return err
			}
			if err := write(p, "hdr-out-dir", h); err != nil {
				return err
			}
		}
	}
	return nil
}

// formatError refuses a format that reports of kind have no renderer for,
// naming the ones they have.
func formatError(kind report.Kind, format string) error {
	if formats := report.Formats(kind); !slices.Contains(formats, format) {
		return fmt.Errorf("--format must be one of %s, got %q", strings.Join(formats, ", "), format)
	}
	return nil
}
