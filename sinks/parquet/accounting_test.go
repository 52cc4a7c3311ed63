package parquet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/anchors"
	"github.com/mya/deid/sinks/anchors/anchorstest"
)

// finerThanK are manifest keys, at any depth, that would disclose what
// fewer than k workspaces did: withdrawn and suppressed counts, and input
// positions.
var finerThanK = []string{"accounting", "partitions", "contributed_events", "published_events", "withdrawn_events",
	"suppressed_events", "withdrawn_by_reason", "suppressed_by_reason", "cells_suppressed",
	"first_offset", "last_offset", "excluded", "dead_letters", "read"}

func TestTheManifestCarriesNothingFinerThanK(t *testing.T) {
	s, out0 := newSink(t)
	out := testOutput(testRows())
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out0, "datasets", "campaign_metrics", "dt=2024-05-01", ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range jsonKeys(doc) {
		for _, bad := range finerThanK {
			if k == bad {
				t.Errorf("the manifest has the key %q: it discloses counts finer than k", k)
			}
		}
	}

	// The accounting record has them, and the manifest names it.
	r, sum, err := ReadAccounting(filepath.Join(out0, "accounting", "campaign_metrics", "dt=2024-05-01", AccountingName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(filepath.Join(out0, "datasets", "campaign_metrics", "dt=2024-05-01", ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if m.AccountingSHA256 != sum {
		t.Errorf("manifest accounting_sha256 = %s, the record hashes to %s", m.AccountingSHA256, sum)
	}
	want := &AccountingRecord{AccountingVersion: AccountingVersion, Dataset: "campaign_metrics", PolicyVersion: "policy-1234",
		Window:     Window{Start: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)},
		Accounting: out.Acct, Partitions: out.Partitions}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("accounting record (-want +got):\n%s", diff)
	}
}

// jsonKeys returns every object key of a decoded JSON document.
func jsonKeys(v any) []string {
	var keys []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			keys = append(keys, k)
			keys = append(keys, jsonKeys(x)...)
		}
	case []any:
		for _, x := range v {
			keys = append(keys, jsonKeys(x)...)
		}
	}
	return keys
}

// dayOutput is testOutput for the i-th day after 2024-05-01.
func dayOutput(i int) *pipeline.WindowOutput {
	out := testOutput(testRows())
	d := int64(i) * (24 * time.Hour).Microseconds()
	out.Window = pipeline.Window{Start: day.Start + d, End: day.End + d}
	return out
}

func TestManifestsOfADatasetFormAChain(t *testing.T) {
	rec := &anchorstest.Recorder{}
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	s, err := New(cfg, WithAnchors(rec))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if err := s.Commit(ctx, dayOutput(i)); err != nil {
			t.Fatal(err)
		}
	}
	var prev Previous
	var want []anchors.Line
	for _, d := range []string{"dt=2024-05-01", "dt=2024-05-02", "dt=2024-05-03"} {
		path := filepath.Join(dir, "datasets", "campaign_metrics", d, ManifestName)
		m, err := ReadManifest(path)
		if err != nil {
			t.Fatal(err)
		}
		if m.Previous != prev {
			t.Errorf("%s: previous_manifest = %+v, want %+v", d, m.Previous, prev)
		}
		sum := hashOf(t, path)
		want = append(want, anchors.Line{Kind: anchors.KindDataset, Name: "campaign_metrics", Window: d,
			Event: anchors.EventCommit, SHA256: sum, Prev: prev.SHA256})
		prev = Previous{Window: d, SHA256: sum}
	}
	if diff := cmp.Diff(want, rec.Lines()); diff != "" {
		t.Errorf("anchors (-want +got):\n%s", diff)
	}

	// A new sink on the same output (a restart) chains to the newest
	// manifest, re-anchors it, and refuses a window before it.
	rec2 := &anchorstest.Recorder{}
	s2, err := New(cfg, WithAnchors(rec2))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.AnchorHeads(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[2:], rec2.Lines()); diff != "" {
		t.Errorf("AnchorHeads (-want +got):\n%s", diff)
	}
	if err := s2.Commit(ctx, dayOutput(4)); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(filepath.Join(dir, "datasets", "campaign_metrics", "dt=2024-05-05", ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if m.Previous != prev {
		t.Errorf("after a restart: previous_manifest = %+v, want %+v", m.Previous, prev)
	}
	err = s2.Commit(ctx, dayOutput(3))
	if err == nil || !strings.Contains(err.Error(), "committed in order") {
		t.Errorf("committing a window before the newest: %v, want a refusal", err)
	}
}

func TestAFailedAnchorFailsTheCommit(t *testing.T) {
	rec := &anchorstest.Recorder{Err: errors.New("disk full")}
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	s, err := New(cfg, WithAnchors(rec))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Commit(context.Background(), dayOutput(0))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Commit = %v, want the anchor's error", err)
	}
}

func hashOf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestAnOlderManifestIsNamedAsSuch(t *testing.T) {
	path := filepath.Join(t.TempDir(), ManifestName)
	old := `{"manifest_version": 1, "dataset": "campaign_metrics", "accounting": {"withdrawn_by_reason": {"opted_out_before_publish": 3}}}`
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadManifest(path)
	if err == nil || !strings.Contains(err.Error(), "manifest_version 1, want 2") {
		t.Errorf("ReadManifest of a version 1 manifest = %v", err)
	}
}
