// Package report renders a harness.Result and the verdict.Verdict judged
// on it: ASCII tables for people and CI logs, JSON for machines, Markdown,
// JUnit XML, a self-contained HTML page, HdrHistogram's .hgrm, and the
// compare and capacity tables. Renderers only render: every decision (a
// check's status, a regression) is the verdict package's, so the formats
// can never disagree. Each renderer is a Reporter over one input, and the
// same input gives the same bytes, which the golden tests hold to.
package report
