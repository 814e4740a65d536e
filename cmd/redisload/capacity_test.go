package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redisload/redisload/capacity"
	"github.com/redisload/redisload/internal/redistest"
)

// capacityRun runs `redisload capacity` with JSON output and decodes it.
func capacityRun(t *testing.T, args ...string) (int, *capacity.Result) {
	t.Helper()
	srv := redistest.Start(t)
	code, out, errs := invoke(t, context.Background(), append([]string{"capacity", "--redis-url=" + srv.URL,
		"--step-duration=1", "--format=json"}, args...)...)
	var res capacity.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("exit %d, %v\n%s%s", code, err, out, errs)
	}
	return code, &res
}

// Light steps all pass: the knee is beyond --max and the last step is
// the sustainable one; each step's counts are its own run's.
func TestCapacityAllPass(t *testing.T) {
	code, res := capacityRun(t, "--instances=3", "--start=50", "--factor=2", "--max=200", "--key-prefix=cap1:")
	if code != exitPass || len(res.Steps) != 3 || res.Sustainable != 2 {
		t.Fatalf("exit %d, %+v", code, res)
	}
	for i, s := range res.Steps {
		want := 50 << i
		if s.TargetRate != float64(want) || s.Instances != 3 || !s.Passed || s.DeliveryPct != 100 {
			t.Errorf("step %d: %+v, want %d events/s passing", i, s, want)
		}
	}
}

// A limit no step can meet stops at the first: no sustainable capacity,
// exit 1, the reason given.
func TestCapacityKneeAtFirst(t *testing.T) {
	code, res := capacityRun(t, "--start=50", "--max=400", "--max-p99-latency=1ns", "--key-prefix=cap2:")
	if code != exitFail || len(res.Steps) != 1 || res.Sustainable != -1 || !strings.HasPrefix(res.Steps[0].Failed, "p99 ") {
		t.Fatalf("exit %d, %+v", code, res)
	}
}

// On a real server, a load far beyond the machine fails and the search
// bisects between the last pass and the first fail until they are within
// the resolution: every bisected load inside the interval of its time,
// the knee reported the lowest failing load above the highest passing.
func TestCapacityBisects(t *testing.T) {
	code, res := capacityRun(t, "--instances=2", "--start=16000", "--factor=8", "--max=8192000", "--resolution=50%",
		"--key-prefix=cap4:")
	if code != exitPass || res.Sustainable < 0 || res.Knee < 0 || res.Resolution != 50 {
		t.Fatalf("exit %d, %+v", code, res)
	}
	pass, fail := 0.0, 0.0
	for i, s := range res.Steps {
		if s.Bisect {
			if pass == 0 || fail == 0 || s.TargetRate <= pass || s.TargetRate >= fail {
				t.Errorf("step %d: bisected %v outside (%v, %v)", i+1, s.TargetRate, pass, fail)
			}
		}
		switch {
		case s.Passed:
			pass = s.TargetRate
		case fail == 0 || s.TargetRate < fail:
			fail = s.TargetRate
		}
	}
	if got, want := res.Steps[res.Sustainable].TargetRate, pass; got != want {
		t.Errorf("sustainable %v, want the highest pass %v", got, want)
	}
	if got := res.Steps[res.Knee].TargetRate; got != fail || (fail-pass)/pass > 0.5 {
		t.Errorf("knee %v after a pass at %v: want the lowest fail %v, within 50%%", got, pass, fail)
	}
	if res.Steps[0].Bisect || !res.Steps[len(res.Steps)-1].Bisect {
		t.Errorf("%+v: the search did not step, then bisect", res.Steps)
	}
}

// Its flags come from REDISLOAD_<FLAG> too, the command line winning, a
// bad value refused naming the variable.
func TestCapacityFlagsFromEnv(t *testing.T) {
	t.Setenv("REDISLOAD_RESOLUTION", "five")
	code, _, errs := invoke(t, context.Background(), "capacity", "--redis-url=redis://127.0.0.1:1")
	if code != exitUsage || !strings.Contains(errs, "$REDISLOAD_RESOLUTION: invalid argument \"five\" for \"--resolution\" flag: want a percentage such as 5 or 5%") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	t.Setenv("REDISLOAD_RESOLUTION", "-1")
	t.Setenv("REDISLOAD_MAX", "100")
	code, res := capacityRun(t, "--instances=2", "--start=50", "--max=50", "--key-prefix=cap5:")
	if code != exitPass || res.Resolution != -1 || len(res.Steps) != 1 || res.Steps[0].TargetRate != 50 {
		t.Fatalf("exit %d, %+v: want the environment's resolution, the flag's max", code, res)
	}
}

