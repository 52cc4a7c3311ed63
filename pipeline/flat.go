package pipeline

import (
	"encoding/binary"
	"math/bits"
)

// Addend is one event's part of a contribution, as an aggregator reads it:
// its cell, its workspace, its value of each sum measure and its member of
// each entity set. Partial.Add adds it to the workspace's contribution.
type Addend struct {
	// Cell names the level-0 cell by the partial's value ids
	// (Partial.ValueID).
	Cell CellIDs
	WS   Pseudonym
	// Sums is indexed like DatasetSpec.SumMeasures.
	Sums []int64
	// Members is indexed like DatasetSpec.SetEntities; Has says whether the
	// event names a member of each set at all (an absent identifier adds
	// nothing).
	Members []Pseudonym
	Has     []bool
	// Overflow is set when one of Sums overflowed int64 while the
	// aggregator added up the event's fields: the contribution fails
	// closed.
	Overflow bool
}

// flatTable holds a partial's contributions while a worker aggregates into
// it; Seal turns them into Cells at handover. An event finds its
// contribution with one probe into an index of 8-byte slots (a tag of the
// key's hash and the contribution's position), which for a window's ~20 000
// contributions of a partition fits in L2, and one read of the
// contribution: a fixed 128-byte record, in creation order, holding the key
// as small ids (a cell number and a workspace id), the events, eight sums and
// the first members of two entity sets. Workspaces and the other entities
// are small ids of the partial too (entityTable), so a set compares 4-byte
// ids, and the maps of Cells are built once, at handover, not as
// contributions appear. Not safe for concurrent use.
type flatTable struct {
	vals valueIndex
	// nSums and nSets are the shape of the dataset's contributions, fixed
	// by the first Add (-1 before).
	nSums, nSets int
	// slots is the index: tag<<32 | position+1, 0 for a free slot, where
	// tag is the low half of the key's hash and the top bits of the hash
	// pick the first slot (shift).
	slots []uint64
	shift uint
	// chunks hold the records, n of them, in creation order: a record's
	// position is its index in that order. Chunks are never copied or
	// moved, so the table does not allocate twice what it holds as a
	// growing slice would.
	chunks []*[flatChunk]flatRecord
	n      int
	// cells are the cells' value ids by cell number; cellNo finds a cell's
	// number (only when a contribution is created).
	cells  []CellIDs
	cellNo map[CellIDs]uint32
	ents   entityTable
	// more holds the members of sets with more than flatInline, beyond the
	// inline ones (flatSet.more).
	more []moreMembers
	// extraSums and extraSets hold, for datasets with more than flatSums
	// sums or flatSets sets, the rest of each record's, at the record's
	// position times the number that do not fit.
	extraSums []int64
	extraSets []flatSet
}

const (
	flatSums   = 8
	flatSets   = 2
	flatInline = 3
	// flatChunk is the number of records allocated at once (32 KiB).
	flatChunk = 256
	// flatMaxLoad is the fill of the index, in eighths, at which it doubles.
	flatMaxLoad = 6
)

// flatRecord is one contribution while the partial aggregates: 128 bytes,
// two cache lines.
type flatRecord struct {
	cell, ws uint32
	events   int64
	sums     [flatSums]int64
	sets     [flatSets]flatSet
	overflow bool
	_        [15]byte
}

// flatSet is an entity set of a record: its first members inline, by
// entity id (0 is a free place; places fill in order), the rest in
// flatTable.more[more-1].
type flatSet struct {
	m    [flatInline]uint32
	more uint32
}

// moreMembers are the members of a set beyond its inline ones: a list,
// then a map once it is long.
type moreMembers struct {
	ids []uint32
	set map[uint32]struct{}
}

const moreLinear = 32

