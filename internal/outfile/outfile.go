// Package outfile writes redisload's output files without destroying what
// their paths point at. Every report, series, histogram and profile goes
// through it, so that one rule holds for all of them:
//
//   - a regular file, or a path where nothing is yet, is written to a
//     temporary file in the same directory and renamed into place when
//     complete (Commit): a run that fails or is killed leaves the old file
//     whole;
//   - a symbolic link is followed, and its final target is replaced the
//     same way (the link stays a link, also when its target does not exist
//     yet);
//   - a character device, a FIFO or a Unix socket is written through
//     directly: `-o /dev/null`, a named pipe read by another program, a
//     socket that collects reports all work as they do for a shell's `>`,
//     and none is ever replaced by a regular file;
//   - /dev/stdout, /dev/stderr and /dev/fd/N (and /proc/self/fd/N) write to
//     this process's own descriptor, as a shell's redirection would;
//   - a directory, a block device or anything else is refused before
//     anything is written.
//
// The rename is what a temporary file was always for; the rest is what a
// rename must never be applied to.
package outfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FIFOWait bounds how long Create waits for a reader to open a FIFO: a
// writer's open of a FIFO blocks until one does, and a run must not hang
// before it starts for want of one.
var FIFOWait = 30 * time.Second

// maxLinks bounds a chain of symbolic links, as the kernel does (ELOOP).
const maxLinks = 40

// File is an output being written. Its zero value is not usable; make one
// with Create or CreateStream.
type File struct {
	// Path is the path as the caller gave it, for messages.
	Path string
	// target is where a regular file ends up: Path with every symbolic
	// link followed. Empty for a file written through.
	target string
	// mode is the permission the finished file gets: the replaced file's,
	// or 0644 for a new one (a report is for reading).
	mode fs.FileMode
	f    *os.File
	conn net.Conn
	// keep is true for this process's own descriptors (stdout, stderr):
	// written to, never closed.
	keep   bool
	atomic bool
	done   bool
}

// Create starts an output that reaches path whole or not at all: for a
// regular file (or a new one) nothing is visible at path until Commit.
// ctx bounds the wait for a FIFO's reader.
func Create(ctx context.Context, path string) (*File, error) {
	return create(ctx, path, true)
}

// CreateStream starts an output that is written as it goes: a regular file
// is truncated now and written in place, so that `tail -f` follows it (a
// run's series). Everything else is as for Create.
func CreateStream(ctx context.Context, path string) (*File, error) {
	return create(ctx, path, false)
}

func create(ctx context.Context, path string, atomic bool) (*File, error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	if fd, ok := ownDescriptor(path); ok {
		return &File{Path: path, f: fd, keep: true}, nil
	}
	fi, err := os.Stat(path) // follows every link, the kernel's own too
	switch {
	case err == nil:
		return open(ctx, path, fi, atomic)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	// Nothing there, or a link to nothing: the file is made where the
	// last link points, so that the link stays.
	target, err := finalTarget(path)
	if err != nil {
		return nil, err
	}
	return newRegular(path, target, 0o644, atomic)
}

// open starts writing an existing path of type fi.
func open(ctx context.Context, path string, fi fs.FileInfo, atomic bool) (*File, error) {
	m := fi.Mode()
	switch {
	case m.IsRegular():
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			return nil, err
		}
		return newRegular(path, target, m.Perm(), atomic)
	case m.IsDir():
		return nil, fmt.Errorf("%s is a directory", path)
	case m&fs.ModeNamedPipe != 0:
		f, err := openFIFO(ctx, path)
		if err != nil {
			return nil, err
		}
		return &File{Path: path, f: f}, nil
	case m&fs.ModeSocket != 0:
		c, err := net.Dial("unix", path)
		if err != nil {
			return nil, fmt.Errorf("%s is a socket nobody accepts on: %v", path, err)
		}
		return &File{Path: path, conn: c}, nil
	case m&fs.ModeCharDevice != 0:
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &File{Path: path, f: f}, nil
	case m&fs.ModeDevice != 0:
		return nil, fmt.Errorf("%s is a block device: refusing to write a report onto it", path)
	}
	return nil, fmt.Errorf("%s is not a file redisload can write (%v)", path, m.Type())
}

// newRegular starts a regular file that ends up at target: in a temporary
// file beside it when atomic, else target itself, truncated.
func newRegular(path, target string, mode fs.FileMode, atomic bool) (*File, error) {
	out := &File{Path: path, target: target, mode: mode, atomic: atomic}
	if !atomic {
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return nil, err
		}
		out.f = f
		return out, nil
	}
	// The temporary file is in the target's directory: a rename across
	// file systems is a copy, and not atomic.
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	out.f = f
	return out, nil
}

// finalTarget follows path's chain of symbolic links to the path that the
// last one names, which need not exist; path itself when it is no link.
func finalTarget(path string) (string, error) {
	cur := path
	for range maxLinks {
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return cur, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return cur, nil
		}
		dest, err := os.Readlink(cur)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(cur), dest)
		}
		cur = dest
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// ownDescriptor recognises the names of this process's own descriptors,
// which a shell treats as its redirections: opening them anew would start
// at offset 0 of a redirected file (overwriting what is there) and, for a
// regular file, a rename would detach the report from the descriptor.
func ownDescriptor(path string) (*os.File, bool) {
	clean := filepath.Clean(path)
	var n string
	switch {
	case clean == "/dev/stdout":
		n = "1"
	case clean == "/dev/stderr":
		n = "2"
	case strings.HasPrefix(clean, "/dev/fd/"):
		n = strings.TrimPrefix(clean, "/dev/fd/")
	case strings.HasPrefix(clean, "/proc/self/fd/"):
		n = strings.TrimPrefix(clean, "/proc/self/fd/")
	default:
		return nil, false
	}
	switch n {
	case "1":
		return os.Stdout, true
	case "2":
		return os.Stderr, true
	}
	// Another inherited descriptor is opened by its name like any path:
	// an *os.File made of it here would close it when collected.
	return nil, false
}

// Write writes to the output: for Create's regular file, to the
// temporary file, which nothing sees before Commit.
func (o *File) Write(b []byte) (int, error) {
	if o.conn != nil {
		return o.conn.Write(b)
	}
	return o.f.Write(b)
}

// Sync flushes a regular file to disk, so that a crash loses at most what
// followed; on a device, FIFO or socket it does nothing (fsync fails
// there, and means nothing).
func (o *File) Sync() error {
	if o.target == "" || o.f == nil {
		return nil
	}
	return o.f.Sync()
}

// Commit finishes the output: a regular file of Create is renamed over
// its target, with the replaced file's permissions; anything else is
// closed. After an error nothing was put in place.
func (o *File) Commit() error {
	if o.done {
		return nil
	}
	o.done = true
	if o.keep {
		return nil
	}
	if o.conn != nil {
		return o.conn.Close()
	}
	err := o.f.Close()
	if !o.atomic {
		return err
	}
	if err == nil {
		err = os.Chmod(o.f.Name(), o.mode) // CreateTemp's 0600 is not a report's
	}
	if err == nil {
		err = os.Rename(o.f.Name(), o.target)
	}
	if err != nil {
		_ = os.Remove(o.f.Name())
	}
	return err
}

// Abort drops the output: a regular file of Create is removed unseen, and
// what was at its path stays as it was. Safe after Commit.
func (o *File) Abort() {
	if o.done {
		return
	}
	o.done = true
	switch {
	case o.keep:
	case o.conn != nil:
		_ = o.conn.Close()
	default:
		_ = o.f.Close()
		if o.atomic {
			_ = os.Remove(o.f.Name())
		}
	}
}
