package pipeline

import (
	"encoding/binary"
	"math/bits"
)

// contribTable maps an indexKey to its contribution: the cell index's one
// lookup per aggregated event. It is an open-addressing table with the key
// stored in the slot beside the pointer, so a lookup mostly reads one cache
// line; a Go map of the same keys reads its control word and then the slot,
// two lines apart, and hashes all 48 bytes of the key. Nothing is deleted.
// Not safe for concurrent use.
type contribTable struct {
	slots []contribSlot
	n     int
	// shift maps a hash onto the table: its top log2(len(slots)) bits.
	shift uint
}

type contribSlot struct {
	key indexKey
	c   *Contribution // nil: a free slot
}

// contribMaxLoad is the fill, in eighths, at which the table doubles.
const contribMaxLoad = 6

// newContribTable returns a table sized for about n contributions.
func newContribTable(n int) *contribTable {
	size := 16
	for size*contribMaxLoad/8 < n {
		size *= 2
	}
	return &contribTable{slots: make([]contribSlot, size), shift: uint(64 - bits.TrailingZeros(uint(size)))}
}

// hash mixes a key. The pseudonym is already uniform (a keyed MAC); the cell
// ids are small counters, spread by multiplications.
func (k *indexKey) hash() uint64 {
	h := binary.LittleEndian.Uint64(k.ws[:8]) ^ binary.LittleEndian.Uint64(k.ws[8:])
	for i := 0; i < MaxDims; i += 2 {
		h = (h ^ (uint64(k.cell[i]) | uint64(k.cell[i+1])<<32)) * 0x9e3779b97f4a7c15
		h ^= h >> 32
	}
	return h * 0xbf58476d1ce4e5b9
}

// get returns k's contribution, or nil.
func (t *contribTable) get(k *indexKey) *Contribution {
	mask := len(t.slots) - 1
	for i := int(k.hash() >> t.shift); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.c == nil || s.key == *k {
			return s.c
		}
	}
}

// put adds k, which the table does not hold.
func (t *contribTable) put(k *indexKey, c *Contribution) {
	if (t.n+1)*8 > len(t.slots)*contribMaxLoad {
		old := t.slots
		t.slots = make([]contribSlot, 2*len(old))
		t.shift--
		for i := range old {
			if old[i].c != nil {
				t.insert(&old[i].key, old[i].c)
			}
		}
	}
	t.insert(k, c)
	t.n++
}

func (t *contribTable) insert(k *indexKey, c *Contribution) {
	mask := len(t.slots) - 1
	i := int(k.hash() >> t.shift)
	for t.slots[i].c != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = contribSlot{key: *k, c: c}
}