func newFlatTable(hint int) *flatTable {
	t := &flatTable{nSums: -1, nSets: -1, cellNo: map[CellIDs]uint32{}}
	size := 64
	for size*flatMaxLoad/8 < hint {
		size *= 2
	}
	t.slots = make([]uint64, size)
	t.shift = uint(64 - bits.TrailingZeros(uint(size)))
	t.ents.init()
	for d := range t.vals.values {
		t.vals.values[d] = []string{""}
	}
	return t
}

// table returns the partial's aggregation table, starting one when it has
// none.
func (p *Partial) table() *flatTable {
	if p.flat == nil {
		p.flat = newFlatTable(p.sizeHint)
	}
	return p.flat
}

// Add adds one event to workspace a.WS's contribution to cell a.Cell,
// creating it empty when there is none: one event, the sums
// (overflow-checked: an overflow marks the contribution, which fails its
// cell closed), and the members of the entity sets. Every Addend of a
// partial has the same shape (its dataset's); once the contribution
// exists, Add allocates nothing unless an entity set grows past its inline
// members.
func (p *Partial) Add(a *Addend) {
	t := p.table()
	if t.nSums != len(a.Sums) || t.nSets != len(a.Members) {
		t.shape(len(a.Sums), len(a.Members))
	}
	pos := t.record(&a.Cell, t.ents.id(&a.WS))
	r := t.rec(pos)
	// Overflow of a+b shows in the sign of (a^s)&(b^s): collected over the
	// sums and tested once.
	s := r.events + 1
	of := (r.events ^ s) & (1 ^ s)
	r.events = s
	sums := a.Sums
	if len(sums) > flatSums {
		sums = sums[:flatSums]
	}
	for i, v := range sums {
		o := r.sums[i]
		s := o + v
		of |= (o ^ s) & (v ^ s)
		r.sums[i] = s
	}
	if len(a.Sums) > flatSums {
		of |= t.addExtraSums(pos, a.Sums[flatSums:])
	}
	if of < 0 || a.Overflow {
		r.overflow = true
	}
	for i := range a.Members {
		if !a.Has[i] {
			continue
		}
		id := t.ents.id(&a.Members[i])
		if i < flatSets {
			t.addMember(&r.sets[i], id)
		} else {
			t.addMember(t.set(r, pos, i), id)
		}
	}
}

// shape fixes the shape of the table's contributions at the first Add, and
// refuses an Addend of another shape: a partial belongs to one dataset.
func (t *flatTable) shape(nSums, nSets int) {
	if t.nSums < 0 {
		t.nSums, t.nSets = nSums, nSets
		return
	}
	panic("pipeline: an event of another shape added to a partial: a partial holds one dataset")
}

// addExtraSums adds the sums past flatSums to those of the contribution
// at pos, and returns their overflow bits (the sign bit is set if one
// overflowed).
func (t *flatTable) addExtraSums(pos int, vs []int64) int64 {
	n := t.nSums - flatSums
	dst := t.extraSums[pos*n:][:n]
	var of int64
	for i, v := range vs {
		o := dst[i]
		s := o + v
		of |= (o ^ s) & (v ^ s)
		dst[i] = s
	}
	return of
}

// hashKey mixes a contribution's key. The ids are small counters: each
// word is spread by its own multiplication, and the halves of the result
// are folded so that the low half (the tag) depends on every bit.
func hashKey(ids *CellIDs, ws uint32) uint64 {
	w0 := uint64(ids[0]) | uint64(ids[1])<<32
	w1 := uint64(ids[2]) | uint64(ids[3])<<32
	w2 := uint64(ids[4]) | uint64(ids[5])<<32
	w3 := uint64(ids[6]) | uint64(ids[7])<<32
	a := w0*0x9e3779b97f4a7c15 + w1*0xc2b2ae3d27d4eb4f
	b := w2*0x165667b19e3779f9 + w3*0x27d4eb2f165667c5 + uint64(ws)*0xff51afd7ed558ccd
	h := (a ^ bits.RotateLeft64(b, 32)) * 0xbf58476d1ce4e5b9
	return h ^ h>>32
}

