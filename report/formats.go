package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/redisload/redisload/capacity"
	"github.com/redisload/redisload/clients"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/verdict"
)

// The registry of formats: which renderings exist for which input, so that
// every command offers every format that makes sense for what it has, and
// no command keeps a switch of its own.

// Kind is what an Input holds.
type Kind int

// The kinds of input.
const (
	// Run is a load run: Result and Verdict.
	Run Kind = iota
	// Compare is two runs side by side: Comparison, OldName, NewName.
	Compare
	// Capacity is a capacity search: Capacity.
	Capacity
	// Clients is the client matrix: Clients, and ClientsBaseline when
	// judged against one.
	Clients
)

// Input is everything a renderer may read; a renderer reads the fields of
// its Kind.
type Input struct {
	Result     *harness.Result
	Verdict    verdict.Verdict
	Comparison verdict.Comparison
	// OldName and NewName label a comparison's two columns.
	OldName, NewName string
	Capacity         *capacity.Result
	// Clients is a client matrix, ClientsBaseline the one it is judged
	// against (nil: none).
	Clients, ClientsBaseline *clients.Matrix
	// Version is the tool's, written into JSON.
	Version string
	// Options tune the table of a run.
	Options Options
	// Baseline, when set, is the result a run is judged against, drawn
	// beside it in the HTML's plots.
	Baseline *harness.Result
}

// formats maps a format's name to its renderer for each kind it has.
var formats = map[string]map[Kind]func(Input) Reporter{
	// The default: what a person reads in a terminal or a CI log.
	"table": {
		Run:      func(in Input) Reporter { return NewTableReporter(in.Result, in.Verdict, in.Options) },
		Compare:  func(in Input) Reporter { return NewCompareReporter(in.Comparison, in.OldName, in.NewName, false) },
		Capacity: func(in Input) Reporter { return NewCapacityReporter(in.Capacity, "table") },
		Clients:  clientsFormat("table"),
	},
	// For machines: a run's document is the schema docs/report.md tabulates;
	// a comparison's and a search's are their types as JSON.
	"json": {
		Run:      func(in Input) Reporter { return NewJSONReporter(in.Result, in.Verdict, in.Version) },
		Compare:  func(in Input) Reporter { return compareJSON(in) },
		Capacity: func(in Input) Reporter { return NewCapacityReporter(in.Capacity, "json") },
		Clients:  clientsFormat("json"),
	},
	// For a pull-request comment or a CI job summary.
	"markdown": {
		Run:      func(in Input) Reporter { return NewMarkdownReporter(in.Result, in.Verdict) },
		Compare:  func(in Input) Reporter { return NewCompareReporter(in.Comparison, in.OldName, in.NewName, true) },
		Capacity: func(in Input) Reporter { return NewCapacityReporter(in.Capacity, "markdown") },
		Clients:  clientsFormat("markdown"),
	},
	// For CI test views: each check (or step) a test case.
	"junit": {
		Run: func(in Input) Reporter { return NewJUnitReporter(in.Result, in.Verdict) },
		Compare: func(in Input) Reporter {
			return junitReporter("0", "", nil, checkCases("redisload.regression", in.Comparison.Checks), "")
		},
		Capacity: capacityJUnit,
	},
	// A page to open from a CI artifact, offline.
	"html": {
		Run:      func(in Input) Reporter { return NewHTMLReporter(in.Result, in.Verdict, in.Baseline) },
		Compare:  compareHTML,
		Capacity: capacityHTML,
		Clients:  clientsFormat("html"),
	},
}

// clientsFormat is the client matrix's renderer in format.
func clientsFormat(format string) func(Input) Reporter {
	return func(in Input) Reporter { return NewClientsReporter(in.Clients, in.ClientsBaseline, format, in.Version) }
}

// Formats lists the formats there are for kind, the default (table) first.
func Formats(kind Kind) []string {
	var names []string
	for name, byKind := range formats {
		if _, ok := byKind[kind]; ok && name != "table" {
			names = append(names, name)
		}
	}
	// Sorted, the default first: --help and errors list them the same
	// way every time.
	sort.Strings(names)
	return append([]string{"table"}, names...)
}

