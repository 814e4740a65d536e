//go:build unix

package provision_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/internal/redistest"
	"github.com/redisload/redisload/provision"
)

// A server redisload started can be stopped, started again on the same
// port, frozen and thawed; Close ends it even while frozen.
func TestServerFaults(t *testing.T) {
	redistest.NeedServerBinary(t)
	inst, err := provision.Start(ctx(t), provision.Options{Mode: provision.Server})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	first := inst.Pid()

	if err := inst.Stop(); err != nil {
		t.Fatal(err)
	}
	if inst.Pid() != 0 || syscall.Kill(first, 0) != syscall.ESRCH {
		t.Fatalf("after Stop: Pid() = %d, process %d still exists", inst.Pid(), first)
	}
	if err := ping(t, inst.URL); err == nil {
		t.Fatal("PING answered while stopped")
	}
	if err := inst.Restart(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := ping(t, inst.URL); err != nil { // same URL, same port
		t.Fatalf("after Restart: %v", err)
	}
	if inst.Pid() == 0 || inst.Pid() == first {
		t.Fatalf("after Restart: Pid() = %d, first was %d", inst.Pid(), first)
	}

	if err := inst.Freeze(); err != nil {
		t.Fatal(err)
	}
	opt, _ := redis.ParseURL(inst.URL)
	opt.MaxRetries, opt.ReadTimeout = -1, 200*time.Millisecond
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.Ping(ctx(t)).Err(); err == nil {
		t.Fatal("PING answered while frozen")
	}
	if err := inst.Thaw(); err != nil {
		t.Fatal(err)
	}
	if err := ping(t, inst.URL); err != nil {
		t.Fatalf("after Thaw: %v", err)
	}

	if err := inst.Freeze(); err != nil {
		t.Fatal(err)
	}
	pid := inst.Pid()
	start := time.Now()
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second || syscall.Kill(pid, 0) != syscall.ESRCH {
		t.Fatalf("Close of a frozen server took %v; process %d exists: %v", took, pid, syscall.Kill(pid, 0))
	}
}

// Servers redisload does not own are never stopped or frozen.
func TestFaultsNeedOwnProcess(t *testing.T) {
	inst, err := provision.Start(context.Background(), provision.Options{Mode: provision.URL, URL: "redis://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"Stop": inst.Stop, "Freeze": inst.Freeze, "Thaw": inst.Thaw,
		"Restart": func() error { return inst.Restart(context.Background()) },
	} {
		if err := f(); !errors.Is(err, provision.ErrNoProcess) {
			t.Errorf("%s: %v, want ErrNoProcess", name, err)
		}
	}
}
