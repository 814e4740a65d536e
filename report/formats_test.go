package report_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/report"
	"github.com/redisload/redisload/verdict"
)

// eachGolden renders every fixture with newRep, compares the output with
// its golden file (name + ext), and hands it to check.
func eachGolden(t *testing.T, ext string, newRep func(*harness.Result, verdict.Verdict) report.Reporter,
	check func(t *testing.T, v verdict.Verdict, out *bytes.Buffer)) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			_, v, buf := render(t, name, newRep)
			golden(t, name+ext, buf.Bytes())
			check(t, v, buf)
		})
	}
}

func TestGoldenMarkdown(t *testing.T) {
	eachGolden(t, ".md", report.NewMarkdownReporter, func(t *testing.T, v verdict.Verdict, buf *bytes.Buffer) {
		// The verdict comes first, and a failed check is bold.
		if !strings.HasPrefix(buf.String(), "## redisload: "+string(v.Status)) {
			t.Errorf("first line %q", strings.SplitN(buf.String(), "\n", 2)[0])
		}
		if (v.Status == verdict.Fail) != strings.Contains(buf.String(), "| **FAIL** |") {
			t.Errorf("verdict %s, bold FAIL cell present: %v", v.Status, !(v.Status == verdict.Fail))
		}
	})
}

// JUnit: one test case per check, failures and skips where the verdict
// has them, counts that agree; and it is well-formed XML.
func TestGoldenJUnit(t *testing.T) {
	eachGolden(t, ".xml", report.NewJUnitReporter, func(t *testing.T, v verdict.Verdict, buf *bytes.Buffer) {
		var doc struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Skipped  int `xml:"skipped,attr"`
			Suite    struct {
				Cases []struct {
					Name    string    `xml:"name,attr"`
					Failure *struct{} `xml:"failure"`
					Skipped *struct{} `xml:"skipped"`
				} `xml:"testcase"`
			} `xml:"testsuite"`
		}
		if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		failures, skipped := 0, 0
		for i, c := range v.Checks {
			tc := doc.Suite.Cases[i]
			if !strings.HasPrefix(tc.Name, c.ID+": ") || (tc.Failure != nil) != (c.Status == verdict.Fail) ||
				(tc.Skipped != nil) != (c.Status == verdict.Skip) {
				t.Errorf("case %d %+v for check %+v", i, tc, c)
			}
			if c.Status == verdict.Fail {
				failures++
			}
			if c.Status == verdict.Skip {
				skipped++
			}
		}
		if doc.Tests != len(v.Checks) || len(doc.Suite.Cases) != len(v.Checks) || doc.Failures != failures || doc.Skipped != skipped {
			t.Errorf("tests %d failures %d skipped %d, want %d %d %d", doc.Tests, doc.Failures, doc.Skipped, len(v.Checks), failures, skipped)
		}
	})
}

// The .hgrm file lists percentiles with values in milliseconds and ends
// with the totals, as HdrHistogram's plotter expects.
func TestWriteHDR(t *testing.T) {
	h := hdrhistogram.New(1, 60_000_000, 3)
	for us := int64(1); us <= 1000; us++ {
		_ = h.RecordValue(us)
	}
	var buf bytes.Buffer
	if err := report.WriteHDR(&buf, h); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Scan()
	if !strings.Contains(sc.Text(), "Value") || !strings.Contains(sc.Text(), "Percentile") {
		t.Fatalf("header %q", sc.Text())
	}
	var median, last float64 = -1, 0
	var footer string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if strings.HasPrefix(sc.Text(), "#") {
			footer += sc.Text()
			continue
		}
		if len(f) != 4 {
			continue
		}
		v, _ := strconv.ParseFloat(f[0], 64)
		p, _ := strconv.ParseFloat(f[1], 64)
		if p >= 0.5 && median < 0 {
			median = v
		}
		last = v
	}
	if median < 0.499 || median > 0.501 || last < 0.999 || last > 1.001 {
		t.Errorf("median %v ms, max %v ms; want 0.5 and 1.0", median, last)
	}
	if !strings.Contains(footer, "Total count    =         1000") {
		t.Errorf("footer %q", footer)
	}
	if err := report.WriteHDR(&buf, nil); err == nil {
		t.Error("no histogram: no error")
	}
}

// Every field name of every golden JSON document is documented in the
// JSON table of docs/report.md: the schema documentation cannot drift.
func TestJSONFieldsDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "docs", "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	if i := strings.Index(section, "## JSON output"); i >= 0 {
		section = section[i:]
	}
	if i := strings.Index(section, "\n## Wire format"); i >= 0 {
		section = section[:i]
	}
	var keys func(v any, path string)
	seen := map[string]string{}
	keys = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			if path == ".server.stats_before" || path == ".server.stats_after" {
				return // INFO's own field names
			}
			for k, e := range x {
				seen[k] = path + "." + k
				keys(e, path+"."+k)
			}
		case []any:
			for _, e := range x {
				keys(e, path+"[]")
			}
		}
	}
	for _, name := range fixtures {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "golden", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		keys(doc, "")
	}
	for k, where := range seen {
		// `name` or, for an array, `name[]` / `name[j]`.
		if !strings.Contains(section, "`"+k+"`") && !strings.Contains(section, "`"+k+"[") {
			t.Errorf("JSON field %s (%s) is not in docs/report.md's JSON table", k, where)
		}
	}
}
