package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/redisload/redisload/clients"
	"github.com/redisload/redisload/report"
)

// clientsOptions are what `redisload clients`'s flags set.
type clientsOptions struct {
	c                                      clients.Config
	names, scenarios, format, output, base string
	help                                   bool
}

// newClientsFlagSet declares `redisload clients`'s flags on f.
func newClientsFlagSet(f *clientsOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("redisload clients", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	var known []string
	for _, c := range clients.All {
		known = append(known, c.Name)
	}
	var scs []string
	for _, s := range clients.Scenarios {
		scs = append(scs, s.Name)
	}
	fs.StringVar(&f.names, "clients", "", "the clients to run, comma-separated (default all: "+strings.Join(known, ",")+")")
	fs.StringVar(&f.scenarios, "scenarios", "", "the scenarios to run, comma-separated (default all: "+strings.Join(scs, ",")+")")
	fs.StringVar(&f.c.AdaptersDir, "adapters-dir", "adapters", "the repository's adapters directory")
	fs.IntVar(&f.c.Instances, "instances", 3, "instances of each cell, all of its client")
	fs.Var(newDurationValue(6*time.Second, &f.c.Duration), "duration", "publishing time of each cell; the fault comes a third in")
	fs.Float64Var(&f.c.Rate, "rate", 100, "events/s of each cell, over all its instances")
	fs.StringVar(&f.base, "baseline", "", "a JSON matrix (--format=json) to judge against: a cell that passed there and fails now is a regression")
	fs.StringVar(&f.format, "format", "table", strings.Join(report.Formats(report.Clients), ", "))
	fs.StringVarP(&f.output, "output", "o", "", "write the matrix to this file instead of standard output")
	fs.BoolVarP(&f.help, "help", "h", false, "show this help")
	return fs
}

// runClients is `redisload clients`: every client's adapter through every
// scenario it applies to, against deployments of its own, in one table.
// Exit 0 when every cell passed (or did not apply), 1 when one failed,
// could not run or regressed against --baseline, 2 on bad usage, 4 when
// the table could not be written, 130 when interrupted.
func runClients(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f clientsOptions
	fs := newClientsFlagSet(&f)
	usageErr := usageErrors(stderr, "redisload clients")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if f.help {
		fmt.Fprintln(stdout, "Usage: redisload clients [flags]\n\nRuns each client library's adapter (adapters/) through each fault scenario it")
		fmt.Fprintln(stdout, "applies to, against servers, clusters and Sentinel sets it starts, beside redisload's own bridge:")
		fmt.Fprintln(stdout, "what each client loses, and whether it says so. Scenarios:")
		for _, s := range clients.Scenarios {
			fmt.Fprintf(stdout, "  %-26s %s\n", s.Name, s.Summary)
		}
		fmt.Fprint(stdout, "\n"+groupedUsages(fs, clientsGroups))
		return exitPass
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (flags only)", fs.Arg(0))
	}
	var err error
	if f.c.Clients, err = clients.Lookup(splitList(f.names)); err != nil {
		return usageErr("--clients: %v", err)
	}
	if f.c.Scenarios, err = clients.LookupScenarios(splitList(f.scenarios)); err != nil {
		return usageErr("--scenarios: %v", err)
	}
	if err := formatError(report.Clients, f.format); err != nil {
		return usageErr("%v", err)
	}
	if st, err := os.Stat(f.c.AdaptersDir); err != nil || !st.IsDir() {
		return usageErr("--adapters-dir %s: not a directory (run from the repository, or point it at its adapters/)", f.c.AdaptersDir)
	}
	var base *clients.Matrix
	if f.base != "" {
		if base, err = readMatrix(f.base); err != nil {
			return usageErr("--baseline: %v", err)
		}
	}
	out := stdout
	var files pendingFiles
	defer files.abort()
	if f.output != "" {
		p, err := files.create(ctx, "output", f.output)
		if err != nil {
			return usageErr("%v", err)
		}
		out = p
	}
	f.c.Cell = func(c clients.Cell) {
		fmt.Fprintf(stderr, "redisload clients: %s %s, %s: %s\n", c.Client, c.ClientVersion, c.Scenario, cellLine(c))
	}
	m, err := clients.Run(ctx, f.c)
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(stderr, "redisload clients: interrupted")
		if m != nil && len(m.Cells) > 0 && renderClients(m, base, f.format, out) == nil {
			_ = files.commit()
		}
		return exitInterrupted
	case err != nil:
		return usageErr("%v", err)
	}
	if err := renderClients(m, base, f.format, out); err != nil {
		fmt.Fprintf(stderr, "redisload clients: writing the matrix: %v\n", err)
		return exitOutput
	}
	if err := files.commit(); err != nil {
		fmt.Fprintf(stderr, "redisload clients: writing the matrix: %v\n", err)
		return exitOutput
	}
	if m.Failed() || len(clients.Regressions(base, m)) > 0 {
		return exitFail
	}
	return exitPass
}

// cellLine is a cell's progress line.
func cellLine(c clients.Cell) string {
	switch {
	case c.Skipped != "":
		return "skipped: " + c.Skipped
	case c.Error != "":
		return "ERROR: " + c.Error
	}
	return fmt.Sprintf("%d/%d delivered, %d missing outside outages, %s", c.Delivered, c.Expected, c.MissingOutside, c.Verdict)
}

// renderClients writes m in format.
func renderClients(m, base *clients.Matrix, format string, w io.Writer) error {
	r, err := report.New(format, report.Clients, report.Input{Clients: m, ClientsBaseline: base, Version: toolVersion()})
	if err != nil {
		return err
	}
	return r(w)
}

// readMatrix reads a matrix that `redisload clients --format=json` wrote.
func readMatrix(path string) (*clients.Matrix, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Tool   string          `json:"tool"`
		Matrix *clients.Matrix `json:"matrix"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: trailing data after the matrix", path)
	}
	if doc.Tool != "redisload" || doc.Matrix == nil || len(doc.Matrix.Cells) == 0 {
		return nil, fmt.Errorf("%s: not a client matrix of redisload's (redisload clients --format=json)", path)
	}
	return doc.Matrix, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
