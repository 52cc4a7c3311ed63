package pipeline

import (
	"strings"
	"unsafe"
)

// CellIDs names a level-0 cell inside one partial by small ids of its
// dimension values (Partial.ValueID), in declaration order; slots past the
// dataset's dimensions are 0. Ids mean nothing outside their partial, and
// only until it is sealed.
type CellIDs [MaxDims]uint32

// valueIndex gives a partial's dimension values small ids while it
// aggregates, so that an event names its cell without hashing strings: a
// few probes into small tables of the window's values, mostly one read of
// a table of recent values. Seal turns the ids back into the cell keys of
// Cells.
type valueIndex struct {
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
	// def remembers, per dimension, the value DefaultID was last asked
	// for and its id.
	def [MaxDims]recentValue
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
	x := &p.table().vals
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

// DefaultID returns ValueID(dim, def, h) for a value an aggregator asks
// about on every event (a dimension's default, to count the events whose
// value reads as it): remembered by the address of def's bytes, so that
// asking again costs a comparison.
func (p *Partial) DefaultID(dim int, def string, h Hierarchy) uint32 {
	x := &p.table().vals
	if d := &x.def[dim]; unsafe.StringData(d.s) == unsafe.StringData(def) && len(d.s) == len(def) && d.s != "" {
		return d.id
	}
	id := p.ValueID(dim, def, h)
	x.def[dim] = recentValue{s: def, id: id}
	return id
}

// canonID returns the id of the level-0 value v of dimension dim, giving it
// one if it has none. "" is the empty slot, id 0.
func (x *valueIndex) canonID(dim int, v string) uint32 {
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
