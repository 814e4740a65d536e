package harness

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/procgroup"
)

// External instances (Config.InstanceCmd) are processes of another
// language and client library, adapters that speak the instance protocol
// to a bridge.Bridge of the run's (bridge.ExternalOptions). The run starts
// one per instance, in a process group of its own, and ends it with its
// group: whatever it does, nothing is left running. Its standard error is
// kept, the last of it, for the report of an adapter that misbehaved.

// ErrAdapter wraps a failure to start an instance's adapter: its command
// not found, not executable.
var ErrAdapter = errors.New("instance adapter")

// ErrAdapterFailed wraps an adapter's failure to connect its client: it
// never said hello, ended, or answered with an error (its words, and the
// last of its standard error, are in the message).
var ErrAdapterFailed = errors.New("its adapter failed")

// AdapterReport is what one external instance's adapter was and did.
type AdapterReport struct {
	// Command is the adapter's command line.
	Command string `json:"command"`
	// PID is the adapter's process ID.
	PID int `json:"pid"`
	bridge.ExternalInfo
	// Exit is how the process ended: "exit status 0", "killed" (it did
	// not stop within a second of being asked).
	Exit string `json:"exit"`
	// StderrBytes is how much it wrote to its standard error, and
	// StderrTail the last of it (up to 2 KiB).
	StderrBytes int64  `json:"stderr_bytes"`
	StderrTail  string `json:"stderr_tail,omitempty"`
}

// Misbehaved reports whether the adapter broke the protocol, died before
// it was asked to stop, did not stop when asked, or dropped as its own a
// message that was not: what makes its standard error worth reading.
func (a *AdapterReport) Misbehaved() bool {
	return a.ProtocolErrors > 0 || a.Exited != "" || a.NotOwnFiltered > 0 || a.FutureStamps > 0 || a.Exit != "exit status 0"
}

// adapterClockTolerance is how far an adapter's receive stamps may be off
// this process's clock: runtimes without a microsecond wall clock (Node's
// is its monotonic clock plus an origin) are some tens of µs off. Within
// it a receipt before its send counts as negative latency, not forged.
const adapterClockTolerance = time.Millisecond

// stderrTail bounds what is kept of an adapter's standard error.
const stderrTail = 2 << 10

// adapterProc is one running adapter.
type adapterProc struct {
	cmd    *exec.Cmd
	line   string
	stdin  io.WriteCloser
	stdout io.ReadCloser
	exited chan struct{}
	exit   string

	stopped sync.Once

	mu     sync.Mutex
	hung   string // why it was killed while running, if it was
	tail   []byte // the last stderrTail bytes
	nbytes int64
	copied chan struct{} // stderr read to its end
}

// Write keeps the tail of the adapter's standard error.
func (p *adapterProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nbytes += int64(len(b))
	p.tail = append(p.tail, b...)
	if len(p.tail) > stderrTail {
		p.tail = append(p.tail[:0], p.tail[len(p.tail)-stderrTail:]...)
	}
	return len(b), nil
}

// adapterConn is the adapter's end of the protocol: its stdin to write,
// its stdout to read.
type adapterConn struct{ p *adapterProc }

func (c adapterConn) Read(b []byte) (int, error) { return c.p.stdout.Read(b) }

// adapterWriteTimeout is how long an adapter may leave its input unread
// while redisload has a line for it (the publish timeout's default).
const adapterWriteTimeout = 5 * time.Second

// Write writes to the adapter's standard input, bounded: an adapter that
// stops reading it (hung, or blocked in a call that never returns) would
// otherwise block its instance's publisher for ever once the pipe's
// buffer is full, and the run with it. Past adapterWriteTimeout without
// room it counts as hung: its group is killed, which ends its output, and
// every later call on it fails at once.
func (c adapterConn) Write(b []byte) (int, error) {
	if d, ok := c.p.stdin.(interface{ SetWriteDeadline(time.Time) error }); ok {
		_ = d.SetWriteDeadline(time.Now().Add(adapterWriteTimeout))
	}
	n, err := c.p.stdin.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.p.mu.Lock()
		c.p.hung = fmt.Sprintf("killed: it left its input unread for %v", adapterWriteTimeout)
		c.p.mu.Unlock()
		procgroup.Kill(c.p.cmd)
	}
	return n, err
}

