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
// are varints, strings and pseudonym lists length first, a flag one byte.
//
//	dataset, events
//	cells: count, then per cell its key (MaxDims strings) and its
//	  contributions: count, then per contribution its workspace (16 bytes)
//	  and the contribution
//	table: cell count (0: no table), the cells' keys, sums, sets, record
//	  count, then per record its cell number, workspace and contribution
//	contribution: events, overflow flag, sums (count and values in
//	  Cells, the table's count in the table), sets (each a member count
//	  and the members' 16 bytes)

// appendPartial appends p's content in the checkpoint's encoding.
func appendPartial(b []byte, p *Partial) []byte {
	b = appendString(b, p.Dataset)
	b = binary.AppendVarint(b, p.Events)
	b = binary.AppendUvarint(b, uint64(len(p.Cells)))
	for key, byWS := range p.Cells {
		b = appendCellKey(b, &key)
		b = binary.AppendUvarint(b, uint64(len(byWS)))
		for ws, c := range byWS {
			b = append(b, ws[:]...)
			b = binary.AppendVarint(b, c.Events)
			b = appendFlag(b, c.Overflow)
			b = binary.AppendUvarint(b, uint64(len(c.Sums)))
			for _, v := range c.Sums {
				b = binary.AppendVarint(b, v)
			}
			b = binary.AppendUvarint(b, uint64(len(c.Sets)))
			for i := range c.Sets {
				b = binary.AppendUvarint(b, uint64(c.Sets[i].Len()))
				b = c.Sets[i].appendTo(b)
			}
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
	b = binary.AppendUvarint(b, uint64(t.nSums))
	b = binary.AppendUvarint(b, uint64(t.nSets))
	b = binary.AppendUvarint(b, uint64(t.n))
	var members []Pseudonym
	for i := range t.n {
		r := t.rec(i)
		b = binary.AppendUvarint(b, uint64(r.cell))
		b = append(b, t.ents.ps[r.ws][:]...)
		b = binary.AppendVarint(b, r.events)
		b = appendFlag(b, r.overflow)
		for _, v := range r.sums[:min(t.nSums, flatSums)] {
			b = binary.AppendVarint(b, v)
		}
		if k := t.nSums - flatSums; k > 0 {
			for _, v := range t.extraSums[i*k:][:k] {
				b = binary.AppendVarint(b, v)
			}
		}
		for j := range t.nSets {
			members = t.appendMembers(members[:0], t.set(r, i, j))
			b = binary.AppendUvarint(b, uint64(len(members)))
			for _, m := range members {
				b = append(b, m[:]...)
			}
		}
	}
	return b
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
	p := NewPartial(string(r.bytes("dataset")), w)
	p.Events = r.varint("events")
	add := func(key CellKey, ws Pseudonym, c *Contribution) {
		byWS := p.Cells[key]
		if byWS == nil {
			byWS = map[Pseudonym]*Contribution{}
			p.Cells[key] = byWS
		}
		if d := byWS[ws]; d != nil {
			d.Merge(c)
		} else {
			byWS[ws] = c
		}
	}
	for range r.count("cells") {
		var key CellKey
		for d := range key {
			key[d] = string(r.bytes("cell key"))
		}
		for range r.count("contributions") {
			ws := r.pseudonym("workspace")
			c := &Contribution{Events: r.varint("contribution"), Overflow: r.flag("overflow") == 1}
			c.Sums = make([]int64, r.count("sums"))
			for i := range c.Sums {
				c.Sums[i] = r.varint("sums")
			}
			c.Sets = make([]EntitySet, r.count("sets"))
			for i := range c.Sets {
				r.members(&c.Sets[i])
			}
			add(key, ws, c)
		}
	}
	keys := make([]CellKey, r.count("table cells"))
	for i := range keys {
		for d := range keys[i] {
			keys[i][d] = string(r.bytes("table cell key"))
		}
	}
	if len(keys) > 0 {
		nSums, nSets := r.count("table sums"), r.count("table sets")
		for range r.count("table records") {
			cell := r.index("record cell")
			if cell >= len(keys) {
				r.fail("record cell")
				break
			}
			ws := r.pseudonym("record workspace")
			c := &Contribution{Events: r.varint("record"), Overflow: r.flag("record overflow") == 1,
				Sums: make([]int64, nSums), Sets: make([]EntitySet, nSets)}
			for i := range c.Sums {
				c.Sums[i] = r.varint("record sums")
			}
			for i := range c.Sets {
				r.members(&c.Sets[i])
			}
			add(keys[cell], ws, c)
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("bytes after the end")
	}
	if r.err != nil {
		return nil, fmt.Errorf("a partial of window %d: %w", w.Start, r.err)
	}
	return p, nil
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

// pseudonym reads 16 bytes.
func (r *blobReader) pseudonym(what string) Pseudonym {
	var p Pseudonym
	if len(r.b) < len(p) {
		r.fail(what)
		return p
	}
	copy(p[:], r.b)
	r.b = r.b[len(p):]
	return p
}

// members reads an entity set: a count, then that many pseudonyms.
func (r *blobReader) members(s *EntitySet) {
	n := r.count("set")
	if n > len(r.b)/len(Pseudonym{}) {
		r.fail("set")
		return
	}
	for range n {
		s.Add(r.pseudonym("set member"))
	}
}
