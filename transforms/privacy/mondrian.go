package privacy

import (
	"cmp"
	"slices"

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

// box is a cell of the partition: each dimension's level, the values at
// those levels, the residue's level-0 cells inside it (indexes into
// run.keys, in their order) and their events.
type box struct {
	levels [pipeline.MaxDims]int
	key    pipeline.CellKey
	cells  []int32
	events int64
}

// boxID names a box: its levels and values.
type boxID struct {
	levels [pipeline.MaxDims]int
	key    pipeline.CellKey
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
	left         []int32
	// leftEvents counts the events of left, and leftCost is what they
	// count for in cost.
	leftEvents int64
	leftCost   float64
}

// mondrian partitions the residue (the level-0 cells that failed, in
// run.keys order) and publishes or suppresses it.
func (r *run) mondrian(residue []int32) {
	if len(residue) == 0 {
		return
	}
	root := box{levels: r.tops, cells: slices.Clone(residue)}
	root.key = r.generalize(r.keys[residue[0]], &root.levels)
	r.events = make([]int64, len(r.keys))
	for _, c := range residue {
		for _, x := range r.cells[c] {
			root.events, _ = pipeline.AddInt64(root.events, x.c.Events)
			r.events[c], _ = pipeline.AddInt64(r.events[c], x.c.Events)
		}
	}
	r.full = float64(r.nDims)
	r.memo, r.judged = map[boxID]*choice{}, map[boxID]verdict{}
	r.quick = true
	// When the residue fails as a whole, what the search leaves at the
	// root is suppressed, and it counts as fully lost like anything left.
	pass := r.judge(root.cells, false).pass
	r.judged[boxID{root.levels, root.key}] = verdict{pass: pass}
	c := r.best(&root, pass)
	r.quick = false
	r.emit(&root)
	if len(c.left) > 0 {
		r.publishBox(root.levels, root.key, c.left) // fails, so suppressed
	}
	r.memo, r.judged, r.events = nil, nil, nil
}

// ncp is a box's information loss per event: the sum over its dimensions
// of the normalized certainty penalty of its value.
func (r *run) ncp(levels *[pipeline.MaxDims]int, key *pipeline.CellKey) float64 {
	var s float64
	for d := range r.nDims {
		s += r.loss[d].NCP(levels[d], key[d])
	}
	return s
}

// best finds the publication of least loss of a box's cells: publishing
// it whole (when it passes), splitting it along a dimension to a lower
// level (the parts chosen the same way), or, below the root, leaving its
// cells to its parent. It is memoized: a box is reached along many paths.
// A box that fails on frequency is left whole at once: nothing inside it
// can pass.
func (r *run) best(b *box, root bool) *choice {
	id := boxID{b.levels, b.key}
	if c, ok := r.memo[id]; ok {
		return c
	}
	here := r.ncp(&b.levels, &b.key)
	n := 0
	for _, x := range b.cells {
		n += len(r.cells[x])
	}
	// Fewer than k workspaces even counted with repeats, or fewer than k
	// of a protected entity: no box inside can pass either (frequency only
	// falls as a box shrinks), so the box is left whole at once.
	var v verdict
	if int64(n) >= r.k {
		v = r.judgeBox(b)
	} else {
		v.frequency = true
	}
	pass := v.pass
	var c *choice
	if pass {
		c = &choice{whole: true, cost: float64(b.events) * here}
	} else {
		left := float64(b.events) * r.full
		c = &choice{cost: left, left: b.cells, leftEvents: b.events, leftCost: left}
		if v.frequency {
			r.memo[id] = c
			return c
		}
	}
	for d := range r.nDims {
		for lv := b.levels[d] - 1; lv >= 0; lv-- {
			if s := r.trySplit(b, d, lv, here, root, pass); s != nil && s.cost < c.cost {
				c = s
			}
		}
	}
	r.memo[id] = c
	return c
}

// emit publishes a box as its choice says; what it leaves to its parent,
// the parent publishes.
func (r *run) emit(b *box) {
	c := r.memo[boxID{b.levels, b.key}]
	switch {
	case c == nil || c.whole:
		r.publishBox(b.levels, b.key, b.cells)
	case c.split:
		if len(c.rest) > 0 {
			r.publishBox(b.levels, b.key, c.rest)
		}
		for i := range c.parts {
			r.emit(&c.parts[i])
		}
	}
}

// publishBox judges a box again (a part that passed on its own passes
// here too, and judge leaves the row's totals for publish) and publishes
// it; were it to fail, it is suppressed: fail closed.
func (r *run) publishBox(levels [pipeline.MaxDims]int, key pipeline.CellKey, cells []int32) {
	v := r.judge(cells, true)
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
func (r *run) trySplit(b *box, d, lv int, here float64, root, pass bool) *choice {
	var parts []box
	index := map[string]int32{}
	of := make([]int32, len(b.cells))
	var counts []int
	for j, c := range b.cells {
		val := r.hier[d].Generalize(r.keys[c][d], lv)
		i, ok := index[val]
		if !ok {
			i = int32(len(parts))
			index[val] = i
			p := box{levels: b.levels, key: b.key}
			p.levels[d] = lv
			p.key[d] = val
			parts = append(parts, p)
			counts = append(counts, 0)
		}
		of[j] = i
		parts[i].events += r.events[c]
		counts[i]++
	}
	// Carve the parts' cells out of one array.
	flat := make([]int32, len(b.cells))
	at := 0
	for i := range parts {
		n := counts[i]
		parts[i].cells = flat[at : at : at+n]
		at += n
	}
	for j, c := range b.cells {
		p := &parts[of[j]]
		p.cells = append(p.cells, c)
	}
	type judged struct {
		part box
		c    *choice
		// cost is the part's cost without what it leaves; move is what
		// giving the part up to the remainder would cost more.
		cost, move float64
	}
	var kept []judged
	var rest []int32
	for _, p := range parts {
		pc := r.best(&p, false)
		if pc.leftEvents == p.events && len(pc.left) == len(p.cells) {
			rest = append(rest, p.cells...) // nothing of it is published inside it
			continue
		}
		j := judged{part: p, c: pc, cost: pc.cost - pc.leftCost}
		j.move = float64(p.events-pc.leftEvents)*here - j.cost
		kept = append(kept, j)
		rest = append(rest, pc.left...)
	}
	if len(kept) == 0 {
		return nil
	}
	var restEvents int64
	for _, c := range rest {
		restEvents += r.events[c]
	}
	var keptCost float64
	for _, p := range kept {
		keptCost += p.cost
	}
	c := &choice{split: true, cost: keptCost}
	if len(rest) > 0 && r.judge(rest, false).pass {
		slices.Sort(rest)
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
			withMoved := func(m int) []int32 {
				cells := slices.Clone(rest)
				for _, p := range kept[:m] {
					cells = append(cells, placed(p.part.cells, p.c.left)...)
				}
				return cells
			}
			lo, hi := 0, len(kept) // the remainder with lo parts moved fails, with hi passes
			for hi-lo > 1 {
				mid := (lo + hi) / 2
				if r.judge(withMoved(mid), false).pass {
					hi = mid
				} else {
					lo = mid
				}
			}
			if hi < len(kept) {
				events := restEvents
				cost := 0.0
				for _, p := range kept[:hi] {
					events += p.part.events - p.c.leftEvents
				}
				for _, p := range kept[hi:] {
					cost += p.cost
				}
				cost += float64(events) * here
				if !valid || cost < c.cost {
					valid = true
					moved := withMoved(hi)
					slices.Sort(moved)
					c.rest, c.cost, c.left, c.leftEvents, c.leftCost = moved, cost, nil, 0, 0
					kept = kept[hi:]
				}
			}
		}
		if !valid {
			return nil
		}
		if c.left != nil {
			slices.Sort(c.left)
		}
	}
	for _, p := range kept {
		c.parts = append(c.parts, p.part)
	}
	// The parts in key order, so that publication order follows the keys.
	slices.SortFunc(c.parts, func(a, b box) int { return slices.Compare(a.key[:], b.key[:]) })
	return c
}

// placed returns the cells not in left; both are sorted.
func placed(cells, left []int32) []int32 {
	if len(left) == 0 {
		return cells
	}
	out := make([]int32, 0, len(cells)-len(left))
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

// judgeBox judges a part once, however many boxes it is a part of.
func (r *run) judgeBox(p *box) verdict {
	id := boxID{p.levels, p.key}
	if v, ok := r.judged[id]; ok {
		return v
	}
	v := r.judge(p.cells, false)
	r.judged[id] = v
	return v
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
