package parquet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	pq "github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/anchors"
	"github.com/mya/deid/sinks/objstore"
	"github.com/mya/deid/sinks/signing"
)

// ErrPublished is wrapped by Commit's error when the window already has a
// manifest: published windows are immutable (contract §4) and never rewritten.
var ErrPublished = errors.New("window already published")

// Sink writes dataset windows as Parquet files under <out>/datasets and
// commits each with its manifest. It implements pipeline.DatasetSink and is
// safe for concurrent use; commits of the same window are serialized.
type Sink struct {
	cfg Config
	// st is the output <out> (a directory or s3://bucket/prefix); the
	// datasets are under its key "datasets".
	st    objstore.Store
	codec compress.Compression
	mem   memory.Allocator

	mu   sync.Mutex
	busy map[string]*dirLock
	// heads is each dataset's newest committed manifest, read from the
	// output on the dataset's first commit (chainHead).
	heads map[string]link

	// anchor, when set, receives one line per committed manifest
	// (WithAnchors).
	anchor anchors.Anchorer

	// signer, when set, signs every manifest (WithSigner).
	signer signing.Signer

	// fence, when set, is checked before a commit writes or removes
	// anything and before each manifest (WithFence).
	fence func(ctx context.Context) error

	// hook, when set (tests), is called before each step of a commit
	// ("data": renaming the data file; "manifest": publishing the
	// manifest) and fails the commit with the error it returns.
	hook func(step string) error
}

var _ pipeline.DatasetSink = (*Sink)(nil)

// New returns a sink writing under <out>/datasets: the store of WithStore,
// or else the directory cfg.Dir. It creates nothing until the first commit
// (but the directory).
func New(cfg Config, opts ...Option) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec := compress.Codecs.Snappy
	if cfg.Compression == CompressionZstd {
		codec = compress.Codecs.Zstd
	}
	s := &Sink{cfg: cfg, codec: codec,
		mem: memory.NewGoAllocator(), busy: map[string]*dirLock{}, heads: map[string]link{}}
	for _, o := range opts {
		o(s)
	}
	if s.st == nil {
		st, err := objstore.NewLocal(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("parquet: %w", err)
		}
		s.st = st
	}
	return s, nil
}

// Dir returns where a dataset window is: <out>/datasets/<dataset>/
// dt=YYYY-MM-DD[/hour=HH[/minute=MM]], a directory or an s3:// URL.
func (s *Sink) Dir(dataset string, w pipeline.Window) (string, error) {
	key, err := s.windowKey(dataset, w)
	if err != nil {
		return "", err
	}
	if strings.Contains(s.cfg.Dir, "://") {
		return strings.TrimSuffix(s.cfg.Dir, "/") + "/" + key, nil
	}
	return filepath.Join(s.cfg.Dir, filepath.FromSlash(key)), nil
}

// windowKey returns the key prefix of a dataset window in the output:
// datasets/<dataset>/dt=YYYY-MM-DD[/hour=HH[/minute=MM]].
func (s *Sink) windowKey(dataset string, w pipeline.Window) (string, error) {
	if !validName(dataset) {
		return "", fmt.Errorf("dataset name %q is not a safe directory name", dataset)
	}
	rel, err := PartitionPath(w)
	if err != nil {
		return "", err
	}
	return path.Join("datasets", dataset, rel), nil
}

// Published tells whether the window's manifest exists. Safe for
// concurrent use.
func (s *Sink) Published(dataset string, w pipeline.Window) (bool, error) {
	dir, err := s.windowKey(dataset, w)
	if err != nil {
		return false, fmt.Errorf("parquet: %w", err)
	}
	ok, err := objstore.Exists(context.Background(), s.st, dir+"/"+ManifestName)
	if err != nil {
		return false, fmt.Errorf("parquet: %w", err)
	}
	return ok, nil
}

// Commit writes the window's data file, then its manifest, which is the
// commit: a directory without a manifest holds nothing committed, and
// Commit removes whatever an earlier, interrupted commit left in it once
// its own manifest is in place (never before: another writer's commit of
// the window may be under way). Each file is written under a temporary
// name, fsynced, renamed into place, and the directory fsynced. A window with no rows still gets a
// data file (the schema, no row groups) so that readers of the dataset see
// its columns. Commit fails with an error wrapping ErrPublished when the
// window already has a manifest. ctx cancels between row groups. Safe for
// concurrent use.
func (s *Sink) Commit(ctx context.Context, out *pipeline.WindowOutput) error {
	if out == nil || out.Spec == nil {
		return errors.New("parquet: commit: no window output or no dataset spec")
	}
	if err := s.commit(ctx, out); err != nil {
		return fmt.Errorf("parquet: %s window %s: %w", out.Spec.Name, formatWindow(out.Window), err)
	}
	return nil
}

