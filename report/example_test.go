package report_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/redisload/redisload/report"
)

// A saved JSON report rendered again as Markdown, with the verdict it was
// judged by: report.New picks the renderer by format name, and the
// renderer writes to any io.Writer.
func ExampleNew() {
	doc, err := report.ReadFile("../testdata/golden/pass-5.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := report.New("markdown", report.Run, report.Input{Result: doc.Result, Verdict: doc.Verdict, Version: doc.Version})
	if err != nil {
		fmt.Println(err)
		return
	}
	var b strings.Builder
	if err := r(&b); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.SplitN(b.String(), "\n", 2)[0])
	_, err = report.New("pdf", report.Run, report.Input{Result: doc.Result})
	fmt.Fprintln(os.Stdout, err != nil)
	// Output:
	// ## redisload: PASS
	// true
}
