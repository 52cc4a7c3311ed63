// Package parquettest reads Parquet files with xitongsys/parquet-go, a
// reader that shares no code with the Arrow writer deid uses, so that tests
// check what deid writes against an independent implementation. Tests only.
package parquettest

import (
	"fmt"

	"github.com/xitongsys/parquet-go-source/local"
	"github.com/xitongsys/parquet-go/reader"
)

// ReadColumns returns every column of the file at path by the file's own
// column names (parquet-go renames them Go-style; ExName is the file's),
// each as its values (nil for null; timestamps as int64 microseconds), and
// the row count.
func ReadColumns(path string) (map[string][]any, int64, error) {
	f, err := local.NewLocalFileReader(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	pr, err := reader.NewParquetColumnReader(f, 1)
	if err != nil {
		return nil, 0, fmt.Errorf("parquet-go: %s: %w", path, err)
	}
	defer pr.ReadStop()
	n := pr.GetNumRows()
	cols := map[string][]any{}
	for i, info := range pr.SchemaHandler.Infos[1:] {
		var vals []any
		if n > 0 {
			if vals, _, _, err = pr.ReadColumnByIndex(int64(i), n); err != nil {
				return nil, 0, fmt.Errorf("parquet-go: %s: column %s: %w", path, info.ExName, err)
			}
		}
		cols[info.ExName] = vals
	}
	return cols, n, nil
}
