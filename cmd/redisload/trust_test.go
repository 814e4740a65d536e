package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/internal/redistest"
)

// Redis killed for good mid-run, errors check off: the report must not say
// PASS. No instance is connected at the end, and the verdict says so.
func TestKilledServerFailsEvenWithErrorsUnchecked(t *testing.T) {
	srv := redistest.StartOwn(t)
	time.AfterFunc(time.Second, func() { redistest.Kill(t, srv) })
	start := time.Now()
	code, out, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=5", "--duration=2",
		"--rate=200", "--max-errors=-1", "--drain-timeout=1s")
	if code != exitFail {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"| Total Instances | 5 (0 connected)",
		"| All instances connected | 5 of 5 | 0 of 5 | FAIL |", "Overall Status: FAIL",
		"instance 0 was not connected at the end: subscriber lost, never subscribed again"} {
		if !strings.Contains(squeeze(out), want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if took := time.Since(start); took > 2*time.Second+time.Second+7*time.Second {
		t.Errorf("took %v", took)
	}
}

// A server at maxclients: exit 3 with that reason, not "TLS mismatch".
func TestMaxClientsExit3(t *testing.T) {
	srv := redistest.StartOwn(t, "--maxclients", "4")
	code, _, errs := invoke(t, context.Background(), "--redis-url="+srv.URL, "--instances=5", "--duration=1", "--rate=10")
	if code != exitUnavailable || !strings.Contains(errs, "max number of clients reached") || strings.Contains(errs, "TLS") {
		t.Fatalf("exit %d, stderr %q; want 3 naming maxclients", code, errs)
	}
}

// Outputs that would overwrite an input, or each other, are refused
// before anything runs.
func TestOutputPathCollisionsExit2(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.json")
	if err := os.WriteFile(base, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	scenario := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(scenario, []byte("instances: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(base, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--baseline=" + base, "--json-out=" + base}, "--baseline and --json-out name the same file"},
		{[]string{"--baseline=" + base, "-o", filepath.Join(dir, ".", "base.json")}, "--baseline and --output name the same file"},
		{[]string{"--baseline=" + base, "--html=" + link}, "--baseline and --html name the same file"},
		{[]string{"--scenario-file=" + scenario, "--markdown-out=" + scenario}, "--scenario-file and --markdown-out name the same file"},
		{[]string{"-o", filepath.Join(dir, "r"), "--junit-out=" + filepath.Join(dir, "r")}, "--output and --junit-out name the same file"},
		{[]string{"--json-out=" + filepath.Join(dir, "r"), "--hdr-out=" + filepath.Join(dir, "r")}, "--json-out and --hdr-out name the same file"},
	} {
		code, out, errs := invoke(t, context.Background(), append(tc.args, "--redis-url=redis://127.0.0.1:1")...)
		if code != exitUsage || out != "" || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 2 {
			t.Errorf("%v: exit %d, stderr %q; want 2 with %q", tc.args, code, errs, tc.want)
		}
	}
	if b, _ := os.ReadFile(base); string(b) != "keep" {
		t.Fatalf("the input was touched: %q", b)
	}
}

// A run that ends in exit 3 leaves existing reports as they were, and no
// temporary file beside them.
func TestFailedRunLeavesExistingReportsIntact(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]string{"json-out": "r.json", "markdown-out": "r.md", "junit-out": "r.xml", "html": "r.html", "output": "r.txt", "hdr-out": "r.hgrm"}
	var args []string
	for flag, name := range paths {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("previous "+name), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--"+flag+"="+p)
	}
	code, _, errs := invoke(t, context.Background(), append(args, "--redis-url=redis://127.0.0.1:1", "--duration=1")...)
	if code != exitUnavailable {
		t.Fatalf("exit %d, want 3\n%s", code, errs)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(paths) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files left: %v, want only the %d reports", names, len(paths))
	}
	for _, name := range paths {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != "previous "+name {
			t.Errorf("%s: %q, want it untouched", name, b)
		}
	}
}

