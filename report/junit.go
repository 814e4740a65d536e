package report

import (
	"encoding/xml"
	"fmt"
	"io"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/verdict"
)

// JUnit XML, the format every CI system reads: one test case per verdict
// check, so that a failing check shows up by name in the CI's test view,
// with its threshold and measurement as the failure message.
// The XML types below follow the JUnit schema the CI systems read (the
// Jenkins/Ant dialect that GitHub, GitLab and others accept): one
// <testsuites> around one <testsuite>, attributes for the counts.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

// junitProperty is one <property>: the run's identity (run ID, server,
// seed), so a CI system can show what a failing suite measured.
type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// junitCase is one check: a failure or a skip carries the message CI
// shows; a passing case carries nothing.
type junitCase struct {
	ClassName string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure"`
	Skipped   *junitMessage `xml:"skipped"`
}

// junitMessage is the text of a failure or a skip.
type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
}

// NewJUnitReporter renders v as JUnit XML, with the run's identity as
// properties and its warnings as system output.
func NewJUnitReporter(res *harness.Result, v verdict.Verdict) Reporter {
	props := []junitProperty{
		{"run_id", res.RunID}, {"redis", res.Redis}, {"server", serverLine(res.Server)},
		{"seed", fmt.Sprint(res.Seed)}, {"instances", fmt.Sprint(res.Config.Instances)},
		{"duration_s", fmt.Sprint(res.Config.DurationSeconds)}, {"rate", fmt.Sprint(res.Config.Rate)},
	}
	// Warnings go to system-out, where CI systems show them beside the
	// test cases without counting them as failures.
	var out string
	for _, wn := range res.Warnings {
		out += "warning: " + wn + "\n"
	}
	return junitReporter(fmt.Sprintf("%.3f", res.ElapsedSeconds+res.DrainSeconds), res.StartedAt.Format("2006-01-02T15:04:05Z"),
		props, checkCases("redisload.verdict", v.Checks), out)
}

// checkCases makes one test case of each check.
func checkCases(class string, checks []verdict.Check) []junitCase {
	var cases []junitCase
	for _, c := range checks {
		tc := junitCase{ClassName: class, Name: c.ID + ": " + c.Name, Time: "0"}
		msg := fmt.Sprintf("%s: measured %s, threshold %s", c.Name, c.Measured, c.Threshold)
		if c.Reason != "" {
			msg += "; skipped: " + c.Reason
		}
		switch c.Status {
		case verdict.Fail:
			tc.Failure = &junitMessage{Message: msg, Type: "threshold"}
		case verdict.Skip:
			tc.Skipped = &junitMessage{Message: msg}
		}
		cases = append(cases, tc)
	}
	return cases
}

// junitReporter writes one suite of cases, counting its failures and
// skips, as every JUnit rendering does.
func junitReporter(elapsed, timestamp string, props []junitProperty, cases []junitCase, systemOut string) Reporter {
	return func(w io.Writer) error {
		s := junitSuite{Name: "redisload", Time: elapsed, Timestamp: timestamp, Properties: props, Cases: cases,
			SystemOut: systemOut, Tests: len(cases)}
		for _, c := range cases {
			if c.Failure != nil {
				s.Failures++
			}
			if c.Skipped != nil {
				s.Skipped++
			}
		}
		// One suite in the usual <testsuites> wrapper: some CI readers
		// accept only the wrapped form.
		doc := junitSuites{Name: "redisload", Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Time: elapsed,
			Suites: []junitSuite{s}}
		if _, err := io.WriteString(w, xml.Header); err != nil {
			return err
		}
		enc := xml.NewEncoder(w)
		enc.Indent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return err
		}
		_, err := io.WriteString(w, "\n")
		return err
	}
}
