package exclusions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	pq "github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/internal/fsutil"
)

// Segment columns, in file order. There is no payload column, and none can
// be added: an entry carries only the fields of pipeline.Exclusion.
const (
	ColEventID       = "event_id"
	ColEventType     = "event_type"
	ColWorkspaceID   = "workspace_id"
	ColSource        = "source"
	ColPartition     = "partition"
	ColOffset        = "offset"
	ColOccurredAt    = "occurred_at"
	ColReason        = "reason"
	ColPolicyVersion = "policy_version"
	ColDecidedAt     = "decided_at"
	ColDataset       = "dataset"
	ColWindowStart   = "window_start"
	ColWindowEnd     = "window_end"
	ColLevel         = "level"
	ColCell          = "cell"
	ColEvents        = "events"
	ColWorkspaces    = "workspaces"
)

// Segment key-value metadata keys.
const (
	MetaSchemaVersion = "schema_version"
	MetaChain         = "chain"
	MetaSeq           = "seq"
	MetaPrevSHA256    = "prev_sha256"
	MetaEntries       = "entries"
	MetaAccounting    = "accounting"
)

// SchemaVersion is the version of the segment schema written.
const SchemaVersion = 1

var (
	tsType   = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	dictType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	str      = arrow.BinaryTypes.String
)

// fields is the segment schema. Record-level columns are null in cell-level
// entries where they do not apply, and the cell columns are null in
// record-level entries.
//
// Repetitive strings are dictionary-encoded. The dictionary columns are all
// declared nullable, even those never null (source, reason,
// policy_version): arrow-go v17 writes a negative null count into the
// statistics of a required dictionary column.
var fields = []arrow.Field{
	{Name: ColEventID, Type: str, Nullable: true},
	{Name: ColEventType, Type: dictType, Nullable: true},
	{Name: ColWorkspaceID, Type: dictType, Nullable: true},
	{Name: ColSource, Type: dictType, Nullable: true},
	{Name: ColPartition, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColOffset, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColOccurredAt, Type: tsType, Nullable: true},
	{Name: ColReason, Type: dictType, Nullable: true},
	{Name: ColPolicyVersion, Type: dictType, Nullable: true},
	{Name: ColDecidedAt, Type: tsType},
	{Name: ColDataset, Type: dictType, Nullable: true},
	{Name: ColWindowStart, Type: tsType, Nullable: true},
	{Name: ColWindowEnd, Type: tsType, Nullable: true},
	{Name: ColLevel, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ColCell, Type: str, Nullable: true},
	{Name: ColEvents, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: ColWorkspaces, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}

// Columns returns the names of the segment columns, in file order.
func Columns() []string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	return names
}

// SegmentMeta describes one segment file.
type SegmentMeta struct {
	// Path is the segment file's path.
	Path string
	// Chain is the chain's name (a partition id, or "publish").
	Chain string
	// Seq is the segment's sequence number, from 1.
	Seq int
	// PrevSHA256 is the hex SHA-256 of the previous segment file, "" for
	// the first.
	PrevSHA256 string
	// Entries is the number of entries the segment records.
	Entries int
	// Accounting is the partition's accounting at the commit, when given.
	Accounting *pipeline.PartitionAccounting
	// SHA256 is the hex SHA-256 of the file itself: the chain head after it.
	SHA256 string
}

// entry is one buffered exclusion: the caller's strings (immutable) and a
// private copy of its cell, if any (Exclusion.Cell is always nil).
//
// A chain buffers up to a segment's worth of entries (the pipeline's
// segment_entries, 100 000 by default) per partition, so an entry is kept
// small: a record-level entry has no cell (Cell nil), and its repeated
// strings (event type, workspace id) are shared through the chain's intern
// table rather than held once per entry.
type entry struct {
	pipeline.Exclusion
}

// encoder writes segments. Not safe for concurrent use.
type encoder struct {
	mem   memory.Allocator
	codec compress.Compression
	dims  map[string][]string
	buf   []byte
}

