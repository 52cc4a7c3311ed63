package privacy

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/mya/deid/pipeline"
)

// Gate is the privacy gate of contract §7 (pipeline.PrivacyGate). It has no
// configuration of its own: the parameters are the dataset's. The zero
// value is ready to use; a Gate is safe for concurrent use.
type Gate struct {
	// trace, when set (by tests), is told which level-0 cells each row and
	// each suppressed cell was made of, with its generalization level and
	// its dimensions' levels.
	trace func(level int, dimLevels []int, dims []string, suppressed bool, cells []pipeline.CellKey)
}

var _ pipeline.PrivacyGate = (*Gate)(nil)

// New returns a privacy gate.
func New() *Gate { return &Gate{} }

// Apply publishes what p can publish of spec's dataset and suppresses the
// rest. It never modifies p. Level-0 cells that pass are published at level
// 0; the level-0 cells of those that fail are re-keyed one ladder step up
// and merged with each other only, and judged again, up to the last step;
// what still fails there is suppressed. Every contribution of p ends in
// exactly one row or one suppressed cell.
//
// It returns an error, and nothing of the window must be published, when
// spec cannot be applied exactly (k below the floor, a dominance measure
// that is not a count or sum, …) or p does not fit spec.
func (g *Gate) Apply(spec *pipeline.DatasetSpec, p *pipeline.Partial) (*pipeline.GateResult, error) {
	pl, err := compile(spec)
	if err != nil {
		return nil, fmt.Errorf("privacy: %w", err)
	}
	if p == nil {
		return nil, fmt.Errorf("privacy: dataset %s: no partial", spec.Name)
	}
	if p.Dataset != "" && p.Dataset != spec.Name {
		return nil, fmt.Errorf("privacy: partial of dataset %q given with the spec of %q", p.Dataset, spec.Name)
	}
	// The partial's content is its Cells once sealed; a partial still
	// aggregating is sealed here rather than read half.
	p.Seal()
	r, pending, err := newRun(pl, p)
	if err != nil {
		return nil, err
	}
	r.trace = g.trace
	switch pl.strategy {
	case pipeline.GeneralizeMondrian:
		// Level 0 as the ladder's first step; the failing cells are
		// partitioned top down.
		pending = r.step(0, pending, len(pl.levels) == 1)
		r.mondrian(pending)
	default:
		last := len(pl.levels) - 1
		for step := 0; step <= last && len(pending) > 0; step++ {
			pending = r.step(step, pending, step == last)
		}
	}
	slices.SortFunc(r.res.Rows, func(a, b pipeline.Row) int {
		return cmp.Or(slices.Compare(a.Dims, b.Dims), cmp.Compare(a.Level, b.Level))
	})
	slices.SortFunc(r.res.Suppressed, func(a, b pipeline.CellExclusion) int {
		return cmp.Or(slices.Compare(a.Dims, b.Dims), cmp.Compare(a.Level, b.Level))
	})
	return r.res, nil
}

// newRun checks that p fits the plan and lays out its level-0 cells for
// judging; it returns every cell's index, in key order, as pending.
func newRun(pl *plan, p *pipeline.Partial) (*run, []int32, error) {
	r := &run{plan: pl, p: p, res: &pipeline.GateResult{EventsByLevel: map[int]int64{}}}
	r.keys = make([]pipeline.CellKey, 0, len(p.Cells))
	for key, byWS := range p.Cells {
		for _, c := range byWS {
			if c == nil || len(c.Sums) != pl.nSums || len(c.Sets) != pl.nSets {
				return nil, nil, fmt.Errorf("privacy: dataset %s: a contribution to cell %q does not fit the spec (%d sums and %d entity sets expected)",
					pl.spec.Name, key[:pl.nDims], pl.nSums, pl.nSets)
			}
		}
		if len(byWS) > 0 {
			r.keys = append(r.keys, key)
		}
	}
	// Sorted once: every later order derives from this one, so the output
	// never depends on the order of a map.
	slices.SortFunc(r.keys, func(a, b pipeline.CellKey) int { return slices.Compare(a[:], b[:]) })
	// Each cell's contributions as a slice in pseudonym order: judging
	// walks them many times, and a slice is walked faster than a map.
	r.cells = make([][]wsContrib, len(r.keys))
	pending := make([]int32, len(r.keys))
	for i, k := range r.keys {
		byWS := p.Cells[k]
		list := make([]wsContrib, 0, len(byWS))
		for ws, c := range byWS {
			list = append(list, wsContrib{ws: ws, c: c})
		}
		slices.SortFunc(list, func(a, b wsContrib) int { return bytes.Compare(a.ws[:], b.ws[:]) })
		r.cells[i] = list
		pending[i] = int32(i)
	}
	// Each workspace's number, in the order first met, for judge's slots.
	ids := map[pipeline.Pseudonym]int32{}
	for _, list := range r.cells {
		for j := range list {
			id, ok := ids[list[j].ws]
			if !ok {
				id = int32(len(ids))
				ids[list[j].ws] = id
			}
			list[j].id = id
		}
	}
	r.slotOf = make([]int32, len(ids))
	r.stamp = make([]uint32, len(ids))
	r.groups = make([]group, 0, len(r.keys))
	r.sizes = make([]int, 0, len(r.keys))
	r.of = make([]int32, len(r.keys))
	r.flat = make([]int32, len(r.keys))
	r.top = make(topN, max(pl.domN, 2))
	r.sets = make([]pipeline.EntitySet, pl.nSets)
	r.sums = make([]int64, pl.nSums)
	return r, pending, nil
}

