//go:build unix

package redistest

import (
	"os"
	"path/filepath"
	"testing"
)

// A test's turn holds the machine-wide lock file until the test ends, and
// parallel tests of one process share it: another process (here another
// open of the file, which flock treats alike) waits, then gets it.
func TestDeploymentTurn(t *testing.T) {
	// A lock file of its own: the machine's is other packages' to take.
	old := turnPath
	turnPath = filepath.Join(t.TempDir(), "turn.lock")
	defer func() { turnPath = old }()
	other, err := os.OpenFile(turnPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	t.Run("held", func(t *testing.T) {
		DeploymentTurn(t)
		DeploymentTurn(t) // a second need in the same process shares it
		if ok, err := tryLock(other); ok || err != nil {
			t.Fatalf("another process got the turn while a test held it (%v)", err)
		}
	})
	ok, err := tryLock(other)
	if !ok || err != nil {
		t.Fatalf("the turn was not given back when the test ended (%v)", err)
	}
	unlockTurn(other)
}
