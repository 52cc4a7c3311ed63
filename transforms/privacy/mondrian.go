package privacy

import (
	"cmp"
	"slices"
	"strings"

	"github.com/mya/deid/pipeline"
)

// The mondrian strategy (contract §7). Level-0 cells that pass are
// published as under the ladder. The failing ones, the residue, are then
// partitioned top down along the hierarchies, Mondrian-style: the residue
// starts as one box with every dimension at "*" (suppressed whole if even
// that fails), and a box is split along one dimension's hierarchy, one
// level down, into the parts its cells fall in. A split is allowed when
// every part passes — or, a partial split, when the parts that fail merged
// with each other pass too and are published as the box itself, at the
// box's levels, beside the parts that pass (when that remainder fails,
// the passing parts with the fewest events join it, one at a time, until
// it passes or none is left). Of the allowed splits of a box the one that
// lowers the information-loss score most is taken (ties: the dimension
// declared first); the parts are split again the same way; a box with no
// allowed split is published.
//
// So the published cells form a laminar family: any two are disjoint or
// one contains the other (the boxes of one tree, and level-0 cells inside
// them), and each level-0 cell's contributions are in the smallest
// published cell that contains it, or suppressed.

// box is a cell of the partition: each dimension's value at its level
// (as a node), the residue's level-0 cells inside it (indexes into
// run.keys, in their order), their events and their contributions.
type box struct {
	id       boxID
	cells    []int32
	events   int64
	contribs int64
}

// boxID names a box: each dimension's node, the number of its value at
// its level (run.nodes). Nodes are numbered per dimension across levels,
// so the nodes alone tell the levels; within a level they follow the
// values' order.
type boxID [pipeline.MaxDims]int32

// nodes numbers the values the residue's level-0 cells take at each level
// of each dimension, so that the search groups, keys and prices boxes by
// integers rather than strings.
type nodes struct {
	// of[d][lv][c] is level-0 cell c's node in dimension d at level lv
	// (c indexes run.keys; only the residue's cells are set).
	of [][][]int32
	// value, level and ncp give each node of a dimension its value, its
	// level and the information loss of an event there.
	value [][]string
	level [][]int8
	ncp   [][]float64
	// partOf and stamp group a box's cells into parts: partOf[n] is node
	// n's part where stamp[n] equals gen.
	partOf []int32
	stamp  []uint32
	gen    uint32
}

// number builds the nodes of the residue's cells.
func (r *run) number(residue []int32) {
	nd := &r.nodes
	nd.of = make([][][]int32, r.nDims)
	nd.value = make([][]string, r.nDims)
	nd.ncp = make([][]float64, r.nDims)
	nd.level = make([][]int8, r.nDims)
	most := 0
	at := map[string]int32{}
	var vals []string
	var met, byValue, rank []int32
	for d := range r.nDims {
		nd.of[d] = make([][]int32, r.tops[d]+1)
		for lv := range r.tops[d] + 1 {
			// Each cell's value numbered in the order first met (one
			// generalization and one map probe a cell), then renumbered in
			// the values' order.
			clear(at)
			vals = vals[:0]
			met = slices.Grow(met[:0], len(residue))[:len(residue)]
			for i, c := range residue {
				v := r.hier[d].Generalize(r.keys[c][d], lv)
				n, ok := at[v]
				if !ok {
					n = int32(len(vals))
					at[v] = n
					vals = append(vals, v)
				}
				met[i] = n
			}
			byValue = slices.Grow(byValue[:0], len(vals))[:len(vals)]
			for i := range byValue {
				byValue[i] = int32(i)
			}
			slices.SortFunc(byValue, func(a, b int32) int { return strings.Compare(vals[a], vals[b]) })
			rank = slices.Grow(rank[:0], len(vals))[:len(vals)]
			base := int32(len(nd.value[d]))
			for i, n := range byValue {
				v := vals[n]
				rank[n] = base + int32(i)
				nd.value[d] = append(nd.value[d], v)
				nd.ncp[d] = append(nd.ncp[d], r.loss[d].NCP(lv, v))
				nd.level[d] = append(nd.level[d], int8(lv))
			}
			of := make([]int32, len(r.keys))
			for i, c := range residue {
				of[c] = rank[met[i]]
			}
			nd.of[d][lv] = of
		}
		most = max(most, len(nd.value[d]))
	}
	nd.partOf = make([]int32, most)
	nd.stamp = make([]uint32, most)
	nd.gen = 0
}

