package parquet

import (
	"fmt"
	"time"

	"github.com/mya/deid/pipeline"
)

// ReadDatasetRows reads a dataset data file back into the rows and window
// that were committed, using spec to find the columns. It is the inverse of
// Commit's encoding, for round-trip tests.
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
		if r.Level < 0 || r.Level > len(spec.Ladder) {
			return nil, w, fmt.Errorf("parquet: %s: row %d: generalization level %d is not a step of the ladder", path, i, r.Level)
		}
		dimLevels := spec.DimLevels(r.Level)
		for d, dim := range spec.Dimensions {
			s, ok := m[dim.Name].(string)
			if !ok {
				return nil, w, fmt.Errorf("parquet: %s: row %d: dimension %s missing or not a string", path, i, dim.Name)
			}
			r.Dims[d] = s
			if lv, ok := m[LevelColumn(dim.Name)].(int32); !ok || int(lv) != dimLevels[d] {
				return nil, w, fmt.Errorf("parquet: %s: row %d: %s is %v, want %d (level %d of the ladder)",
					path, i, LevelColumn(dim.Name), m[LevelColumn(dim.Name)], dimLevels[d], r.Level)
			}
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
