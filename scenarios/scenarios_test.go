package scenarios_test

import (
	"strings"
	"testing"

	"github.com/redisload/redisload/scenarios"
)

// Every built-in scenario is a valid configuration.
func TestScenariosValidate(t *testing.T) {
	all := scenarios.All()
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "all-events,extreme,fanout,standard,stress,swarm" {
		t.Fatalf("scenarios %v", all)
	}
	for _, s := range all {
		if err := s.Config.WithDefaults().Validate(); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		if s.Summary == "" {
			t.Errorf("%s has no summary", s.Name)
		}
	}
	if s, err := scenarios.Lookup("stress"); err != nil || s.Config.Instances != 5 || s.Config.Duration.Seconds() != 30 {
		t.Fatalf("stress = %+v, %v", s, err)
	}
}
