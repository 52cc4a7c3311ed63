package pipeline

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
)

func keyOf(i uint64) dedupKey {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], i)
	sum := sha256.Sum256(b[:])
	return dedupKey(sum[:16])
}

func TestDedupSetAgreesWithAMap(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		hint int
		// keys draws the i-th key
		keys func(r *rand.Rand, i int) dedupKey
	}{
		{"uniform keys from an empty set", 200_000, 0, func(r *rand.Rand, i int) dedupKey { return keyOf(r.Uint64N(150_000)) }},
		{"uniform keys from a presized set", 100_000, 100_000, func(r *rand.Rand, i int) dedupKey { return keyOf(r.Uint64N(80_000)) }},
		// Past offHeapMin the table is mapped outside the heap, and its
		// growth moves the keys from one mapping to the next.
		{"a table that grows out of the heap", 600_000, 0, func(r *rand.Rand, i int) dedupKey { return keyOf(r.Uint64N(450_000)) }},
		{"the zero key among others", 10_000, 0, func(r *rand.Rand, i int) dedupKey {
			if i%100 == 0 {
				return dedupKey{}
			}
			return keyOf(r.Uint64N(5000))
		}},
		// Keys that share their first half have one home bucket: long
		// probe sequences, and growth that does not spread them.
		{"keys that share their first half", 5_000, 0, func(r *rand.Rand, i int) dedupKey {
			k := keyOf(r.Uint64N(3000))
			binary.LittleEndian.PutUint64(k[:8], 42)
			return k
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			s := newDedupSet(tc.hint)
			defer s.Release()
			ref := map[dedupKey]struct{}{}
			for i := range tc.n {
				k := tc.keys(r, i)
				_, had := ref[k]
				ref[k] = struct{}{}
				if added := s.Add(k); added == had {
					t.Fatalf("key %d: Add = %v, but the map had it: %v", i, added, had)
				}
				if !s.Has(k) {
					t.Fatalf("key %d: not there right after Add", i)
				}
			}
			if s.Len() != len(ref) {
				t.Fatalf("Len = %d, want %d", s.Len(), len(ref))
			}
			seen := 0
			for k := range s.All {
				if _, ok := ref[k]; !ok {
					t.Fatalf("All yields %x, never added", k)
				}
				seen++
			}
			if seen != len(ref) {
				t.Fatalf("All yields %d keys, want %d", seen, len(ref))
			}
		})
	}
}

// The dedup gate's cost per event: a key looked up and inserted, most of
// them new, in a set that grows to the window's size. b.N keys.
func BenchmarkDedup(b *testing.B) {
	keys := make([]dedupKey, 1<<20)
	for i := range keys {
		keys[i] = keyOf(uint64(i))
	}
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		before := heapInUse()
		m := map[dedupKey]struct{}{}
		for i := 0; i < b.N; i++ {
			k := keys[i&(len(keys)-1)]
			if _, dup := m[k]; !dup {
				m[k] = struct{}{}
			}
		}
		b.ReportMetric(float64(heapInUse()-before)/float64(len(m)), "bytes/key")
		runtime.KeepAlive(m)
	})
	b.Run("table", func(b *testing.B) {
		b.ReportAllocs()
		s := newDedupSet(0)
		for i := 0; i < b.N; i++ {
			s.Add(keys[i&(len(keys)-1)])
		}
		b.ReportMetric(float64(s.Bytes())/float64(s.Len()), "bytes/key")
	})
}

func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// Has tells whether k is in the set.
func (s *dedupSet) Has(k dedupKey) bool {
	if k == (dedupKey{}) {
		return s.zero
	}
	n := len(s.buckets)
	for b := s.home(k); ; b = (b + 1) % n {
		for _, q := range s.buckets[b] {
			switch q {
			case k:
				return true
			case dedupKey{}:
				return false
			}
		}
	}
}

// All calls yield with every key, in table order.
func (s *dedupSet) All(yield func(dedupKey) bool) {
	if s.zero && !yield(dedupKey{}) {
		return
	}
	for i := range s.buckets {
		for _, k := range s.buckets[i] {
			if k != (dedupKey{}) && !yield(k) {
				return
			}
		}
	}
}
