package pipeline

import (
	"encoding/binary"
	"math/bits"
	"runtime"
	"unsafe"
)

// dedupSet is the set of dedup keys of one window in one partition (contract
// §3.5). It is the one piece of partition state that grows with the events
// of a window rather than with its cells, so it is kept compact: an
// open-addressing table of the 16-byte keys themselves, four to a 64-byte
// bucket, probed bucket by bucket and filled to 90% before it grows by
// half. That is about 20 bytes a key, against 32 to 43 for a Go map of the
// same keys, and an insertion mostly touches one cache line.
//
// The keys are SHA-256 prefixes, uniformly distributed, so the first half
// of a key serves as its hash; an adversary choosing event ids cannot aim
// them at one bucket without breaking SHA-256. Nothing is ever deleted, so
// a key sits in the first bucket with room along its probe sequence when
// it was added, and a lookup stops at the first free slot.
//
// A big table lives outside the Go heap (allocBuckets): Release returns it
// as soon as the window closes, and a set dropped without Release returns
// it when it is collected. Not safe for concurrent use.
type dedupSet struct {
	buckets []dedupBucket
	// mem owns the memory under buckets when it is not the heap's.
	mem *tableMem
	n   int
	// zero records the all-zero key, which marks a free slot.
	zero bool
}

type dedupBucket [4]dedupKey

const (
	dedupMinBuckets = 64
	// dedupMaxLoad is the fill at which the table grows.
	dedupMaxLoad = 0.9
)

// newDedupSet returns a set sized for about n keys.
func newDedupSet(n int) *dedupSet {
	s := &dedupSet{mem: new(tableMem)}
	s.buckets = allocBuckets(max(dedupMinBuckets, int(float64(n)/dedupMaxLoad/4)+1), s.mem)
	runtime.AddCleanup(s, (*tableMem).release, s.mem)
	return s
}

// Release returns the table's memory; the set must not be used after.
func (s *dedupSet) Release() {
	s.mem.release()
	s.buckets, s.n, s.zero = nil, 0, false
}

// Len returns the number of keys.
func (s *dedupSet) Len() int {
	if s.zero {
		return s.n + 1
	}
	return s.n
}

// Bytes returns the memory the table holds.
func (s *dedupSet) Bytes() int64 { return int64(len(s.buckets)) * int64(unsafe.Sizeof(dedupBucket{})) }

// Add inserts k and reports whether it was absent.
func (s *dedupSet) Add(k dedupKey) bool {
	if k == (dedupKey{}) {
		added := !s.zero
		s.zero = true
		return added
	}
	if float64(s.n+1) > dedupMaxLoad*4*float64(len(s.buckets)) {
		s.grow()
	}
	if !s.put(k) {
		return false
	}
	s.n++
	return true
}

// home returns k's first bucket: the first half of k mapped onto the
// table's size by a multiply-shift, so the size need not be a power of two.
func (s *dedupSet) home(k dedupKey) int {
	b, _ := bits.Mul64(binary.LittleEndian.Uint64(k[:8]), uint64(len(s.buckets)))
	return int(b)
}

// firstSlot returns the first byte of the first slot k probes.
func (s *dedupSet) firstSlot(k dedupKey) byte {
	if len(s.buckets) == 0 {
		return 0
	}
	return s.buckets[s.home(k)][0][0]
}

// put stores k in the first free slot along its probe sequence, unless it
// finds k first; it reports whether it stored k. The table is never full.
func (s *dedupSet) put(k dedupKey) bool {
	for b := s.home(k); ; b++ {
		if b == len(s.buckets) {
			b = 0
		}
		bk := &s.buckets[b]
		for i := range bk {
			switch bk[i] {
			case k:
				return false
			case dedupKey{}:
				bk[i] = k
				return true
			}
		}
	}
}

// grow rebuilds the table half as large again.
func (s *dedupSet) grow() {
	old, oldMem := s.buckets, *s.mem
	*s.mem = tableMem{}
	s.buckets = allocBuckets(len(old)+len(old)/2, s.mem)
	for i := range old {
		for _, k := range old[i] {
			if k != (dedupKey{}) {
				s.put(k)
			}
		}
	}
	oldMem.release()
}