// record returns the position of workspace ws's contribution to the cell
// ids names, creating it empty when there is none.
func (t *flatTable) record(ids *CellIDs, ws uint32) int {
	h := hashKey(ids, ws)
	tag := h << 32
	mask := len(t.slots) - 1
	i := int(h >> t.shift)
	for {
		s := t.slots[i]
		if s == 0 {
			break
		}
		if s&^0xffffffff == tag {
			pos := int(uint32(s)) - 1
			if r := t.rec(pos); r.ws == ws && sameCell(&t.cells[r.cell], ids) {
				return pos
			}
		}
		i = (i + 1) & mask
	}
	return t.create(i, h, ids, ws)
}

// sameCell compares cell ids two at a time (an array compare calls
// memequal).
func sameCell(a, b *CellIDs) bool {
	return (a[0]^b[0])|(a[1]^b[1])|(a[2]^b[2])|(a[3]^b[3])|(a[4]^b[4])|(a[5]^b[5])|(a[6]^b[6])|(a[7]^b[7]) == 0
}

// create adds an empty contribution whose key hashes to h, at the free
// slot i of the index.
func (t *flatTable) create(i int, h uint64, ids *CellIDs, ws uint32) int {
	if (t.n+1)*8 > len(t.slots)*flatMaxLoad {
		t.grow()
		i = t.free(h)
	}
	if int64(t.n) >= 1<<32-1 {
		panic("pipeline: more than 2³²−1 contributions in one partial")
	}
	cell, ok := t.cellNo[*ids]
	if !ok {
		cell = uint32(len(t.cells))
		t.cells = append(t.cells, *ids)
		t.cellNo[*ids] = cell
	}
	if t.n%flatChunk == 0 {
		t.chunks = append(t.chunks, new([flatChunk]flatRecord))
	}
	pos := t.n
	t.n++
	*t.rec(pos) = flatRecord{cell: cell, ws: ws}
	if n := t.nSums - flatSums; n > 0 {
		t.extraSums = append(t.extraSums, make([]int64, n)...)
	}
	if n := t.nSets - flatSets; n > 0 {
		t.extraSets = append(t.extraSets, make([]flatSet, n)...)
	}
	t.slots[i] = h<<32 | uint64(t.n)
	return pos
}

// rec returns the record at position pos.
func (t *flatTable) rec(pos int) *flatRecord {
	return &t.chunks[uint(pos)/flatChunk][uint(pos)%flatChunk]
}

// free returns the first free slot of the probe sequence of hash h.
func (t *flatTable) free(h uint64) int {
	mask := len(t.slots) - 1
	i := int(h >> t.shift)
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	return i
}

// grow doubles the index and puts every contribution back.
func (t *flatTable) grow() {
	t.slots = make([]uint64, 2*len(t.slots))
	t.shift--
	for j := range t.n {
		r := t.rec(j)
		h := hashKey(&t.cells[r.cell], r.ws)
		t.slots[t.free(h)] = h<<32 | uint64(j+1)
	}
}

// addMember adds the entity id to s.
func (t *flatTable) addMember(s *flatSet, id uint32) {
	for k, m := range s.m {
		if m == id {
			return
		}
		if m == 0 {
			s.m[k] = id
			return
		}
	}
	if s.more == 0 {
		t.more = append(t.more, moreMembers{})
		s.more = uint32(len(t.more))
	}
	mm := &t.more[s.more-1]
	if mm.set != nil {
		mm.set[id] = struct{}{}
		return
	}
	for _, m := range mm.ids {
		if m == id {
			return
		}
	}
	if len(mm.ids) < moreLinear {
		mm.ids = append(mm.ids, id)
		return
	}
	mm.set = make(map[uint32]struct{}, 2*moreLinear)
	for _, m := range mm.ids {
		mm.set[m] = struct{}{}
	}
	mm.set[id] = struct{}{}
	mm.ids = nil
}

