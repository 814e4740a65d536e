//go:build !unix

package capacity

import "time"

// processCPU is not measured outside Unix: the column shows 0.
func processCPU() time.Duration { return 0 }
