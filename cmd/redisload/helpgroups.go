package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/redisload/redisload/docs"
)

// flagGroup is one heading of a command's --help and the flags under it.
type flagGroup struct {
	title string
	names []string
}

// runGroups are the load run's flags by what a user is deciding: 80 flags
// in one column cannot be scanned.
var runGroups = []flagGroup{
	{"Load shape", []string{"scenario", "scenario-file", "instances", "duration", "rate", "warmup", "stages", "max-inflight",
		"publishers", "dedicated-publishers", "pipeline", "payload-size", "batch-window", "event-types", "seed", "repeat"}},
	{"Where the server is", []string{"redis", "redis-url", "cluster-masters", "cluster-replicas", "placement", "channels-per-type",
		"pubsub", "transport", "stream-maxlen", "sentinel", "sentinel-master", "redis-server-arg", "redis-image", "key-prefix",
		"drain-timeout", "connect-timeout"}},
	{"Security", []string{"redis-username", "redis-password-env", "tls-ca", "tls-cert", "tls-key", "tls-insecure"}},
	{"Instances in other processes (client adapters)", []string{"instance-cmd", "external-instances"}},
	{"Workers", []string{"workers", "spawn-workers", "control-url", "join-timeout"}},
	{"Outputs", []string{"format", "output", "json-out", "markdown-out", "junit-out", "html", "metrics-addr", "series-out",
		"hdr-out", "hdr-out-dir", "matrix", "verbose", "quiet", "progress"}},
	{"Verdict", []string{"min-delivery", "max-errors", "max-avg-latency", "max-p99-latency", "max-duplicates", "max-recovery",
		"loss-only-in-outages", "baseline", "max-regression", "baseline-mismatch"}},
	{"Profiling", []string{"cpuprofile", "memprofile"}},
	{"This program", []string{"version", "help"}},
}

// capacityGroups are `redisload capacity`'s.
var capacityGroups = []flagGroup{
	{"The search", []string{"vary", "start", "factor", "step", "max", "step-duration", "resolution", "min-achieved"}},
	{"Load shape of each step", []string{"instances", "rate", "event-types"}},
	{"Verdict of each step", []string{"min-delivery", "max-p99-latency"}},
	{"Where the server is", []string{"redis", "redis-url", "cluster-masters", "cluster-replicas", "placement", "channels-per-type",
		"pubsub", "transport", "stream-maxlen", "redis-server-arg", "key-prefix"}},
	{"Security", []string{"redis-username", "redis-password-env", "tls-ca", "tls-cert", "tls-key", "tls-insecure"}},
	{"Workers", []string{"spawn-workers", "join-timeout"}},
	{"Outputs", []string{"format", "output", "help"}},
}

// The other subcommands' groups: short lists, headed all the same, so
// that every --help reads alike.
var (
	clientsGroups = []flagGroup{
		{"What to run", []string{"clients", "scenarios", "adapters-dir", "instances", "duration", "rate"}},
		{"Verdict", []string{"baseline"}},
		{"Outputs", []string{"format", "output", "help"}},
	}
	compareGroups = []flagGroup{
		{"Verdict", []string{"max-regression"}},
		{"Outputs", []string{"format", "help"}},
	}
	reportGroups = []flagGroup{
		{"Beside the report", []string{"baseline"}},
		{"Outputs", []string{"format", "output", "html", "matrix", "help"}},
	}
	workerGroups = []flagGroup{
		{"Where the runs are announced", []string{"control-url", "run-id", "join-timeout", "once"}},
		{"Where the server is", []string{"redis-url"}},
		{"Outputs", []string{"verbose"}},
	}
	cleanupGroups = []flagGroup{
		{"Where the server is", []string{"redis-url", "key-prefix"}},
		{"Security", []string{"redis-username", "redis-password-env", "tls-ca", "tls-cert", "tls-key", "tls-insecure"}},
		{"What to do", []string{"dry-run", "json"}},
	}
)

// groupedUsages is fs's flags under groups' headings, each group in its
// own order; a visible flag no group names comes last, under "Other",
// so that a flag added without a group still shows (a test keeps that
// group empty).
func groupedUsages(fs *pflag.FlagSet, groups []flagGroup) string {
	var b strings.Builder
	placed := map[string]bool{}
	for _, g := range groups {
		part := pflag.NewFlagSet(g.title, pflag.ContinueOnError)
		part.SortFlags = false
		for _, n := range g.names {
			if f := fs.Lookup(n); f != nil && !f.Hidden {
				part.AddFlag(f)
				placed[n] = true
			}
		}
		if part.HasFlags() {
			fmt.Fprintf(&b, "%s:\n%s\n", g.title, part.FlagUsages())
		}
	}
	other := pflag.NewFlagSet("other", pflag.ContinueOnError)
	other.SortFlags = false
	fs.VisitAll(func(f *pflag.Flag) {
		if !placed[f.Name] && !f.Hidden {
			other.AddFlag(f)
		}
	})
	if other.HasFlags() {
		fmt.Fprintf(&b, "Other:\n%s\n", other.FlagUsages())
	}
	return b.String()
}

// runHelpTopic is `redisload help TOPIC`: a page of the documentation,
// embedded in the binary, for the long explanations --help leaves out.
func runHelpTopic(topic string, stdout, stderr io.Writer) int {
	page, ok := docs.Page(topic)
	if !ok {
		return usageErrors(stderr, "redisload")("help: unknown topic %q (topics: %s)", topic, strings.Join(docs.Topics(), ", "))
	}
	fmt.Fprint(stdout, page)
	return exitPass
}

// wrapList joins items with ", " into lines of at most width columns, each
// starting with indent.
func wrapList(items []string, indent string, width int) string {
	var lines []string
	line := indent
	for i, it := range items {
		if i < len(items)-1 {
			it += ","
		}
		if line != indent && len(line)+1+len(it) > width {
			lines, line = append(lines, line), indent
		}
		if line != indent {
			line += " "
		}
		line += it
	}
	return strings.Join(append(lines, line), "\n")
}
