package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/redisload/redisload/clients"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/report"
)

// reportOptions are what `redisload report`'s flags set.
type reportOptions struct {
	format, output, html, baseline string
	matrix, help                   bool
}

// newReportFlagSet declares `redisload report`'s flags on o: the command
// parses them, and the completion scripts list them.
func newReportFlagSet(o *reportOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("redisload report", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.format, "format", "table", strings.Join(report.Formats(report.Run), ", "))
	fs.StringVarP(&o.output, "output", "o", "", "write the report to this file instead of standard output")
	fs.StringVar(&o.html, "html", "", "also write the HTML report to this file")
	fs.StringVar(&o.baseline, "baseline", "", "another run's JSON report, drawn dashed beside this one in the HTML's plots")
	fs.BoolVar(&o.matrix, "matrix", false, "include the delivery matrix in the table")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	return fs
}

// runReport is `redisload report RESULT.json`: a saved JSON report
// rendered again, in any format, with the verdict it was judged by. It
// needs no Redis. Exit 0 (its verdict passed), 1 (it failed), 2 on bad
// usage or a file that is not a sound report, 4 when an output cannot be
// written.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o reportOptions
	fs := newReportFlagSet(&o)
	usageErr := usageErrors(stderr, "redisload report")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if o.help {
		fmt.Fprintf(stdout, "Usage: redisload report [--format %s] [-o FILE] [--html FILE] [--baseline BASE.json] RESULT.json\n\n", strings.Join(report.Formats(report.Run), "|"))
		fmt.Fprintln(stdout, "Renders a JSON report written by a run (--format=json, --json-out) again, in any format,")
		fmt.Fprintln(stdout, "with the verdict it was judged by: the JSON holds everything the renderers need. A client")
		fmt.Fprint(stdout, "matrix that `redisload clients --format=json` wrote is rendered again the same way.\n\n"+groupedUsages(fs, reportGroups))
		return exitPass
	}
	if fs.NArg() != 1 {
		return usageErr("want one JSON report, got %d arguments", fs.NArg())
	}
	if err := formatError(report.Run, o.format); err != nil {
		return usageErr("%v", err)
	}
	in := fs.Arg(0)
	if err := checkPaths([]pathFlag{{"output", o.output}, {"html", o.html}}, []pathFlag{{"report", in}, {"baseline", o.baseline}}); err != nil {
		return usageErr("%v", err)
	}
	if m, err := readMatrix(in); err == nil {
		return reportMatrix(ctx, o, m, stdout, stderr)
	}
	doc, err := report.ReadFile(in)
	if err != nil {
		return usageErr("%v", err)
	}
	var base *harness.Result
	if o.baseline != "" {
		b, err := report.ReadFile(o.baseline)
		if err != nil {
			return usageErr("--baseline: %v", err)
		}
		base = b.Result
	}
	// Rendered as the run rendered it: its own version, its own verdict.
	input := report.Input{Result: doc.Result, Verdict: doc.Verdict, Version: doc.Version,
		Options: report.Options{Matrix: o.matrix}, Baseline: base}
	if code := writeRendered(ctx, o, stdout, stderr, "report", func(format string, w io.Writer) error {
		r, err := report.New(format, report.Run, input)
		if err != nil {
			return err
		}
		return r(w)
	}); code != exitPass {
		return code
	}
	if !doc.Verdict.Passed() {
		return exitFail
	}
	return exitPass
}

// reportMatrix renders a saved client matrix again, with a saved matrix
// as its baseline; exit 1 when a cell failed or regressed, as `redisload
// clients` exits.
func reportMatrix(ctx context.Context, o reportOptions, m *clients.Matrix, stdout, stderr io.Writer) int {
	usageErr := usageErrors(stderr, "redisload report")
	var base *clients.Matrix
	if o.baseline != "" {
		b, err := readMatrix(o.baseline)
		if err != nil {
			return usageErr("--baseline: %v", err)
		}
		base = b
	}
	if code := writeRendered(ctx, o, stdout, stderr, "matrix", func(format string, w io.Writer) error {
		return renderClients(m, base, format, w)
	}); code != exitPass {
		return code
	}
	if m.Failed() || len(clients.Regressions(base, m)) > 0 {
		return exitFail
	}
	return exitPass
}

// writeRendered renders what `redisload report` read, in its format to
// -o (or stdout) and as HTML to --html, each file written whole or not at
// all; exitPass, or the exit code of the first failure.
func writeRendered(ctx context.Context, o reportOptions, stdout, stderr io.Writer, what string,
	render func(format string, w io.Writer) error) int {
	usageErr := usageErrors(stderr, "redisload report")
	var files pendingFiles
	defer files.abort()
	var out io.Writer = stdout
	if o.output != "" {
		p, err := files.create(ctx, "output", o.output)
		if err != nil {
			return usageErr("%v", err)
		}
		out = p
	}
	outs := []output{{o.format, out}}
	if o.html != "" {
		w, err := files.create(ctx, "html", o.html)
		if err != nil {
			return usageErr("%v", err)
		}
		outs = append(outs, output{"html", w})
	}
	for _, x := range outs {
		if err := render(x.format, x.w); err != nil {
			fmt.Fprintf(stderr, "redisload report: writing the %s %s: %v\n", x.format, what, err)
			return exitOutput
		}
	}
	if err := files.commit(); err != nil {
		fmt.Fprintf(stderr, "redisload report: %v\n", err)
		return exitOutput
	}
	return exitPass
}