// appendMembers appends the pseudonyms of the members of s to dst.
func (t *flatTable) appendMembers(dst []Pseudonym, s *flatSet) []Pseudonym {
	for _, m := range s.m {
		if m == 0 {
			return dst
		}
		dst = append(dst, t.ents.ps[m])
	}
	if s.more == 0 {
		return dst
	}
	mm := &t.more[s.more-1]
	for _, m := range mm.ids {
		dst = append(dst, t.ents.ps[m])
	}
	for m := range mm.set {
		dst = append(dst, t.ents.ps[m])
	}
	return dst
}

// size returns the number of members of s.
func (t *flatTable) size(s *flatSet) int {
	n := 0
	for _, m := range s.m {
		if m != 0 {
			n++
		}
	}
	if s.more != 0 {
		mm := &t.more[s.more-1]
		n += len(mm.ids) + len(mm.set)
	}
	return n
}

// entityTable gives the pseudonyms of a partial's workspaces and other
// entities small ids, from 1, in one open-addressing table of 8-byte slots
// (the low half of the pseudonym's hash as a tag, and the id).
type entityTable struct {
	slots []uint64
	shift uint
	// ps holds the pseudonyms by id; ps[0] is not an entity.
	ps []Pseudonym
}

func (e *entityTable) init() {
	e.slots = make([]uint64, 1024)
	e.shift = 64 - 10
	e.ps = make([]Pseudonym, 1, 512)
}

// hashPseudonym mixes a pseudonym. A pseudonym is already uniform (a
// keyed MAC), but one made up in a test need not be.
func hashPseudonym(p *Pseudonym) uint64 {
	h := (binary.LittleEndian.Uint64(p[:8]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(p[8:]), 29)) * 0x9e3779b97f4a7c15
	return h ^ h>>32
}

// id returns p's id, giving it the next one when it has none.
func (e *entityTable) id(p *Pseudonym) uint32 {
	h := hashPseudonym(p)
	tag := h << 32
	mask := len(e.slots) - 1
	i := int(h >> e.shift)
	for {
		s := e.slots[i]
		if s == 0 {
			break
		}
		if s&^0xffffffff == tag && e.ps[uint32(s)] == *p {
			return uint32(s)
		}
		i = (i + 1) & mask
	}
	if int64(len(e.ps)) >= 1<<32-1 {
		panic("pipeline: more than 2³²−1 entities in one partial")
	}
	id := uint32(len(e.ps))
	e.ps = append(e.ps, *p)
	if len(e.ps)*8 > len(e.slots)*flatMaxLoad {
		e.grow()
		return id
	}
	e.slots[i] = tag | uint64(id)
	return id
}

// grow doubles the table and puts every id back.
func (e *entityTable) grow() {
	e.slots = make([]uint64, 2*len(e.slots))
	e.shift--
	mask := len(e.slots) - 1
	for id := 1; id < len(e.ps); id++ {
		h := hashPseudonym(&e.ps[id])
		i := int(h >> e.shift)
		for e.slots[i] != 0 {
			i = (i + 1) & mask
		}
		e.slots[i] = h<<32 | uint64(id)
	}
}

// Seal builds Cells from the contributions aggregated since the partial was
// made (or last sealed), merging them into whatever Cells holds, and drops
// the aggregation table: the partial's content is then Cells alone, which
// the publisher, the privacy gate and checkpoints read. A worker seals a
// partial when it hands it over; sealing a sealed partial does nothing.
// Adding after Seal starts a new table, which the next Seal merges in too.
func (p *Partial) Seal() {
	t := p.flat
	if t == nil {
		return
	}
	p.flat = nil
	if len(p.Cells) == 0 {
		p.Cells = make(map[CellKey]map[Pseudonym]*Contribution, len(t.cells))
	}
	t.into(p.Cells, &p.slab)
}

