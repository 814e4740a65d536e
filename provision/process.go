package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redisload/redisload/internal/procgroup"
)

// ErrNoProcess is returned by the fault methods of an Instance whose server
// is not a process redisload started (URL, Container and Embedded modes):
// redisload never stops or freezes a server it does not own.
var ErrNoProcess = errors.New("only a redis-server started by redisload (--redis=server) can be stopped, restarted or frozen")

// serverProc is a redis-server child that can be stopped and started again
// on the same port, or frozen, for fault scripts.
type serverProc struct {
	bin  string
	port int
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil while stopped
	exited chan struct{} // closed when cmd has been waited for
	frozen bool
}

func (p *serverProc) addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
}

// start runs the server and waits until it answers PING, at most 5 s.
func (p *serverProc) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	cmd := exec.Command(p.bin, p.args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that the terminal's Ctrl-C reaches only
	// redisload, which drains and reports before stopping the server; on
	// Linux it dies with redisload, so that none is ever left behind.
	if err := procgroup.Start(cmd); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	deadline := time.Now().Add(5 * time.Second)
	for !answers(ctx, p.addr()) {
		select {
		case <-exited:
			p.cmd = nil
			return fmt.Errorf("redis-server exited: %s", lastLine(out.String()))
		default:
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			p.stopLocked()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("redis-server on port %d did not answer PING within 5s", p.port)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// stop ends the server; stopping a stopped server does nothing.
func (p *serverProc) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
	return nil
}

func (p *serverProc) stopLocked() {
	if p.cmd == nil {
		return
	}
	// SIGTERM lets redis-server exit cleanly; a frozen one cannot act on
	// it, so it gets SIGKILL after a second.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd, p.frozen = nil, false
}

// kill ends the server at once (SIGKILL), as a crashed or killed host
// would: no shutdown, no goodbye to its cluster.
func (p *serverProc) kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return errors.New("redis-server is not running")
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd, p.frozen = nil, false
	return nil
}

// signal sends a freeze or thaw signal to the running server.
func (p *serverProc) signal(freeze bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return errors.New("redis-server is not running")
	}
	if p.frozen == freeze {
		return nil
	}
	if err := signalFreeze(p.cmd.Process, freeze); err != nil {
		return err
	}
	p.frozen = freeze
	return nil
}

// Pid returns the process ID of the redis-server child, or 0 when there is
// none (another mode, or stopped).
func (i *Instance) Pid() int {
	if i.proc == nil {
		return 0
	}
	i.proc.mu.Lock()
	defer i.proc.mu.Unlock()
	if i.proc.cmd == nil {
		return 0
	}
	return i.proc.cmd.Process.Pid
}

// Stop stops the server, closing every client connection, until Restart.
// Server mode only: otherwise ErrNoProcess.
func (i *Instance) Stop() error {
	if i.proc == nil {
		return ErrNoProcess
	}
	return i.proc.stop()
}

// Kill kills the server at once (SIGKILL), as a crash would: no shutdown,
// no last sync of an append-only file. Restart starts it again. Server
// mode only.
func (i *Instance) Kill() error {
	if i.proc == nil {
		return ErrNoProcess
	}
	return i.proc.kill()
}

// Restart starts a stopped server again on the same port, with the same
// arguments and directory: no data, unless it was started Persistent,
// when it loads its append-only file. It returns once the server answers
// PING. A running server is left alone. Server mode only.
func (i *Instance) Restart(ctx context.Context) error {
	if i.proc == nil {
		return ErrNoProcess
	}
	return i.proc.start(ctx)
}

// Freeze suspends the server process (SIGSTOP): connections stay open and
// nothing is answered until Thaw, as with a server stalled by the kernel,
// swapping or a long fork. Server mode on Unix only.
func (i *Instance) Freeze() error {
	if i.proc == nil {
		return ErrNoProcess
	}
	return i.proc.signal(true)
}

// Thaw resumes a frozen server (SIGCONT).
func (i *Instance) Thaw() error {
	if i.proc == nil {
		return ErrNoProcess
	}
	return i.proc.signal(false)
}

// ErrNotMember is returned by KillNode for an address that is not one of
// the instance's own servers.
var ErrNotMember = errors.New("not a server redisload started in this deployment")

// KillNode kills the server at addr (host:port), one of the nodes of a
// Cluster-mode instance or the master or replica of a Sentinel-mode one,
// with SIGKILL: the deployment's failover is what is being tested. It is
// not started again; Close stops the rest.
func (i *Instance) KillNode(addr string) error {
	for _, m := range i.members {
		if m.proc != nil && m.proc.addr() == addr {
			return m.proc.kill()
		}
	}
	return fmt.Errorf("%w: %s", ErrNotMember, addr)
}
