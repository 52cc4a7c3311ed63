package parquet

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/mya/deid/pipeline"
)

// ReadMetadata returns a Parquet file's key-value metadata (the keys of
// SPEC §6.3, and "ARROW:schema").
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

// ReadDatasetRows reads a dataset data file back into the rows and window
// that were committed, using spec to find the columns. It is the inverse of
// Commit's encoding, for round-trip and golden tests.
func ReadDatasetRows(path string, spec *pipeline.DatasetSpec) ([]pipeline.Row, pipeline.Window, error) {
	raw, err := ReadRows(path)
	if err != nil {
		return nil, pipeline.Window{}, err
	}
	var w pipeline.Window
	rows := make([]pipeline.Row, len(raw))
	for i, m := range raw {
		start, ok1 := m[ColWindowStart].(time.Time)
		end, ok2 := m[ColWindowEnd].(time.Time)
		level, ok3 := m[ColLevel].(int32)
		if !ok1 || !ok2 || !ok3 {
			return nil, w, fmt.Errorf("parquet: %s: row %d: missing or mistyped window or level column", path, i)
		}
		rw := pipeline.Window{Start: start.UnixMicro(), End: end.UnixMicro()}
		if i == 0 {
			w = rw
		} else if rw != w {
			return nil, w, fmt.Errorf("parquet: %s: row %d: window differs from the first row's", path, i)
		}
		r := pipeline.Row{Dims: make([]string, len(spec.Dimensions)), Level: int(level),
			Values: make([]pipeline.Value, len(spec.Measures))}
		for d, dim := range spec.Dimensions {
			s, ok := m[dim.Name].(string)
			if !ok {
				return nil, w, fmt.Errorf("parquet: %s: row %d: dimension %s missing or not a string", path, i, dim.Name)
			}
			r.Dims[d] = s
		}
		for j, ms := range spec.Measures {
			val, ok := m[ms.Name]
			if !ok {
				return nil, w, fmt.Errorf("parquet: %s: row %d: measure %s missing", path, i, ms.Name)
			}
			switch v := val.(type) {
			case int64:
				r.Values[j] = pipeline.Value{Int: v}
			case float64:
				r.Values[j] = pipeline.Value{Float: v}
			case nil:
				if ms.IsInt() {
					return nil, w, fmt.Errorf("parquet: %s: row %d: integer measure %s is null", path, i, ms.Name)
				}
				r.Values[j] = pipeline.Value{Null: true}
			default:
				return nil, w, fmt.Errorf("parquet: %s: row %d: measure %s has type %T", path, i, ms.Name, v)
			}
		}
		rows[i] = r
	}
	return rows, w, nil
}