// levelsOfBox returns a box's dimension levels.
func (r *run) levelsOfBox(id *boxID) [pipeline.MaxDims]int {
	var lv [pipeline.MaxDims]int
	for d := range r.nDims {
		lv[d] = int(r.nodes.level[d][id[d]])
	}
	return lv
}

// keyOf returns a box's cell key.
func (r *run) keyOf(id *boxID) pipeline.CellKey {
	var k pipeline.CellKey
	for d := range r.nDims {
		k[d] = r.nodes.value[d][id[d]]
	}
	return k
}

// choice is the best way found to publish a passing box: whole (no
// split), or split along a dimension into parts, each published its own
// best way, and a remainder published as the box itself (rest) or, when
// it fails there, left to the box's parent (left).
type choice struct {
	// cost is the events × information loss of the box's rows; events
	// left to the parent count as fully lost (the most they can cost).
	cost float64
	// whole publishes the box as it is; split as parts and rest; neither
	// leaves every cell to the parent.
	whole, split bool
	parts        []box
	rest         []int32
	// left is what is left to the parent; leftAll says it is every cell
	// of the box (left is then nil: the box's own cells are meant).
	left    []int32
	leftAll bool
	// leftEvents counts the events of left, and leftCost is what they
	// count for in cost.
	leftEvents int64
	leftCost   float64
}

// leftOf returns the cells a choice of the box with the given cells
// leaves to the box's parent.
func (c *choice) leftOf(cells []int32) []int32 {
	if c.leftAll {
		return cells
	}
	return c.left
}

// own returns a copy of a choice trySplit made in the search's scratch
// space, which the next split reuses: the parts' cells, the remainder and
// what is left in memory of their own.
func (r *run) own(c *choice) *choice {
	o := r.newChoice()
	*o = *c
	n := len(c.rest) + len(c.left)
	for i := range c.parts {
		n += len(c.parts[i].cells)
	}
	cells := make([]int32, 0, n)
	take := func(x []int32) []int32 {
		if x == nil {
			return nil
		}
		at := len(cells)
		cells = append(cells, x...)
		return cells[at:len(cells):len(cells)]
	}
	o.rest, o.left = take(c.rest), take(c.left)
	o.parts = make([]box, len(c.parts))
	for i := range c.parts {
		o.parts[i] = c.parts[i]
		o.parts[i].cells = take(c.parts[i].cells)
	}
	return o
}

// newChoice returns a zero choice, from chunks allocated a few hundred at
// a time (a search makes one or more a box).
func (r *run) newChoice() *choice {
	if len(r.choices) == 0 {
		r.choices = make([]choice, 256)
	}
	c := &r.choices[0]
	r.choices = r.choices[1:]
	return c
}