func (s *Sink) commit(ctx context.Context, out *pipeline.WindowOutput) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkSpec(out.Spec); err != nil {
		return err
	}
	if err := checkRows(out); err != nil {
		return err
	}
	dir, err := s.windowKey(out.Spec.Name, out.Window)
	if err != nil {
		return err
	}
	// Commits of a dataset are serialized: each manifest chains to the one
	// committed before it.
	unlock := s.lock(out.Spec.Name)
	defer unlock()

	manifestKey := dir + "/" + ManifestName
	if ok, err := objstore.Exists(ctx, s.st, manifestKey); err != nil {
		return err
	} else if ok {
		return ErrPublished
	}
	prev, err := s.chainHead(ctx, out.Spec.Name)
	if err != nil {
		return err
	}
	if prev.SHA256 != "" && out.Window.Start <= prev.start {
		return fmt.Errorf("the dataset's newest committed window is %s: windows are committed in order, so the manifest chain cannot take an earlier one", prev.Window)
	}
	rel, err := PartitionPath(out.Window)
	if err != nil {
		return err
	}
	// A writer that lost its lease writes and removes nothing: the owner
	// may be writing this window's files now.
	if err := s.checkFence(ctx); err != nil {
		return err
	}
	if t, ok := s.st.(interface{ RemoveTemps(string) error }); ok {
		// A directory: the temporary files of a writer killed meanwhile
		// (a directory has one writer, under its lock).
		if err := t.RemoveTemps(dir); err != nil {
			return fmt.Errorf("removing an interrupted commit's temporary files: %w", err)
		}
	}

	// The data file: content-addressed, so a retry writes the same name
	// and the same bytes. It is encoded in memory and stored whole.
	var data bytes.Buffer
	rows, groups, err := s.write(ctx, &data, out)
	if err != nil {
		return fmt.Errorf("writing data file: %w", err)
	}
	dataSum := sha256Hex(data.Bytes())
	name := "part-" + dataSum[:16] + ".parquet"
	if err := s.step("data"); err != nil {
		return err
	}
	if err := s.st.Put(ctx, dir+"/"+name, bytes.NewReader(data.Bytes()), objstore.PutOptions{}); err != nil {
		return fmt.Errorf("writing data file: %w", err)
	}
	// settled: the data file's fate is decided (committed, discarded, or
	// left to the owner). Until then a return discards it, so that nothing
	// uncommitted is left for readers that do not look for the manifest.
	settled := false
	defer func() {
		if !settled {
			m, _, err := readManifestObject(context.WithoutCancel(ctx), s.st, manifestKey)
			s.discard(context.WithoutCancel(ctx), dir+"/"+name, m, err)
		}
	}()

	// The accounting record, for compliance: before the manifest, which
	// names it by its hash.
	if err := s.step("accounting"); err != nil {
		return err
	}
	acctSum, err := s.writeAccounting(ctx, out)
	if err != nil {
		return err
	}

	// The manifest: the commit, a conditional create that never replaces
	// an existing one, even one another process wrote meanwhile.
	m := newManifest(out, []File{{Path: name, Rows: rows, RowGroups: groups, Bytes: int64(data.Len()), SHA256: dataSum}},
		acctSum, prev.Previous)
	b, err := m.marshal()
	if err != nil {
		return err
	}
	sum := sha256Hex(b)
	// The signature goes in place before the manifest, so a committed
	// window is never unsigned; without a manifest it is not committed,
	// and the next commit replaces it (or, unsigned, removes it).
	if err := s.sign(ctx, dir, sum); err != nil {
		return err
	}
	if err := s.step("manifest"); err != nil {
		return err
	}
	if err := s.checkFence(ctx); err != nil {
		// Not the owner any more: the owner may have committed this very
		// file (same rows, same name), so delete nothing.
		settled = true
		return err
	}
	err = s.st.Put(ctx, manifestKey, bytes.NewReader(b), objstore.PutOptions{IfNotExists: true})
	if errors.Is(err, objstore.ErrExists) {
		// Another process committed the window meanwhile, and the chain
		// moved on without us: read it again next time. Our data file
		// goes only if their manifest does not list it.
		s.forgetHead(out.Spec.Name)
		theirs, theirSum, rerr := readManifestObject(context.WithoutCancel(ctx), s.st, manifestKey)
		s.discard(context.WithoutCancel(ctx), dir+"/"+name, theirs, rerr)
		settled = true
		if rerr != nil {
			return fmt.Errorf("%w: %w (its manifest could not be read, so this commit's data file %s stays: %w)",
				ErrPublished, pipeline.ErrCommittedElsewhere, name, rerr)
		}
		if s.signer != nil {
			// Our signature may have replaced theirs: sign what is there.
			_ = s.sign(context.WithoutCancel(ctx), dir, theirSum)
		}
		return fmt.Errorf("%w: %w", ErrPublished, pipeline.ErrCommittedElsewhere)
	}
	if err != nil {
		// A manifest in place is a commit, durable or not: keep its data.
		if _, theirSum, rerr := readManifestObject(context.WithoutCancel(ctx), s.st, manifestKey); rerr == nil {
			settled = true
			if theirSum == sum {
				s.setHead(out.Spec.Name, link{Previous{rel, sum}, out.Window.Start})
			}
		}
		return fmt.Errorf("writing manifest: %w", err)
	}
	settled = true
	head := link{Previous{rel, sum}, out.Window.Start}
	s.setHead(out.Spec.Name, head)
	if err := s.anchorHead(ctx, out.Spec.Name, head, prev.SHA256); err != nil {
		return err
	}
	if err := s.tidy(ctx, dir, name); err != nil {
		return fmt.Errorf("the window is committed, but removing the files its manifest does not list failed (deid verify names them; delete them by hand): %w", err)
	}
	return nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// link is a dataset's newest committed manifest: its window directory and
