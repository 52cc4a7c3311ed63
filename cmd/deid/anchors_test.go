package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/anchors"
	"github.com/mya/deid/sinks/exclusions"
	"github.com/mya/deid/sinks/parquet"
)

// recordOf reads the accounting record of a manifest of the output out.
func recordOf(t *testing.T, out string, m *parquet.Manifest) *parquet.AccountingRecord {
	t.Helper()
	dir, err := parquet.AccountingDir(out, m.Dataset, windowOf(m))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := parquet.ReadAccounting(filepath.Join(dir, parquet.AccountingName))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// recordPath returns the path of the first manifest's accounting record.
func recordPath(t *testing.T, out string) string {
	t.Helper()
	_, m := firstManifest(t, out)
	dir, err := parquet.AccountingDir(out, m.Dataset, windowOf(m))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, parquet.AccountingName)
}

// windows returns a dataset's window directories ("dt=2026-11-03"), in
// order.
func windows(t *testing.T, out, dataset string) []string {
	t.Helper()
	paths, err := parquet.ListManifests(out)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(out, "datasets", dataset)
	var ws []string
	for _, p := range paths {
		if rel, err := filepath.Rel(root, filepath.Dir(p)); err == nil && !strings.HasPrefix(rel, "..") {
			ws = append(ws, filepath.ToSlash(rel))
		}
	}
	if len(ws) < 3 {
		t.Fatalf("dataset %s has %d windows: the sample is too small for this test", dataset, len(ws))
	}
	return ws
}

func middleWindow(t *testing.T, out, dataset string) string {
	ws := windows(t, out, dataset)
	return ws[len(ws)/2]
}

// manifestKeys are the only keys, at any depth, a manifest may have: what
// the ML team may read. Nothing finer than k: no withdrawn or suppressed
// counts, no input positions.
var manifestKeys = []string{
	"manifest_version", "dataset", "schema_version", "pipeline_version", "policy_version",
	"window", "start", "end", "rows", "files", "path", "row_groups", "bytes", "sha256",
	"privacy", "k", "dominance_n", "dominance_k", "p_percent", "dominance_measures", "protected_entities", "generalization",
	"columns", "name", "type", "nullable", "role",
	"published", "rows_by_level", "events_by_level",
	"accounting_sha256", "exclusion_chain_heads", "previous_manifest",
}

// TestManifestsCarryNothingFinerThanK reads every manifest of a run as
// plain JSON and expects only allowed keys (the chain heads' keys, which
// name chains, aside).
func TestManifestsCarryNothingFinerThanK(t *testing.T) {
	s := generatedSample(t)
	paths, err := parquet.ListManifests(s.out)
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		must(t, json.Unmarshal(b, &doc))
		for _, k := range keysOf(doc, "") {
			if !slices.Contains(manifestKeys, k) {
				t.Errorf("%s: key %q is not allowed in a manifest (finer than k, or unknown)", p, k)
			}
		}
		rec := recordOf(t, s.out, mustManifest(t, p))
		if rec.Accounting.Contributed == 0 {
			t.Errorf("%s: its accounting record counts no contributed event", p)
		}
	}
}

// keysOf returns the keys of every object of a decoded JSON document,
// except those of exclusion_chain_heads (chain names mapped to hashes).
func keysOf(v any, parent string) []string {
	var keys []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if parent != "exclusion_chain_heads" && !(parent == "rows_by_level" || parent == "events_by_level") {
				keys = append(keys, k)
			}
			keys = append(keys, keysOf(x, k)...)
		}
	case []any:
		for _, x := range v {
			keys = append(keys, keysOf(x, parent)...)
		}
	}
	return keys
}