// mondrian partitions the residue (the level-0 cells that failed, in
// run.keys order) and publishes or suppresses it.
func (r *run) mondrian(residue []int32) {
	if len(residue) == 0 {
		return
	}
	r.number(residue)
	r.flatten(residue)
	root := box{cells: slices.Clone(residue), contribs: r.contribs(residue)}
	for d := range r.nDims {
		root.id[d] = r.nodes.of[d][r.tops[d]][residue[0]]
	}
	r.events = make([]int64, len(r.keys))
	for _, c := range residue {
		for _, x := range r.cells[c] {
			root.events, _ = pipeline.AddInt64(root.events, x.c.Events)
			r.events[c], _ = pipeline.AddInt64(r.events[c], x.c.Events)
		}
	}
	r.full = float64(r.nDims)
	r.memo = map[boxID]*choice{}
	// When the residue fails as a whole, what the search leaves at the
	// root is suppressed, and it counts as fully lost like anything left.
	// The root is searched whatever it fails on.
	pass := r.quickVerdict(root.cells, root.contribs).pass
	c := r.best(&root, pass, &verdict{pass: pass})
	r.emit(&root)
	if left := c.leftOf(root.cells); len(left) > 0 {
		r.publishBox(&root.id, left) // fails, so suppressed
	}
	r.memo, r.events, r.nodes, r.flat0, r.choices = nil, nil, nodes{}, flatContribs{}, nil
}

// ncp is a box's information loss per event: the sum over its dimensions
// of the normalized certainty penalty of its value.
func (r *run) ncp(id *boxID) float64 {
	var s float64
	for d := range r.nDims {
		s += r.nodes.ncp[d][id[d]]
	}
	return s
}

// best finds the publication of least loss of a box's cells: publishing
// it whole (when it passes), splitting it along a dimension to a lower
// level (the parts chosen the same way), or, below the root, leaving its
// cells to its parent. It is memoized: a box is reached along many paths.
// A box that fails on frequency is left whole at once: nothing inside it
// can pass.
// known, when not nil, is the box's verdict (the root's).
func (r *run) best(b *box, root bool, known *verdict) *choice {
	if c, ok := r.memo[b.id]; ok {
		return c
	}
	here := r.ncp(&b.id)
	// Fewer than k workspaces even counted with repeats (trySplit leaves
	// such parts without calling best), or fewer than k of a protected
	// entity: no box inside can pass either (frequency only falls as a box
	// shrinks), so the box is left whole at once.
	var v verdict
	switch {
	case known != nil:
		v = *known
	case b.contribs >= r.k:
		v = r.quickVerdict(b.cells, b.contribs)
	default:
		v.frequency = true
	}
	pass := v.pass
	var c *choice
	if pass {
		c = r.newChoice()
		c.whole, c.cost = true, float64(b.events)*here
	} else {
		left := float64(b.events) * r.full
		c = r.newChoice()
		c.cost, c.leftAll, c.leftEvents, c.leftCost = left, true, b.events, left
		if v.frequency {
			r.memo[b.id] = c
			return c
		}
	}
	// A part holding every cell of the box has the box's verdict (the
	// root's given verdict may not be its own).
	var same *verdict
	if known == nil {
		same = &v
	}
	for d := range r.nDims {
		for lv := int(r.nodes.level[d][b.id[d]]) - 1; lv >= 0; lv-- {
			if s := r.trySplit(b, d, lv, here, root, pass, same); s != nil && s.cost < c.cost {
				c = r.own(s)
			}
		}
	}
	if c.split {
		// Only the choice taken is put in order: the remainder and what is
		// left as the cells' order (placed needs it), the parts by key, so
		// that publication order follows the keys (they differ only in
		// the dimension split).
		slices.Sort(c.rest)
		slices.Sort(c.left)
		slices.SortFunc(c.parts, func(a, b box) int { return slices.Compare(a.id[:], b.id[:]) })
	}
	r.memo[b.id] = c
	return c
}

// contribs counts the contributions of the given level-0 cells: their
// workspaces counted with repeats.
func (r *run) contribs(cells []int32) int64 {
	n := 0
	for _, x := range cells {
		n += len(r.cells[x])
	}
	return int64(n)
}

// emit publishes a box as its choice says; what it leaves to its parent,
// the parent publishes.
func (r *run) emit(b *box) {
	c := r.memo[b.id]
	switch {
	case c == nil || c.whole:
		r.publishBox(&b.id, b.cells)
	case c.split:
		if len(c.rest) > 0 {
			r.publishBox(&b.id, c.rest)
		}
		for i := range c.parts {
			r.emit(&c.parts[i])
		}
	}
}

