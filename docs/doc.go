// Package docs is the documentation's pages (Markdown, beside this file)
// and the tests that keep them true: every runnable shell block runs, its
// sample output is what it prints, every link resolves, and the flags
// reference is the binary's own --help (docs_test.go; make docs refreshes
// the samples and the reference). The pages are embedded, so that
// `redisload help TOPIC` prints the one a user asks for, offline and at
// the binary's own version.
package docs

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.md
var embedded embed.FS

// Topics are the pages' names, without ".md", sorted.
func Topics() []string {
	names, _ := fs.Glob(embedded, "*.md")
	for i, n := range names {
		names[i] = strings.TrimSuffix(n, ".md")
	}
	sort.Strings(names)
	return names
}

// Page returns the text of the page topic names, and whether there is one.
func Page(topic string) (string, bool) {
	if strings.ContainsAny(topic, "/\\.") {
		return "", false
	}
	b, err := embedded.ReadFile(topic + ".md")
	return string(b), err == nil
}
