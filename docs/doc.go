// Package docs is the documentation's pages (Markdown, beside this file)
// and the tests that keep them true: every runnable shell block runs, its
// sample output is what it prints, every link resolves, and the flags
// reference is the binary's own --help (docs_test.go; make docs refreshes
// the samples and the reference).
package docs