// wsContrib is one workspace's contribution to a level-0 cell.
type wsContrib struct {
	ws pipeline.Pseudonym
	// id numbers the workspace within the window (run.slotOf).
	id int32
	c  *pipeline.Contribution
}

// group is one cell at a ladder step: its key at that step's levels and
// the level-0 cells it merges (indexes into run.keys).
type group struct {
	key   pipeline.CellKey
	cells []int32
}

// run is the state of one Apply call.
type run struct {
	*plan
	p     *pipeline.Partial
	res   *pipeline.GateResult
	trace func(int, []int, []string, bool, []pipeline.CellKey)

	// keys are the level-0 cells, sorted; cells their contributions.
	keys  []pipeline.CellKey
	cells [][]wsContrib

	// Scratch space reused from step to step and cell to cell.
	index  map[pipeline.CellKey]int32
	groups []group
	sizes  []int
	of     []int32
	flat   []int32
	// slotOf gives each workspace of the cell being judged its slot in
	// totals, valid where stamp equals gen (so nothing is cleared between
	// cells).
	slotOf []int32
	stamp  []uint32
	gen    uint32
	// totals holds the per-workspace totals of the dominance measures,
	// len(plan.dom) per workspace.
	totals []int64
	top    topN
	sums   []int64
	sets   []pipeline.EntitySet
	strs   []string
	vals   []pipeline.Value
	ints   []int
	// memo holds the mondrian strategy's choice for each box judged.
	memo  map[boxID]*choice
	nodes nodes
	// partIdx and partSize are trySplit's scratch space for grouping a
	// box's cells into parts (reused: the grouping is done before the
	// parts are searched).
	partIdx, partSize []int32
	// flat0 holds the residue's contributions for the search's verdicts.
	flat0 flatContribs
	// seq is quickVerdict's scratch: each contribution walked and its slot.
	seq []int32
	// boxes is the mondrian search's stack of parts, stack its stack of
	// cells (parts, remainders), judged its stack of kept parts; cand and
	// partsOut hold the split trySplit returns until best copies it.
	boxes    []box
	stack    []int32
	judged   []judged
	cand     choice
	partsOut []box
	// choices is the rest of the chunk newChoice takes choices from.
	choices []choice
	// events holds each residue cell's events; full is the loss of an
	// event at every dimension's top.
	events []int64
	full   float64
}

// step judges the cells made of the pending level-0 cells at one ladder
// step, publishes or suppresses them, and returns the level-0 cells of
// those that failed and go up one more step. Groups keep the order in
// which pending first names them, and pending keeps the order of run.keys,
// so nothing here depends on the order of a map.
func (r *run) step(step int, pending []int32, last bool) []int32 {
	levels := &r.levels[step]
	if r.index == nil {
		r.index = make(map[pipeline.CellKey]int32, len(pending))
	}
	clear(r.index)
	index := r.index
	groups := r.groups[:0]
	sizes := r.sizes[:0]
	of := r.of[:len(pending)]
	for i, c := range pending {
		k := r.generalize(r.keys[c], levels)
		gi, ok := index[k]
		if !ok {
			gi = int32(len(groups))
			index[k] = gi
			groups = append(groups, group{key: k})
			sizes = append(sizes, 0)
		}
		of[i] = gi
		sizes[gi]++
	}
	r.groups, r.sizes = groups, sizes
	// Carve every group's cells out of one array.
	flat := r.flat[:len(pending)]
	at := 0
	for i, n := range sizes {
		groups[i].cells = flat[at : at : at+n]
		at += n
	}
	for i, c := range pending {
		g := &groups[of[i]]
		g.cells = append(g.cells, c)
	}

	// The cells now live in flat, so pending's array can take the failed.
	failed := pending[:0]
	for i := range groups {
		g := &groups[i]
		v := r.judge(g.cells, last)
		switch {
		case v.pass:
			r.publish(step, &r.levels[step], g.key, g.cells, &v)
		case last:
			r.suppress(step, &r.levels[step], g.key, g.cells, &v)
		default:
			failed = append(failed, g.cells...)
		}
	}
	return failed
}

