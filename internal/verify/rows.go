package verify

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/parquet"
)

// checkRows checks every dataset's schema and every published row.
func (v *verifier) checkRows() error {
	const sec = SectionRows
	v.rows = map[string][]map[string]any{}
	var schemaProblems, kProblems, genProblems []string
	rows := 0
	files := 0
	protected := map[string]bool{}
	minK := 0
	for _, w := range v.windows() {
		m := w.Manifest
		label := windowLabel(w)
		spec := v.specs[m.Dataset]
		if spec == nil {
			schemaProblems = append(schemaProblems, fmt.Sprintf("%s: dataset %s is not declared (pass the run's --config)", label, m.Dataset))
			continue
		}
		want := parquet.Columns(spec)
		schemaProblems = append(schemaProblems, columnProblems(label+": the manifest", m.Columns, want)...)
		if m.Privacy.K < spec.Privacy.K {
			kProblems = append(kProblems, fmt.Sprintf("%s: published with k = %d, below the declared k = %d", label, m.Privacy.K, spec.Privacy.K))
		}
		k := max(m.Privacy.K, spec.Privacy.K, 3)
		if minK == 0 || k < minK {
			minK = k
		}
		for _, f := range m.Files {
			path := filepath.Join(w.Dir(), f.Path)
			got, err := fileColumns(path)
			if err != nil {
				continue // checkFiles reported it
			}
			files++
			schemaProblems = append(schemaProblems, columnProblems(label+": "+f.Path, got, want)...)
			rs, err := parquet.ReadRows(path)
			if err != nil {
				continue
			}
			v.rows[w.Path] = append(v.rows[w.Path], rs...)
		}
		rs := v.rows[w.Path]
		rows += len(rs)
		kProblems = append(kProblems, v.rowK(label, spec, k, rs, protected)...)
		genProblems = append(genProblems, v.rowCells(label, spec, rs, &m.Published)...)
	}
	if len(v.windows()) == 0 {
		return nil
	}
	v.r.add(sec, schemaProblems,
		fmt.Sprintf("%d data files hold exactly their declared columns, with the declared types; no column can hold an identifier or free text", files),
		fmt.Sprintf("%s: a column that is not declared, mistyped or able to hold an identifier", many(len(schemaProblems), "schema problem")))
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range protected {
			if !yield(n) {
				return
			}
		}
	})
	v.r.add(sec, kProblems,
		fmt.Sprintf("all %d published rows have at least k = %d of every protected entity (%s), from the counts in each row", rows, minK, strings.Join(names, ", ")),
		fmt.Sprintf("k-anonymity is violated: %s", many(len(kProblems), "problem")))
	v.r.add(sec, genProblems,
		"every row's dimension values are values its generalization level can take, and its <dimension>_level columns are the levels the ladder gives; no two rows describe the same cell; events and rows by level match the manifests",
		fmt.Sprintf("%s with the rows' cells", many(len(genProblems), "problem")))
	v.r.note(sec, "dominance and the p% rule need per-workspace totals, which no output holds by design; they are enforced by the privacy gate and its tests, and cannot be re-checked from the outputs")
	return nil
}

// rowK checks k on every row: each protected entity's distinct count.
func (v *verifier) rowK(label string, spec *pipeline.DatasetSpec, k int, rows []map[string]any, protected map[string]bool) []string {
	var problems []string
	for _, e := range spec.Entities {
		if !e.Protected {
			continue
		}
		col := ""
		for _, m := range spec.Measures {
			if m.Kind == pipeline.MeasureDistinct && m.Entity == e.Name {
				col = m.Name
				break
			}
		}
		if col == "" {
			problems = append(problems, fmt.Sprintf("%s: protected entity %s has no distinct-count column, so k cannot be checked", label, e.Name))
			continue
		}
		protected[col] = true
		for i, r := range rows {
			n, ok := r[col].(int64)
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s: row %d: %s is %v, not a count", label, i+1, col, r[col]))
			case n < int64(k):
				problems = append(problems, fmt.Sprintf("%s: row %d (%s): %s = %d < k = %d", label, i+1, cellText(spec, r), col, n, k))
			}
		}
	}
	return problems
}

