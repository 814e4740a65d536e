package main

import (
	"context"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// Every visible flag of every command is under exactly one
// heading of its --help: none falls to "Other", none is listed twice, and
// no group names a flag that does not exist.
func TestHelpGroupsCoverEveryFlag(t *testing.T) {
	for name, c := range map[string]struct {
		fs     *pflag.FlagSet
		groups []flagGroup
	}{
		"run":      {newFlagSet(&options{}), runGroups},
		"capacity": {newCapacityFlagSet(&capacityOptions{}), capacityGroups},
		"clients":  {newClientsFlagSet(&clientsOptions{}), clientsGroups},
		"compare":  {newCompareFlagSet(&compareOptions{}), compareGroups},
		"report":   {newReportFlagSet(&reportOptions{}), reportGroups},
		"worker":   {newWorkerFlagSet(&workerOptions{}), workerGroups},
		"cleanup":  {newCleanupFlagSet(&cleanupOptions{}), cleanupGroups},
	} {
		seen := map[string]string{}
		for _, g := range c.groups {
			for _, n := range g.names {
				if c.fs.Lookup(n) == nil {
					t.Errorf("%s: group %q names --%s, which is no flag", name, g.title, n)
				}
				if was, ok := seen[n]; ok {
					t.Errorf("%s: --%s under %q and %q", name, n, was, g.title)
				}
				seen[n] = g.title
			}
		}
		c.fs.VisitAll(func(f *pflag.Flag) {
			if _, ok := seen[f.Name]; !ok && !f.Hidden {
				t.Errorf("%s: --%s is under no heading", name, f.Name)
			}
		})
		if u := groupedUsages(c.fs, c.groups); strings.Contains(u, "Other:") || strings.Count(u, "--") < len(seen) {
			t.Errorf("%s: %s", name, u)
		}
	}
}

// `redisload help TOPIC` prints a documentation page; an unknown topic is
// one line listing the topics, exit 2.
func TestHelpTopic(t *testing.T) {
	code, out, errs := invoke(t, context.Background(), "help", "ci")
	if code != exitPass || !strings.HasPrefix(out, "# CI regression gates\n") || errs != "" {
		t.Fatalf("exit %d\n%.200s\n%s", code, out, errs)
	}
	code, _, errs = invoke(t, context.Background(), "help", "nope")
	if code != exitUsage || !strings.Contains(errs, `help: unknown topic "nope" (topics: capacity, ci, clients,`) {
		t.Fatalf("exit %d: %s", code, errs)
	}
	code, out, _ = invoke(t, context.Background(), "help")
	for _, h := range []string{"\nLoad shape:\n", "\nWhere the server is:\n", "\nSecurity:\n", "\nOutputs:\n", "\nVerdict:\n", "\nWorkers:\n", "\nProfiling:\n", "external-instances"} {
		if code != exitPass || !strings.Contains(out, h) {
			t.Errorf("exit %d: no %q in --help", code, h)
		}
	}
}
