package docs

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/shlex"

	"github.com/redisload/redisload/internal/redistest"
)

var update = flag.Bool("update", false, "rewrite the docs' sample outputs and generated reference from what the commands print now")

// pages are every Markdown page the tests read: the README and docs/.
func pages(t *testing.T) []string {
	t.Helper()
	ps, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"../README.md"}, ps...)
}

// block is one fenced code block of a page.
type block struct {
	info       string   // what follows the opening fence: "sh runnable", "text"
	line       int      // the opening fence's line, from 1
	start, end int      // the body's lines, [start, end) as indexes
	body       []string // the body
}

// blocks returns a page's fenced blocks in order.
func blocks(lines []string) []block {
	var out []block
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "```") {
			continue
		}
		b := block{info: strings.TrimSpace(strings.TrimPrefix(lines[i], "```")), line: i + 1, start: i + 1}
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			b.body = append(b.body, lines[i])
		}
		b.end = i
		out = append(out, b)
	}
	return out
}

// binary is redisload built for these tests.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "redisload")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/redisload")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// docsDuration is what every --duration of a runnable block is cut to
// (DOCS_DURATION, default 2s): the docs show real runs' lengths, the tests
// need minutes, not hours.
func docsDuration(t *testing.T) time.Duration {
	d := 2 * time.Second
	if s := os.Getenv("DOCS_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			t.Fatalf("DOCS_DURATION=%q: want a duration such as 2s", s)
		}
		d = v
	}
	return d
}

var durationFlag = regexp.MustCompile(`--(step-)?duration([= ])(\S+)`)

// shorten cuts every --duration and --step-duration of cmd to at most d.
func shorten(cmd string, d time.Duration) string {
	return durationFlag.ReplaceAllStringFunc(cmd, func(m string) string {
		sub := durationFlag.FindStringSubmatch(m)
		if v, err := time.ParseDuration(sub[3]); err == nil && v > d {
			return "--" + sub[1] + "duration" + sub[2] + d.String()
		}
		return m
	})
}

// commands are a runnable block's commands: one a line, a trailing
// backslash continuing it, comments dropped.
func commands(body []string) []string {
	var out []string
	cur := ""
	for _, l := range body {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, " #"); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		if l = strings.TrimSpace(cur + l); l != "" {
			out = append(out, l)
		}
		cur = ""
	}
	return out
}

var number = regexp.MustCompile(`[0-9]+(?:[.,:][0-9]+)*`)

// shape is a line with its numbers masked and its spacing collapsed: what
// a sample must keep from one run to the next.
func shape(s string) string {
	return strings.Join(strings.Fields(number.ReplaceAllString(s, "#")), " ")
}

// expectedExit is a block's exit status: "exit=N" in its info string, else 0.
func expectedExit(info string) int {
	for _, f := range strings.Fields(info) {
		if v, ok := strings.CutPrefix(f, "exit="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// Every block marked `sh runnable` in the README and docs/ runs, as
// written but for its durations, against a redis-server of the test's own
// (or the deployment it starts itself), and exits as the block says; the
// `text` block right after it holds lines of what its last command
// prints, each found there with only its numbers changed. -update (make
// docs) rewrites those lines from the output.
func TestRunnableBlocks(t *testing.T) {
	redistest.NeedServerBinary(t)
	bin := binary(t)
	srv := redistest.StartOwn(t)
	d := docsDuration(t)
	ran := 0
	for _, page := range pages(t) {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		bs := blocks(lines)
		changed := false
		for k, b := range bs {
			if fs := strings.Fields(b.info); len(fs) < 2 || fs[0] != "sh" || fs[1] != "runnable" {
				continue
			}
			dir := t.TempDir() // files the commands write (baseline.json) land here
			var out []byte
			for _, c := range commands(b.body) {
				args, err := shlex.Split(shorten(c, d))
				if err != nil || len(args) == 0 || args[0] != "redisload" {
					t.Fatalf("%s:%d: %q: a runnable line is a redisload command", page, b.line, c)
				}
				if strings.Contains(c, "--redis=cluster") || strings.Contains(c, "--redis=sentinel") {
					redistest.DeploymentTurn(t) // see DeploymentTurn
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				cmd := exec.CommandContext(ctx, bin, args[1:]...)
				cmd.Dir, cmd.Env = dir, environ(c, srv.URL)
				out, err = cmd.CombinedOutput()
				cancel()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatalf("%s:%d: %s: %v", page, b.line, c, err)
				}
				if want := expectedExit(b.info); code != want {
					t.Errorf("%s:%d: %s: exit %d, the block says %d\n%s", page, b.line, c, code, want, out)
				}
				ran++
			}
			if k+1 >= len(bs) || bs[k+1].info != "text" || nonBlank(lines[b.end+1:bs[k+1].line-1]) {
				continue // no sample under it
			}
			sample := bs[k+1]
			got := strings.Split(string(out), "\n")
			for i, want := range sample.body {
				found := ""
				for _, g := range got {
					if shape(g) == shape(want) {
						found = g
						break
					}
				}
				switch {
				case found == "":
					t.Errorf("%s:%d: no line of the output has the shape of %q:\n%s", page, sample.start+i+1, want, out)
				case *update && found != want:
					lines[sample.start+i], changed = found, true
				}
			}
		}
		if changed {
			if err := os.WriteFile(page, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ran < 5 {
		t.Errorf("%d runnable commands in the docs, the README alone has five tasks", ran)
	}
}

// environ is a command's environment: the test's server as REDIS_URL,
// unless the command says where its server comes from (--redis=server,
// cluster, sentinel start their own and refuse a URL beside them).
func environ(cmd, url string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REDIS_URL=") {
			env = append(env, kv)
		}
	}
	if strings.Contains(cmd, "--redis=") || strings.Contains(cmd, "--redis-url") {
		return env
	}
	return append(env, "REDIS_URL="+url)
}

// nonBlank reports whether any line has text.
func nonBlank(lines []string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			return true
		}
	}
	return false
}

var (
	link    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`^#{1,6} (.*)$`)
)

// anchor is GitHub's anchor of a heading: lower case, punctuation but
// hyphens dropped, spaces as hyphens.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors are a page's headings' anchors (outside code blocks).
func anchors(raw string) map[string]bool {
	out := map[string]bool{}
	fenced := false
	for _, l := range strings.Split(raw, "\n") {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
		}
		if m := heading.FindStringSubmatch(l); m != nil && !fenced {
			out[anchor(m[1])] = true
		}
	}
	return out
}