// A report that cannot be written after the run is exit 4, not a failed
// verdict.
func TestOutputWriteErrorExit4(t *testing.T) {
	srv := redistest.Start(t)
	var errb bytes.Buffer
	code := run(context.Background(), []string{"--redis-url=" + srv.URL, "--duration=0.3", "--rate=20", "--key-prefix=w4:"},
		failingWriter{}, &errb)
	if code != exitOutput || !strings.Contains(errb.String(), "redisload: writing the table report: disk full") {
		t.Fatalf("exit %d, stderr %q; want 4", code, errb.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// Baselines and compare inputs that are not sound reports are refused
// with one line naming the file and the problem: a bad file must never
// switch a gate off.
func TestBadBaselineFilesExit2(t *testing.T) {
	good, err := os.ReadFile(pass5)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, tc := range map[string]struct{ content, want string }{
		"null":     {"null", "no schema_version"},
		"empty":    {"", "empty: not a redisload JSON report"},
		"object":   {"{}", "no schema_version"},
		"version":  {strings.Replace(string(good), `"schema_version": 1`, `"schema_version": 2`, 1), "schema_version 2 is not one this version reads (1)"},
		"trailing": {string(good) + "garbage", "trailing data after the JSON document"},
		"negative": {strings.Replace(string(good), `"p99_us": `, `"p99_us": -`, 1), "p99 is -"},
		"over100":  {strings.Replace(string(good), `"delivery_rate_pct": 100`, `"delivery_rate_pct": 150`, 1), "delivery is 150%"},
		"huge":     {strings.Replace(string(good), `"mean_us": `, `"mean_us": 1e999`, 1), "not a redisload JSON report"},
		"tool":     {strings.Replace(string(good), `"tool": "redisload"`, `"tool": "other"`, 1), `tool "other"`},
	} {
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"--baseline=" + path, "--redis-url=redis://127.0.0.1:1"},
			{"compare", pass5, path},
		} {
			code, _, errs := invoke(t, context.Background(), args...)
			if code != exitUsage || !strings.Contains(errs, path+": ") || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 2 {
				t.Errorf("%s %v: exit %d, stderr %q; want 2, naming the file and %q", name, args[0], code, errs, tc.want)
			}
		}
	}
}

// The built binary: SIGHUP (a dropped SSH session) and SIGTERM end the
// run like Ctrl-C, with the partial report printed and exit 130, within
// about a second even in the middle of a 30 s drain; a second signal ends
// the process at once, and the report file it was writing is not left
// truncated.
func TestSignalsDuringDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			srv := redistest.StartOwn(t)
			rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
			defer rc.Close()
			// Subscribers cut off from outside lose messages: the drain
			// then waits for them until its timeout.
			time.AfterFunc(500*time.Millisecond, func() { _ = rc.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err() })
			jsonOut := filepath.Join(t.TempDir(), "r.json")
			p := startBinary(t, bin, "--redis-url="+srv.URL, "--duration=1", "--rate=500", "--drain-timeout=30s", "--json-out="+jsonOut)
			cmd, out, errb := p.cmd, &p.out, &p.errb
			time.Sleep(2500 * time.Millisecond) // publishing is over: draining
			sent := time.Now()
			_ = cmd.Process.Signal(sig)
			p.wait(t, 10*time.Second)
			if took := time.Since(sent); took > 3*time.Second {
				t.Errorf("exited %v after %v, want about a second", took, sig)
			}
			if code := cmd.ProcessState.ExitCode(); code != exitInterrupted || !strings.Contains(out.String(), "interrupted: the drain was cut short") {
				t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
			}
			if b, err := os.ReadFile(jsonOut); err != nil || !bytes.Contains(b, []byte(`"interrupted": true`)) {
				t.Fatalf("--json-out: %v\n%s", err, b)
			}
		})
	}
}

// A second signal ends the process at once; the previous report stays
// whole, since the new one was being written beside it.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	srv := redistest.StartOwn(t)
	jsonOut := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(jsonOut, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Frozen: the first signal's partial report waits on nothing, but the
	// liveness check after it takes its full second.
	p := startBinary(t, bin, "--redis-url="+srv.URL, "--duration=30", "--rate=100", "--json-out="+jsonOut)
	time.Sleep(time.Second)
	if err := srv.Inst.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Inst.Thaw() }()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(100 * time.Millisecond)
	sent := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	p.wait(t, 5*time.Second)
	if took := time.Since(sent); took > 500*time.Millisecond {
		t.Errorf("the second SIGINT took %v to end the process", took)
	}
	if b, _ := os.ReadFile(jsonOut); string(b) != "previous" {
		t.Errorf("the previous report became %q", b)
	}
}
