package privacy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mya/deid/internal/infoloss"
	"github.com/mya/deid/pipeline"
)

// MinK is the floor of k (contract §7): the gate refuses a dataset declared
// with a smaller k, whoever built its spec. pipeline.MinK is its authority.
const MinK = pipeline.MinK

// plan is a dataset spec compiled for the gate: indexes instead of names.
type plan struct {
	spec  *pipeline.DatasetSpec
	nDims int
	hier  []pipeline.Hierarchy
	// levels holds each ladder step's dimension levels, step 0 first.
	levels [][pipeline.MaxDims]int
	// tops holds each dimension's top level (its "*").
	tops [pipeline.MaxDims]int
	// strategy is the generalization strategy (pipeline.Generalize…).
	strategy string
	// loss holds each dimension's hierarchy as the information-loss score
	// sees it, for the mondrian strategy's choice of splits.
	loss  []infoloss.Dim
	nSums int
	nSets int
	// protected lists the indexes (into Contribution.Sets) of the
	// protected entities other than workspaces, which are always protected.
	protected []int
	// dom lists the dominance measures: an index into Contribution.Sums,
	// or -1 for the event count. It holds the declared ones, in order, then
	// every sum measure the declaration left out.
	dom      []int
	measures []measurePlan

	k, domN, domK, pPct int64
}

// measurePlan says where a measure's value comes from.
type measurePlan struct {
	kind pipeline.MeasureKind
	// sum indexes Contribution.Sums (MeasureSum); set indexes
	// Contribution.Sets, or -1 for workspaces (MeasureDistinct).
	sum, set int
	// num and den index the plan's measures (MeasureRatio).
	num, den int
	scale    float64
}

// compile checks spec and resolves its names. A spec the gate cannot apply
// exactly is an error: the window is then not published at all.
func compile(spec *pipeline.DatasetSpec) (*plan, error) {
	if spec == nil {
		return nil, errors.New("no dataset spec")
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	pv := spec.Privacy
	pl := &plan{spec: spec, nDims: len(spec.Dimensions), k: int64(pv.K), domN: int64(pv.DominanceN),
		domK: int64(pv.DominanceK), pPct: int64(pv.PPercent)}
	if pv.K < MinK {
		fail("k = %d is below the floor of %d", pv.K, MinK)
	}
	if pv.DominanceN < 1 || pv.DominanceN > 64 {
		fail("dominance n = %d is outside 1..64", pv.DominanceN)
	}
	if pv.DominanceK < 1 || pv.DominanceK > 99 {
		fail("dominance k%% = %d is outside 1..99", pv.DominanceK)
	}
	if pv.PPercent < 1 || pv.PPercent > 100 {
		fail("p%% = %d is outside 1..100", pv.PPercent)
	}
	if pl.nDims == 0 || pl.nDims > pipeline.MaxDims {
		fail("%d dimensions, want 1 to %d", pl.nDims, pipeline.MaxDims)
	}
	for _, d := range spec.Dimensions {
		if d.Hierarchy == nil {
			fail("dimension %s has no hierarchy", d.Name)
		}
		pl.hier = append(pl.hier, d.Hierarchy)
	}
	pl.strategy = pv.Strategy()
	if !slices.Contains(pipeline.Generalizations, pl.strategy) {
		fail("generalization %q is not a strategy (%s)", pl.strategy, strings.Join(pipeline.Generalizations, ", "))
	}
	if len(errs) == 0 {
		for i, d := range spec.Dimensions {
			pl.tops[i] = max(d.Hierarchy.Levels()-1, 0)
			if pl.strategy == pipeline.GeneralizeMondrian {
				pl.loss = append(pl.loss, infoloss.NewDim(d.Name, d.Hierarchy))
			}
		}
	}
	for _, name := range spec.Ladder {
		if spec.DimIndex(name) < 0 {
			fail("ladder step %q is not a dimension", name)
		}
	}
	for step := 0; step <= len(spec.Ladder); step++ {
		pl.levels = append(pl.levels, spec.Levels(step))
	}

	sumIdx := map[string]int{}
	for i, mi := range spec.SumMeasures() {
		sumIdx[spec.Measures[mi].Name] = i
	}
	pl.nSums = len(sumIdx)
	setIdx := map[string]int{}
	for i, ei := range spec.SetEntities() {
		e := spec.Entities[ei]
		setIdx[e.Name] = i
		if e.Protected {
			pl.protected = append(pl.protected, i)
		}
	}
	pl.nSets = len(setIdx)

	if len(pv.DominanceMeasures) == 0 {
		fail("no dominance measure")
	}
	for _, name := range pv.DominanceMeasures {
		mi := spec.MeasureIndex(name)
		switch {
		case mi < 0:
			fail("dominance measure %q is not a measure", name)
		case spec.Measures[mi].Kind == pipeline.MeasureCount:
			if !slices.Contains(pl.dom, -1) {
				pl.dom = append(pl.dom, -1)
			}
		case spec.Measures[mi].Kind == pipeline.MeasureSum:
			if !slices.Contains(pl.dom, sumIdx[name]) {
				pl.dom = append(pl.dom, sumIdx[name])
			}
		default:
			fail("dominance measure %q is neither a count nor a sum", name)
		}
	}
	// Every published sum is a dominance measure, whatever the spec lists:
	// a sum left out would let one workspace's share be read from a row
	// (one workspace with nearly all of a cell's clicks). The declaration
	// is refused for that omission (aggregate's Validate), but a spec built
	// any other way is covered too.
	for i := range pl.nSums {
		if !slices.Contains(pl.dom, i) {
			pl.dom = append(pl.dom, i)
		}
	}

	for _, m := range spec.Measures {
		mp := measurePlan{kind: m.Kind, set: -1, scale: m.Scale}
		switch m.Kind {
		case pipeline.MeasureCount:
		case pipeline.MeasureSum:
			mp.sum = sumIdx[m.Name]
		case pipeline.MeasureDistinct:
			ei := spec.EntityIndex(m.Entity)
			switch {
			case ei < 0:
				fail("measure %s counts unknown entity %q", m.Name, m.Entity)
			case spec.Entities[ei].Field != "workspace_id":
				mp.set = setIdx[m.Entity]
			}
		case pipeline.MeasureRatio:
			mp.num, mp.den = spec.MeasureIndex(m.Numerator), spec.MeasureIndex(m.Denominator)
			if mp.num < 0 || mp.den < 0 || !spec.Measures[mp.num].IsInt() || !spec.Measures[mp.den].IsInt() {
				fail("ratio %s needs a count, sum or distinct numerator and denominator (got %q / %q)",
					m.Name, m.Numerator, m.Denominator)
			}
			if mp.scale == 0 {
				mp.scale = 1
			}
		default:
			fail("measure %s has unknown kind %d", m.Name, m.Kind)
		}
		pl.measures = append(pl.measures, mp)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("dataset %s: %w", spec.Name, err)
	}
	return pl, nil
}

// generalize returns level-0 key k0 at the given dimension levels. Slots
// past the dataset's dimensions are left empty.
func (pl *plan) generalize(k0 pipeline.CellKey, levels *[pipeline.MaxDims]int) pipeline.CellKey {
	var k pipeline.CellKey
	for i, h := range pl.hier {
		k[i] = h.Generalize(k0[i], levels[i])
	}
	return k
}
