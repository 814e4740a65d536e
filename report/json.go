package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/verdict"
)

// SchemaVersion is the version of the JSON document NewJSONReporter
// writes. It changes when a field is removed, renamed or changes meaning;
// adding fields does not change it.
const SchemaVersion = 1

// Document is the JSON report: the Result's fields, flattened, with the
// schema version, the tool's version and the
type Document struct {
	SchemaVersion int    `json:"schema_version"`
	Tool          string `json:"tool"`
	Version       string `json:"version"`
	*harness.Result
	Verdict verdict.Verdict `json:"verdict"`
}

// NewJSONReporter renders res and v as one indented JSON document.
func NewJSONReporter(res *harness.Result, v verdict.Verdict, version string) Reporter {
	return func(w io.Writer) error {
		// Indented: the document is also read by people, in CI artifacts
		// and diffs; the matrix, the one large part, is compact by design.
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(Document{
			SchemaVersion: SchemaVersion,
			Tool:          "redisload",
			Version:       version,
			Result:        res,
			Verdict:       v,
		})
	}
}

// MaxDocumentSize bounds a JSON report read back: a 1000-instance run
// writes about 12 MB, and a wrong path (a log, /dev/zero) must not fill the
// memory.
const MaxDocumentSize = 256 << 20

// ReadDocument decodes a JSON report written by NewJSONReporter and
// checks it (see Document.Validate): a gate must never be switched off by
// a file that only looks like a report.
func ReadDocument(r io.Reader) (*Document, error) {
	lr := &io.LimitedReader{R: r, N: MaxDocumentSize + 1}
	// Unknown fields are accepted: a report from a newer version, with
	// fields added, still reads (the schema version changes when one
	// is removed or changes meaning).
	dec := json.NewDecoder(lr)
	d := &Document{Result: new(harness.Result)}
	if err := dec.Decode(d); err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("larger than %d MiB, the limit of a report", MaxDocumentSize>>20)
		}
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty: not a redisload JSON report")
		}
		return nil, fmt.Errorf("not a redisload JSON report: %v", err)
	}
	// One document and nothing after it: a concatenation or a truncated
	// file with junk appended is not a report.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON document")
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// Validate checks what a comparison relies on: the schema version, the
// tool, and every headline number finite, not negative, and a delivery
// rate no higher than 100 %.
func (d *Document) Validate() error {
	switch {
	case d.SchemaVersion == 0:
		return errors.New("no schema_version: not a redisload JSON report")
	case d.SchemaVersion != SchemaVersion:
		return fmt.Errorf("schema_version %d is not one this version reads (%d)", d.SchemaVersion, SchemaVersion)
	case d.Tool != "redisload":
		return fmt.Errorf("tool %q: not a redisload JSON report", d.Tool)
	case d.Result == nil || d.Totals.Instances < 1:
		return errors.New("no instances: not a complete redisload JSON report")
	}
	return verdict.CheckHeadline(d.Result)
}

// ReadFile decodes the JSON report in the file at path; its errors name
// the file.
func ReadFile(path string) (*Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := ReadDocument(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}
