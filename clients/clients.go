// Package clients runs the client matrix: each client library's adapter
// (the repository's adapters/, over the instance protocol) through each
// fault scenario it applies to, against servers, clusters and Sentinel
// sets redisload starts, with redisload's own bridge as the reference
// row. Every cell is a harness run, accounted and judged as any other;
// the matrix only puts the numbers that tell clients apart side by side:
// what was lost inside and outside outages, whether and how fast the
// subscriptions came back, and subscribers that went quiet while
// claiming to be connected.
package clients

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/provision"
)

// Client is one row group of the matrix: a client library's adapter.
type Client struct {
	// Name is what Config.Clients takes.
	Name string
	// NoSharded, when set, says why the client cannot do sharded pub/sub;
	// its sharded cells are skipped with it.
	NoSharded string
	// prepare returns the adapter's command line, given the adapters'
	// directory and a scratch directory; nil for redisload's own bridge.
	prepare func(ctx context.Context, dir, tmp string) ([]string, error)
}

// Reference is the name of the row of redisload's own bridge.
const Reference = "redisload"

// All are the clients of the repository's adapters, the reference first.
var All = []Client{
	{Name: Reference},
	{Name: "go-redis", prepare: buildGo},
	{Name: "ioredis", prepare: node("ioredis")},
	{Name: "node-redis", prepare: node("node-redis")},
	{Name: "redis-py", prepare: python, NoSharded: "redis-py 4.3.4 (Debian's python3-redis) has no sharded pub/sub"},
}

// Command returns the command line that runs the client's adapter, given
// the adapters' directory and a scratch directory the caller removes
// (the go-redis adapter is built there); nil for redisload's own bridge.
// An error says what is missing, in one line naming what to install.
func (c Client) Command(ctx context.Context, dir, tmp string) ([]string, error) {
	if c.prepare == nil {
		return nil, nil
	}
	return c.prepare(ctx, dir, tmp)
}

// ErrUnknownClient is a name not in All.
var ErrUnknownClient = errors.New("clients: unknown client")

// Lookup returns the clients named, in All's order; none named is all.
func Lookup(names []string) ([]Client, error) {
	return pick(All, func(c Client) string { return c.Name }, names, ErrUnknownClient)
}

// pick returns the items of all named, in all's order; none named is all.
func pick[T any](all []T, name func(T) string, names []string, unknown error) ([]T, error) {
	if len(names) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []T
	for _, it := range all {
		if want[name(it)] {
			out = append(out, it)
			delete(want, name(it))
		}
	}
	for _, n := range names {
		if want[n] {
			return nil, fmt.Errorf("%w %q (known: %s)", unknown, n, Names(all, name))
		}
	}
	return out, nil
}

// buildGo builds the go-redis adapter once, with the go toolchain.
func buildGo(ctx context.Context, dir, tmp string) ([]string, error) {
	src := filepath.Join(dir, "go-redis")
	if _, err := os.Stat(filepath.Join(src, "main.go")); err != nil {
		return nil, fmt.Errorf("no adapter at %s", src)
	}
	if _, err := exec.LookPath("go"); err != nil {
		return nil, errors.New("go not found (install Go to build the go-redis adapter)")
	}
	bin := filepath.Join(tmp, "go-redis-adapter")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v: %s", src, err, strings.TrimSpace(string(out)))
	}
	return []string{bin}, nil
}

// node is a Node.js adapter whose dependencies npm ci installed.
func node(name string) func(context.Context, string, string) ([]string, error) {
	return func(_ context.Context, dir, _ string) ([]string, error) {
		src := filepath.Join(dir, name)
		if _, err := exec.LookPath("node"); err != nil {
			return nil, errors.New("node not found (install Node.js 20 or later: apt-get install nodejs npm)")
		}
		if _, err := os.Stat(filepath.Join(src, "node_modules")); err != nil {
			return nil, fmt.Errorf("its dependencies are not installed (make adapters, or npm ci in %s)", src)
		}
		return []string{"node", filepath.Join(src, "adapter.js")}, nil
	}
}

// python is the redis-py adapter, on Debian's python3 and python3-redis.
func python(ctx context.Context, dir, _ string) ([]string, error) {
	const py = "/usr/bin/python3"
	if err := exec.CommandContext(ctx, py, "-c", "import redis").Run(); err != nil {
		return nil, errors.New("redis-py not found for /usr/bin/python3 (apt-get install python3-redis)")
	}
	return []string{py, filepath.Join(dir, "redis-py", "adapter.py")}, nil
}

// Scenario is one column group of the matrix: a topology, a pub/sub mode
// and a fault.
type Scenario struct {
	// Name is what Config.Scenarios takes.
	Name string
	// Summary says what happens in it.
	Summary string
	// Mode is the deployment redisload starts: Server, Cluster or Sentinel.
	Mode   provision.Mode
	PubSub bridge.PubSubMode
	// Fault is what happens a third into the run; "" for none.
	Fault harness.FaultAction
	// MaxRecovery is how soon every outage must end for the cell to pass.
	MaxRecovery time.Duration
}

// Scenarios are the matrix's columns, in order.
var Scenarios = []Scenario{
	{Name: "standard", Summary: "one redis-server, no fault", Mode: provision.Server, PubSub: bridge.PubSubClassic},
	{Name: "client-kill", Summary: "the subscribers' connections killed (CLIENT KILL)", Mode: provision.Server,
		PubSub: bridge.PubSubClassic, Fault: harness.FaultClientKill, MaxRecovery: time.Second},
	{Name: "restart", Summary: "the server stopped and started again 1s later", Mode: provision.Server,
		PubSub: bridge.PubSubClassic, Fault: harness.FaultRestart, MaxRecovery: 3 * time.Second},
	{Name: "cluster-failover", Summary: "a cluster's busiest master handed to its replica, classic pub/sub",
		Mode: provision.Cluster, PubSub: bridge.PubSubClassic, Fault: harness.FaultFailover, MaxRecovery: 5 * time.Second},
	{Name: "cluster-failover-sharded", Summary: "the same with sharded pub/sub", Mode: provision.Cluster,
		PubSub: bridge.PubSubSharded, Fault: harness.FaultFailover, MaxRecovery: 5 * time.Second},
	{Name: "slot-migration-sharded", Summary: "the busiest channel's slot moved to another master, sharded pub/sub",
		Mode: provision.Cluster, PubSub: bridge.PubSubSharded, Fault: harness.FaultSlotMigration, MaxRecovery: 2 * time.Second},
	{Name: "sentinel-failover", Summary: "SENTINEL FAILOVER of the master", Mode: provision.Sentinel,
		PubSub: bridge.PubSubClassic, Fault: harness.FaultFailover, MaxRecovery: 5 * time.Second},
}

// ErrUnknownScenario is a name not in Scenarios.
var ErrUnknownScenario = errors.New("clients: unknown scenario")

// LookupScenarios returns the scenarios named, in Scenarios' order; none
// named is all.
func LookupScenarios(names []string) ([]Scenario, error) {
	return pick(Scenarios, func(s Scenario) string { return s.Name }, names, ErrUnknownScenario)
}