// A server at its maxclients is the knee of a search over instances: the
// step it refuses fails (whether Redis's refusal arrives or is lost with
// the reset), and the bisection finds the last count it takes, one
// instance below the first it refuses.
func TestCapacityKneeAtMaxClients(t *testing.T) {
	srv := redistest.StartOwn(t, "--maxclients", "14")
	code, out, errs := invoke(t, context.Background(), "capacity", "--redis-url="+srv.URL, "--vary=instances", "--start=2",
		"--max=16", "--rate=20", "--step-duration=1", "--format=json", "--key-prefix=cap6:")
	var res capacity.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitPass || res.Sustainable < 0 || res.Knee < 0 {
		t.Fatalf("exit %d, %v\n%s\n%s", code, err, out, errs)
	}
	s, k := res.Steps[res.Sustainable], res.Steps[res.Knee]
	if k.Instances != s.Instances+1 || !strings.Contains(k.Failed, "the server") || !strings.Contains(k.Failed, "maxclients") &&
		!strings.Contains(k.Failed, "max number of clients") {
		t.Errorf("sustainable %d instances, knee %d (%q): want one apart, the knee the server's limit", s.Instances, k.Instances, k.Failed)
	}
}

// Varying instances at a fixed rate, additively.
func TestCapacityVaryInstances(t *testing.T) {
	code, res := capacityRun(t, "--vary=instances", "--start=2", "--step=1", "--max=3", "--rate=40", "--key-prefix=cap3:")
	if code != exitPass || len(res.Steps) != 2 || res.Steps[0].Instances != 2 || res.Steps[1].Instances != 3 ||
		res.Steps[1].TargetRate != 40 || res.Vary != capacity.VaryInstances {
		t.Fatalf("exit %d, %+v", code, res)
	}
}

func TestCapacityUsageErrors(t *testing.T) {
	if code, out, _ := invoke(t, context.Background(), "capacity", "--help"); code != exitPass ||
		!strings.Contains(out, "Usage: redisload capacity [flags]") || !strings.Contains(out, "--vary") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
	for _, tc := range []struct{ args, want string }{
		{"--vary=memory", "--vary must be rate or instances"},
		{"--factor=1", "--factor must be above 1 (or give a positive --step)"},
		{"--resolution=0.01%", "--resolution must be a percentage from 0.1 to 100"},
		{"--resolution=five", "want a percentage such as 5 or 5%"},
		{"--start=100 --max=10", "--max (10) must be at least --start (100)"},
		{"--min-achieved=NaN", "--min-achieved must be a percentage from 0 to 100, or -1 for no check, got NaN"},
		{"--format=xml", "--format must be one of table, html, json, junit, markdown"},
		{"--event-types=weather", "--event-types:"},
		{"extra", "unexpected argument"},
	} {
		code, _, errs := invoke(t, context.Background(), append([]string{"capacity"}, strings.Fields(tc.args)...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 2 {
			t.Errorf("%s: exit %d\n%s", tc.args, code, errs)
		}
	}
}

// capacity takes the password from the environment like a run does, and
// never prints it.
func TestCapacityPasswordFromEnv(t *testing.T) {
	srv := redistest.StartOwn(t, "--requirepass", "capa-secret-9")
	t.Setenv("CAPA_PW", "capa-secret-9")
	code, out, errs := invoke(t, context.Background(), "capacity", "--redis-url="+srv.URL, "--redis-password-env=CAPA_PW",
		"--start=50", "--max=50", "--step-duration=1", "--instances=2")
	if code != exitPass || !strings.Contains(out, "Sustainable capacity: 2 instances at 50 events/s") ||
		strings.Contains(out+errs, "capa-secret-9") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
}

// capacity against a local cluster: the steps run spread over its nodes,
// and the sweep tears the cluster down after.
func TestCapacityOnACluster(t *testing.T) {
	redistest.NeedServerBinary(t)
	redistest.DeploymentTurn(t) // see DeploymentTurn
	before := serverChildren(t)
	code, out, errs := invoke(t, context.Background(), "capacity", "--redis=cluster", "--cluster-replicas=-1",
		"--start=100", "--max=200", "--step-duration=0.5", "--instances=3", "--channels-per-type=4", "--format=json")
	if code != exitPass {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var res capacity.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Steps) != 2 || res.Sustainable != 1 {
		t.Fatalf("%v: %+v", err, res)
	}
	if n := serverChildren(t); n != before {
		t.Errorf("%d redis-server children left, %d before", n, before)
	}
}

// A sweep over spawned workers: every step is a run over them, the
// client CPU is theirs, and none is left running afterwards. The steps
// vary instances from 2 over 3 workers, so the first has fewer instances
// than workers.
func TestCapacityOverWorkers(t *testing.T) {
	code, res := capacityRun(t, "--spawn-workers=3", "--vary=instances", "--start=2", "--step=1", "--max=4", "--rate=100", "--key-prefix=capw:")
	if code != exitPass || len(res.Steps) != 3 || res.Sustainable != 2 {
		t.Fatalf("exit %d, %+v", code, res)
	}
	for i, s := range res.Steps {
		if s.Instances != i+2 || !s.Passed || s.ClientCPUPct <= 0 {
			t.Errorf("step %d: %+v", i, s)
		}
	}
	if left := workerChildren(t); len(left) != 0 {
		t.Errorf("worker processes left: %v", left)
	}
}
