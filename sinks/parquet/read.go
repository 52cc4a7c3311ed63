package parquet

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// ReadMetadata returns a Parquet file's key-value metadata (the keys of
// contract §6.3, and "ARROW:schema").
func ReadMetadata(path string) (map[string]string, error) {
	rdr, err := file.OpenParquetFile(path, false)
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
func ReadRows(path string) ([]map[string]any, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("parquet: %s: %w", path, err)
	}
	defer rdr.Close()
	mem := memory.NewGoAllocator()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, mem)
	if err != nil {
		return nil, fmt.Errorf("parquet: %s: %w", path, err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return nil, fmt.Errorf("parquet: %s: %w", path, err)
	}
	defer tbl.Release()
	rows := make([]map[string]any, tbl.NumRows())
	for i := range rows {
		rows[i] = make(map[string]any, tbl.NumCols())
	}
	for c := 0; c < int(tbl.NumCols()); c++ {
		col := tbl.Column(c)
		r := 0
		for _, chunk := range col.Data().Chunks() {
			for i := 0; i < chunk.Len(); i++ {
				v, err := valueAt(chunk, i)
				if err != nil {
					return nil, fmt.Errorf("parquet: %s: column %s: %w", path, col.Name(), err)
				}
				rows[r][col.Name()] = v
				r++
			}
		}
	}
	return rows, nil
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
