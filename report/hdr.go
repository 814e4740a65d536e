package report

import (
	"errors"
	"io"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// hdrTicksPerHalfDistance is the resolution of the percentile listing: 5
// lines per halving of the distance to 100 %, as HdrHistogram's own
// tools print it.
const hdrTicksPerHalfDistance = 5

// WriteHDR writes h, whose values are microseconds, in HdrHistogram's
// percentile-distribution text format (.hgrm) with values in
// milliseconds: the format the standard HdrHistogram plotter
// (hdrhistogram.github.io/HdrHistogram/plotFiles.html) reads and several
// runs can be overlaid in.
func WriteHDR(w io.Writer, h *hdrhistogram.Histogram) error {
	if h == nil {
		return errors.New("no latency histogram: it exists only for a run just made, not one read from JSON")
	}
	_, err := h.PercentilesPrint(w, hdrTicksPerHalfDistance, 1000)
	return err
}