func mustManifest(t *testing.T, path string) *parquet.Manifest {
	t.Helper()
	m, err := parquet.ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestVerifyAnchorsCatchTailTruncation deletes the newest window of each
// dataset and the exclusion segments committed after the heads the
// remaining windows name: the chains inside the output stay intact, and
// only the anchor log tells.
func TestVerifyAnchorsCatchTailTruncation(t *testing.T) {
	s := generatedSample(t)
	code, stdout, _ := deidExit("verify", s.out, "--anchors", s.anchors)
	if code != 0 || !strings.Contains(stdout, "anchored exclusion segments are in the output with the hashes anchored") {
		t.Fatalf("the untouched output does not verify against its anchors: exit %d\n%s", code, stdout)
	}
	if !strings.Contains(stdout, "Chain heads") {
		t.Errorf("verify does not print the chain heads:\n%s", stdout)
	}
	code, stdout, _ = deidExit("verify", s.out)
	if code != 0 || !strings.Contains(stdout, "no anchor log given") {
		t.Errorf("without --anchors, verify does not say truncation cannot be detected: exit %d\n%s", code, stdout)
	}

	out := copyTree(t, s.out)
	var deleted []string
	heads := map[string]string{} // chain → newest head a remaining manifest names
	for _, ds := range []string{"campaign_metrics", "usage_patterns"} {
		ws := windows(t, out, ds)
		newest := ws[len(ws)-1]
		must(t, os.RemoveAll(filepath.Join(out, "datasets", ds, filepath.FromSlash(newest))))
		must(t, os.RemoveAll(filepath.Join(out, "accounting", ds, filepath.FromSlash(newest))))
		deleted = append(deleted, "window "+ds+" "+newest+" is anchored but missing from the output")
		m := mustManifest(t, filepath.Join(out, "datasets", ds, filepath.FromSlash(ws[len(ws)-2]), parquet.ManifestName))
		for name, h := range m.ExclusionChainHeads {
			heads[name+"\x00"+ds] = h
		}
	}
	reports, err := exclusions.VerifyAll(out)
	if err != nil {
		t.Fatal(err)
	}
	cut := 0
	for _, r := range reports {
		keep := 0
		for _, seg := range r.Segments {
			for k, h := range heads {
				if strings.HasPrefix(k, r.Name+"\x00") && h == seg.SHA256 {
					keep = max(keep, seg.Seq)
				}
			}
		}
		for _, seg := range r.Segments {
			if seg.Seq > keep {
				must(t, os.Remove(seg.Path))
				cut++
			}
		}
	}
	if cut == 0 {
		t.Fatal("no exclusion segment after the remaining heads: the test truncates nothing")
	}
	code, stdout, _ = deidExit("verify", out, "--anchors", s.anchors)
	if code != 1 || !strings.Contains(stdout, "NOT VERIFIED") {
		t.Errorf("verify --anchors of a truncated output: exit %d, want 1\n%s", code, stdout)
	}
	for _, w := range append(deleted, "is anchored but missing from the output (exclusions/") {
		if !strings.Contains(stdout, w) {
			t.Errorf("the report does not say %q:\n%s", w, stdout)
		}
	}
}

// TestVerifyAnchorsToleratesRepeatsNotConflicts appends an exact copy of
// every anchor (a restart re-anchors its chains' heads), then a second
// hash for one window.
func TestVerifyAnchorsToleratesRepeatsNotConflicts(t *testing.T) {
	s := generatedSample(t)
	b, err := os.ReadFile(s.anchors)
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "anchors.ndjson")
	must(t, os.WriteFile(log, append(slices.Clone(b), b...), 0o644))
	code, stdout, _ := deidExit("verify", s.out, "--anchors", log)
	if code != 0 {
		t.Fatalf("repeated anchor lines fail verify: exit %d\n%s", code, stdout)
	}

	lines, _, err := anchors.ReadFile(s.anchors)
	if err != nil {
		t.Fatal(err)
	}
	var l anchors.Line
	for _, x := range lines {
		if x.Kind == anchors.KindDataset {
			l = x
			break
		}
	}
	l.SHA256 = strings.Repeat("0", 64)
	extra, _ := json.Marshal(l)
	must(t, os.WriteFile(log, append(append(slices.Clone(b), extra...), '\n'), 0o644))
	code, stdout, _ = deidExit("verify", s.out, "--anchors", log)
	if code != 1 || !strings.Contains(stdout, "window "+l.Name+" "+l.Window+" is anchored twice with different hashes") {
		t.Errorf("two hashes for one window: exit %d\n%s", code, stdout)
	}
}

// TestRunRefusesAnAnchorFileInsideTheOutput: the anchors would be deleted
// with what they anchor.
func TestRunRefusesAnAnchorFileInsideTheOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := deidExit("run", "--check", "--input", "x.ndjson", "--settings", "s.ndjson", "--out", out,
		"--anchors", filepath.Join(out, "anchors.ndjson"))
	if code != 2 || !strings.Contains(stderr, "anchors.file: ") || !strings.Contains(stderr, "is inside the output directory") {
		t.Errorf("exit %d, want 2 naming anchors.file:\n%s", code, stderr)
	}
}

// windowOf returns a manifest's window in microseconds.
func windowOf(m *parquet.Manifest) pipeline.Window {
	return pipeline.Window{Start: m.Window.Start.UnixMicro(), End: m.Window.End.UnixMicro()}
}