// hash, and its window's start.
type link struct {
	Previous
	start int64
}

// chainHead returns the dataset's newest committed manifest (the zero link
// when it has none), reading the output on the dataset's first call. The
// caller holds the dataset's lock. A manifest it cannot read fails it: the
// next manifest could not be chained to it.
func (s *Sink) chainHead(ctx context.Context, dataset string) (link, error) {
	s.mu.Lock()
	h, ok := s.heads[dataset]
	s.mu.Unlock()
	if ok {
		return h, nil
	}
	dsDir := "datasets/" + dataset
	keys, err := ListManifestKeys(ctx, s.st, dsDir+"/")
	if err != nil {
		return link{}, fmt.Errorf("manifest chain: %w", err)
	}
	for _, k := range keys {
		m, sum, err := readManifestObject(ctx, s.st, k)
		if err != nil {
			return link{}, fmt.Errorf("manifest chain: %w: the dataset's next manifest cannot be chained to it; write to a new output directory", err)
		}
		start := m.Window.Start.UnixMicro()
		if h.SHA256 != "" && start <= h.start {
			continue
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(k, dsDir+"/"), "/"+ManifestName)
		h = link{Previous{rel, sum}, start}
	}
	s.setHead(dataset, h)
	return h, nil
}

func (s *Sink) setHead(dataset string, h link) {
	s.mu.Lock()
	s.heads[dataset] = h
	s.mu.Unlock()
}

// ForgetHeads drops the cached manifest chain heads, so that each dataset's
// next commit reads its head from the output. In a job of several
// instances the publisher calls it when it takes the lease: another
// instance may have committed windows since this one last looked.
func (s *Sink) ForgetHeads() {
	s.mu.Lock()
	clear(s.heads)
	s.mu.Unlock()
}

func (s *Sink) forgetHead(dataset string) {
	s.mu.Lock()
	delete(s.heads, dataset)
	s.mu.Unlock()
}

// anchorHead appends the anchor of a dataset's manifest, when the sink has
// an anchor log. The window is committed whatever ctx says by now, so ctx
// does not cancel it.
func (s *Sink) anchorHead(ctx context.Context, dataset string, h link, prev string) error {
	if s.anchor == nil || h.SHA256 == "" {
		return nil
	}
	err := s.anchor.Anchor(context.WithoutCancel(ctx), anchors.Line{Kind: anchors.KindDataset, Name: dataset,
		Window: h.Window, Event: anchors.EventCommit, SHA256: h.SHA256, Prev: prev})
	if err != nil {
		return fmt.Errorf("the window is committed, but anchoring it failed (a restart anchors it again): %w", err)
	}
	return nil
}