// Close closes the adapter's stdin (it reads the end of its input) and
// stdout.
func (c adapterConn) Close() error {
	err := c.p.stdin.Close()
	_ = c.p.stdout.Close()
	return err
}

// FindAdapter checks that argv's program can be run, and says what to
// install when it cannot: a caller checks before it starts anything.
func FindAdapter(argv []string) (string, error) {
	if len(argv) == 0 || argv[0] == "" {
		return "", fmt.Errorf("%w: no program", ErrAdapter)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v%s", ErrAdapter, argv[0], err, installHint(argv[0]))
	}
	return path, nil
}

// startAdapter starts argv as the adapter of one instance.
func startAdapter(argv []string) (*adapterProc, error) {
	path, err := FindAdapter(argv)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, argv[1:]...)
	p := &adapterProc{cmd: cmd, line: strings.Join(argv, " "), exited: make(chan struct{}), copied: make(chan struct{})}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAdapter, err)
	}
	// Not StdoutPipe: Wait would close it as the process exits, before the
	// bridge has read the last lines the adapter wrote.
	stdout, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAdapter, err)
	}
	p.stdout, cmd.Stdout = stdout, w
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAdapter, err)
	}
	err = procgroup.Start(cmd)
	_ = w.Close() // the child's now
	if err != nil {
		_ = stdout.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrAdapter, p.line, err)
	}
	// Read to its end whatever it writes, however much: an adapter that
	// floods its standard error never blocks on it.
	go func() {
		defer close(p.copied)
		_, _ = io.Copy(p, stderr)
	}()
	go func() {
		<-p.copied // Wait closes the pipes: read them out first
		err := cmd.Wait()
		p.exit = "exit status 0"
		if err != nil {
			p.exit = err.Error()
		}
		close(p.exited)
	}()
	return p, nil
}

// installHint says what to install when an adapter's runtime is missing.
func installHint(bin string) string {
	switch bin {
	case "node", "npm", "npx":
		return " (install Node.js 20 or later, e.g. apt-get install nodejs npm, then npm ci in the adapter's directory)"
	case "python3", "/usr/bin/python3":
		return " (install Python 3 and its Redis client, e.g. apt-get install python3 python3-redis)"
	case "go":
		return " (install Go, or build the adapter once: go build -o bin/go-redis-adapter ./adapters/go-redis)"
	}
	return ""
}

// stop ends the adapter: it has been asked to (its bridge's Close), and
// gets a second to; then its whole group is killed.
func (p *adapterProc) stop() { p.stopped.Do(p.end) }

// end is stop, once.
func (p *adapterProc) end() {
	select {
	case <-p.exited:
	case <-time.After(time.Second):
		procgroup.Kill(p.cmd)
		<-p.exited
		p.exit = "killed: it did not stop within a second of being asked"
	}
	procgroup.Kill(p.cmd) // what it started and left behind
}

// report is the adapter's report, once stopped.
func (p *adapterProc) report(b *bridge.Bridge) *AdapterReport {
	r := &AdapterReport{Command: p.line, PID: p.cmd.Process.Pid, Exit: p.exit}
	if info, ok := b.External(); ok {
		r.ExternalInfo = info
	}
	p.mu.Lock()
	r.StderrBytes, r.StderrTail = p.nbytes, b.Redact(strings.TrimSpace(string(p.tail)))
	if p.hung != "" {
		r.Exit = p.hung
	}
	p.mu.Unlock()
	return r
}

// adapters are the run's adapter processes, by instance; nil for an
// instance of redisload's own.
type adapters []*adapterProc

// start starts the adapters of cfg's external instances.
func startAdapters(cfg Config) (adapters, error) {
	if len(cfg.InstanceCmd) == 0 {
		return nil, nil
	}
	as := make(adapters, cfg.Instances)
	for i := range cfg.externalInstances() {
		p, err := startAdapter(cfg.InstanceCmd)
		if err != nil {
			as.stop()
			return nil, fmt.Errorf("instance %d: %w", i, err)
		}
		as[i] = p
	}
	return as, nil
}