// rowCells checks each row's dimension values and <dimension>_level
// columns against its generalization level and the ladder, that no cell
// appears twice, and the per-level counts against the manifest.
func (v *verifier) rowCells(label string, spec *pipeline.DatasetSpec, rows []map[string]any, acct *parquet.Published) []string {
	var problems []string
	events := ""
	for _, m := range spec.Measures {
		if m.Kind == pipeline.MeasureCount {
			events = m.Name
			break
		}
	}
	seen := map[string]int{}
	rowsBy, eventsBy := map[int]int64{}, map[int]int64{}
	for i, r := range rows {
		lv, ok := r[parquet.ColLevel].(int32)
		if !ok || lv < 0 || int(lv) > len(spec.Ladder) {
			problems = append(problems, fmt.Sprintf("%s: row %d: generalization_level %v is not a step of the ladder (0–%d)", label, i+1, r[parquet.ColLevel], len(spec.Ladder)))
			continue
		}
		levels := spec.DimLevels(int(lv))
		key := fmt.Sprint(lv)
		for d, dim := range spec.Dimensions {
			val, _ := r[dim.Name].(string)
			key += "\x00" + val
			l := levels[d]
			lc := parquet.LevelColumn(dim.Name)
			if got, ok := r[lc].(int32); !ok || int(got) != l {
				problems = append(problems, fmt.Sprintf("%s: row %d: %s = %v, but generalization_level %d puts %s at level %d (see the ladder)", label, i+1, lc, r[lc], lv, dim.Name, l))
			}
			if dom := dim.Hierarchy.Domain(l); dom != nil {
				if !slices.Contains(dom, val) {
					problems = append(problems, fmt.Sprintf("%s: row %d: %s = %q is not a value %s takes at level %d", label, i+1, dim.Name, val, dim.Name, l))
				}
			} else if val == "" || dim.Hierarchy.Generalize(val, l) != val {
				problems = append(problems, fmt.Sprintf("%s: row %d: %s = %q is not generalized to level %d", label, i+1, dim.Name, val, l))
			}
		}
		if j, dup := seen[key]; dup {
			problems = append(problems, fmt.Sprintf("%s: rows %d and %d describe the same cell at level %d (%s)", label, j, i+1, lv, cellText(spec, r)))
		}
		seen[key] = i + 1
		rowsBy[int(lv)]++
		if n, ok := r[events].(int64); ok {
			eventsBy[int(lv)] += n
			if n < 1 {
				problems = append(problems, fmt.Sprintf("%s: row %d: %s = %d: a published row aggregates at least one event", label, i+1, events, n))
			}
		}
	}
	if !equalCounts(rowsBy, acct.RowsByLevel) {
		problems = append(problems, fmt.Sprintf("%s: rows by level are %v, the manifest says %v", label, rowsBy, acct.RowsByLevel))
	}
	if events != "" && !equalCounts(eventsBy, acct.EventsByLevel) {
		problems = append(problems, fmt.Sprintf("%s: events by level are %v, the manifest says %v", label, eventsBy, acct.EventsByLevel))
	}
	return problems
}

// cellText renders a row's cell: "instagram/reel/beauty/EU/micro".
func cellText(spec *pipeline.DatasetSpec, r map[string]any) string {
	parts := make([]string, len(spec.Dimensions))
	for i, d := range spec.Dimensions {
		parts[i] = fmt.Sprint(r[d.Name])
	}
	return strings.Join(parts, "/")
}

// fileColumns returns a Parquet file's columns as the manifest names them;
// a malformed file is an error, never a panic.
func fileColumns(path string) (cols []parquet.Column, err error) {
	defer func() {
		if p := recover(); p != nil {
			cols, err = nil, fmt.Errorf("%s: malformed file (%v)", path, p)
		}
	}()
	rdr, err := parquet.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.NewGoAllocator())
	if err != nil {
		return nil, err
	}
	schema, err := fr.Schema()
	if err != nil {
		return nil, err
	}
	cols = make([]parquet.Column, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = parquet.Column{Name: f.Name, Type: typeName(f.Type), Nullable: f.Nullable}
	}
	return cols, nil
}

// typeName names an Arrow type as the manifest does.
func typeName(t arrow.DataType) string {
	switch tt := t.(type) {
	case *arrow.TimestampType:
		if tt.Unit == arrow.Microsecond && tt.TimeZone == "UTC" {
			return parquet.TypeTimestamp
		}
	case *arrow.DictionaryType:
		if tt.IndexType.ID() == arrow.INT32 && tt.ValueType.ID() == arrow.STRING {
			return parquet.TypeDictStr
		}
	case *arrow.Int32Type:
		return parquet.TypeInt32
	case *arrow.Int64Type:
		return parquet.TypeInt64
	case *arrow.Float64Type:
		return parquet.TypeDouble
	}
	return t.String()
}

// columnProblems compares columns with the declared ones, by name and
// type, and names any column that could hold an identifier or free text.
func columnProblems(what string, got, want []parquet.Column) []string {
	var problems []string
	wantBy := map[string]parquet.Column{}
	for _, c := range want {
		wantBy[c.Name] = c
	}
	gotBy := map[string]bool{}
	for _, c := range got {
		gotBy[c.Name] = true
		if why := forbiddenColumn(c.Name); why != "" {
			problems = append(problems, fmt.Sprintf("%s has a column %q: %s", what, c.Name, why))
		}
		w, ok := wantBy[c.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s has a column %q that the dataset does not declare", what, c.Name))
		case w.Type != c.Type:
			problems = append(problems, fmt.Sprintf("%s: column %s is %s, declared %s", what, c.Name, c.Type, w.Type))
		case c.Role != "" && w.Role != c.Role:
			problems = append(problems, fmt.Sprintf("%s: column %s has role %s, declared %s", what, c.Name, c.Role, w.Role))
		}
	}
	for _, c := range want {
		if !gotBy[c.Name] {
			problems = append(problems, fmt.Sprintf("%s lacks the declared column %s", what, c.Name))
		}
	}
	return problems
}

// forbiddenColumn says why a column name is one no dataset may have, or "".
func forbiddenColumn(name string) string {
	n := strings.ToLower(name)
	if n == "id" || strings.HasSuffix(n, "_id") || strings.HasSuffix(n, "_ids") || strings.HasSuffix(n, "uuid") {
		return "an identifier column (contract P1: no identifier reaches a dataset)"
	}
	for _, w := range []string{"email", "phone", "handle", "caption", "body", "text", "message", "subject", "comment_text",
		"ip_address", "user_agent", "address", "name"} {
		if strings.Contains(n, w) {
			return "a column for free text or personal data (contract P4: no free text survives)"
		}
	}
	return ""
}
