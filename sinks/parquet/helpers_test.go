package parquet

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mya/deid/internal/parquettest"
	"github.com/mya/deid/pipeline"
)

// testSpec is a small campaign-like dataset: three dimensions, an eight-step
// ladder, two counters and a ratio.
func testSpec() *pipeline.DatasetSpec {
	return &pipeline.DatasetSpec{
		Name:          "campaign_metrics",
		SchemaVersion: 3,
		Dimensions:    []pipeline.Dimension{{Name: "platform"}, {Name: "region"}, {Name: "industry"}},
		Ladder:        []string{"platform", "region", "industry", "platform", "region", "industry", "platform", "region"},
		Measures: []pipeline.Measure{
			{Name: "events", Kind: pipeline.MeasureCount},
			{Name: "impressions", Kind: pipeline.MeasureSum, Fields: []string{"impressions"}},
			{Name: "ctr", Kind: pipeline.MeasureRatio, Numerator: "clicks", Denominator: "impressions"},
		},
		Entities: []pipeline.Entity{{Name: "workspaces", Field: "workspace_id", Protected: true},
			{Name: "creators", Field: "creator_id", Protected: true}, {Name: "campaigns", Field: "campaign_id"}},
		Privacy: pipeline.Privacy{K: 10, DominanceN: 2, DominanceK: 85, PPercent: 10,
			DominanceMeasures: []string{"impressions", "events"}},
	}
}

var day = pipeline.Window{
	Start: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).UnixMicro(),
	End:   time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC).UnixMicro(),
}

func testOutput(rows []pipeline.Row) *pipeline.WindowOutput {
	return &pipeline.WindowOutput{
		Spec:   testSpec(),
		Window: day,
		Rows:   rows,
		Acct: pipeline.WindowAccounting{Contributed: 120, Published: 100, Withdrawn: 5, Suppressed: 15,
			WithdrawnByReason:  map[string]int64{"opted_out_before_publish": 5},
			SuppressedByReason: map[string]int64{"suppressed_frequency": 15},
			RowsByLevel:        map[int]int64{0: 2, 2: 1}, EventsByLevel: map[int]int64{0: 80, 2: 20}, CellsSuppressed: 2},
		Partitions: []pipeline.PartitionAccounting{{Partition: "events-00.ndjson[0]", FirstOffset: 1, LastOffset: 130,
			Read: 130, Contributed: 120, Excluded: map[string]int64{"duplicate": 4, "opted_out": 3}, DeadLetters: 3,
			ContributedByDataset: map[string]int64{"campaign_metrics": 120}}},
		ChainHeads:      map[string]string{"events-00.ndjson[0]": strings.Repeat("ab", 32), "publish": strings.Repeat("cd", 32)},
		PolicyVersion:   "policy-1234",
		PipelineVersion: "v0.1.0-test",
	}
}

func testRows() []pipeline.Row {
	return []pipeline.Row{
		{Dims: []string{"instagram", "EU", "beauty.skincare"}, Level: 0,
			Values: []pipeline.Value{{Int: 40}, {Int: 120000}, {Float: 0.0125}}},
		{Dims: []string{"tiktok", "NA", "gaming"}, Level: 0,
			Values: []pipeline.Value{{Int: 40}, {Int: 0}, {Null: true}}},
		{Dims: []string{"*", "*", "beauty"}, Level: 2,
			Values: []pipeline.Value{{Int: 20}, {Int: math.MaxInt64}, {Float: 1e-9}}},
	}
}

// manyRows makes n distinct rows over a handful of dimension values.
func manyRows(n int) []pipeline.Row {
	platforms := []string{"instagram", "linkedin", "tiktok", "x", "youtube"}
	regions := []string{"AF", "AS", "EU", "NA", "OC", "SA"}
	rows := make([]pipeline.Row, n)
	for i := range rows {
		ctr := pipeline.Value{Float: float64(i%97) / 97}
		if i%11 == 0 {
			ctr = pipeline.Value{Null: true}
		}
		rows[i] = pipeline.Row{
			Dims:   []string{platforms[i%5], regions[(i/5)%6], fmt.Sprintf("industry.leaf%d", i/30)},
			Level:  i % 9,
			Values: []pipeline.Value{{Int: int64(i)}, {Int: int64(i) * 1000}, ctr},
		}
	}
	return rows
}

func newSink(t testing.TB, mod ...func(*Config)) (*Sink, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	for _, m := range mod {
		m(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// dataFile returns the one data file of a committed window.
func dataFile(t testing.TB, s *Sink, out *pipeline.WindowOutput) string {
	t.Helper()
	dir, err := s.Dir(out.Spec.Name, out.Window)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 1 {
		t.Fatalf("manifest lists %d files, want 1", len(m.Files))
	}
	return filepath.Join(dir, m.Files[0].Path)
}

// readIndependent reads a Parquet file with xitongsys/parquet-go, a reader
// that shares no code with the writer, and returns each column's values by
// name (nil for null) and the row count.
func readIndependent(t testing.TB, path string) (map[string][]any, int64) {
	t.Helper()
	cols, n, err := parquettest.ReadColumns(path)
	if err != nil {
		t.Fatal(err)
	}
	return cols, n
}

// listDir returns the names in dir, sorted.
// listDir lists the names in dir; a directory never created holds none.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
