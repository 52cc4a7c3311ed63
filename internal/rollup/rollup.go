// Package rollup rolls a dataset's published rows, which mix levels, up to
// one consistent granularity: each dimension at a chosen level of its
// hierarchy. It uses only published rows, so it is privacy-safe
// post-processing: it cannot reveal more than the rows already do.
//
// A row whose every dimension is at or below its target level is mapped up
// (each value replaced by its ancestor at the target level) and added to
// the target cell of its window; counts and sums add exactly, because rows
// never overlap (contract §7), and ratios are recomputed from the summed
// numerator and denominator. Distinct counts do not add (one workspace can
// be in several rows) and are left out. A row coarser than the target in
// some dimension cannot be placed in one target cell: it is left out and
// counted, so the caller can say how much of the data a granularity
// covers, or choose coarser levels.
package rollup

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mya/deid/pipeline"
)

// Table is a roll-up: a header and rows of text, ready for CSV.
type Table struct {
	Header []string
	Rows   [][]string
	// In counts the rows read; Left the rows (and LeftEvents their
	// events) coarser than the target in some dimension, left out.
	In, Left   int
	LeftEvents int64
}

// Rows rolls rows (as parquet.ReadRows gives them: column → value) of
// spec's dataset up to the target level of each dimension.
func Rows(spec *pipeline.DatasetSpec, rows []map[string]any, target []int) (*Table, error) {
	if len(target) != len(spec.Dimensions) {
		return nil, fmt.Errorf("rollup: %d target levels for %d dimensions", len(target), len(spec.Dimensions))
	}
	up := make([]Ancestors, len(spec.Dimensions))
	for d, dim := range spec.Dimensions {
		if dim.Hierarchy == nil {
			return nil, fmt.Errorf("rollup: dimension %s has no hierarchy", dim.Name)
		}
		if top := dim.Hierarchy.Levels() - 1; target[d] < 0 || target[d] > top {
			return nil, fmt.Errorf("rollup: %s at level %d, outside 0–%d", dim.Name, target[d], top)
		}
		up[d] = NewAncestors(dim.Hierarchy)
	}
	// The additive measures, and the ratios over them.
	var add, ratios []int
	for i, m := range spec.Measures {
		switch m.Kind {
		case pipeline.MeasureCount, pipeline.MeasureSum:
			add = append(add, i)
		}
	}
	for i, m := range spec.Measures {
		if m.Kind != pipeline.MeasureRatio {
			continue
		}
		n, d := spec.MeasureIndex(m.Numerator), spec.MeasureIndex(m.Denominator)
		if slices.Contains(add, n) && slices.Contains(add, d) {
			ratios = append(ratios, i)
		}
	}
	t := &Table{Header: []string{"window_start", "window_end"}}
	for _, dim := range spec.Dimensions {
		t.Header = append(t.Header, dim.Name)
	}
	for _, dim := range spec.Dimensions {
		t.Header = append(t.Header, dim.Name+pipeline.LevelSuffix)
	}
	for _, i := range append(slices.Clone(add), ratios...) {
		t.Header = append(t.Header, spec.Measures[i].Name)
	}
	events := ""
	for _, m := range spec.Measures {
		if m.Kind == pipeline.MeasureCount {
			events = m.Name
			break
		}
	}

	type cell struct {
		key  []string
		sums map[int]int64
	}
	cells := map[string]*cell{}
	for _, r := range rows {
		t.In++
		key := []string{timeText(r["window_start"]), timeText(r["window_end"])}
		placed := true
		for d, dim := range spec.Dimensions {
			v, _ := r[dim.Name].(string)
			l, ok := r[dim.Name+pipeline.LevelSuffix].(int32)
			if !ok {
				return nil, fmt.Errorf("rollup: a row without %s%s", dim.Name, pipeline.LevelSuffix)
			}
			if int(l) > target[d] {
				placed = false
				break
			}
			g, ok := up[d].Of(v, int(l), target[d])
			if !ok {
				return nil, fmt.Errorf("rollup: %s = %q at level %d is not a value of its hierarchy", dim.Name, v, l)
			}
			key = append(key, g)
		}
		if !placed {
			t.Left++
			n, _ := r[events].(int64)
			t.LeftEvents += n
			continue
		}
		k := strings.Join(key, "\x00")
		c := cells[k]
		if c == nil {
			c = &cell{key: key, sums: map[int]int64{}}
			cells[k] = c
		}
		for _, i := range add {
			n, _ := r[spec.Measures[i].Name].(int64)
			c.sums[i] += n
		}
	}
	keys := make([]string, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(a, b) })
	for _, k := range keys {
		c := cells[k]
		row := slices.Clone(c.key)
		for _, l := range target {
			row = append(row, strconv.Itoa(l))
		}
		for _, i := range add {
			row = append(row, strconv.FormatInt(c.sums[i], 10))
		}
		for _, i := range ratios {
			m := spec.Measures[i]
			num, den := c.sums[spec.MeasureIndex(m.Numerator)], c.sums[spec.MeasureIndex(m.Denominator)]
			scale := m.Scale
			if scale == 0 {
				scale = 1
			}
			if den == 0 {
				row = append(row, "")
			} else {
				row = append(row, strconv.FormatFloat(scale*float64(num)/float64(den), 'g', -1, 64))
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// timeText renders a window bound as RFC 3339.
func timeText(v any) string {
	if t, ok := v.(time.Time); ok {
		return t.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(v)
}

// Ancestors maps a hierarchy's values at any level to a coarser level,
// from its declared level-0 domain.
type Ancestors struct {
	h pipeline.Hierarchy
	// path[l][v] is v's path from level l to the top.
	path []map[string][]string
}

// NewAncestors reads h's level-0 domain.
func NewAncestors(h pipeline.Hierarchy) Ancestors {
	a := Ancestors{h: h, path: make([]map[string][]string, h.Levels())}
	for l := range a.path {
		a.path[l] = map[string][]string{}
	}
	for _, x := range h.Domain(0) {
		p := make([]string, h.Levels())
		for l := range p {
			p[l] = h.Generalize(x, l)
		}
		for l := range p {
			a.path[l][p[l]] = p[l:]
		}
	}
	return a
}

// Of returns value, at level from, at level to ≥ from.
func (a Ancestors) Of(value string, from, to int) (string, bool) {
	if from < 0 || from >= len(a.path) {
		return "", false
	}
	if _, known := a.path[from][value]; !known && len(a.path[from]) > 0 {
		return "", false // not a value of the declared domain at that level
	}
	switch {
	case to == from:
		return value, true
	case to >= a.h.Levels()-1:
		return "*", true
	case from == 0:
		return a.h.Generalize(value, to), true
	}
	if p, ok := a.path[from][value]; ok && to-from < len(p) {
		return p[to-from], true
	}
	return "", false
}
