package exclusions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/internal/parquettest"
	"github.com/mya/deid/pipeline"
)

const chainName = "events-00.ndjson[0]"

var spec = &pipeline.DatasetSpec{Name: "campaign_metrics",
	Dimensions: []pipeline.Dimension{{Name: "platform"}, {Name: "region"}, {Name: "industry"}}}

func newLog(t testing.TB, opts ...Option) (*Log, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	l, err := New(cfg, append([]Option{WithDatasets(spec)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l, dir
}

func openChain(t testing.TB, l *Log, name string) *Chain {
	t.Helper()
	c, err := l.Chain(name)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Chain)
}

func at(h int) int64 { return time.Date(2024, 5, 1, h, 0, 0, 0, time.UTC).UnixMicro() }

// recordEntry is a record-level exclusion like the worker makes.
func recordEntry(i int) pipeline.Exclusion {
	reasons := pipeline.RecordReasons()
	return pipeline.Exclusion{
		EventID:       fmt.Sprintf("evt-%06d", i),
		EventType:     "campaign.metrics",
		WorkspaceID:   fmt.Sprintf("ws-%d", i%17),
		Pos:           pipeline.Position{Source: "events-00.ndjson", Offset: int64(i + 1)},
		OccurredAt:    at(1) + int64(i),
		Reason:        reasons[i%len(reasons)],
		PolicyVersion: "policy-1",
		DecidedAt:     at(5) + int64(i),
	}
}

// cellEntries are a withdrawal and a suppression like the publisher makes.
func cellEntries() []pipeline.Exclusion {
	w := pipeline.Window{Start: at(0), End: at(24)}
	withdrawn := &pipeline.CellExclusion{Dataset: "campaign_metrics", Window: w, Dims: []string{"instagram", "EU", "beauty/skin=care%"},
		Reason: pipeline.ReasonOptedOutBeforePublish, Events: 12, Workspaces: 1, WorkspaceID: "ws-left"}
	suppressed := &pipeline.CellExclusion{Dataset: "campaign_metrics", Window: w, Level: 8, Dims: []string{"*", "*", "*"},
		Reason: pipeline.ReasonSuppressedFrequency, Events: 7, Workspaces: 2}
	return []pipeline.Exclusion{
		{WorkspaceID: "ws-left", Reason: withdrawn.Reason, Cell: withdrawn, PolicyVersion: "policy-1", DecidedAt: at(30),
			Pos: pipeline.Position{Source: "campaign_metrics"}},
		{Reason: suppressed.Reason, Cell: suppressed, PolicyVersion: "policy-1", DecidedAt: at(30),
			Pos: pipeline.Position{Source: "campaign_metrics"}},
	}
}

func commitEntries(t testing.TB, c *Chain, entries []pipeline.Exclusion, acct *pipeline.PartitionAccounting) string {
	t.Helper()
	for i := range entries {
		if err := c.Append(&entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	head, err := c.Commit(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	return head
}

func sha(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestEntriesRoundTrip(t *testing.T) {
	l, out := newLog(t)
	c := openChain(t, l, pipeline.PublishChain)
	var entries []pipeline.Exclusion
	for i := range 20 {
		entries = append(entries, recordEntry(i))
	}
	entries[3].OccurredAt = 0 // unknown event time
	entries = append(entries, cellEntries()...)

	// The caller reuses its structs: Append must have copied them.
	var reused pipeline.Exclusion
	for i := range entries {
		reused = entries[i]
		if reused.Cell != nil {
			cell := *reused.Cell
			cell.Dims = slices.Clone(cell.Dims)
			reused.Cell = &cell
		}
		if err := c.Append(&reused); err != nil {
			t.Fatal(err)
		}
		if reused.Cell != nil {
			reused.Cell.Dims[0] = "overwritten"
		}
		reused = pipeline.Exclusion{EventID: "overwritten"}
	}
	acct := &pipeline.PartitionAccounting{Partition: chainName, FirstOffset: 1, LastOffset: 20, Read: 20,
		Excluded: map[string]int64{"duplicate": 20}, ContributedByDataset: map[string]int64{}}
	head, err := c.Commit(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(ChainDir(out, pipeline.PublishChain), SegmentName(1))
	if head != sha(t, path) {
		t.Errorf("head %s is not the segment's SHA-256", head)
	}

	got, meta, err := ReadSegment(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(entries, got); diff != "" {
		t.Errorf("entries read back (-appended +read):\n%s", diff)
	}
	wantMeta := &SegmentMeta{Path: path, Chain: "publish", Seq: 1, PrevSHA256: "", Entries: 22, Accounting: acct}
	if diff := cmp.Diff(wantMeta, meta); diff != "" {
		t.Errorf("segment metadata (-want +got):\n%s", diff)
	}

	// An independent reader sees the same columns and values.
	cols, n := readIndependent(t, path)
	if n != 22 {
		t.Fatalf("parquet-go reads %d rows, want 22", n)
	}
	if diff := cmp.Diff(Columns(), slices.Sorted(mapsKeys(cols)), cmp.Transformer("sort", func(s []string) []string {
		return slices.Sorted(slices.Values(s))
	})); diff != "" {
		t.Errorf("parquet-go columns (-want +got):\n%s", diff)
	}
	checks := []struct {
		col  string
		row  int
		want any
	}{
		{"event_id", 0, "evt-000000"},
		{"workspace_id", 5, "ws-5"},
		{"source", 7, "events-00.ndjson"},
		{"partition", 7, int32(0)},
		{"offset", 7, int64(8)},
		{"occurred_at", 2, at(1) + 2},
		{"occurred_at", 3, nil},
		{"reason", 1, "duplicate"},
		{"decided_at", 0, at(5)},
		{"dataset", 0, nil},
		{"event_id", 20, nil},
		{"workspace_id", 20, "ws-left"},
		{"dataset", 20, "campaign_metrics"},
		{"cell", 20, "platform=instagram/region=EU/industry=beauty%2Fskin%3Dcare%25"},
		{"cell", 21, "platform=*/region=*/industry=*"},
		{"level", 21, int32(8)},
		{"window_start", 21, at(0)},
		{"events", 21, int64(7)},
		{"workspaces", 21, int64(2)},
		{"reason", 21, "suppressed_frequency"},
		{"workspace_id", 21, nil},
	}
	for _, ck := range checks {
		if got := cols[ck.col][ck.row]; !cmp.Equal(got, ck.want) {
			t.Errorf("parquet-go: %s[%d] = %#v, want %#v", ck.col, ck.row, got, ck.want)
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// readIndependent reads a segment with xitongsys/parquet-go (parquettest).
func readIndependent(t testing.TB, path string) (map[string][]any, int64) {
	t.Helper()
	cols, n, err := parquettest.ReadColumns(path)
	if err != nil {
		t.Fatal(err)
	}
	return cols, n
}

func TestNoPayloadColumn(t *testing.T) {
	want := []string{"event_id", "event_type", "workspace_id", "source", "partition", "offset", "occurred_at",
		"reason", "policy_version", "decided_at", "dataset", "window_start", "window_end", "level", "cell",
		"events", "workspaces"}
	if diff := cmp.Diff(want, Columns()); diff != "" {
		t.Fatalf("segment columns (-want +got):\n%s", diff)
	}
	l, out := newLog(t)
	c := openChain(t, l, chainName)
	commitEntries(t, c, []pipeline.Exclusion{recordEntry(1)}, nil)
	cols, _ := readIndependent(t, filepath.Join(ChainDir(out, chainName), SegmentName(1)))
	for name := range cols {
		if !slices.Contains(want, name) {
			t.Errorf("segment has column %q", name)
		}
		for _, bad := range []string{"payload", "caption", "body", "text", "message", "user", "creator", "campaign", "email"} {
			if strings.Contains(name, bad) {
				t.Errorf("segment column %q looks like a payload or personal field", name)
			}
		}
	}
}

func TestSegmentStatisticsAreSound(t *testing.T) {
	l, out := newLog(t)
	c := openChain(t, l, pipeline.PublishChain)
	entries := append([]pipeline.Exclusion{recordEntry(1), recordEntry(2)}, cellEntries()...)
	commitEntries(t, c, entries, nil)
	rdr, err := file.OpenParquetFile(filepath.Join(ChainDir(out, "publish"), SegmentName(1)), false)
	must(t, err)
	defer rdr.Close()
	rg := rdr.MetaData().RowGroup(0)
	for i := 0; i < rg.NumColumns(); i++ {
		cc, err := rg.ColumnChunk(i)
		must(t, err)
		st, err := cc.Statistics()
		must(t, err)
		if st == nil || st.NullCount() < 0 || st.NullCount()+st.NumValues() != cc.NumValues() {
			t.Errorf("column %s: unsound statistics", rdr.MetaData().Schema.Column(i).Name())
		}
	}
}

func TestChainLinks(t *testing.T) {
	l, out := newLog(t)
	c := openChain(t, l, chainName)
	var heads []string
	for s := range 3 {
		heads = append(heads, commitEntries(t, c, []pipeline.Exclusion{recordEntry(2 * s), recordEntry(2*s + 1)}, nil))
	}
	dir := ChainDir(out, chainName)
	for s := range 3 {
		path := filepath.Join(dir, SegmentName(s+1))
		if heads[s] != sha(t, path) {
			t.Errorf("head after segment %d is not its SHA-256", s+1)
		}
		meta, err := ReadSegmentMeta(path)
		if err != nil {
			t.Fatal(err)
		}
		wantPrev := ""
		if s > 0 {
			wantPrev = heads[s-1]
		}
		if meta.PrevSHA256 != wantPrev || meta.Seq != s+1 || meta.Chain != chainName || meta.Entries != 2 {
			t.Errorf("segment %d metadata %+v", s+1, meta)
		}
	}
	if c.Head() != heads[2] {
		t.Errorf("Head() = %s, want %s", c.Head(), heads[2])
	}
	r, err := VerifyChain(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != chainName || r.Head != heads[2] || r.Entries != 6 || len(r.Segments) != 3 || !r.Contains(heads[1]) {
		t.Errorf("report %+v", r)
	}
	reports, err := VerifyAll(out)
	if err != nil || len(reports) != 1 {
		t.Errorf("VerifyAll = %d reports, %v", len(reports), err)
	}
}

func TestChainResumesAfterReopen(t *testing.T) {
	l, out := newLog(t)
	c := openChain(t, l, chainName)
	commitEntries(t, c, []pipeline.Exclusion{recordEntry(1)}, nil)
	acct := &pipeline.PartitionAccounting{Partition: chainName, Read: 2, Excluded: map[string]int64{"duplicate": 2}}
	head := commitEntries(t, c, []pipeline.Exclusion{recordEntry(2)}, acct)
	dir := ChainDir(out, chainName)
	// An interrupted commit's temporary file.
	if err := os.WriteFile(filepath.Join(dir, ".segment-42.tmp"), []byte("torn"), 0o640); err != nil {
		t.Fatal(err)
	}

	l2, err := New(Config{Dir: out, Compression: CompressionZstd})
	if err != nil {
		t.Fatal(err)
	}
	c2 := openChain(t, l2, chainName)
	if c2.Head() != head || c2.Seq() != 2 {
		t.Fatalf("resumed at seq %d head %s, want 2 and %s", c2.Seq(), c2.Head(), head)
	}
	if _, err := os.Stat(filepath.Join(dir, ".segment-42.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Error("reopening left the temporary file")
	}
	// The same accounting with nothing new adds no segment.
	if h, err := c2.Commit(context.Background(), acct); err != nil || h != head {
		t.Fatalf("Commit(same accounting) = %s, %v; want the head unchanged", h, err)
	}
	head3 := commitEntries(t, c2, []pipeline.Exclusion{recordEntry(3)}, nil)
	meta, err := ReadSegmentMeta(filepath.Join(dir, SegmentName(3)))
	if err != nil {
		t.Fatal(err)
	}
	if meta.PrevSHA256 != head {
		t.Errorf("segment 3 links to %s, want %s", meta.PrevSHA256, head)
	}
	r, err := VerifyChain(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Head != head3 || len(r.Segments) != 3 {
		t.Errorf("report: head %s, %d segments", r.Head, len(r.Segments))
	}
}

func TestCommitWithNothingBuffered(t *testing.T) {
	l, out := newLog(t)
	c := openChain(t, l, chainName)
	if h, err := c.Commit(context.Background(), nil); err != nil || h != "" {
		t.Fatalf("empty chain Commit(nil) = %q, %v", h, err)
	}
	if _, err := os.Stat(ChainDir(out, chainName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("an empty commit created the chain directory")
	}
	acct := &pipeline.PartitionAccounting{Partition: chainName, Read: 5, Contributed: 5}
	h1, err := c.Commit(context.Background(), acct)
	if err != nil || h1 == "" {
		t.Fatalf("Commit(accounting) = %q, %v; want a segment recording it", h1, err)
	}
	if h, err := c.Commit(context.Background(), nil); err != nil || h != h1 {
		t.Errorf("Commit(nil) = %q, %v; want the head", h, err)
	}
	if h, err := c.Commit(context.Background(), acct); err != nil || h != h1 {
		t.Errorf("Commit(same accounting) = %q, %v; want the head", h, err)
	}
	acct.Read, acct.Contributed = 6, 6
	if h, err := c.Commit(context.Background(), acct); err != nil || h == h1 {
		t.Errorf("Commit(new accounting) = %q, %v; want a new segment", h, err)
	}
	entries, meta, err := ReadSegment(filepath.Join(ChainDir(out, chainName), SegmentName(2)))
	if err != nil || len(entries) != 0 || meta.Accounting.Read != 6 {
		t.Errorf("segment 2: %d entries, %+v, %v", len(entries), meta, err)
	}
}

func TestTamperingIsDetected(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   []string
	}{
		{"deleting a middle segment", func(t *testing.T, dir string) {
			remove(t, dir, 3)
		}, []string{"chain events-00.ndjson[0]: segment-000003.parquet is missing: the chain jumps from segment-000002.parquet to segment-000004.parquet"}},
		{"deleting the first segment", func(t *testing.T, dir string) {
			remove(t, dir, 1)
		}, []string{"segment-000001.parquet is missing"}},
		{"swapping two segments", func(t *testing.T, dir string) {
			a, b := filepath.Join(dir, SegmentName(2)), filepath.Join(dir, SegmentName(3))
			must(t, os.Rename(a, a+".x"))
			must(t, os.Rename(b, a))
			must(t, os.Rename(a+".x", b))
		}, []string{
			"segment-000002.parquet: records sequence number 3",
			"segment-000003.parquet: records sequence number 2",
			"segment-000002.parquet: records previous hash",
		}},
		{"flipping a byte", func(t *testing.T, dir string) {
			path := filepath.Join(dir, SegmentName(2))
			b, err := os.ReadFile(path)
			must(t, err)
			b[len(b)/2] ^= 0x01
			must(t, os.WriteFile(path, b, 0o640))
		}, []string{"segment-000003.parquet: records previous hash", "but segment-000002.parquet hashes to"}},
		{"rewriting a segment with edited entries and the same metadata", func(t *testing.T, dir string) {
			path := filepath.Join(dir, SegmentName(2))
			_, meta, err := ReadSegment(path)
			must(t, err)
			forged := recordEntry(99)
			forged.Reason = pipeline.ReasonOptedOut
			rewrite(t, path, []entry{{Exclusion: forged}}, meta, nil)
		}, []string{"segment-000003.parquet: records previous hash", "but segment-000002.parquet hashes to"}},
		{"editing a segment's metadata", func(t *testing.T, dir string) {
			path := filepath.Join(dir, SegmentName(3))
			entries, meta, err := ReadSegment(path)
			must(t, err)
			meta.PrevSHA256 = strings.Repeat("0", 64)
			var es []entry
			for _, e := range entries {
				es = append(es, entry{Exclusion: e})
			}
			rewrite(t, path, es, meta, nil)
		}, []string{
			"segment-000003.parquet: records previous hash 0000000000000000…",
			"segment-000004.parquet: records previous hash",
		}},
		{"moving a segment from another chain", func(t *testing.T, dir string) {
			l, out := newLog(t)
			c := openChain(t, l, "other[0]")
			commitEntries(t, c, []pipeline.Exclusion{recordEntry(1)}, nil)
			commitEntries(t, c, []pipeline.Exclusion{recordEntry(2)}, nil)
			must(t, os.Rename(filepath.Join(ChainDir(out, "other[0]"), SegmentName(2)), filepath.Join(dir, SegmentName(5))))
		}, []string{`segment-000005.parquet: records chain "other[0]", but the directory is chain "events-00.ndjson[0]"`}},
		{"a stray file", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "segment-000002.parquet.bak"), nil, 0o640))
		}, []string{"segment-000002.parquet.bak: unexpected file"}},
		{"truncating a segment", func(t *testing.T, dir string) {
			path := filepath.Join(dir, SegmentName(4))
			b, err := os.ReadFile(path)
			must(t, err)
			must(t, os.WriteFile(path, b[:len(b)-10], 0o640))
		}, []string{"segment-000004.parquet: unreadable, so it was damaged or edited"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, out := newLog(t)
			c := openChain(t, l, chainName)
			for s := range 4 {
				commitEntries(t, c, []pipeline.Exclusion{recordEntry(3 * s), recordEntry(3*s + 1), recordEntry(3*s + 2)}, nil)
			}
			dir := ChainDir(out, chainName)
			if _, err := VerifyChain(dir); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			tt.tamper(t, dir)
			_, err := VerifyChain(dir)
			if err == nil {
				t.Fatal("tampering not detected")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if _, err := VerifyAll(out); err == nil {
				t.Error("VerifyAll does not see the tampering")
			}
		})
	}
}

func remove(t *testing.T, dir string, seq int) {
	t.Helper()
	must(t, os.Remove(filepath.Join(dir, SegmentName(seq))))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// rewrite writes a segment in place, as a forger with this package would.
func rewrite(t *testing.T, path string, entries []entry, meta *SegmentMeta, acct []byte) {
	t.Helper()
	f, err := os.Create(path)
	must(t, err)
	l, _ := newLog(t)
	enc := &encoder{mem: l.mem, codec: l.codec, dims: l.dims}
	// The writer closes what it writes to when it can.
	must(t, enc.write(context.Background(), struct{ io.Writer }{f}, entries, meta, acct))
	must(t, f.Close())
}

func TestFailedCommitPublishesNothing(t *testing.T) {
	l, out := newLog(t)
	c := openChain(t, l, chainName)
	injected := errors.New("injected failure")
	c.hook = func() error { return injected }
	for i := range 3 {
		e := recordEntry(i)
		must(t, c.Append(&e))
	}
	if _, err := c.Commit(context.Background(), nil); !errors.Is(err, injected) {
		t.Fatalf("commit: %v, want the injected failure", err)
	}
	dir := ChainDir(out, chainName)
	// A directory never created holds nothing either.
	if ents, err := os.ReadDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) || len(ents) != 0 {
		t.Errorf("failed commit left %d files (%v)", len(ents), err)
	}
	if c.Head() != "" || c.Seq() != 0 {
		t.Errorf("failed commit moved the head to %q seq %d", c.Head(), c.Seq())
	}

	// The entries are still buffered: the retry commits them all.
	c.hook = nil
	e := recordEntry(3)
	must(t, c.Append(&e))
	if _, err := c.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	got, _, err := ReadSegment(filepath.Join(dir, SegmentName(1)))
	must(t, err)
	if len(got) != 4 {
		t.Errorf("retry committed %d entries, want 4", len(got))
	}
}

func TestTwoWritersCannotForkAChain(t *testing.T) {
	l, _ := newLog(t)
	a := openChain(t, l, chainName)
	b := openChain(t, l, chainName)
	commitEntries(t, a, []pipeline.Exclusion{recordEntry(1)}, nil)
	e := recordEntry(2)
	must(t, b.Append(&e))
	_, err := b.Commit(context.Background(), nil)
	if !errors.Is(err, pipeline.ErrChainAdvanced) {
		t.Fatalf("second writer's commit: %v, want a refusal", err)
	}
}

// TestTheOwnerRemovesAFencedWritersSegment: in a job of several instances
// the partition's owner removes the one segment a fenced former owner
// placed after the chain's newest, and commits its own in its place.
func TestTheOwnerRemovesAFencedWritersSegment(t *testing.T) {
	l, _ := newLog(t)
	owner := openChain(t, l, chainName)
	stale := openChain(t, l, chainName)
	commitEntries(t, stale, []pipeline.Exclusion{recordEntry(1)}, nil)
	e := recordEntry(2)
	must(t, owner.Append(&e))
	if _, err := owner.Commit(context.Background(), nil); !errors.Is(err, pipeline.ErrChainAdvanced) {
		t.Fatalf("the owner's commit over the stale segment: %v, want ErrChainAdvanced", err)
	}
	if err := owner.DropForeign(context.Background(), 2); err == nil {
		t.Error("DropForeign removed a segment that is not the one after the newest")
	}
	must(t, owner.DropForeign(context.Background(), 1))
	if _, err := owner.Commit(context.Background(), nil); err != nil {
		t.Fatalf("the owner's commit after removing the stale segment: %v", err)
	}
	again := openChain(t, l, chainName)
	if again.Seq() != 1 || again.Head() != owner.Head() {
		t.Errorf("the chain holds segment %d %s, want the owner's %s", again.Seq(), again.Head(), owner.Head())
	}
}

func TestAppendRefusesInconsistentEntries(t *testing.T) {
	l, _ := newLog(t)
	c := openChain(t, l, chainName)
	none := recordEntry(1)
	none.Reason = pipeline.ReasonNone
	if err := c.Append(&none); err == nil {
		t.Error("an entry without a reason was accepted")
	}
	cell := cellEntries()[0]
	cell.Reason = pipeline.ReasonSuppressedDominance
	if err := c.Append(&cell); err == nil {
		t.Error("an entry whose cell has another reason was accepted")
	}
	if len(c.entries) != 0 {
		t.Errorf("%d entries buffered after refusals", len(c.entries))
	}
}

func TestClockDatesUndatedEntries(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	l, out := newLog(t, WithClock(func() time.Time { return now }))
	c := openChain(t, l, chainName)
	e := recordEntry(1)
	e.DecidedAt = 0
	commitEntries(t, c, []pipeline.Exclusion{e}, nil)
	got, _, err := ReadSegment(filepath.Join(ChainDir(out, chainName), SegmentName(1)))
	must(t, err)
	if got[0].DecidedAt != now.UnixMicro() {
		t.Errorf("decided_at %d, want the clock's %d", got[0].DecidedAt, now.UnixMicro())
	}
}

func TestCellsOfUnknownDatasetsArePositional(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	l, err := New(cfg)
	must(t, err)
	c := openChain(t, l, pipeline.PublishChain)
	commitEntries(t, c, cellEntries()[1:], nil)
	cols, _ := readIndependent(t, filepath.Join(ChainDir(cfg.Dir, "publish"), SegmentName(1)))
	if got := cols["cell"][0]; got != "dim0=*/dim1=*/dim2=*" {
		t.Errorf("cell %v", got)
	}
}

func TestChainDir(t *testing.T) {
	tests := map[string]string{
		"publish":             "publish",
		"events-00.ndjson[0]": "events-00.ndjson%5B0%5D",
		"events[12]":          "events%5B12%5D",
		"../../etc[0]":        "%2E.%2F..%2Fetc%5B0%5D",
		"a/b c%[0]":           "a%2Fb%20c%25%5B0%5D",
	}
	for name, want := range tests {
		if got := filepath.Base(ChainDir("/out", name)); got != want {
			t.Errorf("ChainDir(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Compression: "lz4"}.Validate()
	want := "out: must name the output directory (or pass --out)\n" +
		`exclusions.compression: must be "snappy" or "zstd" (got "lz4")`
	if err == nil || err.Error() != want {
		t.Errorf("Validate: %v\nwant:\n%s", err, want)
	}
	if err := (Config{Dir: "/out", Compression: "zstd"}).Validate(); err != nil {
		t.Errorf("Validate(zstd): %v", err)
	}
}

func BenchmarkAppendCommit(b *testing.B) {
	const n = 100_000
	entries := make([]pipeline.Exclusion, n)
	for i := range entries {
		entries[i] = recordEntry(i)
	}
	l, _ := newLog(b)
	c := openChain(b, l, chainName)
	acct := &pipeline.PartitionAccounting{Partition: chainName}
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; b.Loop(); i++ {
		for j := range entries {
			if err := c.Append(&entries[j]); err != nil {
				b.Fatal(err)
			}
		}
		acct.Read = int64(i)
		if _, err := c.Commit(context.Background(), acct); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(n*b.N), "allocs/entry")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
