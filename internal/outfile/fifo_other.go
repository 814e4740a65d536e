//go:build !unix

package outfile

import (
	"context"
	"os"
)

// openFIFO opens a named pipe for writing; outside Unix there is no
// non-blocking open to wait with.
func openFIFO(_ context.Context, path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY, 0)
}
