package parquet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	pq "github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/apache/arrow/go/v17/parquet/schema"
	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/objstore"
)

func TestCommitRoundTrip(t *testing.T) {
	s, _ := newSink(t)
	out := testOutput(testRows())
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	path := dataFile(t, s, out)

	// Arrow's reader gives back exactly the rows and window committed.
	rows, w, err := ReadDatasetRows(path, out.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(out.Rows, rows); diff != "" {
		t.Errorf("rows read back with Arrow (-committed +read):\n%s", diff)
	}
	if w != out.Window {
		t.Errorf("window read back %v, want %v", w, out.Window)
	}

	// So does an independent reader, column by column.
	cols, n := readIndependent(t, path)
	if n != int64(len(out.Rows)) {
		t.Fatalf("parquet-go reads %d rows, want %d", n, len(out.Rows))
	}
	want := map[string][]any{
		"window_start":         {day.Start, day.Start, day.Start},
		"window_end":           {day.End, day.End, day.End},
		"platform":             {"instagram", "tiktok", "*"},
		"region":               {"EU", "NA", "*"},
		"industry":             {"beauty.skincare", "gaming", "beauty"},
		"generalization_level": {int32(0), int32(0), int32(2)},
		"platform_level":       {int32(0), int32(0), int32(1)},
		"region_level":         {int32(0), int32(0), int32(1)},
		"industry_level":       {int32(0), int32(0), int32(0)},
		"events":               {int64(40), int64(40), int64(20)},
		"impressions":          {int64(120000), int64(0), int64(9223372036854775807)},
		"ctr":                  {0.0125, nil, 1e-9},
	}
	if diff := cmp.Diff(want, cols); diff != "" {
		t.Errorf("columns read with parquet-go (-want +got):\n%s", diff)
	}
}

func TestCommitManyRowGroups(t *testing.T) {
	s, _ := newSink(t, func(c *Config) { c.MaxRowGroupRows = 3 })
	out := testOutput(manyRows(10))
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	path := dataFile(t, s, out)
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	if got := rdr.NumRowGroups(); got != 4 {
		t.Errorf("%d row groups, want 4 (10 rows, 3 per group)", got)
	}
	rows, _, err := ReadDatasetRows(path, out.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(out.Rows, rows); diff != "" {
		t.Errorf("rows read back (-committed +read):\n%s", diff)
	}
	cols, _ := readIndependent(t, path)
	if got := cols["industry"][9]; got != "industry.leaf0" {
		t.Errorf("parquet-go: last row's industry is %v", got)
	}
}

func TestRowGroupsStayUnder128MiB(t *testing.T) {
	s, _ := newSink(t)
	spec := testSpec()
	per := s.rowsPerGroup(spec)
	if got := int64(per) * rowWidth(spec); got > 128<<20 {
		t.Errorf("%d rows per group of %d bytes each is %d bytes, over 128 MiB", per, rowWidth(spec), got)
	}
	if per > 1<<20 {
		t.Errorf("%d rows per group, over the 1Mi cap", per)
	}
}

func TestColumnTypes(t *testing.T) {
	for _, codec := range []string{CompressionSnappy, CompressionZstd} {
		t.Run(codec, func(t *testing.T) {
			s, _ := newSink(t, func(c *Config) { c.Compression = codec })
			out := testOutput(testRows())
			if err := s.Commit(context.Background(), out); err != nil {
				t.Fatal(err)
			}
			path := dataFile(t, s, out)
			rdr, err := file.OpenParquetFile(path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer rdr.Close()

			type col struct {
				Physical   pq.Type
				Logical    string
				Repetition string
			}
			ts := schema.NewTimestampLogicalType(true, schema.TimeUnitMicros).String()
			str := schema.StringLogicalType{}.String()
			none := schema.NoLogicalType{}.String()
			want := map[string]col{
				"window_start":         {pq.Types.Int64, ts, "required"},
				"window_end":           {pq.Types.Int64, ts, "required"},
				"platform":             {pq.Types.ByteArray, str, "optional"},
				"region":               {pq.Types.ByteArray, str, "optional"},
				"industry":             {pq.Types.ByteArray, str, "optional"},
				"generalization_level": {pq.Types.Int32, schema.NewIntLogicalType(32, true).String(), "required"},
				"platform_level":       {pq.Types.Int32, schema.NewIntLogicalType(32, true).String(), "required"},
				"region_level":         {pq.Types.Int32, schema.NewIntLogicalType(32, true).String(), "required"},
				"industry_level":       {pq.Types.Int32, schema.NewIntLogicalType(32, true).String(), "required"},
				"events":               {pq.Types.Int64, schema.NewIntLogicalType(64, true).String(), "required"},
				"impressions":          {pq.Types.Int64, schema.NewIntLogicalType(64, true).String(), "required"},
				"ctr":                  {pq.Types.Double, none, "optional"},
			}
			got := map[string]col{}
			sc := rdr.MetaData().Schema
			for i := 0; i < sc.NumColumns(); i++ {
				c := sc.Column(i)
				rep := "required"
				if c.MaxDefinitionLevel() > 0 {
					rep = "optional"
				}
				got[c.Name()] = col{c.PhysicalType(), c.LogicalType().String(), rep}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parquet column types (-want +got):\n%s", diff)
			}

			// Timestamps are adjusted to UTC, in microseconds.
			tsl := sc.Column(0).LogicalType().(*schema.TimestampLogicalType)
			if !tsl.IsAdjustedToUTC() || tsl.TimeUnit() != schema.TimeUnitMicros {
				t.Errorf("window_start logical type %s, want TIMESTAMP(MICROS, UTC)", tsl)
			}

			// Dimensions are dictionary-encoded; the codec is the configured one.
			wantCodec := compress.Codecs.Snappy
			if codec == CompressionZstd {
				wantCodec = compress.Codecs.Zstd
			}
			rg := rdr.MetaData().RowGroup(0)
			for i := 0; i < sc.NumColumns(); i++ {
				cc, err := rg.ColumnChunk(i)
				if err != nil {
					t.Fatal(err)
				}
				// Statistics are sound: arrow-go v17 writes a negative null
				// count for a required dictionary column, which is why
				// dimensions are declared optional.
				st, err := cc.Statistics()
				if err != nil {
					t.Fatal(err)
				}
				if st == nil || st.NullCount() < 0 || (sc.Column(i).Name() != "ctr" && st.NullCount() != 0) {
					t.Errorf("column %s: statistics missing or null count wrong (%d)", sc.Column(i).Name(), nullCount(st))
				} else if st.NullCount()+st.NumValues() != cc.NumValues() {
					t.Errorf("column %s: %d nulls and %d values in statistics, %d values in the chunk",
						sc.Column(i).Name(), st.NullCount(), st.NumValues(), cc.NumValues())
				}
				if cc.Compression() != wantCodec {
					t.Errorf("column %s compressed with %s, want %s", sc.Column(i).Name(), cc.Compression(), wantCodec)
				}
				if name := sc.Column(i).Name(); name == "platform" || name == "region" || name == "industry" {
					if !cc.HasDictionaryPage() {
						t.Errorf("dimension %s has no dictionary page", name)
					}
					dict := false
					for _, enc := range cc.Encodings() {
						dict = dict || enc == pq.Encodings.RLEDict || enc == pq.Encodings.PlainDict
					}
					if !dict {
						t.Errorf("dimension %s: data pages not dictionary-encoded (%v)", name, cc.Encodings())
					}
				}
			}

			// Arrow readers get the Arrow types back.
			fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			as, err := fr.Schema()
			if err != nil {
				t.Fatal(err)
			}
			wantArrow := map[string]string{
				"window_start":         (&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}).String(),
				"window_end":           (&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}).String(),
				"platform":             dictType.String(),
				"region":               dictType.String(),
				"industry":             dictType.String(),
				"generalization_level": "int32",
				"platform_level":       "int32",
				"region_level":         "int32",
				"industry_level":       "int32",
				"events":               "int64",
				"impressions":          "int64",
				"ctr":                  "float64",
			}
			gotArrow := map[string]string{}
			for _, f := range as.Fields() {
				gotArrow[f.Name] = f.Type.String()
			}
			if diff := cmp.Diff(wantArrow, gotArrow); diff != "" {
				t.Errorf("Arrow types (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKeyValueMetadata(t *testing.T) {
	s, _ := newSink(t)
	out := testOutput(testRows())
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	md, err := ReadMetadata(dataFile(t, s, out))
	if err != nil {
		t.Fatal(err)
	}
	if md["ARROW:schema"] == "" {
		t.Error("no ARROW:schema metadata")
	}
	delete(md, "ARROW:schema")
	want := map[string]string{
		"dataset":            "campaign_metrics",
		"schema_version":     "3",
		"k":                  "10",
		"dominance":          "2,85",
		"p_percent":          "10",
		"dominance_measures": "impressions,events",
		"pipeline_version":   "v0.1.0-test",
		"policy_version":     "policy-1234",
		"window_start":       "2024-05-01T00:00:00Z",
		"window_end":         "2024-05-02T00:00:00Z",
	}
	if diff := cmp.Diff(want, md); diff != "" {
		t.Errorf("key-value metadata (-want +got):\n%s", diff)
	}
}

func TestSameOutputGivesByteIdenticalFile(t *testing.T) {
	for _, codec := range []string{CompressionSnappy, CompressionZstd} {
		t.Run(codec, func(t *testing.T) {
			var files [][]byte
			var names []string
			for range 2 {
				s, _ := newSink(t, func(c *Config) { c.Compression = codec; c.MaxRowGroupRows = 1000 })
				out := testOutput(manyRows(5000))
				if err := s.Commit(context.Background(), out); err != nil {
					t.Fatal(err)
				}
				// Different wall-clock times must not matter.
				time.Sleep(10 * time.Millisecond)
				path := dataFile(t, s, out)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, b)
				names = append(names, filepath.Base(path))
			}
			if !bytes.Equal(files[0], files[1]) {
				t.Error("two commits of the same window output differ")
			}
			if names[0] != names[1] {
				t.Errorf("file names differ: %s, %s", names[0], names[1])
			}
		})
	}
}

func TestManifest(t *testing.T) {
	s, out0 := newSink(t)
	out := testOutput(testRows())
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(out0, "datasets", "campaign_metrics", "dt=2024-05-01")
	if diff := cmp.Diff([]string{"_manifest.json", filepath.Base(dataFile(t, s, out))}, listDir(t, dir)); diff != "" {
		t.Errorf("window directory (-want +got):\n%s", diff)
	}
	m, err := ReadManifest(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, m.Files[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	acctPath := filepath.Join(out0, "accounting", "campaign_metrics", "dt=2024-05-01", AccountingName)
	acctBytes, err := os.ReadFile(acctPath)
	if err != nil {
		t.Fatalf("the accounting record: %v", err)
	}
	acctSum := sha256.Sum256(acctBytes)
	want := &Manifest{
		ManifestVersion: 2,
		Dataset:         "campaign_metrics",
		SchemaVersion:   3,
		PipelineVersion: "v0.1.0-test",
		PolicyVersion:   "policy-1234",
		Window:          Window{Start: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)},
		Rows:            3,
		Files: []File{{Path: "part-" + hex.EncodeToString(sum[:8]) + ".parquet", Rows: 3, RowGroups: 1,
			Bytes: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}},
		Privacy: Privacy{K: 10, DominanceN: 2, DominanceK: 85, PPercent: 10,
			DominanceMeasures: []string{"impressions", "events"}, ProtectedEntities: []string{"workspaces", "creators"},
			Generalization: pipeline.DefaultGeneralization},
		Columns: []Column{
			{Name: "window_start", Type: TypeTimestamp, Role: RoleWindow},
			{Name: "window_end", Type: TypeTimestamp, Role: RoleWindow},
			{Name: "platform", Type: TypeDictStr, Nullable: true, Role: RoleDimension},
			{Name: "region", Type: TypeDictStr, Nullable: true, Role: RoleDimension},
			{Name: "industry", Type: TypeDictStr, Nullable: true, Role: RoleDimension},
			{Name: "generalization_level", Type: TypeInt32, Role: RoleLevel},
			{Name: "platform_level", Type: TypeInt32, Role: RoleLevel},
			{Name: "region_level", Type: TypeInt32, Role: RoleLevel},
			{Name: "industry_level", Type: TypeInt32, Role: RoleLevel},
			{Name: "events", Type: TypeInt64, Role: RoleMeasure},
			{Name: "impressions", Type: TypeInt64, Role: RoleMeasure},
			{Name: "ctr", Type: TypeDouble, Nullable: true, Role: RoleMeasure},
		},
		Published:           Published{RowsByLevel: out.Acct.RowsByLevel, EventsByLevel: out.Acct.EventsByLevel},
		AccountingSHA256:    hex.EncodeToString(acctSum[:]),
		ExclusionChainHeads: out.ChainHeads,
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}

	// The fields come out in a stable order, the window in RFC 3339.
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	keys := topLevelKeys(t, raw)
	wantKeys := []string{"manifest_version", "dataset", "schema_version", "pipeline_version", "policy_version",
		"window", "rows", "files", "privacy", "columns", "published", "accounting_sha256", "exclusion_chain_heads", "previous_manifest"}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("manifest key order (-want +got):\n%s", diff)
	}
	if !bytes.Contains(raw, []byte(`"start": "2024-05-01T00:00:00Z"`)) {
		t.Errorf("manifest window not in RFC 3339:\n%s", raw)
	}
}

func topLevelKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestPublishedWindowIsNeverRewritten(t *testing.T) {
	s, _ := newSink(t)
	out := testOutput(testRows())
	ok, err := s.Published(out.Spec.Name, out.Window)
	if err != nil || ok {
		t.Fatalf("Published before commit = %v, %v; want false, nil", ok, err)
	}
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	ok, err = s.Published(out.Spec.Name, out.Window)
	if err != nil || !ok {
		t.Fatalf("Published after commit = %v, %v; want true, nil", ok, err)
	}
	dir, _ := s.Dir(out.Spec.Name, out.Window)
	before := listDir(t, dir)
	manifest, _ := os.ReadFile(filepath.Join(dir, ManifestName))

	other := testOutput(manyRows(7))
	err = s.Commit(context.Background(), other)
	if !errors.Is(err, ErrPublished) {
		t.Fatalf("second commit: %v, want ErrPublished", err)
	}
	if diff := cmp.Diff(before, listDir(t, dir)); diff != "" {
		t.Errorf("second commit changed the directory (-before +after):\n%s", diff)
	}
	after, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	if !bytes.Equal(manifest, after) {
		t.Error("second commit changed the manifest")
	}
}

func TestFailedCommitLeavesNothingCommitted(t *testing.T) {
	for _, step := range []string{"data", "manifest"} {
		t.Run("failing at "+step, func(t *testing.T) {
			s, _ := newSink(t)
			injected := errors.New("injected failure")
			s.hook = func(at string) error {
				if at == step {
					return injected
				}
				return nil
			}
			out := testOutput(testRows())
			if err := s.Commit(context.Background(), out); !errors.Is(err, injected) {
				t.Fatalf("commit: %v, want the injected failure", err)
			}
			dir, _ := s.Dir(out.Spec.Name, out.Window)
			if names := listDir(t, dir); len(names) != 0 {
				t.Errorf("failed commit left %v", names)
			}
			if ok, _ := s.Published(out.Spec.Name, out.Window); ok {
				t.Error("failed commit counts as published")
			}

			// The retry commits.
			s.hook = nil
			if err := s.Commit(context.Background(), out); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if names := listDir(t, dir); len(names) != 2 {
				t.Errorf("after retry: %v, want a manifest and a data file", names)
			}
		})
	}
}

// unreadable is a store whose reads of a window's manifest fail while
// failing is set: a store that answers writes but not reads.
type unreadable struct {
	objstore.Store
	failing atomic.Bool
}

func (u *unreadable) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if u.failing.Load() && path.Base(key) == ManifestName {
		return nil, errors.New("injected: the manifest cannot be read")
	}
	return u.Store.Get(ctx, key)
}

// TestAnotherProcessCommittingFirstWins: another process commits the
// window between our data file and our manifest. Our manifest is refused
// and their manifest stays; our data file goes only when their manifest
// does not list it: a data file is named by its bytes, so a writer of the
// same rows committed this very file, and one whose manifest cannot be
// read may have.
func TestAnotherProcessCommittingFirstWins(t *testing.T) {
	for _, tc := range []struct {
		name       string
		theirRows  []pipeline.Row
		unreadable bool
		ourFile    bool // whether our data file must stay
	}{
		{name: "other rows", theirRows: manyRows(7), ourFile: false},
		{name: "the same rows", theirRows: testRows(), ourFile: true},
		{name: "the same rows, their manifest unreadable", theirRows: testRows(), unreadable: true, ourFile: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			local, err := objstore.NewLocal(dir)
			if err != nil {
				t.Fatal(err)
			}
			st := &unreadable{Store: local}
			cfg := DefaultConfig()
			cfg.Dir = dir
			s, err := New(cfg, WithStore(st))
			if err != nil {
				t.Fatal(err)
			}
			other, _ := New(cfg)
			out, theirOut := testOutput(testRows()), testOutput(tc.theirRows)
			s.hook = func(step string) error {
				if step == "manifest" {
					if err := other.Commit(context.Background(), theirOut); err != nil {
						return err
					}
					st.failing.Store(tc.unreadable)
				}
				return nil
			}
			if err := s.Commit(context.Background(), out); !errors.Is(err, ErrPublished) || !errors.Is(err, pipeline.ErrCommittedElsewhere) {
				t.Fatalf("commit: %v, want ErrPublished and ErrCommittedElsewhere", err)
			}
			st.failing.Store(false)
			wdir, _ := s.Dir(out.Spec.Name, out.Window)
			m, err := ReadManifest(filepath.Join(wdir, ManifestName))
			if err != nil {
				t.Fatal(err)
			}
			theirs := m.Files[0].Path
			if m.Rows != int64(len(tc.theirRows)) {
				t.Errorf("the manifest counts %d rows, want their %d: it was replaced", m.Rows, len(tc.theirRows))
			}
			if _, err := os.Stat(filepath.Join(wdir, theirs)); err != nil {
				t.Errorf("the data file their manifest lists: %v", err)
			}
			ours := filepath.Base(dataFileName(t, out))
			_, err = os.Stat(filepath.Join(wdir, ours))
			if kept := err == nil; kept != tc.ourFile {
				t.Errorf("our data file kept: %v, want %v (directory %v)", kept, tc.ourFile, listDir(t, wdir))
			}
		})
	}
}

// TestALeaseLostMidCommitDeletesNothing: a writer whose fence fails just
// before its manifest (the output was taken over meanwhile, and the new
// owner committed the same rows, so the same data file) leaves that file
// in place; and one whose fence fails at once removes none of the files an
// owner is writing.
func TestALeaseLostMidCommitDeletesNothing(t *testing.T) {
	lost := errors.New("lease lost")
	out := testOutput(testRows())
	t.Run("before the manifest", func(t *testing.T) {
		dir := t.TempDir()
		cfg := DefaultConfig()
		cfg.Dir = dir
		var takenOver atomic.Bool
		zombie, err := New(cfg, WithFence(func(context.Context) error {
			if takenOver.Load() {
				return lost
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		owner, _ := New(cfg)
		zombie.hook = func(step string) error {
			if step == "manifest" {
				takenOver.Store(true)
				return owner.Commit(context.Background(), out)
			}
			return nil
		}
		if err := zombie.Commit(context.Background(), out); !errors.Is(err, lost) {
			t.Fatalf("commit: %v, want the fence's error", err)
		}
		if _, err := os.Stat(dataFile(t, owner, out)); err != nil {
			t.Errorf("the owner's committed data file: %v", err)
		}
	})
	t.Run("at once", func(t *testing.T) {
		dir := t.TempDir()
		cfg := DefaultConfig()
		cfg.Dir = dir
		zombie, err := New(cfg, WithFence(func(context.Context) error { return lost }))
		if err != nil {
			t.Fatal(err)
		}
		wdir, _ := zombie.Dir(out.Spec.Name, out.Window)
		// The owner's data file, written, its manifest not yet.
		if err := os.MkdirAll(wdir, 0o755); err != nil {
			t.Fatal(err)
		}
		owners := filepath.Join(wdir, "part-0123456789abcdef.parquet")
		if err := os.WriteFile(owners, []byte("the owner's"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := zombie.Commit(context.Background(), out); !errors.Is(err, lost) {
			t.Fatalf("commit: %v, want the fence's error", err)
		}
		if diff := cmp.Diff([]string{filepath.Base(owners)}, listDir(t, wdir)); diff != "" {
			t.Errorf("directory (-want +got):\n%s", diff)
		}
	})
}

// TestASecondWriterRemovesNothingBeforeItsManifest: two writers commit
// one window with different rows (the consent re-check saw a withdrawal
// in between). The second starts after the first has stored its data file
// and stops before storing its own; the first then commits. The first
// window's data file must be there: an interrupted commit's files are
// removed only after a manifest is in place, never by a writer that has
// not committed.
func TestASecondWriterRemovesNothingBeforeItsManifest(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	first, _ := New(cfg)
	second, _ := New(cfg)
	stopped := errors.New("stopped before its data file")
	out, other := testOutput(testRows()), testOutput(manyRows(7))
	first.hook = func(step string) error {
		if step == "manifest" {
			// The second writer runs up to its own data file, then stops.
			if err := second.Commit(context.Background(), other); !errors.Is(err, stopped) {
				t.Errorf("second writer: %v, want it stopped", err)
			}
		}
		return nil
	}
	second.hook = func(step string) error {
		if step == "data" {
			return stopped
		}
		return nil
	}
	if err := first.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dataFile(t, first, out)); err != nil {
		t.Errorf("the committed window's data file: %v", err)
	}
}

// dataFileName returns the name a commit of out gives its data file.
func dataFileName(t testing.TB, out *pipeline.WindowOutput) string {
	t.Helper()
	s, _ := newSink(t)
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(dataFile(t, s, out))
}

func TestCommitRemovesAnInterruptedCommitsFiles(t *testing.T) {
	s, _ := newSink(t)
	out := testOutput(testRows())
	dir, _ := s.Dir(out.Spec.Name, out.Window)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// What a crash between the data file and the manifest leaves (the
	// signature of a signed commit, which would not match an unsigned
	// manifest, among it).
	for _, n := range []string{"part-0123456789abcdef.parquet", ".part-123.tmp", ".manifest-9.tmp", ManifestName + ".sig"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("stale"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	want := []string{"_manifest.json", filepath.Base(dataFile(t, s, out))}
	if diff := cmp.Diff(want, listDir(t, dir)); diff != "" {
		t.Errorf("directory after commit (-want +got):\n%s", diff)
	}
}

func TestCommitFailsWhenTheDirectoryCannotBeCreated(t *testing.T) {
	s, out0 := newSink(t)
	// A file where the dataset directory should be.
	if err := os.MkdirAll(filepath.Join(out0, "datasets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out0, "datasets", "campaign_metrics"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := testOutput(testRows())
	if err := s.Commit(context.Background(), out); err == nil {
		t.Fatal("commit succeeded without a directory")
	}
	if m, _ := ListManifests(out0); len(m) != 0 {
		t.Errorf("manifests after a failed commit: %v", m)
	}
}

func TestCommitHonoursCancellation(t *testing.T) {
	s, _ := newSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := testOutput(testRows())
	if err := s.Commit(ctx, out); !errors.Is(err, context.Canceled) {
		t.Fatalf("commit: %v, want context.Canceled", err)
	}
	if ok, _ := s.Published(out.Spec.Name, out.Window); ok {
		t.Error("cancelled commit counts as published")
	}
}

func TestEmptyWindow(t *testing.T) {
	s, _ := newSink(t)
	out := testOutput(nil)
	out.Acct = pipeline.WindowAccounting{}
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	path := dataFile(t, s, out)
	dir, _ := s.Dir(out.Spec.Name, out.Window)
	m, err := ReadManifest(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 0 || m.Files[0].Rows != 0 || m.Files[0].RowGroups != 0 {
		t.Errorf("manifest of an empty window: rows %d, file %+v", m.Rows, m.Files[0])
	}
	rows, err := ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 0 {
		t.Errorf("%d rows in an empty window's file", len(rows))
	}
	cols, n := readIndependent(t, path)
	if n != 0 || len(cols) != 12 {
		t.Errorf("parquet-go: %d rows, %d columns; want 0 and 12", n, len(cols))
	}
}

func TestCommitRejectsOutputThatDoesNotFit(t *testing.T) {
	tests := []struct {
		name string
		edit func(*pipeline.WindowOutput)
		want string
	}{
		{"a row with too few dimensions", func(o *pipeline.WindowOutput) { o.Rows[0].Dims = o.Rows[0].Dims[:2] },
			"row 0: 2 dimensions and 3 values, want 3 and 3"},
		{"a null integer measure", func(o *pipeline.WindowOutput) { o.Rows[1].Values[0].Null = true },
			"row 1: measure events is an integer and cannot be null"},
		{"a dimension named like a fixed column", func(o *pipeline.WindowOutput) { o.Spec.Dimensions[0].Name = "window_start" },
			`column name "window_start" is empty, reserved or repeated`},
		{"a dimension named like a Hive partition key", func(o *pipeline.WindowOutput) { o.Spec.Dimensions[1].Name = "dt" },
			`column name "dt" is empty, reserved or repeated`},
		{"a measure named like a dimension", func(o *pipeline.WindowOutput) { o.Spec.Measures[0].Name = "region" },
			`column name "region" is empty, reserved or repeated`},
		{"a measure named like a dimension's level column", func(o *pipeline.WindowOutput) { o.Spec.Measures[0].Name = "region_level" },
			`column name "region_level" is empty, reserved or repeated`},
		{"a row above the top of the ladder", func(o *pipeline.WindowOutput) { o.Rows[2].Level = 9 },
			"row 2: generalization level 9 is not a step of the ladder (0–8)"},
		{"a dataset name with a slash", func(o *pipeline.WindowOutput) { o.Spec.Name = "../evil" },
			`dataset name "../evil"`},
		{"a window that is not aligned", func(o *pipeline.WindowOutput) { o.Window.Start += 3600e6; o.Window.End += 3600e6 },
			"a 24h window must start at midnight UTC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, out0 := newSink(t)
			out := testOutput(testRows())
			tt.edit(out)
			err := s.Commit(context.Background(), out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("commit: %v, want an error containing %q", err, tt.want)
			}
			if m, _ := ListManifests(out0); len(m) != 0 {
				t.Errorf("manifests after a rejected commit: %v", m)
			}
		})
	}
}

func TestConcurrentCommits(t *testing.T) {
	s, out0 := newSink(t)
	errs := make([]error, 24)
	// Eight windows, in order (a dataset's manifests form a chain in
	// window order), three commits of each at once.
	for w := range 8 {
		var wg sync.WaitGroup
		for i := w; i < len(errs); i += 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := testOutput(manyRows(50 + i%8))
				out.Window = pipeline.Window{Start: day.Start + int64(i%8)*3600e6, End: day.Start + int64(i%8+1)*3600e6}
				errs[i] = s.Commit(context.Background(), out)
			}()
		}
		wg.Wait()
	}
	ok, published := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrPublished):
			published++
		default:
			t.Errorf("commit: %v", err)
		}
	}
	if ok != 8 || published != 16 {
		t.Errorf("%d commits succeeded and %d found the window published; want 8 and 16", ok, published)
	}
	if len(s.busy) != 0 {
		t.Errorf("%d directory locks left after the commits", len(s.busy))
	}
	m, err := ListManifests(out0)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 8 {
		t.Errorf("%d manifests, want 8", len(m))
	}
	for _, p := range m {
		if !strings.Contains(p, string(filepath.Separator)+"hour=") {
			t.Errorf("hourly window's manifest %s has no hour= directory", p)
		}
		if names := listDir(t, filepath.Dir(p)); len(names) != 2 {
			t.Errorf("%s: %v, want a manifest and one data file", filepath.Dir(p), names)
		}
	}
}

func TestPartitionPath(t *testing.T) {
	at := func(h, m int) int64 { return time.Date(2024, 5, 1, h, m, 0, 0, time.UTC).UnixMicro() }
	tests := []struct {
		name    string
		w       pipeline.Window
		want    string
		wantErr string
	}{
		{"a day window has only a date", pipeline.Window{Start: at(0, 0), End: at(24, 0)}, "dt=2024-05-01", ""},
		{"an hour window has an hour", pipeline.Window{Start: at(13, 0), End: at(14, 0)}, "dt=2024-05-01/hour=13", ""},
		{"a six-hour window has an hour", pipeline.Window{Start: at(18, 0), End: at(24, 0)}, "dt=2024-05-01/hour=18", ""},
		{"a 90-minute window has the hour it starts in", pipeline.Window{Start: at(1, 30), End: at(3, 0)}, "dt=2024-05-01/hour=01", ""},
		{"a half-hour window has a minute", pipeline.Window{Start: at(9, 30), End: at(10, 0)}, "dt=2024-05-01/hour=09/minute=30", ""},
		{"an empty window is an error", pipeline.Window{Start: at(1, 0), End: at(1, 0)}, "", "longer than 0"},
		{"a two-day window is an error", pipeline.Window{Start: at(0, 0), End: at(48, 0)}, "", "at most 24h"},
		{"a window off the minute is an error", pipeline.Window{Start: at(1, 0) + 1, End: at(2, 0) + 1}, "", "whole minute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PartitionPath(tt.w)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("PartitionPath: %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != filepath.FromSlash(tt.want) {
				t.Fatalf("PartitionPath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"the defaults with a directory are valid", func(*Config) {}, nil},
		{"zstd is valid", func(c *Config) { c.Compression = "zstd" }, nil},
		{"every problem is reported", func(c *Config) {
			c.Dir, c.Compression, c.MaxRowGroupRows, c.MaxRowGroupBytes = "", "gzip", 0, 10
		}, []string{
			"out: must name the output directory (or pass --out)",
			`parquet.compression: must be "snappy" or "zstd" (got "gzip")`,
			"parquet.max_row_group_rows: must be at least 1, e.g. 1048576 (got 0)",
			"parquet.max_row_group_bytes: must be at least 1048576 (1 MiB), e.g. 134217728 (got 10)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Dir = "/out"
			tt.edit(&c)
			err := c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
			if _, nerr := New(c); (nerr == nil) != (tt.want == nil) {
				t.Errorf("New: %v", nerr)
			}
		})
	}
}

func TestListManifestsOfAnEmptyOutput(t *testing.T) {
	m, err := ListManifests(t.TempDir())
	if err != nil || len(m) != 0 {
		t.Fatalf("ListManifests = %v, %v; want none", m, err)
	}
}

func nullCount(st interface{ NullCount() int64 }) int64 {
	if st == nil {
		return 0
	}
	return st.NullCount()
}

// TestRowsWriteTheirOwnDimensionLevels: a row that states each
// dimension's level (any strategy other than the ladder) gets those in
// its <dimension>_level columns, not the ladder's at its generalization
// level; a row that states none gets the ladder's.
func TestRowsWriteTheirOwnDimensionLevels(t *testing.T) {
	s, _ := newSink(t)
	rows := []pipeline.Row{
		{Dims: []string{"instagram", "EU", "beauty.skincare"}, Level: 1, DimLevels: []int{0, 1, 0},
			Values: []pipeline.Value{{Int: 40}, {Int: 1}, {Float: 0.5}}},
		{Dims: []string{"tiktok", "NA.US", "gaming"}, Level: 1, DimLevels: []int{0, 0, 1},
			Values: []pipeline.Value{{Int: 40}, {Int: 1}, {Float: 0.5}}},
		{Dims: []string{"*", "NA", "beauty"}, Level: 2,
			Values: []pipeline.Value{{Int: 20}, {Int: 1}, {Float: 0.5}}},
	}
	out := testOutput(rows)
	out.Acct.RowsByLevel, out.Acct.EventsByLevel = map[int]int64{1: 2, 2: 1}, map[int]int64{1: 80, 2: 20}
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	cols, _ := readIndependent(t, dataFile(t, s, out))
	want := map[string][]any{
		"platform_level": {int32(0), int32(0), int32(1)},
		"region_level":   {int32(1), int32(0), int32(1)},
		"industry_level": {int32(0), int32(1), int32(0)},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, cols[name]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

// TestRowsWithLevelsOutsideTheirHierarchyAreRefused: a row whose stated
// levels do not fit the dataset is not written.
func TestRowsWithLevelsOutsideTheirHierarchyAreRefused(t *testing.T) {
	s, _ := newSink(t)
	out := testOutput([]pipeline.Row{{Dims: []string{"x", "EU", "beauty"}, Level: 1, DimLevels: []int{0, 1},
		Values: []pipeline.Value{{Int: 40}, {Int: 1}, {Float: 0.5}}}})
	if err := s.Commit(context.Background(), out); err == nil || !strings.Contains(err.Error(), "dimension levels") {
		t.Errorf("commit of a row with 2 levels for 3 dimensions: %v, want a refusal", err)
	}
}