// publishBox judges a box again (a part that passed on its own passes
// here too, and judge leaves the row's totals for publish) and publishes
// it; were it to fail, it is suppressed: fail closed.
func (r *run) publishBox(id *boxID, cells []int32) {
	v := r.judge(cells, true)
	key, levels := r.keyOf(id), r.levelsOfBox(id)
	if v.pass {
		r.publish(r.levelSum(&levels), &levels, key, cells, &v)
	} else {
		r.suppress(r.levelSum(&levels), &levels, key, cells, &v)
	}
}

// trySplit splits b along dimension d into the parts at level lv (below
// b's), or returns nil when that is not allowed. here is b's loss per
// event. The remainder — the parts that fail, and what the passing parts
// leave to b — is published as b when it passes; else the passing parts
// that cost least to give up join it until it does, or, below the root, it
// is left to b's parent, whichever costs less.
// same, when not nil, is b's verdict, for a part that holds all of b.
func (r *run) trySplit(b *box, d, lv int, here float64, root, pass bool, same *verdict) *choice {
	// Group the cells by their node at lv, parts in the order the cells
	// first name them: number the parts, then carve their cells out of
	// one array.
	nd := &r.nodes
	nd.gen++
	if nd.gen == 0 { // wrapped: no stamp may look current
		clear(nd.stamp)
		nd.gen = 1
	}
	node := nd.of[d][lv]
	of := slices.Grow(r.partIdx[:0], len(b.cells))[:len(b.cells)]
	sizes := r.partSize[:0]
	for j, c := range b.cells {
		n := node[c]
		if nd.stamp[n] != nd.gen {
			nd.stamp[n] = nd.gen
			nd.partOf[n] = int32(len(sizes))
			sizes = append(sizes, 0)
		}
		i := nd.partOf[n]
		of[j] = i
		sizes[i]++
	}
	r.partIdx, r.partSize = of, sizes
	// The parts live on a stack of boxes (what is kept is copied into the
	// choice), so the searches of parts inside them reuse the space.
	base := len(r.boxes)
	r.boxes = slices.Grow(r.boxes, len(sizes))[:base+len(sizes)]
	parts := r.boxes[base : base+len(sizes) : base+len(sizes)]
	clear(parts)
	// The parts' cells, the remainder and the parts judged live on stacks
	// too; the choice returned points into them, and best copies the one
	// it keeps (run.own) before the next split.
	top, jtop := len(r.stack), len(r.judged)
	defer func() { r.boxes, r.stack, r.judged = r.boxes[:base], r.stack[:top], r.judged[:jtop] }()
	flat := r.push(len(b.cells))
	at := int32(0)
	for i := range parts {
		p := &parts[i]
		p.id = b.id
		p.cells = flat[at : at : at+sizes[i]]
		at += sizes[i]
	}
	for j, c := range b.cells {
		p := &parts[of[j]]
		if len(p.cells) == 0 {
			p.id[d] = node[c]
		}
		p.cells = append(p.cells, c)
		p.events += r.events[c]
		p.contribs += int64(len(r.cells[c]))
	}
	// The parts that publish something inside them are kept (in the
	// parts' order); the others' cells, and what the kept ones leave, are
	// the remainder (in the parts' order), gathered only when something is
	// kept.
	for i := range parts {
		p := &parts[i]
		if p.contribs < r.k {
			// Fewer than k workspaces even counted with repeats: the part
			// is left whole (what best would choose), without a memo entry.
			continue
		}
		var known *verdict
		if len(parts) == 1 {
			known = same
		}
		pc := r.best(p, false, known)
		if pc.leftEvents == p.events && len(pc.leftOf(p.cells)) == len(p.cells) {
			continue // nothing of it is published inside it
		}
		j := judged{part: i, c: pc, cost: pc.cost - pc.leftCost}
		j.move = float64(p.events-pc.leftEvents)*here - j.cost
		r.judged = append(r.judged, j)
	}
	kept := r.judged[jtop:]
	if len(kept) == 0 {
		return nil
	}
	rest := r.push(len(b.cells))[:0]
	k := 0
	for i := range parts {
		if k < len(kept) && kept[k].part == i {
			rest = append(rest, kept[k].c.leftOf(parts[i].cells)...)
			k++
		} else {
			rest = append(rest, parts[i].cells...)
		}
	}
	var restEvents int64
	for _, c := range rest {
		restEvents += r.events[c]
	}
	var keptCost float64
	for _, p := range kept {
		keptCost += p.cost
	}
	c := &r.cand
	*c = choice{split: true, cost: keptCost}
	if len(rest) > 0 && r.quickVerdict(rest, -1).pass {
		c.rest, c.cost = rest, keptCost+float64(restEvents)*here
	} else if len(rest) > 0 {
		// The remainder fails as the box. Below the root it can be left
		// to the parent; in a box that passes, parts can join it instead,
		// those that cost least to give up first: with every part it is
		// the box itself, which passes, and a binary search finds a number
		// of parts with which it passes and with one fewer it fails (the
		// rules are not monotone, so not always the least such number,
		// but always a valid one).
		valid := false
		if !root {
			valid = true
			c.left, c.leftEvents, c.leftCost = rest, restEvents, float64(restEvents)*r.full
			c.cost = keptCost + c.leftCost
		}
		if pass {
			slices.SortStableFunc(kept, func(a, b judged) int { return cmp.Compare(a.move, b.move) })
			// The remainder with the first m parts moved, on the stack above
			// rest (each try in the same space).
			moveAt := len(r.stack)
			withMoved := func(m int) []int32 {
				r.stack = r.stack[:moveAt]
				cells := append(r.push(len(b.cells))[:0], rest...)
				for _, p := range kept[:m] {
					cells = appendPlaced(cells, parts[p.part].cells, p.c.leftOf(parts[p.part].cells))
				}
				return cells
			}
			lo, hi := 0, len(kept) // the remainder with lo parts moved fails, with hi passes
			for hi-lo > 1 {
				mid := (lo + hi) / 2
				if r.quickVerdict(withMoved(mid), -1).pass {
					hi = mid
				} else {
					lo = mid
				}
			}
			if hi < len(kept) {
				events := restEvents
				cost := 0.0
				for _, p := range kept[:hi] {
					events += parts[p.part].events - p.c.leftEvents
				}
				for _, p := range kept[hi:] {
					cost += p.cost
				}
				cost += float64(events) * here
				if !valid || cost < c.cost {
					valid = true
					moved := withMoved(hi)
					c.rest, c.cost, c.left, c.leftEvents, c.leftCost = moved, cost, nil, 0, 0
					kept = kept[hi:]
				}
			}
		}
		if !valid {
			return nil
		}
	}
	c.parts = r.partsOut[:0]
	for _, p := range kept {
		c.parts = append(c.parts, parts[p.part])
	}
	r.partsOut = c.parts
	return c
}