// AnchorHeads appends again the anchor of every dataset's newest committed
// manifest: a crash between a commit and its anchor leaves that manifest
// unanchored, and only the newest can be. A run calls it before it
// publishes anything; the lines it repeats are exact duplicates. Without an
// anchor log it does nothing.
func (s *Sink) AnchorHeads(ctx context.Context) error {
	if s.anchor == nil {
		return nil
	}
	names, err := datasetNames(ctx, s.st)
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	for _, name := range names {
		err := func() error {
			unlock := s.lock(name)
			defer unlock()
			h, err := s.chainHead(ctx, name)
			if err != nil {
				return err
			}
			if h.SHA256 == "" {
				return nil
			}
			// The previous link's hash is in the manifest itself.
			m, _, err := readManifestObject(ctx, s.st, "datasets/"+name+"/"+h.Window+"/"+ManifestName)
			if err != nil {
				return err
			}
			return s.anchorHead(ctx, name, h, m.Previous.SHA256)
		}()
		if err != nil {
			return fmt.Errorf("parquet: %s: %w", name, err)
		}
	}
	return nil
}

// sign writes the detached signature of the directory's manifest, whose
// content hashes to sum, when the sink has a signer.
func (s *Sink) sign(ctx context.Context, dir, sum string) error {
	if s.signer == nil {
		return nil
	}
	b, err := signing.Sign(s.signer, dir+"/"+ManifestName, sum)
	if err != nil {
		return err
	}
	if err := s.st.Put(ctx, dir+"/"+ManifestName+signing.Suffix, bytes.NewReader(b), objstore.PutOptions{}); err != nil {
		return fmt.Errorf("writing manifest signature: %w", err)
	}
	return nil
}

func (s *Sink) step(name string) error {
	if s.hook != nil {
		return s.hook(name)
	}
	return nil
}

// dirLock serializes the commits of one dataset; users counts those
// holding or waiting for it, so it is forgotten when the last one leaves.
type dirLock struct {
	sync.Mutex
	users int
}

// lock serializes commits of one dataset and returns the unlock.
func (s *Sink) lock(dir string) func() {
	s.mu.Lock()
	l := s.busy[dir]
	if l == nil {
		l = &dirLock{}
		s.busy[dir] = l
	}
	l.users++
	s.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		s.mu.Lock()
		if l.users--; l.users == 0 {
			delete(s.busy, dir)
		}
		s.mu.Unlock()
	}
}

// discard removes the data file key of a commit that did not happen,
// unless the window's manifest m (read with error err) lists it: a data
// file is named by the hash of its bytes, so another writer that committed
// the same rows committed this very file. When that cannot be told (a
// manifest that cannot be read, a store that cannot be asked), the file
// stays: verify names a file no manifest lists, while a committed window
// whose data file is gone would be lost.
func (s *Sink) discard(ctx context.Context, key string, m *Manifest, err error) {
	switch {
	case errors.Is(err, objstore.ErrNotFound):
	case err != nil:
		return
	case slices.ContainsFunc(m.Files, func(f File) bool { return f.Path == path.Base(key) }):
		return
	}
	s.st.Delete(ctx, key)
}

// checkFence calls the fence of WithFence, if any.
func (s *Sink) checkFence(ctx context.Context) error {
	if s.fence == nil {
		return nil
	}
	return s.fence(ctx)
}