// content returns the partial's content as Cells would hold it sealed,
// without sealing it: what a checkpoint of an open window writes. It may
// share contributions and maps with Cells; the caller only reads it.
func (p *Partial) content() map[CellKey]map[Pseudonym]*Contribution {
	t := p.flat
	if t == nil || t.n == 0 {
		return p.Cells
	}
	m := make(map[CellKey]map[Pseudonym]*Contribution, len(t.cells)+len(p.Cells))
	var slab contribSlab
	t.into(m, &slab)
	for key, byWS := range p.Cells {
		dst := m[key]
		if dst == nil {
			dst = make(map[Pseudonym]*Contribution, len(byWS))
			m[key] = dst
		}
		for ws, c := range byWS {
			if d := dst[ws]; d != nil {
				d.Merge(c) // d is the table's, new: Cells does not change
			} else {
				dst[ws] = c
			}
		}
	}
	return m
}

// into adds the table's contributions to dst, as new contributions
// allocated from slab, merging any dst already holds for the same cell and
// workspace.
func (t *flatTable) into(dst map[CellKey]map[Pseudonym]*Contribution, slab *contribSlab) {
	if t.n == 0 {
		return
	}
	keys := make([]CellKey, len(t.cells))
	for i := range t.cells {
		for d, id := range t.cells[i] {
			keys[i][d] = t.vals.values[d][id]
		}
	}
	// Per cell its number of contributions, to size its map; and the
	// members of small sets, to give them one backing array.
	perCell := make([]int, len(t.cells))
	small := 0
	for i := range t.n {
		r := t.rec(i)
		perCell[r.cell]++
		for j := range t.nSets {
			if n := t.size(t.set(r, i, j)); n <= entitySetSmall {
				small += n
			}
		}
	}
	members := make([]Pseudonym, 0, small)
	var large []Pseudonym
	// byCell is each cell's map in dst; made is set when this call made
	// it, so that it holds none of the cell's workspaces but the table's,
	// each once, and needs no lookup before an insertion.
	byCell := make([]map[Pseudonym]*Contribution, len(t.cells))
	made := make([]bool, len(t.cells))
	empty := len(dst) == 0
	for i := range t.n {
		r := t.rec(i)
		byWS := byCell[r.cell]
		if byWS == nil {
			if !empty {
				byWS = dst[keys[r.cell]]
			}
			if byWS == nil {
				byWS = make(map[Pseudonym]*Contribution, perCell[r.cell])
				dst[keys[r.cell]] = byWS
				made[r.cell] = true
			}
			byCell[r.cell] = byWS
		}
		c := slab.new(t.nSums, t.nSets)
		c.Events, c.Overflow = r.events, r.overflow
		n := copy(c.Sums, r.sums[:])
		if n < t.nSums {
			k := t.nSums - flatSums
			copy(c.Sums[n:], t.extraSums[i*k:][:k])
		}
		for j := range t.nSets {
			// Members are distinct: a small set is its list as it is, a
			// larger one a map.
			s := t.set(r, i, j)
			es := &c.Sets[j]
			if n := t.size(s); n <= entitySetSmall {
				es.small = t.appendMembers(members[len(members):len(members):len(members)+n], s)
				members = members[:len(members)+n]
			} else {
				large = t.appendMembers(large[:0], s)
				es.large = make(map[Pseudonym]struct{}, len(large))
				for _, m := range large {
					es.large[m] = struct{}{}
				}
			}
		}
		ws := t.ents.ps[r.ws]
		if made[r.cell] {
			byWS[ws] = c
		} else if d := byWS[ws]; d != nil {
			d.Merge(c)
		} else {
			byWS[ws] = c
		}
	}
}

// set returns set j of the record r at position i.
func (t *flatTable) set(r *flatRecord, i, j int) *flatSet {
	if j < flatSets {
		return &r.sets[j]
	}
	k := t.nSets - flatSets
	return &t.extraSets[i*k+j-flatSets]
}

// contributions returns how many contributions the partial aggregated since
// it was last sealed.
func (p *Partial) contributions() int {
	if p.flat == nil {
		return 0
	}
	return p.flat.n
}