// judged is a part trySplit keeps: its index in the parts, its choice,
// its cost without what it leaves (cost), and what giving it up to the
// remainder would cost more (move).
type judged struct {
	part       int
	c          *choice
	cost, move float64
}

// push reserves n cells on the search's stack of cells.
func (r *run) push(n int) []int32 {
	top := len(r.stack)
	r.stack = slices.Grow(r.stack, n)[:top+n]
	return r.stack[top : top+n : top+n]
}

// appendPlaced appends to out the cells not in left; both are sorted.
func appendPlaced(out, cells, left []int32) []int32 {
	if len(left) == 0 {
		return append(out, cells...)
	}
	j := 0
	for _, c := range cells {
		for j < len(left) && left[j] < c {
			j++
		}
		if j < len(left) && left[j] == c {
			continue
		}
		out = append(out, c)
	}
	return out
}

// levelSum is a box's generalization level: the sum of its dimensions'
// levels, each capped at its hierarchy's top.
func (r *run) levelSum(levels *[pipeline.MaxDims]int) int {
	n := 0
	for i := range r.nDims {
		n += min(levels[i], r.tops[i])
	}
	return n
}

// flatContribs is the residue's contributions laid out for the search's
// verdicts: per level-0 cell a run of contributions, each with its
// workspace's number, its events, its dominance measures' values and, per
// protected entity, its members numbered densely; and per cell whether it
// holds an unusable contribution.
type flatContribs struct {
	// from and to bound cell c's contributions (c indexes run.keys).
	from, to []int32
	ws       []int32
	// badCell tells that a cell holds an unusable contribution (an
	// overflow or a negative value).
	badCell []bool
	events  []int64
	// dom holds each dominance measure's values, one per contribution;
	// exact tells, per measure, that no sum of its values can overflow
	// (none is negative and all of them add up), so boxes add them
	// without checking.
	dom   [][]int64
	exact []bool
	// rows holds the same values by contribution: its measures side by
	// side, width apart (at least eight, the slots past the measures
	// zero), so that a box whose first measure holds adds up the others in
	// one pass, eight at once when they fit; allExact tells that every
	// measure is exact.
	rows     []int64
	width    int
	allExact bool
	// order is the order the measures are tried in: one that fails moves
	// to the front, so failing boxes mostly stop at the first measure
	// tried (the verdict does not depend on the order).
	order []int
	// eventsExact tells that no sum of events can overflow.
	eventsExact bool
	// ents[i] holds protected entity i's members (numbered), entAt[i]
	// where each contribution's begin (one more entry at the end).
	ents, entAt [][]int32
	// seen and gen count distinct members without clearing.
	seen [][]uint32
	gen  uint32
}

