package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"hash/maphash"
)

// Pseudonymizer maps identifiers to keyed HMAC-SHA-256 pseudonyms (SPEC
// §11). It remembers recent identifiers in a bounded cache so that a busy
// workspace or creator costs one HMAC, not one per event; the cache lives in
// memory only and is never checkpointed. Not safe for concurrent use: each
// worker owns one.
type Pseudonymizer struct {
	mac  hash.Hash
	sum  []byte
	seed maphash.Seed
	// cache is direct-mapped by a hash of the identifier: a slot holds the
	// identifier itself beside its pseudonym, in one cache line, so a hit
	// reads one line and a miss replaces the slot. It starts small and
	// doubles, up to maxPseudonymSlots, once half its slots are filled.
	cache  []pseudonymSlot
	filled int
}

// pseudonymSlot is one cached identifier (up to maxCachedID bytes; n is its
// length, 0 for an empty slot) and its pseudonym: 64 bytes.
type pseudonymSlot struct {
	p  Pseudonym
	n  uint8
	id [maxCachedID]byte
}

const (
	// maxCachedID is the longest identifier the cache holds; a longer one
	// costs an HMAC every time.
	maxCachedID = 47
	// minPseudonymSlots and maxPseudonymSlots bound the cache's size, a
	// power of two: 64 KiB to 4 MiB.
	minPseudonymSlots = 1 << 10
	maxPseudonymSlots = 1 << 16
)

// NewPseudonymizer returns a pseudonymizer keyed with key.
func NewPseudonymizer(key []byte) *Pseudonymizer {
	return &Pseudonymizer{mac: hmac.New(sha256.New, key), sum: make([]byte, 0, sha256.Size),
		seed: maphash.MakeSeed(), cache: make([]pseudonymSlot, minPseudonymSlots)}
}

// Of returns the pseudonym of id.
func (z *Pseudonymizer) Of(id []byte) Pseudonym {
	if len(id) == 0 || len(id) > maxCachedID {
		return z.hmac(id)
	}
	s := z.slot(id)
	if int(s.n) == len(id) && string(s.id[:len(id)]) == string(id) {
		return s.p
	}
	if s.n == 0 {
		if z.filled++; 2*z.filled > len(z.cache) && len(z.cache) < maxPseudonymSlots {
			z.grow()
			s = z.slot(id)
		}
	}
	s.p = z.hmac(id)
	s.n = uint8(copy(s.id[:], id))
	return s.p
}

func (z *Pseudonymizer) slot(id []byte) *pseudonymSlot {
	return &z.cache[maphash.Bytes(z.seed, id)&uint64(len(z.cache)-1)]
}

// grow doubles the cache, keeping what it holds.
func (z *Pseudonymizer) grow() {
	old := z.cache
	z.cache, z.filled = make([]pseudonymSlot, 2*len(old)), 0
	for i := range old {
		if o := &old[i]; o.n > 0 {
			s := z.slot(o.id[:o.n])
			if s.n == 0 {
				z.filled++
			}
			*s = *o
		}
	}
	z.filled++ // the slot the caller is about to fill
}

// hmac computes id's pseudonym.
func (z *Pseudonymizer) hmac(id []byte) Pseudonym {
	z.mac.Reset()
	z.mac.Write(id)
	z.sum = z.mac.Sum(z.sum[:0])
	return Pseudonym(z.sum[:16])
}
