//go:build !unix

package main

import "io"

// termWidth cannot ask a terminal here: the status line keeps to
// defaultWidth.
func termWidth(io.Writer) func() int { return func() int { return 0 } }
