package redistest

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// turnWait bounds how long a test waits for its turn with a deployment:
// longer than any package's cluster tests take together, shorter than
// the go test timeout, after which it goes ahead and says so.
const turnWait = 8 * time.Minute

// turn is this process's share of the machine-wide deployment turn: the
// first of its tests to need one takes the lock file, the last to finish
// gives it back. Tests of one package that run in parallel share the
// turn; packages (go test runs two at once on 2 cores) take turns.
var turn struct {
	mu    sync.Mutex
	count int
	f     *os.File
}

// DeploymentTurn makes the test wait until no other test process runs a
// Redis Cluster or Sentinel set, and holds the turn until it ends. Two
// failing over at once, beside the rest of make test, on 2 cores under
// the race detector, slow a failover enough for an exact test of it to
// count a few messages lost outside their outage; one at a time they do
// not. What the tests assert is unchanged.
func DeploymentTurn(t testing.TB) {
	t.Helper()
	turn.mu.Lock()
	if turn.count == 0 {
		turn.f = lockTurn(t)
	}
	turn.count++
	turn.mu.Unlock()
	t.Cleanup(func() {
		turn.mu.Lock()
		defer turn.mu.Unlock()
		if turn.count--; turn.count == 0 && turn.f != nil {
			unlockTurn(turn.f)
			turn.f = nil
		}
	})
}

// turnPath is the machine-wide lock file (a variable for this package's
// own test, which must not compete with the tests running beside it).
var turnPath = filepath.Join(os.TempDir(), "redisload-test-deployments.lock")

// lockTurn takes the machine-wide lock file, waiting at most turnWait;
// nil when it could not (the test goes ahead, saying why).
func lockTurn(t testing.TB) *os.File {
	f, err := os.OpenFile(turnPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Logf("no deployment turn (%v): going ahead", err)
		return nil
	}
	deadline := time.Now().Add(turnWait)
	for {
		ok, err := tryLock(f)
		if ok {
			return f
		}
		if err != nil || time.Now().After(deadline) {
			t.Logf("no deployment turn after %v (%v): going ahead", turnWait, err)
			_ = f.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}
