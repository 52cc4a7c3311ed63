package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mya/deid/internal/rollup"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/parquet"
)

// cmdRollup rolls one dataset's published rows up to one granularity and
// writes them as CSV (package rollup).
func cmdRollup(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rollup", stderr)
	dataset := fs.String("dataset", "", "the dataset to roll up, e.g. campaign_metrics")
	levels := fs.String("levels", "", "target level per dimension, e.g. region=1,industry=1; a dimension left out is summed over (its top, *)")
	config := fs.String("config", "", "YAML config whose datasets the output was written with (default: the embedded defaults)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *dataset == "" {
		return usageErr("name one output directory and --dataset: deid rollup <out> --dataset NAME [--levels DIM=L,...]")
	}
	specs, err := readSpecs(*config)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	i := slices.IndexFunc(specs, func(s *pipeline.DatasetSpec) bool { return s.Name == *dataset })
	if i < 0 {
		return usageErr("--dataset %q is not a declared dataset", *dataset)
	}
	spec := specs[i]
	target := make([]int, len(spec.Dimensions))
	for d, dim := range spec.Dimensions {
		target[d] = dim.Hierarchy.Levels() - 1
	}
	for _, kv := range strings.Split(*levels, ",") {
		if kv == "" {
			continue
		}
		name, l, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(l)
		d := spec.DimIndex(name)
		if !ok || err != nil || d < 0 {
			return usageErr("--levels: %q is not DIMENSION=LEVEL with a dimension of %s", kv, spec.Name)
		}
		target[d] = n
	}
	manifests, err := parquet.ListManifests(pos[0])
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var rows []map[string]any
	for _, mp := range manifests {
		m, err := parquet.ReadManifest(mp)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if m.Dataset != spec.Name {
			continue
		}
		for _, f := range m.Files {
			rs, err := parquet.ReadRows(filepath.Join(filepath.Dir(mp), f.Path))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			rows = append(rows, rs...)
		}
	}
	t, err := rollup.Rows(spec, rows, target)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	w := csv.NewWriter(stdout)
	_ = w.Write(t.Header)
	_ = w.WriteAll(t.Rows)
	if err := w.Error(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "rollup: %d rows of %s into %d; %d rows (%d events) are coarser than the target in some dimension and left out: choose coarser levels to include them\n",
		t.In, spec.Name, len(t.Rows), t.Left, t.LeftEvents)
	return nil
}

const rollupHelp = `Rolls one dataset's published rows, which mix levels, up to one
granularity and writes CSV to stdout: every row whose dimensions are all at
or below the target levels is mapped up the hierarchies and summed into its
target cell per window; counts and sums add exactly (rows never overlap),
ratios are recomputed from the sums, distinct counts are left out (they do
not add). Rows coarser than the target in some dimension are left out and
counted on stderr. Post-processing published rows is privacy-safe.
`