// write encodes entries as one Parquet segment to w, with meta's chain, seq,
// prev and accounting (raw JSON, may be empty) in the key-value metadata.
func (enc *encoder) write(ctx context.Context, w io.Writer, entries []entry, meta *SegmentMeta, acct []byte) error {
	keys := []string{MetaSchemaVersion, MetaChain, MetaSeq, MetaPrevSHA256, MetaEntries}
	vals := []string{strconv.Itoa(SchemaVersion), meta.Chain, strconv.Itoa(meta.Seq), meta.PrevSHA256, strconv.Itoa(len(entries))}
	if len(acct) > 0 {
		keys, vals = append(keys, MetaAccounting), append(vals, string(acct))
	}
	md := arrow.NewMetadata(keys, vals)
	schema := arrow.NewSchema(fields, &md)
	opts := []pq.WriterProperty{pq.WithAllocator(enc.mem), pq.WithCompression(enc.codec),
		pq.WithDictionaryDefault(true), pq.WithStats(true), pq.WithMaxRowGroupLength(1 << 20)}
	// Mostly distinct columns get no dictionary: it would not pay, and
	// arrow-go's int64 dictionary encoder allocates per value.
	for _, c := range []string{ColEventID, ColOffset, ColOccurredAt, ColDecidedAt, ColEvents, ColWorkspaces} {
		opts = append(opts, pq.WithDictionaryFor(c, false))
	}
	props := pq.NewWriterProperties(opts...)
	fw, err := pqarrow.NewFileWriter(schema, w, props,
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(enc.mem)))
	if err != nil {
		return err
	}
	const per = 1 << 20
	for lo := 0; lo < len(entries); lo += per {
		if err := ctx.Err(); err != nil {
			fw.Close()
			return err
		}
		rec := enc.record(schema, entries[lo:min(lo+per, len(entries))])
		err := fw.Write(rec)
		rec.Release()
		if err != nil {
			fw.Close()
			return err
		}
	}
	return fw.Close()
}

// record builds one record batch of entries.
func (enc *encoder) record(schema *arrow.Schema, entries []entry) arrow.Record {
	mem, n := enc.mem, len(entries)
	var (
		eventID   = array.NewStringBuilder(mem)
		eventType = newDictColumn(mem)
		ws        = newDictColumn(mem)
		source    = newDictColumn(mem)
		part      = array.NewInt32Builder(mem)
		offset    = array.NewInt64Builder(mem)
		occurred  = array.NewTimestampBuilder(mem, tsType)
		reason    = newDictColumn(mem)
		policy    = newDictColumn(mem)
		decided   = array.NewTimestampBuilder(mem, tsType)
		dataset   = newDictColumn(mem)
		wStart    = array.NewTimestampBuilder(mem, tsType)
		wEnd      = array.NewTimestampBuilder(mem, tsType)
		level     = array.NewInt32Builder(mem)
		cell      = array.NewStringBuilder(mem)
		events    = array.NewInt64Builder(mem)
		wss       = array.NewInt64Builder(mem)
	)
	builders := []builder{eventID, eventType, ws, source, part, offset, occurred, reason, policy, decided,
		dataset, wStart, wEnd, level, cell, events, wss}
	for _, b := range builders {
		b.Reserve(n)
		defer b.Release()
	}
	optional := func(sb *array.StringBuilder, s string) {
		if s == "" {
			sb.AppendNull()
		} else {
			sb.Append(s)
		}
	}
	for i := range entries {
		e := &entries[i]
		optional(eventID, e.EventID)
		eventType.add(e.EventType)
		ws.add(e.WorkspaceID)
		source.add(e.Pos.Source)
		part.Append(e.Pos.Partition)
		offset.Append(e.Pos.Offset)
		if e.OccurredAt == 0 {
			occurred.AppendNull()
		} else {
			occurred.Append(arrow.Timestamp(e.OccurredAt))
		}
		reason.add(e.Reason.String())
		policy.add(e.PolicyVersion)
		decided.Append(arrow.Timestamp(e.DecidedAt))
		if e.Cell == nil {
			dataset.add("")
			wStart.AppendNull()
			wEnd.AppendNull()
			level.AppendNull()
			cell.AppendNull()
			events.AppendNull()
			wss.AppendNull()
			continue
		}
		c := e.Cell
		dataset.add(c.Dataset)
		wStart.Append(arrow.Timestamp(c.Window.Start))
		wEnd.Append(arrow.Timestamp(c.Window.End))
		level.Append(int32(c.Level))
		enc.buf = appendCell(enc.buf[:0], enc.dims[c.Dataset], c.Dims)
		cell.BinaryBuilder.Append(enc.buf)
		events.Append(c.Events)
		wss.Append(c.Workspaces)
	}
	cols := make([]arrow.Array, len(builders))
	for i, b := range builders {
		cols[i] = b.NewArray()
		defer cols[i].Release()
	}
	return array.NewRecord(schema, cols, int64(n))
}