// tidy removes what an interrupted commit left in the window directory
// dir, just committed with the data file name: the data files its manifest
// does not list and, in a window committed unsigned, a signature. It runs
// only after the manifest is in place. Before it, another writer may be
// committing the same window, and the file it would remove may be the one
// that writer's manifest lists; after it, no other manifest can be
// written, so nothing it removes can ever be committed.
func (s *Sink) tidy(ctx context.Context, dir, name string) error {
	infos, err := s.st.List(ctx, dir+"/")
	if err != nil {
		return err
	}
	for _, in := range infos {
		n := strings.TrimPrefix(in.Key, dir+"/")
		if strings.Contains(n, "/") || n == name {
			continue
		}
		if (n == ManifestName+signing.Suffix && s.signer == nil) || (strings.HasPrefix(n, "part-") && strings.HasSuffix(n, ".parquet")) {
			if err := s.st.Delete(ctx, in.Key); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkRows rejects rows that do not fit the spec's columns.
func checkRows(out *pipeline.WindowOutput) error {
	spec := out.Spec
	for i := range out.Rows {
		r := &out.Rows[i]
		if len(r.Dims) != len(spec.Dimensions) || len(r.Values) != len(spec.Measures) {
			return fmt.Errorf("row %d: %d dimensions and %d values, want %d and %d",
				i, len(r.Dims), len(r.Values), len(spec.Dimensions), len(spec.Measures))
		}
		if r.DimLevels == nil && (r.Level < 0 || r.Level > len(spec.Ladder)) {
			return fmt.Errorf("row %d: generalization level %d is not a step of the ladder (0–%d)", i, r.Level, len(spec.Ladder))
		}
		if r.DimLevels != nil {
			if len(r.DimLevels) != len(spec.Dimensions) || r.Level < 0 {
				return fmt.Errorf("row %d: %d dimension levels and generalization level %d, want %d levels", i, len(r.DimLevels), r.Level, len(spec.Dimensions))
			}
			for d, l := range r.DimLevels {
				if h := spec.Dimensions[d].Hierarchy; l < 0 || h != nil && l >= h.Levels() {
					return fmt.Errorf("row %d: %s at level %d, outside its hierarchy", i, spec.Dimensions[d].Name, l)
				}
			}
		}
		for j, m := range spec.Measures {
			if m.IsInt() && r.Values[j].Null {
				return fmt.Errorf("row %d: measure %s is an integer and cannot be null", i, m.Name)
			}
		}
	}
	return nil
}

// rowsPerGroup is how many rows one row group takes: at most
// MaxRowGroupRows, and few enough that its uncompressed size stays under
// MaxRowGroupBytes.
func (s *Sink) rowsPerGroup(spec *pipeline.DatasetSpec) int {
	n := s.cfg.MaxRowGroupBytes / rowWidth(spec)
	return int(max(1, min(n, int64(s.cfg.MaxRowGroupRows))))
}

// write encodes the window's rows as Parquet to w, one record batch per row
// group, and returns the rows and row groups written.
func (s *Sink) write(ctx context.Context, w io.Writer, out *pipeline.WindowOutput) (int64, int, error) {
	spec := out.Spec
	per := s.rowsPerGroup(spec)
	opts := []pq.WriterProperty{
		pq.WithAllocator(s.mem),
		pq.WithCompression(s.codec),
		pq.WithDictionaryDefault(true),
		pq.WithStats(true),
		pq.WithMaxRowGroupLength(int64(per)),
	}
	// Measures are mostly distinct, so a dictionary would not pay; the
	// window bounds are constant, which delta encoding stores in a few
	// bytes. Both also avoid arrow-go's int64 dictionary encoder, which
	// allocates per value.
	for _, m := range spec.Measures {
		opts = append(opts, pq.WithDictionaryFor(m.Name, false))
	}
	for _, c := range []string{ColWindowStart, ColWindowEnd} {
		opts = append(opts, pq.WithDictionaryFor(c, false), pq.WithEncodingFor(c, pq.Encodings.DeltaBinaryPacked))
	}
	props := pq.NewWriterProperties(opts...)
	schema := arrowSchema(out)
	fw, err := pqarrow.NewFileWriter(schema, w, props,
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(s.mem)))
	if err != nil {
		return 0, 0, err
	}
	b := newBatch(s.mem, schema, spec, out.Window)
	defer b.release()
	groups := 0
	for lo := 0; lo < len(out.Rows); lo += per {
		if err := ctx.Err(); err != nil {
			fw.Close()
			return 0, 0, err
		}
		rec := b.build(out.Rows[lo:min(lo+per, len(out.Rows))])
		err := fw.Write(rec)
		rec.Release()
		if err != nil {
			fw.Close()
			return 0, 0, err
		}
		groups++
	}
	if err := fw.Close(); err != nil {
		return 0, 0, err
	}
	return int64(len(out.Rows)), groups, nil
}

// batch builds record batches of one window's rows.
type batch struct {
	mem    memory.Allocator
	schema *arrow.Schema
	window pipeline.Window
	spec   *pipeline.DatasetSpec
	start  *array.TimestampBuilder
	end    *array.TimestampBuilder
	dims   []dictColumn
	level  *array.Int32Builder
	// dimLevels builds the <dimension>_level columns from each row's
	// DimLevels, or else levelAt[step][d], dimension d's hierarchy level in
	// a row published at ladder step.
	dimLevels []*array.Int32Builder
	levelAt   [][]int
	ints      []*array.Int64Builder
	floats    []*array.Float64Builder
}

// dictColumn builds one dictionary-encoded dimension column: values are
// numbered in order of first appearance, so the same rows give the same
// dictionary.
type dictColumn struct {
	index   map[string]int32
	values  *array.StringBuilder
	indices *array.Int32Builder
}

func newBatch(mem memory.Allocator, schema *arrow.Schema, spec *pipeline.DatasetSpec, w pipeline.Window) *batch {
	b := &batch{mem: mem, schema: schema, window: w, spec: spec,
		start: array.NewTimestampBuilder(mem, tsType), end: array.NewTimestampBuilder(mem, tsType),
		level: array.NewInt32Builder(mem)}
	for range spec.Dimensions {
		b.dims = append(b.dims, dictColumn{index: map[string]int32{},
			values: array.NewStringBuilder(mem), indices: array.NewInt32Builder(mem)})
		b.dimLevels = append(b.dimLevels, array.NewInt32Builder(mem))
	}
	for step := 0; step <= len(spec.Ladder); step++ {
		b.levelAt = append(b.levelAt, spec.DimLevels(step))
	}
	b.ints = make([]*array.Int64Builder, len(spec.Measures))
	b.floats = make([]*array.Float64Builder, len(spec.Measures))
	for i, m := range spec.Measures {
		if m.IsInt() {
			b.ints[i] = array.NewInt64Builder(mem)
		} else {
			b.floats[i] = array.NewFloat64Builder(mem)
		}
	}
	return b
}

// build appends rows and returns them as one record; the builders are
// empty again afterwards (each row group gets its own dictionaries).
func (b *batch) build(rows []pipeline.Row) arrow.Record {
	n := len(rows)
	b.start.Reserve(n)
	b.end.Reserve(n)
	b.level.Reserve(n)
	for i := range rows {
		b.start.UnsafeAppend(arrow.Timestamp(b.window.Start))
		b.end.UnsafeAppend(arrow.Timestamp(b.window.End))
		b.level.UnsafeAppend(int32(rows[i].Level))
	}
	for d := range b.dims {
		dc := &b.dims[d]
		clear(dc.index)
		dc.indices.Reserve(n)
		for i := range rows {
			v := rows[i].Dims[d]
			idx, ok := dc.index[v]
			if !ok {
				idx = int32(len(dc.index))
				dc.index[v] = idx
				dc.values.Append(v)
			}
			dc.indices.UnsafeAppend(idx)
		}
	}
	for d, lb := range b.dimLevels {
		lb.Reserve(n)
		for i := range rows {
			if dl := rows[i].DimLevels; dl != nil {
				lb.UnsafeAppend(int32(dl[d]))
			} else {
				lb.UnsafeAppend(int32(b.levelAt[rows[i].Level][d]))
			}
		}
	}
	for m := range b.spec.Measures {
		if ib := b.ints[m]; ib != nil {
			ib.Reserve(n)
			for i := range rows {
				ib.UnsafeAppend(rows[i].Values[m].Int)
			}
			continue
		}
		fb := b.floats[m]
		fb.Reserve(n)
		for i := range rows {
			if v := rows[i].Values[m]; v.Null {
				fb.UnsafeAppendBoolToBitmap(false)
			} else {
				fb.UnsafeAppend(v.Float)
			}
		}
	}
	cols := make([]arrow.Array, 0, b.schema.NumFields())
	cols = append(cols, b.start.NewArray(), b.end.NewArray())
	for d := range b.dims {
		dc := &b.dims[d]
		values, indices := dc.values.NewArray(), dc.indices.NewArray()
		cols = append(cols, array.NewDictionaryArray(dictType, indices, values))
		values.Release()
		indices.Release()
	}
	cols = append(cols, b.level.NewArray())
	for _, lb := range b.dimLevels {
		cols = append(cols, lb.NewArray())
	}
	for m := range b.spec.Measures {
		if b.ints[m] != nil {
			cols = append(cols, b.ints[m].NewArray())
		} else {
			cols = append(cols, b.floats[m].NewArray())
		}
	}
	rec := array.NewRecord(b.schema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

func (b *batch) release() {
	b.start.Release()
	b.end.Release()
	b.level.Release()
	for _, lb := range b.dimLevels {
		lb.Release()
	}
	for _, d := range b.dims {
		d.values.Release()
		d.indices.Release()
	}
	for m := range b.spec.Measures {
		if b.ints[m] != nil {
			b.ints[m].Release()
		} else {
			b.floats[m].Release()
		}
	}
}
