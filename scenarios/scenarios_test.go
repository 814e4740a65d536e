package scenarios_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/scenarios"
)

// Every built-in scenario is a valid configuration.
func TestScenariosValidate(t *testing.T) {
	all := scenarios.All()
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "all-events,client-kill,crash,extreme,failover,fanout,hang,latency,master-kill,partition,restart,slot-migration,slow-consumer,standard,stress,swarm" {
		t.Fatalf("scenarios %v", names)
	}
	for _, s := range all {
		cfg := s.Config.WithDefaults()
		if s.NeedsServer() {
			// Without a server to stop, the fault script is refused...
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "needs a redis-server that redisload started") {
				t.Errorf("%s without a server: %v", s.Name, err)
			}
			cfg.Server = noServer{} // ...and with one it is valid.
		}
		if harness.NeedsDeployment(s.Config.Faults) {
			// Likewise for a cluster or Sentinel set to fail over.
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "needs a Redis Cluster or Sentinel set that redisload started") {
				t.Errorf("%s without a deployment: %v", s.Name, err)
			}
			cfg.Deployment = noServer{}
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		// A fault scenario judges by its own thresholds: recovery and loss
		// inside outages where connections drop, latency where they do not.
		if (len(s.Config.Faults) > 0) != (s.Thresholds != nil) {
			t.Errorf("%s: %d faults, thresholds %+v", s.Name, len(s.Config.Faults), s.Thresholds)
		}
		if s.Summary == "" {
			t.Errorf("%s has no summary", s.Name)
		}
	}
	if s, err := scenarios.Lookup("stress"); err != nil || s.Config.Instances != 5 || s.Config.Duration.Seconds() != 30 {
		t.Fatalf("stress = %+v, %v", s, err)
	}
}

// noServer stands for a server the scenario may stop; validation only
// needs to know there is one.
type noServer struct{}

func (noServer) Stop() error                   { return nil }
func (noServer) Kill() error                   { return nil }
func (noServer) Restart(context.Context) error { return nil }
func (noServer) Freeze() error                 { return nil }
func (noServer) Thaw() error                   { return nil }

// The fault scenarios that stop or freeze the server say so, and only they.
func TestNeedsServer(t *testing.T) {
	for _, s := range scenarios.All() {
		want := s.Name == "restart" || s.Name == "crash" || s.Name == "hang" || s.Name == "slow-consumer"
		if s.NeedsServer() != want {
			t.Errorf("%s: NeedsServer() = %v", s.Name, !want)
		}
	}
}

// KillNode lets noServer stand for a cluster too.
func (noServer) KillNode(string) error { return nil }