// verdict is what judge makes of one cell.
type verdict struct {
	pass bool
	// frequency tells whether the cell failed on frequency (else, when it
	// failed, on dominance, p% or an overflow).
	frequency  bool
	events     int64
	workspaces int64
}

// judge applies contract §7's rules to the cell made of the given level-0
// cells, on per-workspace totals. When the cell passes, r.sums and r.sets
// hold its totals for publish. Before the last step, a cell with fewer
// than k workspaces is failed on that count alone, without reading its
// contributions: that is most failing cells, and they are judged again
// one step up anyway.
func (r *run) judge(cells []int32, last bool) verdict {
	var v verdict
	single := len(cells) == 1

	// Frequency over workspaces first. A single level-0 cell is already
	// keyed by workspace; several are merged through r.slotOf, which gives each
	// workspace its slot in r.totals.
	if single {
		v.workspaces = int64(len(r.cells[cells[0]]))
	} else {
		n := 0
		for _, c := range cells {
			n += len(r.cells[c])
		}
		if int64(n) < r.k && !last {
			v.frequency = true
			return v
		}
		r.gen++
		if r.gen == 0 { // wrapped: no stamp may look current
			clear(r.stamp)
			r.gen = 1
		}
		slots := int32(0)
		for _, c := range cells {
			for _, x := range r.cells[c] {
				if r.stamp[x.id] != r.gen {
					r.stamp[x.id] = r.gen
					r.slotOf[x.id] = slots
					slots++
				}
			}
		}
		v.workspaces = int64(slots)
	}
	if v.workspaces < r.k {
		v.frequency = true
		if !last {
			return v
		}
	}

	bad := false // an overflow or a negative value: fail closed
	eventsOverflow := false
	nDom := len(r.plan.dom)
	clear(r.sums)
	r.totals = slices.Grow(r.totals[:0], int(v.workspaces)*nDom)[:int(v.workspaces)*nDom]
	clear(r.totals)
	var ok bool
	slot := 0
	for _, c := range cells {
		for _, x := range r.cells[c] {
			ct := x.c
			if ct.Overflow || ct.Events < 0 {
				bad = true
			}
			if v.events, ok = pipeline.AddInt64(v.events, ct.Events); !ok {
				bad, eventsOverflow = true, true
			}
			for i, s := range ct.Sums {
				if s < 0 {
					bad = true
				}
				if r.sums[i], ok = pipeline.AddInt64(r.sums[i], s); !ok {
					bad = true
				}
			}
			at := slot
			if single {
				slot++
			} else {
				at = int(r.slotOf[x.id])
			}
			at *= nDom
			for j, si := range r.plan.dom {
				x := ct.Events
				if si >= 0 {
					x = ct.Sums[si]
				}
				if r.totals[at+j], ok = pipeline.AddInt64(r.totals[at+j], x); !ok {
					bad = true
				}
			}
		}
	}
	if eventsOverflow {
		// The suppressed cell's event count saturates; the publisher's
		// accounting then fails the window closed rather than log a
		// wrapped total.
		v.events = math.MaxInt64
	}
	if v.frequency {
		return v
	}

	if !last && (bad || !r.dominanceHolds()) {
		// Only whether the cell passes matters before the last step, and
		// the dominance rules on the totals are cheaper than the entity
		// sets' union.
		return v
	}

	// Frequency over the other protected entities: k distinct values in
	// the union of the workspaces' sets.
	for i := range r.sets {
		r.sets[i] = pipeline.EntitySet{}
		for _, k0 := range cells {
			for _, x := range r.cells[k0] {
				r.sets[i].Union(&x.c.Sets[i])
			}
		}
	}
	for _, i := range r.protected {
		if int64(r.sets[i].Len()) < r.k {
			v.frequency = true
			return v
		}
	}
	if bad || !r.dominanceHolds() {
		return v
	}
	v.pass = true
	return v
}