// Every relative link of the README and docs/ reaches a file of the
// repository, and every #anchor a heading of its page: pages moved or
// renamed leave no dead link.
func TestLinks(t *testing.T) {
	for _, page := range pages(t) {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(raw), -1) {
			target := m[1]
			if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %s: %v", page, target, err)
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			dst, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(string(dst))[frag] {
				t.Errorf("%s: link %s: no heading #%s in %s", page, target, frag, path)
			}
		}
	}
}

// helpCommands are the commands whose --help the flags reference holds.
var helpCommands = [][]string{{"--help"}, {"capacity", "--help"}, {"clients", "--help"}, {"compare", "--help"},
	{"report", "--help"}, {"worker", "--help"}, {"cleanup", "--help"}}

// The flags reference in docs/flags.md is every command's --help, as the
// binary prints it: generated (make docs), never written by hand, so it
// cannot differ from --help.
func TestFlagsReference(t *testing.T) {
	bin := binary(t)
	var gen bytes.Buffer
	for _, args := range helpCommands {
		out, err := exec.Command(bin, args...).CombinedOutput() // worker --help writes to stderr
		if err != nil {
			t.Fatalf("redisload %s: %v", strings.Join(args, " "), err)
		}
		fmt.Fprintf(&gen, "### redisload %s\n\n```text\n%s```\n\n", strings.Join(args, " "), out)
	}
	const begin, end = "<!-- BEGIN generated by make docs: every command's --help -->\n", "<!-- END generated -->"
	raw, err := os.ReadFile("flags.md")
	if err != nil {
		t.Fatal(err)
	}
	page := string(raw)
	i, j := strings.Index(page, begin), strings.Index(page, end)
	if i < 0 || j < i {
		t.Fatalf("flags.md has no generated section (%q … %q)", begin, end)
	}
	if cur := page[i+len(begin) : j]; cur != gen.String() {
		if !*update {
			t.Fatalf("flags.md's reference differs from --help; make docs rewrites it")
		}
		if err := os.WriteFile("flags.md", []byte(page[:i+len(begin)]+gen.String()+page[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Every page is a topic of `redisload help`, and nothing outside them is.
func TestTopics(t *testing.T) {
	ps, _ := filepath.Glob("*.md")
	if got := Topics(); len(got) != len(ps) || len(got) < 10 {
		t.Fatalf("topics %v for pages %v", got, ps)
	}
	if p, ok := Page("faults"); !ok || !strings.HasPrefix(p, "# Faults and scenarios\n") {
		t.Errorf("faults: %v %.40q", ok, p)
	}
	for _, bad := range []string{"../README", "nope", "docs_test.go", "faults.md"} {
		if _, ok := Page(bad); ok {
			t.Errorf("%q is a topic", bad)
		}
	}
}
