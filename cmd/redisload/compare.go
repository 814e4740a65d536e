package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/verdict"
)

// runCompare is `redisload compare OLD.json NEW.json`: two saved reports
// side by side, with regression checks when --max-regression is given. It
// needs no Redis. Exit 0, 1 on a regression, 2 on bad usage or files.
func runCompare(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("redisload compare", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	regressions := fs.String("max-regression", "", "fail (exit 1) when NEW is worse than OLD by more than this, e.g. p99=20%,avg=20%,delivery=0.1")
	format := fs.String("format", "table", "table or markdown")
	help := fs.BoolP("help", "h", false, "show this help")
	usageErr := usageErrors(stderr, "redisload compare")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if *help {
		fmt.Fprintln(stdout, "Usage: redisload compare [--max-regression SPEC] [--format table|markdown] OLD.json NEW.json")
		fmt.Fprintln(stdout, "\nSets two JSON reports side by side; with --max-regression, exits 1 when NEW regressed.")
		fmt.Fprint(stdout, "\nFlags:\n"+fs.FlagUsages())
		return exitPass
	}
	if fs.NArg() != 2 {
		return usageErr("want two JSON reports, OLD and NEW, got %d arguments", fs.NArg())
	}
	if *format != "table" && *format != "markdown" {
		return usageErr("--format must be table or markdown, got %q", *format)
	}
	var limits []verdict.RegressionLimit
	if *regressions != "" {
		var err error
		if limits, err = verdict.ParseRegressions(*regressions); err != nil {
			return usageErr("--max-regression: %v", err)
		}
	}
	docs := make([]*report.Document, 2)
	for i, path := range fs.Args() {
		d, err := report.ReadFile(path)
		if err != nil {
			return usageErr("%v", err)
		}
		docs[i] = d
	}
	c := verdict.Compare(docs[0].Result, docs[1].Result, limits)
	name := func(i int) string { return filepath.Base(fs.Arg(i)) }
	if err := report.NewCompareReporter(c, name(0), name(1), *format == "markdown")(stdout); err != nil {
		fmt.Fprintf(stderr, "redisload compare: %v\n", err)
		return exitFail
	}
	if c.Failed() {
		return exitFail
	}
	return exitPass
}
