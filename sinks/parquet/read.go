package parquet

import (
	"context"
	"fmt"
	"os"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// OpenFile opens a Parquet file for reading. A file whose footer cannot be
// parsed is an error, never a panic: arrow-go's reader can panic on
// malformed metadata, and the files verify reads may have been tampered
// with. The caller closes the reader.
func OpenFile(path string) (rdr *file.Reader, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed Parquet metadata (%v)", p)
		}
		if err != nil {
			f.Close()
			rdr = nil
		}
	}()
	return file.NewParquetReader(f)
}

// ReadMetadata returns a Parquet file's key-value metadata (the keys of
// contract §6.3, and "ARROW:schema").
func ReadMetadata(path string) (map[string]string, error) {
	rdr, err := OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("parquet: %s: %w", path, err)
	}
	defer rdr.Close()
	kv := rdr.MetaData().KeyValueMetadata()
	m := make(map[string]string, len(kv.Keys()))
	for i, k := range kv.Keys() {
		m[k] = kv.Values()[i]
	}
	return m, nil
}

// ReadRows reads every row of a Parquet file with Arrow's reader, as a map
// from column name to value: time.Time (UTC) for timestamps, string for
// strings and dictionary strings, int32, int64, float64, and nil for null.
// For tests, verification and reports; it holds the whole file in memory.
// A malformed file is an error, never a panic.
func ReadRows(path string) (rows []map[string]any, err error) {
	defer func() {
		if p := recover(); p != nil {
			rows, err = nil, fmt.Errorf("parquet: %s: malformed file (%v)", path, p)
		}
	}()
	rdr, err := OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("parquet: %s: %w", path, err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.NewGoAllocator())
	if err != nil {
		return nil, fmt.Errorf("parquet: %s: %w", path, err)
	}
	schema, err := fr.Schema()
	if err != nil {
		return nil, fmt.Errorf("parquet: %s: %w", path, err)
	}
	// A row costs far more than a bit; a footer that claims more rows than
	// that is malformed, and must not make this allocate without bound.
	n := rdr.NumRows()
	if st, err := os.Stat(path); err != nil || n < 0 || n > 8*st.Size() {
		return nil, fmt.Errorf("parquet: %s: malformed metadata: %d rows", path, n)
	}
	rows = make([]map[string]any, n)
	for i := range rows {
		rows[i] = make(map[string]any, schema.NumFields())
	}
	// Column by column on this goroutine (ReadTable decodes on goroutines
	// of its own), so that a decoder's panic on a malformed file is
	// recovered above.
	for c, f := range schema.Fields() {
		if err := readColumn(fr, c, f.Name, rows); err != nil {
			return nil, fmt.Errorf("parquet: %s: column %s: %w", path, f.Name, err)
		}
	}
	return rows, nil
}

// readColumn reads column c of every row group into rows[i][name].
func readColumn(fr *pqarrow.FileReader, c int, name string, rows []map[string]any) error {
	cr, err := fr.GetColumn(context.Background(), c)
	if err != nil {
		return err
	}
	defer cr.Release()
	data, err := cr.NextBatch(int64(len(rows)))
	if err != nil {
		return err
	}
	defer data.Release()
	if data.Len() != len(rows) {
		return fmt.Errorf("%d values for %d rows", data.Len(), len(rows))
	}
	r := 0
	for _, chunk := range data.Chunks() {
		for i := 0; i < chunk.Len(); i++ {
			v, err := valueAt(chunk, i)
			if err != nil {
				return err
			}
			rows[r][name] = v
			r++
		}
	}
	return nil
}

// valueAt returns element i of arr as a plain Go value.
func valueAt(arr arrow.Array, i int) (any, error) {
	if arr.IsNull(i) {
		return nil, nil
	}
	switch a := arr.(type) {
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).UTC(), nil
	case *array.Dictionary:
		return valueAt(a.Dictionary(), a.GetValueIndex(i))
	case *array.String:
		return a.Value(i), nil
	case *array.Int32:
		return a.Value(i), nil
	case *array.Int64:
		return a.Value(i), nil
	case *array.Float64:
		return a.Value(i), nil
	}
	return nil, fmt.Errorf("unsupported column type %s", arr.DataType())
}
