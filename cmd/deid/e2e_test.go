package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/sinks/deadletter"
	"github.com/mya/deid/sinks/parquet"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// deid runs the command line in-process and fails the test on a non-zero exit.
func deid(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("deid %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// outputs is everything a run wrote, decoded: dataset rows (from the
// Parquet files, by dataset partition), exclusion entries, cell-level
// entries, dead letters and the manifests' accounting.
type outputs struct {
	Rows             map[string][]map[string]any `json:"rows"`
	Exclusions       []string                    `json:"exclusions"`
	CellExclusions   []string                    `json:"cell_exclusions"`
	DeadLetters      []string                    `json:"dead_letters"`
	WindowAccounting map[string]any              `json:"window_accounting"`
}

func readOutputs(t *testing.T, out string) outputs {
	t.Helper()
	o := outputs{Rows: map[string][]map[string]any{}, WindowAccounting: map[string]any{}}
	manifests, err := parquet.ListManifests(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, mpath := range manifests {
		m, err := parquet.ReadManifest(mpath)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(filepath.Join(out, "datasets"), filepath.Dir(mpath))
		rows := []map[string]any{}
		for _, f := range m.Files {
			rs, err := parquet.ReadRows(filepath.Join(filepath.Dir(mpath), f.Path))
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, rs...)
		}
		o.Rows[rel] = jsonRoundTrip(t, rows).([]map[string]any)
		o.WindowAccounting[rel] = jsonRoundTrip(t, recordOf(t, out, m).Accounting)
	}
	for _, e := range exclusionEntries(t, out) {
		if e.Cell != nil {
			o.CellExclusions = append(o.CellExclusions, fmt.Sprintf("%s %s level=%d %s events=%d workspaces=%d %s",
				e.Cell.Dataset, e.Reason, e.Cell.Level, strings.Join(e.Cell.Dims, ","), e.Cell.Events, e.Cell.Workspaces, e.WorkspaceID))
			continue
		}
		o.Exclusions = append(o.Exclusions, fmt.Sprintf("%s %s %s %s %s", e.Pos, e.EventID, e.EventType, e.WorkspaceID, e.Reason))
	}
	letters, _ := filepath.Glob(filepath.Join(out, "dead-letters", "*"))
	for _, p := range letters {
		lines, err := deadletter.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			o.DeadLetters = append(o.DeadLetters, fmt.Sprintf("%s[%d]@%d %s %s", l.Source, l.Partition, l.Offset, l.Reason, l.Field))
		}
	}
	slices.Sort(o.Exclusions)
	slices.Sort(o.CellExclusions)
	slices.Sort(o.DeadLetters)
	return o
}

func jsonRoundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	switch v.(type) {
	case []map[string]any:
		var out []map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGolden runs every case under testdata/golden and compares what it
// wrote — rows decoded from the Parquet, exclusions, dead letters, window
// accounting — with want.json. Run `make golden` to rewrite them, then
// review the diff.
func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("../../testdata/golden/*")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := []string{"run", "--input", filepath.Join(dir, "events.ndjson"),
				"--settings", filepath.Join(dir, "settings.ndjson"), "--out", out}
			if _, err := os.Stat(filepath.Join(dir, "config.yaml")); err == nil {
				args = append(args, "--config", filepath.Join(dir, "config.yaml"))
			}
			deid(t, args...)
			got := readOutputs(t, out)
			wantPath := filepath.Join(dir, "want.json")
			if *update {
				b, _ := json.MarshalIndent(got, "", "  ")
				if err := os.WriteFile(wantPath, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			b, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatalf("%v (run `make golden` to create it)", err)
			}
			var want outputs
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("outputs differ from %s (-want +got):\n%s", wantPath, diff)
			}
		})
	}
}