// builder is what record needs of a column builder.
type builder interface {
	Reserve(n int)
	NewArray() arrow.Array
	Release()
}

// dictColumn builds a dictionary-encoded string column, numbering values
// in order of first appearance; "" is null. Building the dictionary here
// rather than in the Parquet encoder saves an allocation per value.
type dictColumn struct {
	index   map[string]int32
	values  *array.StringBuilder
	indices *array.Int32Builder
}

func newDictColumn(mem memory.Allocator) *dictColumn {
	return &dictColumn{index: map[string]int32{}, values: array.NewStringBuilder(mem), indices: array.NewInt32Builder(mem)}
}

func (c *dictColumn) Reserve(n int) { c.indices.Reserve(n) }

func (c *dictColumn) add(v string) {
	if v == "" {
		c.indices.AppendNull()
		return
	}
	idx, ok := c.index[v]
	if !ok {
		idx = int32(len(c.index))
		c.index[v] = idx
		c.values.Append(v)
	}
	c.indices.Append(idx)
}

func (c *dictColumn) NewArray() arrow.Array {
	values, indices := c.values.NewArray(), c.indices.NewArray()
	defer values.Release()
	defer indices.Release()
	return array.NewDictionaryArray(dictType, indices, values)
}

func (c *dictColumn) Release() {
	c.values.Release()
	c.indices.Release()
}

// appendCell renders a cell as "name=value/name=value", escaping '%', '/'
// and '=' in values (and names) as %XX so the rendering can be split back.
// Dimensions without a name are named by position: "dim0".
func appendCell(b []byte, names, values []string) []byte {
	for i, v := range values {
		if i > 0 {
			b = append(b, '/')
		}
		if len(names) == len(values) {
			b = appendEscaped(b, names[i])
		} else {
			b = append(b, "dim"...)
			b = strconv.AppendInt(b, int64(i), 10)
		}
		b = append(b, '=')
		b = appendEscaped(b, v)
	}
	return b
}

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%', '/', '=':
			b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

// ParseCell splits a cell rendering back into dimension names and values.
func ParseCell(s string) (names, values []string, err error) {
	if s == "" {
		return []string{}, []string{}, nil
	}
	for _, part := range strings.Split(s, "/") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, nil, fmt.Errorf("cell %q: %q has no '='", s, part)
		}
		ku, err1 := unescape(k)
		vu, err2 := unescape(v)
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("cell %q: bad escape in %q", s, part)
		}
		names, values = append(names, ku), append(values, vu)
	}
	return names, values, nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated escape")
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", err
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// ReadSegmentMeta reads a segment's key-value metadata, without its rows
// and without hashing it (SHA256 is left empty).
func ReadSegmentMeta(path string) (*SegmentMeta, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, err
	}
	defer rdr.Close()
	return segmentMeta(path, rdr)
}

func segmentMeta(path string, rdr *file.Reader) (*SegmentMeta, error) {
	kv := rdr.MetaData().KeyValueMetadata()
	get := func(k string) (string, bool) {
		v := kv.FindValue(k)
		if v == nil {
			return "", false
		}
		return *v, true
	}
	m := &SegmentMeta{Path: path}
	var (
		ok  bool
		err error
	)
	if m.Chain, ok = get(MetaChain); !ok {
		return nil, fmt.Errorf("no %s in metadata", MetaChain)
	}
	seq, _ := get(MetaSeq)
	if m.Seq, err = strconv.Atoi(seq); err != nil || m.Seq < 1 {
		return nil, fmt.Errorf("metadata %s %q is not a positive number", MetaSeq, seq)
	}
	if m.PrevSHA256, ok = get(MetaPrevSHA256); !ok {
		return nil, fmt.Errorf("no %s in metadata", MetaPrevSHA256)
	}
	n, _ := get(MetaEntries)
	if m.Entries, err = strconv.Atoi(n); err != nil || m.Entries < 0 {
		return nil, fmt.Errorf("metadata %s %q is not a count", MetaEntries, n)
	}
	if a, ok := get(MetaAccounting); ok {
		m.Accounting = new(pipeline.PartitionAccounting)
		if err := json.Unmarshal([]byte(a), m.Accounting); err != nil {
			return nil, fmt.Errorf("metadata %s: %w", MetaAccounting, err)
		}
	}
	return m, nil
}