// stop ends every adapter, at once for those whose bridge was never
// connected (nothing asked them to stop).
func (as adapters) stop() {
	var wg sync.WaitGroup
	for _, p := range as {
		if p != nil {
			_ = adapterConn{p}.Close()
			wg.Go(p.stop)
		}
	}
	wg.Wait()
}

// external returns instance i's bridge options for its adapter, if it has
// one.
func (as adapters) external(i int) *bridge.ExternalOptions {
	if i >= len(as) || as[i] == nil {
		return nil
	}
	return &bridge.ExternalOptions{Conn: adapterConn{as[i]}, Name: as[i].line}
}

// reports sets each external instance's adapter report; after stop.
func (as adapters) reports(res *Result, bridges []*bridge.Bridge) {
	for i, p := range as {
		if p != nil && i < len(res.Instances) {
			res.Instances[i].Adapter = p.report(bridges[i])
		}
	}
}

// adapterWarnings say what the adapters did that a reader must know.
func adapterWarnings(res *Result) []string {
	var w []string
	for _, ir := range res.Instances {
		a := ir.Adapter
		if a == nil || !a.Misbehaved() {
			continue
		}
		var what []string
		if a.Exited != "" {
			what = append(what, "its output ended before the run did ("+a.Exited+")")
		}
		if a.ProtocolErrors > 0 {
			what = append(what, fmt.Sprintf("%d lines that were not the protocol's (the first: %q)", a.ProtocolErrors, a.FirstProtocolError))
		}
		if a.NotOwnFiltered > 0 {
			what = append(what, fmt.Sprintf("%d messages of others dropped as its own", a.NotOwnFiltered))
		}
		if a.FutureStamps > 0 {
			what = append(what, fmt.Sprintf("%d messages stamped later than it reported them (a clock not this machine's; their receipt taken as the report's)", a.FutureStamps))
		}
		if a.Exit != "exit status 0" {
			what = append(what, "it ended with "+a.Exit)
		}
		line := fmt.Sprintf("instance %d's adapter (%s): %s", ir.Index, a.Command, strings.Join(what, "; "))
		if a.StderrTail != "" {
			line += fmt.Sprintf("; its stderr (%d bytes, the last in the JSON report) says: %s", a.StderrBytes, gist(a.StderrTail))
		}
		w = append(w, line)
	}
	return w
}

// explain adds to a failure to connect how the failed adapter ended, if it
// has, and the last it wrote on its standard error (the reason is usually
// there), without the passwords it was given.
func (as adapters) explain(err error, bridges []*bridge.Bridge) error {
	failed := -1
	for i, p := range as {
		if p != nil && (failed < 0 || strings.Contains(err.Error(), fmt.Sprintf("instance %d:", i))) {
			failed = i
		}
	}
	if failed < 0 {
		return err
	}
	p := as[failed]
	var also []string
	select {
	case <-p.exited: // it ended: how
		also = append(also, "it ended with "+p.exit)
	case <-time.After(100 * time.Millisecond):
	}
	p.mu.Lock()
	tail := strings.TrimSpace(string(p.tail))
	p.mu.Unlock()
	if tail != "" {
		also = append(also, "its stderr says: "+gist(bridges[failed].Redact(tail)))
	}
	if len(also) == 0 {
		return err
	}
	return fmt.Errorf("%w (instance %d's adapter: %s)", err, failed, strings.Join(also, "; "))
}

// gist is the line of an adapter's standard error that most likely says
// why it failed: the last that names an error, a panic or an exception
// (Node prints the error above its stack, Python below its traceback),
// else the last line; at most 300 bytes.
func gist(tail string) string {
	lines := strings.Split(strings.TrimSpace(tail), "\n")
	pick := strings.TrimSpace(lines[len(lines)-1])
	for i := len(lines) - 1; i >= 0; i-- {
		if errorLine.MatchString(lines[i]) {
			pick = strings.TrimSpace(lines[i])
			break
		}
	}
	if len(pick) > 300 {
		pick = pick[:300] + "…"
	}
	return pick
}

// errorLine is what gist looks for.
var errorLine = regexp.MustCompile(`(?i)error|panic|exception|fatal|cannot|refused`)
