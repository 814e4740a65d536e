package report

import (
	"bufio"
	"bytes"
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
		// and diffs. The matrix is not: indented, each of its n×(n−1)
		// numbers took a line, and a 9 900-instance run wrote 1.1 GB. It
		// is written apart, a row a line, where a placeholder stands.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(indentedDocument{
			Document: Document{SchemaVersion: SchemaVersion, Tool: "redisload", Version: version, Result: res, Verdict: v},
			Matrix:   matrixPlaceholder,
		}); err != nil {
			return err
		}
		needle, _ := json.Marshal(matrixPlaceholder) // as the encoder escaped it
		head, tail, ok := bytes.Cut(buf.Bytes(), needle)
		if !ok {
			return errors.New("report: json: the matrix's place was not found")
		}
		if _, err := w.Write(head); err != nil {
			return err
		}
		if err := writeMatrix(w, res.Matrix); err != nil {
			return err
		}
		_, err := w.Write(tail)
		return err
	}
}

// indentedDocument is a Document whose matrix is a placeholder: the
// shallower field hides the Result's.
type indentedDocument struct {
	Document
	Matrix string `json:"matrix"`
}

// matrixPlaceholder cannot occur in a document: no string of one holds a
// NUL.
const matrixPlaceholder = "\x00matrix\x00"

// writeMatrix writes m as the indented document's "matrix" value: its
// fields as json.Marshal writes them, each on a line, and each row of
// Delivered on a line of its own.
func writeMatrix(w io.Writer, m harness.Matrix) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	field := func(name string, v any, last bool) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		sep := ",\n"
		if last {
			sep = "\n"
		}
		_, err = fmt.Fprintf(bw, "    %q: %s%s", name, b, sep)
		return err
	}
	if _, err := bw.WriteString("{\n"); err != nil {
		return err
	}
	if err := field("sent", m.Sent, false); err != nil {
		return err
	}
	if err := field("subscribed", m.Subscribed, false); err != nil {
		return err
	}
	if _, err := bw.WriteString(`    "delivered": [`); err != nil {
		return err
	}
	for i, row := range m.Delivered {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		b, err := json.Marshal(row)
		if err != nil {
			return err
		}
		_, _ = bw.WriteString("\n      ")
		_, _ = bw.Write(b)
	}
	if len(m.Delivered) > 0 {
		_, _ = bw.WriteString("\n    ")
	}
	_, _ = bw.WriteString("],\n")
	if err := field("duplicates", m.Duplicates, false); err != nil {
		return err
	}
	if err := field("out_of_order", m.OutOfOrder, true); err != nil {
		return err
	}
	_, _ = bw.WriteString("  }")
	return bw.Flush() // bufio keeps the first write error: Flush returns it
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
	// The merged histogram travels encoded: restored, a saved report
	// renders again whole.
	for _, r := range append([]*harness.Result{d.Result}, d.Repetitions...) {
		if err := r.LoadHistogram(); err != nil {
			return nil, err
		}
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