// dominanceHolds applies dominance and p% to the per-workspace totals
// judge has just added up, per dominance measure with a positive total.
func (r *run) dominanceHolds() bool {
	nDom := len(r.plan.dom)
	var ok bool
	for j := range nDom {
		r.top.reset()
		var total int64
		for at := j; at < len(r.totals); at += nDom {
			x := r.totals[at]
			if total, ok = pipeline.AddInt64(total, x); !ok {
				return false
			}
			r.top.add(x)
		}
		if total == 0 {
			continue
		}
		if dominated(r.top.sum(int(r.domN)), total, r.domK) || pRuleFails(total, r.top[0], r.top[1], r.pPct) {
			return false
		}
	}
	return true
}

// publish appends the row of a passing cell: key at the given dimension
// levels, made of the given level-0 cells; r.sums and r.sets hold its
// totals (judge has just passed it).
func (r *run) publish(level int, levels *[pipeline.MaxDims]int, key pipeline.CellKey, cells []int32, v *verdict) {
	dims := r.dimsOf(key)
	dimLevels := r.levelsOf(levels)
	vals := r.alloc(len(r.measures))
	for i, m := range r.measures {
		switch m.kind {
		case pipeline.MeasureCount:
			vals[i].Int = v.events
		case pipeline.MeasureSum:
			vals[i].Int = r.sums[m.sum]
		case pipeline.MeasureDistinct:
			if m.set < 0 {
				vals[i].Int = v.workspaces
			} else {
				vals[i].Int = int64(r.sets[m.set].Len())
			}
		}
	}
	for i, m := range r.measures {
		if m.kind != pipeline.MeasureRatio {
			continue
		}
		num, den := vals[m.num].Int, vals[m.den].Int
		if den == 0 {
			vals[i].Null = true
			continue
		}
		vals[i].Float = m.scale * float64(num) / float64(den)
	}
	r.res.Rows = append(r.res.Rows, pipeline.Row{Dims: dims, Level: level, DimLevels: dimLevels, Values: vals})
	r.res.PublishedEvents += v.events
	r.res.EventsByLevel[level] += v.events
	if r.trace != nil {
		r.trace(level, dimLevels, dims, false, r.keysOf(cells))
	}
}

// suppress records a cell that still fails where it cannot be generalized
// further.
func (r *run) suppress(level int, levels *[pipeline.MaxDims]int, key pipeline.CellKey, cells []int32, v *verdict) {
	reason := pipeline.ReasonSuppressedDominance
	if v.frequency {
		reason = pipeline.ReasonSuppressedFrequency
	}
	dims := r.dimsOf(key)
	r.res.Suppressed = append(r.res.Suppressed, pipeline.CellExclusion{Dataset: r.spec.Name, Window: r.p.Window,
		Level: level, Dims: dims, Reason: reason, Events: v.events, Workspaces: v.workspaces})
	if r.trace != nil {
		r.trace(level, r.levelsOf(levels), dims, true, r.keysOf(cells))
	}
}

// keysOf returns the level-0 keys of the given cells.
func (r *run) keysOf(cells []int32) []pipeline.CellKey {
	keys := make([]pipeline.CellKey, len(cells))
	for i, c := range cells {
		keys[i] = r.keys[c]
	}
	return keys
}

// levelsOf copies the dimensions' levels, capped at each hierarchy's top,
// into the row arena.
func (r *run) levelsOf(levels *[pipeline.MaxDims]int) []int {
	n := r.nDims
	if len(r.ints)+n > cap(r.ints) {
		r.ints = make([]int, 0, 256*n)
	}
	d := r.ints[len(r.ints) : len(r.ints)+n : len(r.ints)+n]
	r.ints = r.ints[:len(r.ints)+n]
	for i := range d {
		d[i] = min(levels[i], r.tops[i])
	}
	return d
}

// dimsOf copies a key's dimension values into the row arena.
func (r *run) dimsOf(k pipeline.CellKey) []string {
	n := r.nDims
	if len(r.strs)+n > cap(r.strs) {
		r.strs = make([]string, 0, 256*n)
	}
	d := r.strs[len(r.strs) : len(r.strs)+n : len(r.strs)+n]
	r.strs = r.strs[:len(r.strs)+n]
	copy(d, k[:n])
	return d
}

// alloc returns n zero values from the row arena.
func (r *run) alloc(n int) []pipeline.Value {
	if len(r.vals)+n > cap(r.vals) {
		r.vals = make([]pipeline.Value, 0, 256*max(n, 1))
	}
	v := r.vals[len(r.vals) : len(r.vals)+n : len(r.vals)+n]
	r.vals = r.vals[:len(r.vals)+n]
	return v
}