// flatten lays out the residue's contributions for quickVerdict.
func (r *run) flatten(residue []int32) {
	f := &r.flat0
	*f = flatContribs{from: make([]int32, len(r.keys)), to: make([]int32, len(r.keys)),
		badCell: make([]bool, len(r.keys)), dom: make([][]int64, len(r.plan.dom))}
	f.ents = make([][]int32, len(r.protected))
	f.entAt = make([][]int32, len(r.protected))
	// Every array at its final size: the contributions, and each
	// protected entity's members, counted first.
	n := int(r.contribs(residue))
	f.ws, f.events = make([]int32, 0, n), make([]int64, 0, n)
	for m := range f.dom {
		f.dom[m] = make([]int64, 0, n)
	}
	ids := make([]map[pipeline.Pseudonym]int32, len(r.protected))
	for i, si := range r.protected {
		members := 0
		for _, c := range residue {
			for _, x := range r.cells[c] {
				members += x.c.Sets[si].Len()
			}
		}
		f.ents[i] = make([]int32, 0, members)
		f.entAt[i] = make([]int32, 0, n+1)
		ids[i] = make(map[pipeline.Pseudonym]int32, members)
	}
	for _, c := range residue {
		f.from[c] = int32(len(f.ws))
		for _, x := range r.cells[c] {
			ct := x.c
			bad := ct.Overflow || ct.Events < 0
			for _, s := range ct.Sums {
				bad = bad || s < 0
			}
			f.ws = append(f.ws, x.id)
			f.badCell[c] = f.badCell[c] || bad
			f.events = append(f.events, ct.Events)
			for m, si := range r.plan.dom {
				v := ct.Events
				if si >= 0 {
					v = ct.Sums[si]
				}
				f.dom[m] = append(f.dom[m], v)
			}
			for i, si := range r.protected {
				f.entAt[i] = append(f.entAt[i], int32(len(f.ents[i])))
				for _, p := range ct.Sets[si].Sorted() {
					id, ok := ids[i][p]
					if !ok {
						id = int32(len(ids[i]))
						ids[i][p] = id
					}
					f.ents[i] = append(f.ents[i], id)
				}
			}
		}
		f.to[c] = int32(len(f.ws))
	}
	f.exact = make([]bool, len(f.dom))
	f.order = make([]int, len(f.dom))
	for m := range f.order {
		f.order[m] = m
	}
	var events int64
	f.eventsExact = true
	for _, x := range f.events {
		var ok bool
		if events, ok = pipeline.AddInt64(events, x); !ok || x < 0 {
			f.eventsExact = false
			break
		}
	}
	for m, col := range f.dom {
		var total int64
		ok := true
		for _, x := range col {
			if x < 0 {
				ok = false
				break
			}
			if total, ok = pipeline.AddInt64(total, x); !ok {
				break
			}
		}
		f.exact[m] = ok
	}
	f.width = max(len(f.dom), 8)
	f.rows = make([]int64, len(f.ws)*f.width)
	for m, col := range f.dom {
		for j, x := range col {
			f.rows[j*f.width+m] = x
		}
	}
	f.allExact = !slices.Contains(f.exact, false)
	f.seen = make([][]uint32, len(r.protected))
	for i := range r.protected {
		f.entAt[i] = append(f.entAt[i], int32(len(f.ents[i])))
		f.seen[i] = make([]uint32, len(ids[i]))
	}
}

