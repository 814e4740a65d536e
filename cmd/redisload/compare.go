package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/verdict"
)

// compareOptions are what `redisload compare`'s flags set.
type compareOptions struct {
	regressions, format string
	help                bool
}

// newCompareFlagSet declares `redisload compare`'s flags on o: the command
// parses them, and the completion scripts list them.
func newCompareFlagSet(o *compareOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("redisload compare", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.regressions, "max-regression", "", "fail (exit 1) when NEW is worse than OLD by more than this, e.g. p99=20%,avg=20%,delivery=0.1")
	fs.StringVar(&o.format, "format", "table", strings.Join(report.Formats(report.Compare), ", "))
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	return fs
}

// runCompare is `redisload compare OLD.json NEW.json`: two saved reports
// side by side, with regression checks when --max-regression is given. It
// needs no Redis. Exit 0, 1 on a regression, 2 on bad usage or files.
func runCompare(args []string, stdout, stderr io.Writer) int {
	var o compareOptions
	fs := newCompareFlagSet(&o)
	regressions, format, help := &o.regressions, &o.format, &o.help
	usageErr := usageErrors(stderr, "redisload compare")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if *help {
		fmt.Fprintf(stdout, "Usage: redisload compare [--max-regression SPEC] [--format %s] OLD.json NEW.json\n", strings.Join(report.Formats(report.Compare), "|"))
		fmt.Fprintln(stdout, "\nSets two JSON reports side by side; with --max-regression, exits 1 when NEW regressed.")
		fmt.Fprint(stdout, "\n"+groupedUsages(fs, compareGroups))
		return exitPass
	}
	if fs.NArg() != 2 {
		return usageErr("want two JSON reports, OLD and NEW, got %d arguments", fs.NArg())
	}
	if err := formatError(report.Compare, *format); err != nil {
		return usageErr("%v", err)
	}
	// Without --max-regression compare only shows; with it, it gates, and
	// exits 1 on a regression as a run does on a failed check.
	var limits []verdict.RegressionLimit
	if *regressions != "" {
		var err error
		if limits, err = verdict.ParseRegressions(*regressions); err != nil {
			return usageErr("--max-regression: %v", err)
		}
	}
	// Both files are read and validated before anything is printed: a bad
	// file is a usage error, never a comparison against zeros.
	docs := make([]*report.Document, 2)
	for i, path := range fs.Args() {
		d, err := report.ReadFile(path)
		if err != nil {
			return usageErr("%v", err)
		}
		docs[i] = d
	}
	// The comparison is the verdict package's; the format only lays it
	// out, so every format agrees on a regression.
	c := verdict.Compare(docs[0].Result, docs[1].Result, limits)
	c.Mismatches = verdict.Comparable(docs[0].Result, docs[1].Result, docs[0].Version, docs[1].Version)
	// Columns are named by file, not path: the table must fit a terminal.
	name := func(i int) string { return filepath.Base(fs.Arg(i)) }
	r, err := report.New(*format, report.Compare, report.Input{Comparison: c, OldName: name(0), NewName: name(1), Version: toolVersion()})
	if err == nil {
		err = r(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "redisload compare: %v\n", err)
		return exitOutput
	}
	if c.Failed() {
		return exitFail
	}
	return exitPass
}