// New returns the renderer of format for in; an error names the formats
// there are.
func New(format string, kind Kind, in Input) (Reporter, error) {
	// A format that exists but not for this kind is refused like an
	// unknown one: the error lists what this command offers.
	f, ok := formats[format][kind]
	if !ok {
		return nil, fmt.Errorf("report: no format %q (want one of %s)", format, strings.Join(Formats(kind), ", "))
	}
	return f(in), nil
}

// compareJSON writes a comparison as one JSON document: the rows, the
// regression checks and the status.
func compareJSON(in Input) Reporter {
	return func(w io.Writer) error {
		status := verdict.Pass
		if in.Comparison.Failed() {
			status = verdict.Fail
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Tool       string               `json:"tool"`
			Version    string               `json:"version"`
			Old        string               `json:"old"`
			New        string               `json:"new"`
			Mismatches []verdict.Mismatch   `json:"mismatches"`
			Rows       []verdict.CompareRow `json:"rows"`
			Checks     []verdict.Check      `json:"checks"`
			Status     verdict.Status       `json:"status"`
		}{"redisload", in.Version, in.OldName, in.NewName, in.Comparison.Mismatches, in.Comparison.Rows, in.Comparison.Checks, status})
	}
}

// htmlPage wraps body in the self-contained page every HTML rendering uses.
func htmlPage(w io.Writer, title string, status verdict.Status, body func(ew *errWriter)) error {
	ew := &errWriter{w: w}
	ew.printf("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>%s: %s</title>\n", esc(title), status)
	ew.printf("<style>%s</style></head><body>\n", htmlCSS)
	ew.printf("<h1>%s <span class=\"status %s\">%s</span></h1>\n", esc(title), strings.ToLower(string(status)), status)
	body(ew)
	ew.printf("</body></html>\n")
	return ew.err
}

// compareHTML renders a comparison as a page: the rows, then the checks.
func compareHTML(in Input) Reporter {
	return func(w io.Writer) error {
		status := verdict.Pass
		if in.Comparison.Failed() {
			status = verdict.Fail
		}
		return htmlPage(w, "redisload compare", status, func(ew *errWriter) {
			var rows [][]string
			for _, r := range in.Comparison.Rows {
				rows = append(rows, []string{r.Metric, r.Old, r.New, r.Change})
			}
			if ms := in.Comparison.Mismatches; len(ms) > 0 {
				var mrows [][]string
				for _, m := range ms {
					mrows = append(mrows, []string{m.Field, m.Baseline, m.Current})
				}
				htmlTable(ew, "Set up differently: the numbers compare two experiments", []string{"Field", in.OldName, in.NewName}, mrows)
			}
			htmlTable(ew, "Comparison", []string{"Metric", in.OldName, in.NewName, "Change"}, rows)
			if len(in.Comparison.Checks) > 0 {
				htmlTable(ew, "Regression Checks", []string{"Check", "Limit", "Measured", "Result"}, verdictRows(verdict.Verdict{Checks: in.Comparison.Checks}))
			}
		})
	}
}

// capacityStatus is PASS when a sustainable step was found.
func capacityStatus(res *capacity.Result) verdict.Status {
	if res.Sustainable < 0 {
		return verdict.Fail
	}
	return verdict.Pass
}

// capacityHTML renders a capacity search as a page: the steps and where
// the knee was.
func capacityHTML(in Input) Reporter {
	return func(w io.Writer) error {
		res := in.Capacity
		return htmlPage(w, "redisload capacity", capacityStatus(res), func(ew *errWriter) {
			header, rows := capacityRows(res)
			htmlTable(ew, "Steps (varying "+string(res.Vary)+")", header, rows)
			ew.printf("<p>%s</p>\n", esc(capacityVerdict(res)))
		})
	}
}

// capacityJUnit renders a capacity search as JUnit: one test case per
// step, failing with every limit it broke.
func capacityJUnit(in Input) Reporter {
	var cases []junitCase
	for i, s := range in.Capacity.Steps {
		tc := junitCase{ClassName: "redisload.capacity", Time: "0",
			Name: fmt.Sprintf("step %d: %d instances at %.0f events/s", i+1, s.Instances, s.TargetRate)}
		if !s.Passed {
			tc.Failure = &junitMessage{Message: s.Failed, Type: "threshold"}
		}
		cases = append(cases, tc)
	}
	return junitReporter("0", "", []junitProperty{{"vary", string(in.Capacity.Vary)}, {"redis", in.Capacity.Redis}},
		cases, capacityVerdict(in.Capacity)+"\n")
}