// addMeasure adds up measure m's values per workspace slot into tot (one
// per slot) over the contributions of seq; false when a sum overflows.
func (r *run) addMeasure(tot []int64, seq []int32, m int) bool {
	f := &r.flat0
	col := f.dom[m]
	clear(tot)
	if f.exact[m] {
		for t := 0; t < len(seq); t += 2 {
			tot[seq[t+1]] += col[seq[t]]
		}
		return true
	}
	var ok bool
	for t := 0; t < len(seq); t += 2 {
		at := seq[t+1]
		if tot[at], ok = pipeline.AddInt64(tot[at], col[seq[t]]); !ok {
			return false
		}
	}
	return true
}

// measureHolds applies dominance and p% to one measure's per-workspace
// totals, tot[m], tot[m+stride], …, as dominanceHolds does to each; exact
// says that no sum of the measure's values can overflow (flatContribs).
func (r *run) measureHolds(tot []int64, m, stride int, exact bool) bool {
	r.top.reset()
	var total int64
	var ok bool
	if exact {
		top := r.top
		for i := m; i < len(tot); i += stride {
			x := tot[i]
			total += x
			top.add(x)
		}
	} else {
		for i := m; i < len(tot); i += stride {
			x := tot[i]
			if total, ok = pipeline.AddInt64(total, x); !ok {
				return false
			}
			r.top.add(x)
		}
	}
	if total == 0 {
		return true
	}
	return !dominated(r.top.sum(int(r.domN)), total, r.domK) && !pRuleFails(total, r.top[0], r.top[1], r.pPct)
}

