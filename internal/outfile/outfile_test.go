package outfile_test

import (
	"context"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redisload/redisload/internal/outfile"
)

// write writes text through Create (or CreateStream) and commits it.
func write(t *testing.T, path, text string, stream bool) error {
	t.Helper()
	create := outfile.Create
	if stream {
		create = outfile.CreateStream
	}
	f, err := create(context.Background(), path)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, text); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A regular file is replaced only whole: nothing shows before Commit, an
// Abort leaves the old content, and the old file's permissions stay.
func TestRegularFileReplacedWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.txt")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := outfile.Create(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, "new"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, path); got != "old" {
		t.Fatalf("before Commit the file reads %q", got)
	}
	f.Abort()
	if got := read(t, path); got != "old" {
		t.Fatalf("after Abort the file reads %q", got)
	}
	if err := write(t, path, "new", false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || read(t, path) != "new" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after Commit: %q, mode %v, %v", read(t, path), fi.Mode(), err)
	}
	// A new file is readable by others, as a report should be.
	fresh := filepath.Join(dir, "fresh.txt")
	if err := write(t, fresh, "x", false); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o644 {
		t.Fatalf("new file mode %v", fi.Mode())
	}
	// Nothing is left behind but the two files.
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("directory holds %d entries", len(ents))
	}
}

// A symbolic link stays a link: its target is replaced, also through a
// relative chain of links, and a dangling link's target is created.
func TestSymlinkFollowed(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real", "report.txt")
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	link1 := filepath.Join(dir, "link1")
	link2 := filepath.Join(dir, "link2")
	if err := os.Symlink("real/report.txt", link1); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("link1", link2); err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		if err := write(t, link2, "via link", stream); err != nil {
			t.Fatal(err)
		}
		for _, l := range []string{link1, link2} {
			if fi, err := os.Lstat(l); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Fatalf("stream %v: %s is no longer a link: %v %v", stream, l, fi.Mode(), err)
			}
		}
		if got := read(t, target); got != "via link" {
			t.Fatalf("stream %v: target reads %q", stream, got)
		}
		if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dangling := filepath.Join(dir, "dangling")
	made := filepath.Join(dir, "real", "later.txt")
	if err := os.Symlink(made, dangling); err != nil {
		t.Fatal(err)
	}
	if err := write(t, dangling, "created", false); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(dangling); err != nil || fi.Mode()&fs.ModeSymlink == 0 || read(t, made) != "created" {
		t.Fatalf("dangling link: %v %v, target %q", fi.Mode(), err, read(t, made))
	}
	loop := filepath.Join(dir, "loop")
	if err := os.Symlink("loop", loop); err != nil {
		t.Fatal(err)
	}
	if err := write(t, loop, "x", false); err == nil {
		t.Fatal("a link to itself was written")
	}
}

// A character device is written through and stays a device: mknod's
// null device swallows the report, as /dev/null does.
func TestCharacterDeviceWrittenThrough(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dev := filepath.Join(t.TempDir(), "mynull")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, int(1<<8|3)); err != nil {
		t.Skipf("mknod: %v", err)
	}
	for _, stream := range []bool{false, true} {
		f, err := map[bool]func(context.Context, string) (*outfile.File, error){false: outfile.Create, true: outfile.CreateStream}[stream](context.Background(), dev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(f, strings.Repeat("report\n", 1000)); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatalf("Sync of a device: %v", err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(dev)
		if err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
			t.Fatalf("stream %v: %s is now %v (%v)", stream, dev, fi.Mode(), err)
		}
	}
	blk := filepath.Join(t.TempDir(), "myblock")
	if err := syscall.Mknod(blk, syscall.S_IFBLK|0o600, int(7<<8|200)); err != nil {
		t.Skipf("mknod: %v", err)
	}
	if err := write(t, blk, "x", false); err == nil || !strings.Contains(err.Error(), "block device") {
		t.Fatalf("block device: %v", err)
	}
}

// A FIFO is written to its reader, and stays a FIFO; with no reader the
// wait is bounded, and so is it by ctx.
func TestFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	got := make(chan string, 1)
	go func() {
		r, err := os.Open(fifo) // blocks until the writer opens
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(r)
		_ = r.Close() // before the result: the test then opens it with no reader
		got <- string(b)
	}()
	if err := write(t, fifo, "through the pipe", false); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "through the pipe" {
			t.Fatalf("reader got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader got nothing")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Fatalf("%s is now %v", fifo, fi.Mode())
	}

	defer func(d time.Duration) { outfile.FIFOWait = d }(outfile.FIFOWait)
	outfile.FIFOWait = 100 * time.Millisecond
	start := time.Now()
	if _, err := outfile.Create(context.Background(), fifo); err == nil || !strings.Contains(err.Error(), "no reader") {
		t.Fatalf("no reader: %v", err)
	}
	outfile.FIFOWait = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := outfile.Create(ctx, fifo); err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("cancelled wait: %v after %v", err, time.Since(start))
	}
}

// A Unix socket gets the report over a connection.
func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("unix socket: %v", err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	if err := write(t, sock, "over the socket", false); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "over the socket" {
		t.Fatalf("listener got %q", s)
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&fs.ModeSocket == 0 {
		t.Fatalf("%s is now %v", sock, fi.Mode())
	}
}

// A directory is refused, itself or behind a link, and nothing is made.
func TestDirectoryRefused(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "to-dir")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, link} {
		if _, err := outfile.Create(context.Background(), p); err == nil || !strings.Contains(err.Error(), "is a directory") {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d entries", len(ents))
	}
}

// /dev/stdout is this process's descriptor, never reopened or replaced.
func TestOwnDescriptors(t *testing.T) {
	for _, p := range []string{"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", "/dev/stderr"} {
		f, err := outfile.Create(context.Background(), p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if err := f.Commit(); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	// Still open: a commit does not close them.
	if _, err := os.Stdout.Stat(); err != nil {
		t.Fatal(err)
	}
}
