package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/redisload/redisload/harness"
)

// SchemaVersion is the version of the JSON document NewJSONReporter
// writes. It changes when a field is removed, renamed or changes meaning;
// adding fields does not change it.
const SchemaVersion = 1

// Document is the JSON report: the Result's fields, flattened, with the
// schema version, the tool's version and the verdict.
type Document struct {
	SchemaVersion int    `json:"schema_version"`
	Tool          string `json:"tool"`
	Version       string `json:"version"`
	*harness.Result
	Verdict Verdict `json:"verdict"`
}

// NewJSONReporter renders res and v as one indented JSON document.
func NewJSONReporter(res *harness.Result, v Verdict, version string) Reporter {
	return func(w io.Writer) error {
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

// ReadDocument decodes a JSON report written by NewJSONReporter.
func ReadDocument(r io.Reader) (*Document, error) {
	d := &Document{Result: new(harness.Result)}
	if err := json.NewDecoder(r).Decode(d); err != nil {
		return nil, err
	}
	return d, nil
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
