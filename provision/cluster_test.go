//go:build unix

package provision_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/provision"
)

// Cluster mode starts 3 masters with a replica each, every slot served,
// every node agreeing the cluster is ok; Close leaves nothing listening.
func TestClusterMode(t *testing.T) {
	redistest.NeedServerBinary(t)
	redistest.DeploymentTurn(t) // see DeploymentTurn
	start := time.Now()
	inst, err := provision.Start(ctx(t), provision.Options{Mode: provision.Cluster})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	t.Logf("cluster ok after %v", time.Since(start))
	if inst.Mode != provision.Cluster || len(inst.Nodes) != 6 || inst.URL != "redis://"+inst.Nodes[0] {
		t.Fatalf("instance %+v", inst)
	}
	masters, replicas := 0, 0
	for _, addr := range inst.Nodes {
		c := redis.NewClient(&redis.Options{Addr: addr})
		info, err := c.ClusterInfo(ctx(t)).Result()
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:6") {
			t.Errorf("%s: %v\n%s", addr, err, info)
		}
		role, err := c.Do(ctx(t), "ROLE").Slice()
		if err == nil && role[0] == "master" {
			masters++
		} else if err == nil && role[0] == "slave" {
			replicas++
		}
		_ = c.Close()
	}
	if masters != 3 || replicas != 3 {
		t.Fatalf("%d masters, %d replicas, want 3 and 3", masters, replicas)
	}
	// A cluster client routes by slot across the masters.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: inst.Nodes})
	for i := range 20 {
		if err := cc.Set(ctx(t), "k"+strings.Repeat("x", i), i, 0).Err(); err != nil {
			t.Fatalf("SET through the cluster: %v", err)
		}
	}
	_ = cc.Close()
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range inst.Nodes {
		if ping(t, "redis://"+addr) == nil {
			t.Errorf("%s still answers after Close", addr)
		}
	}
}

// Bad cluster shapes are refused before anything starts.
func TestClusterModeRefusesBadShapes(t *testing.T) {
	for _, o := range []provision.Options{{Mode: provision.Cluster, ClusterMasters: 17}, {Mode: provision.Cluster, ClusterReplicas: 5}} {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		inst, err := provision.Start(c, o)
		cancel()
		if err == nil {
			_ = inst.Close()
			t.Errorf("%+v: started", o)
		}
	}
}

// Sentinel mode: a master, its replica, three sentinels that agree on
// both; Close leaves nothing listening.
func TestSentinelMode(t *testing.T) {
	redistest.NeedServerBinary(t)
	redistest.DeploymentTurn(t) // see DeploymentTurn
	start := time.Now()
	inst, err := provision.Start(ctx(t), provision.Options{Mode: provision.Sentinel})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	t.Logf("sentinels agree after %v", time.Since(start))
	if inst.Mode != provision.Sentinel || len(inst.Sentinels) != 3 || len(inst.Nodes) != 2 || inst.MasterName != "mymaster" {
		t.Fatalf("instance %+v", inst)
	}
	// A client that asks the sentinels finds the master and writes to it.
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: inst.MasterName, SentinelAddrs: inst.Sentinels})
	if err := fc.Set(ctx(t), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the sentinels: %v", err)
	}
	_ = fc.Close()
	rc := redis.NewClient(&redis.Options{Addr: inst.Nodes[1]})
	role, err := rc.Do(ctx(t), "ROLE").Slice()
	_ = rc.Close()
	if err != nil || role[0] != "slave" {
		t.Fatalf("the second node: %v %v, want a replica", role, err)
	}
	if !strings.HasPrefix(inst.SentinelURL, "redis+sentinel://"+inst.Sentinels[0]+",") || !strings.HasSuffix(inst.SentinelURL, "/mymaster") {
		t.Errorf("sentinel URL %q", inst.SentinelURL)
	}
	// KillNode kills its own servers only, at once.
	if err := inst.KillNode(inst.Sentinels[0]); !errors.Is(err, provision.ErrNotMember) {
		t.Errorf("KillNode of a sentinel: %v, want ErrNotMember", err)
	}
	if err := inst.KillNode(inst.Nodes[1]); err != nil {
		t.Fatal(err)
	}
	if ping(t, "redis://"+inst.Nodes[1]) == nil {
		t.Errorf("the killed replica still answers")
	}
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range append(inst.Nodes, inst.Sentinels...) {
		if ping(t, "redis://"+addr) == nil {
			t.Errorf("%s still answers after Close", addr)
		}
	}
}

// Cluster ports and their bus ports are distinct, outside what is used
// already, and below the kernel's ephemeral range, where no outgoing
// connection can take one between the check and the bind.
func TestClusterPortsBelowEphemeral(t *testing.T) {
	used := map[int]bool{}
	first, err := provision.ClusterPorts(6, used)
	if err != nil {
		t.Fatal(err)
	}
	more, err := provision.ClusterPorts(6, used)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	low := provision.EphemeralLow()
	for _, p := range append(first, more...) {
		for _, q := range []int{p, p + 10000} {
			if seen[q] || q >= low || q < 10000 {
				t.Errorf("port %d: twice, or outside [10000, %d)", q, low)
			}
			seen[q] = true
		}
	}
	if len(used) != 24 {
		t.Errorf("%d ports marked used, want 24", len(used))
	}
}
