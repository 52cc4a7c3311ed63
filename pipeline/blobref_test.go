package pipeline

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// The partial blobs' first encoder, kept as the reference appendBlob and
// readBlob are tested against: through snapshot structs, sorted.

// partialBlob is a partial as stage 2 reads it.
type partialBlob struct {
	Version   int
	Partition PartitionID
	Window    Window
	Partial   partialSnap
}

// sortedSnap is snapPartial with every list in order, so that the same
// content always encodes to the same bytes.
func sortedSnap(p *Partial) partialSnap {
	ps := snapPartial(p)
	slices.SortFunc(ps.Cells, func(a, b cellSnap) int { return slices.Compare(a.Key[:], b.Key[:]) })
	for i := range ps.Cells {
		ws := ps.Cells[i].WS
		slices.SortFunc(ws, func(a, b contribSnap) int { return bytes.Compare(a.WS, b.WS) })
		for j := range ws {
			for k, set := range ws[j].Sets {
				ws[j].Sets[k] = sortedMembers(set)
			}
		}
	}
	return ps
}

// sortedMembers sorts a set's pseudonyms, laid end to end.
func sortedMembers(set []byte) []byte {
	n := len(Pseudonym{})
	ms := make([]Pseudonym, 0, len(set)/n)
	for i := 0; i+n <= len(set); i += n {
		ms = append(ms, Pseudonym(set[i:]))
	}
	slices.SortFunc(ms, Pseudonym.Compare)
	out := make([]byte, 0, len(set))
	for _, m := range ms {
		out = append(out, m[:]...)
	}
	return out
}

// partialSnap is a partial in the form a partial blob holds (blob.go).
type partialSnap struct {
	Present bool
	Dataset string
	Events  int64
	Cells   []cellSnap
}

type cellSnap struct {
	Key CellKey
	WS  []contribSnap
}

// contribSnap is a contribution. Pseudonyms are byte strings (WS one, each
// of Sets its members end to end): gob writes an array byte by byte.
type contribSnap struct {
	WS       []byte
	Events   int64
	Sums     []int64
	Sets     [][]byte
	Overflow bool
}

// snapPartial copies a partial's content into a partial blob's form.
func snapPartial(p *Partial) partialSnap {
	ps := partialSnap{Present: true, Dataset: p.Dataset, Events: p.Events}
	for key, byWS := range p.content() {
		cs := cellSnap{Key: key}
		for ws, c := range byWS {
			s := contribSnap{WS: bytes.Clone(ws[:]), Events: c.Events, Sums: slices.Clone(c.Sums), Overflow: c.Overflow,
				Sets: make([][]byte, len(c.Sets))}
			for i := range c.Sets {
				s.Sets[i] = c.Sets[i].appendTo(nil)
			}
			cs.WS = append(cs.WS, s)
		}
		ps.Cells = append(ps.Cells, cs)
	}
	return ps
}

// restoreSnap builds a partial back from a partial blob's form.
func restoreSnap(ps *partialSnap, w Window) *Partial {
	p := NewPartial(ps.Dataset, w)
	p.Events = ps.Events
	for _, cs := range ps.Cells {
		byWS := make(map[Pseudonym]*Contribution, len(cs.WS))
		for _, s := range cs.WS {
			c := &Contribution{Events: s.Events, Sums: slices.Clone(s.Sums), Overflow: s.Overflow, Sets: make([]EntitySet, len(s.Sets))}
			for j, set := range s.Sets {
				for k := 0; k+len(Pseudonym{}) <= len(set); k += len(Pseudonym{}) {
					c.Sets[j].Add(Pseudonym(set[k:]))
				}
			}
			byWS[Pseudonym(s.WS)] = c
		}
		p.Cells[cs.Key] = byWS
	}
	return p
}

func encodeBlob(pb *partialBlob) []byte {
	b := append([]byte(blobMagic), byte(pb.Version))
	b = appendString(b, pb.Partition.Source)
	b = binary.AppendVarint(b, int64(pb.Partition.Partition))
	b = binary.AppendVarint(b, pb.Window.Start)
	b = binary.AppendVarint(b, pb.Window.End)
	ps := &pb.Partial
	b = appendString(b, ps.Dataset)
	b = binary.AppendVarint(b, ps.Events)
	b = binary.AppendUvarint(b, uint64(len(ps.Cells)))
	for _, c := range ps.Cells {
		for _, k := range c.Key {
			b = appendString(b, k)
		}
		b = binary.AppendUvarint(b, uint64(len(c.WS)))
		for _, w := range c.WS {
			b = appendString(b, string(w.WS))
			b = binary.AppendVarint(b, w.Events)
			b = binary.AppendUvarint(b, uint64(len(w.Sums)))
			for _, v := range w.Sums {
				b = binary.AppendVarint(b, v)
			}
			b = binary.AppendUvarint(b, uint64(len(w.Sets)))
			for _, set := range w.Sets {
				b = appendString(b, string(set))
			}
			if w.Overflow {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	return b
}

func decodeBlob(b []byte) (*partialBlob, error) {
	if !bytes.HasPrefix(b, []byte(blobMagic)) || len(b) == len(blobMagic) {
		return nil, errors.New("not a partial blob")
	}
	pb := &partialBlob{Version: int(b[len(blobMagic)])}
	if pb.Version != blobVersion {
		return nil, fmt.Errorf("format %d; this deid reads format %d", pb.Version, blobVersion)
	}
	r := &blobReader{b: b[len(blobMagic)+1:]}
	pb.Partition.Source = string(r.bytes("partition"))
	pb.Partition.Partition = int32(r.varint("partition"))
	pb.Window.Start, pb.Window.End = r.varint("window"), r.varint("window")
	ps := &pb.Partial
	ps.Present = true
	ps.Dataset = string(r.bytes("dataset"))
	ps.Events = r.varint("events")
	ps.Cells = make([]cellSnap, r.count("cells"))
	for i := range ps.Cells {
		c := &ps.Cells[i]
		for k := range c.Key {
			c.Key[k] = string(r.bytes("cell key"))
		}
		c.WS = make([]contribSnap, r.count("contributions"))
		for j := range c.WS {
			w := &c.WS[j]
			w.WS = bytes.Clone(r.bytes("workspace"))
			w.Events = r.varint("contribution")
			w.Sums = make([]int64, r.count("sums"))
			for k := range w.Sums {
				w.Sums[k] = r.varint("sums")
			}
			w.Sets = make([][]byte, r.count("sets"))
			for k := range w.Sets {
				w.Sets[k] = bytes.Clone(r.bytes("sets"))
			}
			flag := r.flag("overflow")
			w.Overflow = flag == 1
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("bytes after the end")
	}
	return pb, r.err
}
