package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redisload/redisload/verdict"
)

// `redisload clients` end to end on the reference row: one cell, judged,
// written as JSON that --baseline reads back; a regression against a
// baseline fails the run; bad input is one line and exit 2.
func TestClientsCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.json")
	args := []string{"clients", "--clients=redisload", "--scenarios=standard", "--duration=3s", "--adapters-dir=../../adapters"}
	code, _, errs := invoke(t, context.Background(), append(args, "--format=json", "-o", out)...)
	if code != exitPass || !strings.Contains(errs, "redisload clients: redisload bridge, standard: 600/600 delivered, 0 missing outside outages, PASS") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Status verdict.Status
		Matrix struct {
			Cells []struct{ Client, Scenario, Verdict string }
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Status != verdict.Pass || len(doc.Matrix.Cells) != 1 ||
		doc.Matrix.Cells[0].Verdict != "PASS" {
		t.Fatalf("%v: %s", err, b)
	}
	// Against itself: no regression; the table says so.
	code, table, errs := invoke(t, context.Background(), append(args, "--baseline", out)...)
	if code != exitPass || !strings.Contains(table, "Overall: PASS") || !strings.Contains(table, "| redisload | bridge  | standard") {
		t.Fatalf("exit %d\n%s%s", code, table, errs)
	}
	// `redisload report` renders the saved matrix again, without Redis.
	code, md, errs := invoke(t, context.Background(), "report", "--format=markdown", out)
	if code != exitPass || !strings.Contains(md, "| redisload | bridge | standard | 100.00% (600/600) | 0 / 0 |") {
		t.Fatalf("exit %d\n%s%s", code, md, errs)
	}
	// The same cell failed: exit 1, and a regression against the saved one.
	failed := filepath.Join(dir, "failed.json")
	if err := os.WriteFile(failed, []byte(strings.Replace(string(b), `"verdict": "PASS"`, `"verdict": "FAIL"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, table, errs = invoke(t, context.Background(), "report", "--baseline", out, failed)
	if code != exitFail || !strings.Contains(table, "FAIL (was PASS)") {
		t.Fatalf("exit %d\n%s%s", code, table, errs)
	}
	// A baseline that is no matrix (a run's report) is one line, exit 2:
	// never a matrix judged against nothing.
	code, _, errs = invoke(t, context.Background(), "report", "--baseline", "../../testdata/golden/pass-5.json", failed)
	if code != exitUsage || !strings.Contains(errs, "--baseline: ") || strings.Count(strings.TrimSpace(errs), "\n") > 1 {
		t.Fatalf("exit %d: %q", code, errs)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--clients=jedis"}, `unknown client "jedis"`},
		{[]string{"--scenarios=chaos"}, `unknown scenario "chaos"`},
		{[]string{"--format=junit"}, "junit"},
		{[]string{"--adapters-dir=/nonexistent"}, "not a directory"},
		{[]string{"--baseline=" + filepath.Join(dir, "none.json")}, "--baseline"},
		{[]string{"--baseline=clients_test.go"}, "--baseline"},
		{[]string{"--instances=1"}, "Instances 1: at least 2"},
	} {
		code, _, errs := invoke(t, context.Background(), append([]string{"clients", "--adapters-dir=../../adapters"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") > 1 {
			t.Errorf("%v: exit %d, %q", tc.args, code, errs)
		}
	}
}

// The measured table in docs/clients.md is the rendering of the JSON
// beside it, to the byte: a table edited by hand, or a JSON replaced
// without its table, fails here.
func TestDocsClientsTableIsTheJSONs(t *testing.T) {
	files, err := filepath.Glob("../../docs/clients-matrix-*.json")
	if err != nil || len(files) != 1 {
		t.Fatalf("want one measured matrix in docs/, got %v (%v)", files, err)
	}
	doc, err := os.ReadFile("../../docs/clients.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "("+filepath.Base(files[0])+")") {
		t.Errorf("docs/clients.md does not link %s", filepath.Base(files[0]))
	}
	code, md, errs := invoke(t, context.Background(), "report", "--format=markdown", files[0])
	if code != exitFail && code != exitPass {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// The table, its legend and its status; the heading is the page's own.
	body := strings.TrimSpace(md[strings.Index(md, "\n\n")+2:])
	if !strings.Contains(string(doc), body) {
		t.Errorf("docs/clients.md does not hold the table of %s; render it again:\n%s", files[0], body)
	}
}