// ReadSegment reads a segment's entries and metadata (without hashing the
// file: SHA256 is left empty). Cell-level entries come back with Cell set,
// its Dims in the order written; timestamps in microseconds.
func ReadSegment(path string) ([]pipeline.Exclusion, *SegmentMeta, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, nil, err
	}
	defer rdr.Close()
	return readSegment(path, rdr)
}

// ReadSegment reads segment seq of the named chain from the log's store.
func (l *Log) ReadSegment(ctx context.Context, chain string, seq int) ([]pipeline.Exclusion, *SegmentMeta, error) {
	key := "exclusions/" + fsutil.EncodeName(chain) + "/" + SegmentName(seq)
	rc, err := l.st.Get(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, nil, err
	}
	rdr, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", key, err)
	}
	defer rdr.Close()
	return readSegment(key, rdr)
}

func readSegment(path string, rdr *file.Reader) ([]pipeline.Exclusion, *SegmentMeta, error) {
	meta, err := segmentMeta(path, rdr)
	if err != nil {
		return nil, nil, err
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.NewGoAllocator())
	if err != nil {
		return nil, nil, err
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return nil, nil, err
	}
	defer tbl.Release()
	if got := tbl.Schema().Fields(); len(got) != len(fields) {
		return nil, nil, fmt.Errorf("%d columns, want %d", len(got), len(fields))
	}
	for i, f := range tbl.Schema().Fields() {
		if f.Name != fields[i].Name || !arrow.TypeEqual(f.Type, fields[i].Type) {
			return nil, nil, fmt.Errorf("column %d is %s %s, want %s %s", i, f.Name, f.Type, fields[i].Name, fields[i].Type)
		}
	}
	out := make([]pipeline.Exclusion, 0, tbl.NumRows())
	tr := array.NewTableReader(tbl, 64<<10)
	defer tr.Release()
	for tr.Next() {
		rec := tr.Record()
		col := func(i int) arrow.Array { return rec.Column(i) }
		strAt := func(i, r int) string {
			switch a := col(i).(type) {
			case *array.String:
				if !a.IsNull(r) {
					return a.Value(r)
				}
			case *array.Dictionary:
				if !a.IsNull(r) {
					return a.Dictionary().(*array.String).Value(a.GetValueIndex(r))
				}
			}
			return ""
		}
		tsAt := func(i, r int) (int64, bool) {
			a := col(i).(*array.Timestamp)
			if a.IsNull(r) {
				return 0, false
			}
			return int64(a.Value(r)), true
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			rs := strAt(7, r)
			reason, ok := pipeline.ParseReason(rs)
			if !ok {
				return nil, nil, fmt.Errorf("entry %d: unknown reason %q", len(out), rs)
			}
			e := pipeline.Exclusion{
				EventID:       strAt(0, r),
				EventType:     strAt(1, r),
				WorkspaceID:   strAt(2, r),
				Pos:           pipeline.Position{Source: strAt(3, r), Partition: col(4).(*array.Int32).Value(r), Offset: col(5).(*array.Int64).Value(r)},
				Reason:        reason,
				PolicyVersion: strAt(8, r),
			}
			e.OccurredAt, _ = tsAt(6, r)
			e.DecidedAt, _ = tsAt(9, r)
			if !col(10).IsNull(r) {
				_, dims, err := ParseCell(strAt(14, r))
				if err != nil {
					return nil, nil, fmt.Errorf("entry %d: %w", len(out), err)
				}
				c := &pipeline.CellExclusion{Dataset: strAt(10, r), Level: int(col(13).(*array.Int32).Value(r)),
					Dims: dims, Reason: reason, Events: col(15).(*array.Int64).Value(r),
					Workspaces: col(16).(*array.Int64).Value(r), WorkspaceID: e.WorkspaceID}
				c.Window.Start, _ = tsAt(11, r)
				c.Window.End, _ = tsAt(12, r)
				e.Cell = c
			}
			out = append(out, e)
		}
	}
	if err := tr.Err(); err != nil {
		return nil, nil, err
	}
	if len(out) != meta.Entries {
		return nil, nil, fmt.Errorf("%d entries, but the metadata says %d", len(out), meta.Entries)
	}
	return out, meta, nil
}
