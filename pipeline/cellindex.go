package pipeline

import (
	"strings"
	"unsafe"
)

// CellIDs names a level-0 cell inside one partial by small ids of its
// dimension values (Partial.ValueID), in declaration order; slots past the
// dataset's dimensions are 0. Ids mean nothing outside their partial.
type CellIDs [MaxDims]uint32

// indexKey finds one contribution: its cell's ids and its workspace.
type indexKey struct {
	cell CellIDs
	ws   Pseudonym
}

// cellIndex is the aggregators' fast path into a partial: adding an event
// to an existing contribution costs a few probes into small tables of the
// window's dimension values and one probe into a table of fixed-size keys,
// instead of hashing and comparing a cell key of strings and then looking
// the workspace up in the cell's own table.
//
// It only accelerates: Partial.Cells stays the partial's content. The index
// is either nil or complete; whatever changes Cells other than through
// Partial.Contribution drops it (Merge, the publisher, a restored
// checkpoint), and the next Contribution rebuilds it from Cells.
type cellIndex struct {
	contribs *contribTable
	// raw maps, per dimension, a value as events carry it to the id of its
	// level-0 form; canon maps a level-0 form to its id, and values an id
	// back to it (values[d][0] is "", the empty slot).
	raw    [MaxDims]map[string]uint32
	canon  [MaxDims]map[string]uint32
	values [MaxDims][]string
	// recent remembers, per dimension, values by the address of their bytes:
	// the decoder hands out one shared string per dimension value, so most
	// events find theirs here without hashing it. A slot holds the string
	// itself, which keeps its bytes from being reused for another.
	recent [MaxDims][recentValues]recentValue
}

// recentValue is a value of a dimension and its id.
type recentValue struct {
	s  string
	id uint32
}

// recentValues is the size of a dimension's recent table (a power of two).
const recentValues = 64

// ValueID returns the partial's id of raw, a value of dimension dim as an
// event carries it, whose level-0 form h gives; h is asked once per value
// and partial. Values with the same level-0 form share their id.
func (p *Partial) ValueID(dim int, raw string, h Hierarchy) uint32 {
	x := p.cellIndex()
	data := unsafe.StringData(raw)
	r := &x.recent[dim][(uintptr(unsafe.Pointer(data))>>4^uintptr(len(raw)))&(recentValues-1)]
	if unsafe.StringData(r.s) == data && len(r.s) == len(raw) && data != nil {
		return r.id
	}
	id, ok := x.raw[dim][raw]
	if !ok {
		id = x.canonID(dim, h.Generalize(raw, 0))
		if x.raw[dim] == nil {
			x.raw[dim] = map[string]uint32{}
		}
		x.raw[dim][raw] = id
	}
	*r = recentValue{s: raw, id: id}
	return id
}

// canonID returns the id of the level-0 value v of dimension dim, giving it
// one if it has none. "" is the empty slot, id 0.
func (x *cellIndex) canonID(dim int, v string) uint32 {
	if v == "" {
		return 0
	}
	if id, ok := x.canon[dim][v]; ok {
		return id
	}
	if x.canon[dim] == nil {
		x.canon[dim] = map[string]uint32{}
	}
	// A copy, so that a cell key never holds on to memory an event owns.
	v = strings.Clone(v)
	id := uint32(len(x.values[dim]))
	x.values[dim] = append(x.values[dim], v)
	x.canon[dim][v] = id
	return id
}

// Contribution returns workspace ws's contribution to the cell ids names,
// creating it (and the cell) empty, shaped for nSums sums and nSets entity
// sets, when there is none.
func (p *Partial) Contribution(ids *CellIDs, ws Pseudonym, nSums, nSets int) *Contribution {
	x := p.cellIndex()
	k := indexKey{cell: *ids, ws: ws}
	if c := x.contribs.get(&k); c != nil {
		return c
	}
	var key CellKey
	for d, id := range ids {
		key[d] = x.values[d][id]
	}
	byWS := p.Cells[key]
	if byWS == nil {
		byWS = make(map[Pseudonym]*Contribution, 1)
		p.Cells[key] = byWS
	}
	c := p.NewContribution(nSums, nSets)
	byWS[ws] = c
	x.contribs.put(&k, c)
	return c
}

// cellIndex returns the partial's index, building it from Cells when it was
// dropped.
func (p *Partial) cellIndex() *cellIndex {
	if p.index != nil {
		return p.index
	}
	x := &cellIndex{contribs: newContribTable(max(len(p.Cells), p.sizeHint))}
	for d := range x.values {
		x.values[d] = []string{""}
	}
	for key, byWS := range p.Cells {
		var ids CellIDs
		for d, v := range key {
			ids[d] = x.canonID(d, v)
		}
		for ws, c := range byWS {
			x.contribs.put(&indexKey{cell: ids, ws: ws}, c)
		}
	}
	p.index = x
	return x
}

// dropIndex forgets the index after Cells changed behind it.
func (p *Partial) dropIndex() { p.index = nil }

// contributions returns how many contributions the index holds (0 without
// an index).
func (p *Partial) contributions() int {
	if p.index == nil {
		return 0
	}
	return p.index.contribs.n
}
