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
		genProblems = append(genProblems, v.rowCells(label, spec, m.Privacy.Generalization, rs, &m.Published)...)
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
		"every row's dimension values are values its <dimension>_level columns can take, and those levels are the ladder's (ladder) or add up to generalization_level (mondrian); no two rows describe the same cell, and no two rows' cells overlap without one containing the other, so each level-0 cell's contributions are in the smallest row that contains it; events and rows by level match the manifests",
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
// columns: each value is one its level can take, and the levels are the
// ladder's at the row's generalization_level (strategy ladder) or add up
// to it (any other strategy). It checks that no cell appears twice, that
// the rows' cells form a laminar family (any two are disjoint or one
// contains the other, so every level-0 cell has one smallest row that
// contains it: the one its contributions are in), and the per-level
// counts against the manifest.
func (v *verifier) rowCells(label string, spec *pipeline.DatasetSpec, strategy string, rows []map[string]any, acct *parquet.Published) []string {
	var problems []string
	events := ""
	for _, m := range spec.Measures {
		if m.Kind == pipeline.MeasureCount {
			events = m.Name
			break
		}
	}
	if strategy == "" {
		strategy = pipeline.GeneralizeLadder // manifests that do not say were written by the ladder
	}
	seen := map[string]int{}
	rowsBy, eventsBy := map[int]int64{}, map[int]int64{}
	var cells []rowCell
	for i, r := range rows {
		lv, ok := r[parquet.ColLevel].(int32)
		if !ok || lv < 0 || strategy == pipeline.GeneralizeLadder && int(lv) > len(spec.Ladder) {
			problems = append(problems, fmt.Sprintf("%s: row %d: generalization_level %v is not a step of the ladder (0–%d)", label, i+1, r[parquet.ColLevel], len(spec.Ladder)))
			continue
		}
		var ladder []int
		if strategy == pipeline.GeneralizeLadder {
			ladder = spec.DimLevels(int(lv))
		}
		cell := rowCell{row: i + 1, levels: make([]int, len(spec.Dimensions)), values: make([]string, len(spec.Dimensions))}
		key := ""
		sum, valid := 0, true
		for d, dim := range spec.Dimensions {
			val, _ := r[dim.Name].(string)
			lc := parquet.LevelColumn(dim.Name)
			got, ok := r[lc].(int32)
			l := int(got)
			switch {
			case ladder != nil && (!ok || l != ladder[d]):
				problems = append(problems, fmt.Sprintf("%s: row %d: %s = %v, but generalization_level %d puts %s at level %d (see the ladder)", label, i+1, lc, r[lc], lv, dim.Name, ladder[d]))
				l = ladder[d]
			case ladder == nil && (!ok || l < 0 || dim.Hierarchy != nil && l >= dim.Hierarchy.Levels()):
				problems = append(problems, fmt.Sprintf("%s: row %d: %s = %v is not a level of %s's hierarchy", label, i+1, lc, r[lc], dim.Name))
				valid = false
				continue
			}
			sum += l
			cell.levels[d], cell.values[d] = l, val
			key += fmt.Sprintf("\x00%d\x00%s", l, val)
			if dom := dim.Hierarchy.Domain(l); dom != nil {
				if !slices.Contains(dom, val) {
					problems = append(problems, fmt.Sprintf("%s: row %d: %s = %q is not a value %s takes at level %d", label, i+1, dim.Name, val, dim.Name, l))
					valid = false
				}
			} else if val == "" || dim.Hierarchy.Generalize(val, l) != val {
				problems = append(problems, fmt.Sprintf("%s: row %d: %s = %q is not generalized to level %d", label, i+1, dim.Name, val, l))
				valid = false
			}
		}
		if ladder == nil && valid && sum != int(lv) {
			problems = append(problems, fmt.Sprintf("%s: row %d: generalization_level = %d, but its dimensions' levels add up to %d", label, i+1, lv, sum))
		}
		if j, dup := seen[key]; dup {
			problems = append(problems, fmt.Sprintf("%s: rows %d and %d describe the same cell (%s)", label, j, i+1, cellText(spec, r)))
		} else if valid {
			cells = append(cells, cell)
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
	problems = append(problems, laminar(label, spec, cells)...)
	if !equalCounts(rowsBy, acct.RowsByLevel) {
		problems = append(problems, fmt.Sprintf("%s: rows by level are %v, the manifest says %v", label, rowsBy, acct.RowsByLevel))
	}
	if events != "" && !equalCounts(eventsBy, acct.EventsByLevel) {
		problems = append(problems, fmt.Sprintf("%s: events by level are %v, the manifest says %v", label, eventsBy, acct.EventsByLevel))
	}
	return problems
}

// rowCell is a row's cell: each dimension's level and value.
type rowCell struct {
	row    int
	levels []int
	values []string
}

// laminar names every two rows whose cells overlap without one containing
// the other. Two cells intersect when, in every dimension, the finer value
// generalizes to the coarser one, that is when both generalize to the same
// cell at their levels' maximum; cells whose levels are ordered the same
// way in every dimension are then nested, so only pairs of rows whose level
// vectors are incomparable are looked at, one set lookup per row and pair.
func laminar(label string, spec *pipeline.DatasetSpec, cells []rowCell) []string {
	up := make([]ancestors, len(spec.Dimensions))
	for d, dim := range spec.Dimensions {
		up[d] = newAncestors(dim.Hierarchy)
	}
	byLevels := map[string][]rowCell{}
	var vectors []string
	for _, c := range cells {
		k := fmt.Sprint(c.levels)
		if byLevels[k] == nil {
			vectors = append(vectors, k)
		}
		byLevels[k] = append(byLevels[k], c)
	}
	var problems []string
	for i, ka := range vectors {
		for _, kb := range vectors[i+1:] {
			as, bs := byLevels[ka], byLevels[kb]
			u, w := as[0].levels, bs[0].levels
			finer, coarser := false, false
			top := make([]int, len(u))
			for d := range u {
				finer = finer || u[d] < w[d]
				coarser = coarser || u[d] > w[d]
				top[d] = max(u[d], w[d])
			}
			if !finer || !coarser {
				continue // nested or disjoint, never crossing
			}
			at := map[string]int{}
			for _, a := range as {
				if g, ok := generalizeCell(up, a, top); ok {
					at[g] = a.row
				}
			}
			for _, b := range bs {
				g, ok := generalizeCell(up, b, top)
				if j, hit := at[g]; ok && hit {
					problems = append(problems, fmt.Sprintf("%s: rows %d and %d overlap without one containing the other: "+
						"a level-0 cell in both could be in either, so the rows' contents are ambiguous", label, min(j, b.row), max(j, b.row)))
				}
			}
		}
	}
	slices.Sort(problems)
	return problems
}

// generalizeCell renders a cell at the given (coarser or equal) levels.
func generalizeCell(up []ancestors, c rowCell, levels []int) (string, bool) {
	var b strings.Builder
	for d := range c.values {
		g, ok := up[d].of(c.values[d], c.levels[d], levels[d])
		if !ok {
			return "", false
		}
		b.WriteString(g)
		b.WriteByte(0)
	}
	return b.String(), true
}

// ancestors generalizes a hierarchy's values at any level to a coarser
// one, from its declared level-0 domain.
type ancestors struct {
	h pipeline.Hierarchy
	// up[l][v] is v's path from level l to the top.
	up []map[string][]string
}

func newAncestors(h pipeline.Hierarchy) ancestors {
	a := ancestors{h: h}
	if h == nil {
		return a
	}
	n := h.Levels()
	a.up = make([]map[string][]string, n)
	for l := range a.up {
		a.up[l] = map[string][]string{}
	}
	for _, x := range h.Domain(0) {
		path := make([]string, n)
		for l := range path {
			path[l] = h.Generalize(x, l)
		}
		for l := range path {
			a.up[l][path[l]] = path[l:]
		}
	}
	return a
}

// of returns value (at level from) at level to ≥ from.
func (a ancestors) of(value string, from, to int) (string, bool) {
	switch {
	case to == from:
		return value, true
	case a.h == nil:
		return "", false
	case to >= a.h.Levels()-1:
		return "*", true
	case from == 0:
		return a.h.Generalize(value, to), true
	}
	if from < len(a.up) {
		if p, ok := a.up[from][value]; ok && to-from < len(p) {
			return p[to-from], true
		}
	}
	return "", false
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
