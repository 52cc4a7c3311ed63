package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A checkpoint holds each open window's partials as bytes that
// appendPartial writes straight from the partial: its Cells, then its
// aggregation table record by record, without building the maps a sealed
// partial has or copying into snapshot structs first (what a checkpoint of
// the open windows spent most of its time on). decodePartial builds the
// sealed partial back, merging the two parts as content does. Integers
// are varints, strings length first, contributions as in a blob
// (appendContribHead, blob.go), unsorted.
//
//	dataset, events
//	cells: count, then per cell its key (MaxDims strings) and its
//	  contributions: count, then each
//	table: cell count (0: no table), the cells' keys, record count, then
//	  per record its cell number and its contribution

// appendPartial appends p's content in the checkpoint's encoding.
func appendPartial(b []byte, p *Partial) []byte {
	b = appendString(b, p.Dataset)
	b = binary.AppendVarint(b, p.Events)
	b = binary.AppendUvarint(b, uint64(len(p.Cells)))
	var members []Pseudonym
	for key, byWS := range p.Cells {
		b = appendCellKey(b, &key)
		b = binary.AppendUvarint(b, uint64(len(byWS)))
		for ws, c := range byWS {
			b = appendContribHead(b, ws, c.Events, c.Sums, len(c.Sets))
			for i := range c.Sets {
				members = c.Sets[i].appendMembers(members[:0])
				b = appendMembers(b, members)
			}
			b = appendFlag(b, c.Overflow)
		}
	}
	t := p.flat
	if t == nil || t.n == 0 {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(t.cells)))
	for i := range t.cells {
		for d, id := range t.cells[i] {
			b = appendString(b, t.vals.values[d][id])
		}
	}
	b = binary.AppendUvarint(b, uint64(t.n))
	sums := make([]int64, t.nSums)
	for i := range t.n {
		r := t.rec(i)
		b = binary.AppendUvarint(b, uint64(r.cell))
		n := copy(sums, r.sums[:])
		if k := t.nSums - flatSums; k > 0 {
			copy(sums[n:], t.extraSums[i*k:][:k])
		}
		b = appendContribHead(b, t.ents.ps[r.ws], r.events, sums, t.nSets)
		for j := range t.nSets {
			members = t.appendMembers(members[:0], t.set(r, i, j))
			b = appendMembers(b, members)
		}
		b = appendFlag(b, r.overflow)
	}
	return b
}

// partialSizeHint is about what appendPartial writes for p's aggregation
// table, a little more when each set holds one member, so that the buffer
// seldom grows: a large slice grows by a quarter at a time, and growing
// one from empty allocates about five times its final size.
func partialSizeHint(p *Partial) int {
	t := p.flat
	if t == nil {
		return 0
	}
	return 64 + 24*len(t.cells) + t.n*(32+4*t.nSums+17*t.nSets)
}

func appendCellKey(b []byte, k *CellKey) []byte {
	for _, s := range k {
		b = appendString(b, s)
	}
	return b
}

func appendFlag(b []byte, f bool) []byte {
	if f {
		return append(b, 1)
	}
	return append(b, 0)
}

// decodePartial builds the sealed partial of window w that appendPartial
// encoded. Damage is an error naming what it could not read.
func decodePartial(b []byte, w Window) (*Partial, error) {
	r := &blobReader{b: b}
	s := r.sealed(w)
	keys := make([]CellKey, r.count("table cells"))
	for i := range keys {
		keys[i] = r.cellKey("table cell key")
	}
	if len(keys) > 0 {
		for range r.count("table records") {
			cell := r.index("record cell")
			if cell >= len(keys) {
				r.fail("record cell")
				break
			}
			ws, c := r.contribution()
			s.add(keys[cell], ws, c)
		}
	}
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("a partial of window %d: %w", w.Start, err)
	}
	return s.p, nil
}

// sealedPartial builds a sealed partial from contributions read in any
// order, merging those of one cell and workspace. Every contribution of a
// partial has its dataset's shape: another is damage (and could not be
// merged).
type sealedPartial struct {
	r            *blobReader
	p            *Partial
	nSums, nSets int
}

func (s *sealedPartial) add(key CellKey, ws Pseudonym, c *Contribution) {
	if s.nSums < 0 {
		s.nSums, s.nSets = len(c.Sums), len(c.Sets)
	}
	if len(c.Sums) != s.nSums || len(c.Sets) != s.nSets {
		s.r.fail("contribution shape")
		return
	}
	byWS := s.p.Cells[key]
	if byWS == nil {
		byWS = map[Pseudonym]*Contribution{}
		s.p.Cells[key] = byWS
	}
	if d := byWS[ws]; d != nil {
		d.Merge(c)
	} else {
		byWS[ws] = c
	}
}

// sealed reads what a blob and a checkpoint's partial both begin with —
// the dataset, the events, the cells with their contributions — into a
// sealed partial of window w.
func (r *blobReader) sealed(w Window) *sealedPartial {
	s := &sealedPartial{r: r, p: NewPartial(string(r.bytes("dataset")), w), nSums: -1, nSets: -1}
	s.p.Events = r.varint("events")
	for range r.count("cells") {
		key := r.cellKey("cell key")
		for range r.count("contributions") {
			ws, c := r.contribution()
			s.add(key, ws, c)
		}
	}
	return s
}

// cellKey reads what appendCellKey wrote.
func (r *blobReader) cellKey(what string) CellKey {
	var key CellKey
	for d := range key {
		key[d] = string(r.bytes(what))
	}
	return key
}

// end returns the first error, or one for bytes left after the end.
func (r *blobReader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("bytes after the end")
	}
	return r.err
}

// index reads an unsigned varint (0 after an error).
func (r *blobReader) index(what string) int {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<31 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}