// quickVerdict is judge's verdict on a box of residue cells during the
// search (only pass and frequency are set): the same rules in the same
// order — workspaces, then overflow, dominance and p%, then the other
// protected entities — on the flattened contributions, counting each
// entity only until it reaches k. n is the cells' number of contributions
// when the caller knows it, else negative.
func (r *run) quickVerdict(cells []int32, n int64) verdict {
	var v verdict
	f := &r.flat0
	if n < 0 {
		n = 0
		for _, c := range cells {
			n += int64(f.to[c] - f.from[c])
		}
	}
	if n < r.k {
		v.frequency = true
		return v
	}
	r.gen++
	if r.gen == 0 { // wrapped: no stamp may look current
		clear(r.stamp)
		r.gen = 1
	}
	// Each contribution's slot, in the order walked; whether any is
	// unusable or the events overflow is told once the workspaces are
	// known to be enough.
	slots := int32(0)
	seq := slices.Grow(r.seq[:0], int(2*n))[:2*n]
	r.seq = seq
	stamp, slotOf, ws, gen := r.stamp, r.slotOf, f.ws, r.gen
	bad := false
	t := 0
	for _, c := range cells {
		bad = bad || f.badCell[c]
		for j, end := f.from[c], f.to[c]; j < end; j++ {
			id := ws[j]
			if stamp[id] != gen {
				stamp[id] = gen
				slotOf[id] = slots
				slots++
			}
			seq[t], seq[t+1] = j, slotOf[id]
			t += 2
		}
	}
	if int64(slots) < r.k {
		v.frequency = true
		return v
	}
	if bad {
		return v
	}
	var ok bool
	if !f.eventsExact {
		var events int64
		for t := 0; t < len(seq); t += 2 {
			if events, ok = pipeline.AddInt64(events, f.events[seq[t]]); !ok {
				return v
			}
		}
	}
	// Dominance and p%: the measure tried first alone (a box that fails
	// mostly fails there), then the others added up side by side; a box
	// fails on the first measure in order that does.
	nm, w := len(f.dom), f.width
	tot := slices.Grow(r.totals[:0], int(slots)*w)[:slots]
	r.totals = tot
	first := f.order[0]
	if !r.addMeasure(tot, seq, first) || !r.measureHolds(tot, 0, 1, f.exact[first]) {
		return v
	}
	if nm > 1 {
		tot = tot[:int(slots)*w]
		clear(tot)
		rows := f.rows
		switch {
		case f.allExact && w == 8:
			for t := 0; t < len(seq); t += 2 {
				src := (*[8]int64)(rows[int(seq[t])*8:])
				dst := (*[8]int64)(tot[int(seq[t+1])*8:])
				dst[0] += src[0]
				dst[1] += src[1]
				dst[2] += src[2]
				dst[3] += src[3]
				dst[4] += src[4]
				dst[5] += src[5]
				dst[6] += src[6]
				dst[7] += src[7]
			}
		case f.allExact:
			for t := 0; t < len(seq); t += 2 {
				src := rows[int(seq[t])*w : int(seq[t])*w+w]
				dst := tot[int(seq[t+1])*w : int(seq[t+1])*w+w]
				dst = dst[:len(src)]
				for m, x := range src {
					dst[m] += x
				}
			}
		default:
			for t := 0; t < len(seq); t += 2 {
				src := rows[int(seq[t])*w : int(seq[t])*w+nm]
				dst := tot[int(seq[t+1])*w : int(seq[t+1])*w+nm]
				for m, x := range src {
					if dst[m], ok = pipeline.AddInt64(dst[m], x); !ok {
						return v
					}
				}
			}
		}
		for o, m := range f.order[1:] {
			if !r.measureHolds(tot, m, w, f.exact[m]) {
				copy(f.order[1:o+2], f.order[:o+1])
				f.order[0] = m
				return v
			}
		}
	}
	for i := range r.protected {
		f.gen++
		if f.gen == 0 {
			for i := range f.seen {
				clear(f.seen[i])
			}
			f.gen = 1
		}
		seen, ents, at := f.seen[i], f.ents[i], f.entAt[i]
		distinct := int64(0)
	count:
		for _, c := range cells {
			for j := f.from[c]; j < f.to[c]; j++ {
				for _, id := range ents[at[j]:at[j+1]] {
					if seen[id] != f.gen {
						seen[id] = f.gen
						if distinct++; distinct >= r.k {
							break count
						}
					}
				}
			}
		}
		if distinct < r.k {
			v.frequency = true
			return v
		}
	}
	v.pass = true
	return v
}
