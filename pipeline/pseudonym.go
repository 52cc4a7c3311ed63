package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
	"hash/maphash"
)

// PseudonymKey is the HMAC key of contract §11, built once from the
// configured secret. It is the one authority for pseudonyms: the consent
// state is built with it, and the workers take it from the consent state
// (Consent.PseudonymKey) rather than from a second copy, so a withdrawal
// always names the pseudonyms the workers computed. Safe for concurrent use;
// it never changes.
type PseudonymKey struct {
	key []byte
}

// NewPseudonymKey returns the pseudonym key raw holds (copied). An empty key
// is refused: every workspace would get a pseudonym anyone can compute.
func NewPseudonymKey(raw []byte) (*PseudonymKey, error) {
	if len(raw) == 0 {
		return nil, errors.New("pseudonym key: the key is empty")
	}
	return &PseudonymKey{key: append([]byte(nil), raw...)}, nil
}

// Pseudonymizer returns a new pseudonymizer keyed with k, for one goroutine.
func (k *PseudonymKey) Pseudonymizer() *Pseudonymizer { return NewPseudonymizer(k.key) }

// Pseudonymizer maps identifiers to keyed HMAC-SHA-256 pseudonyms (contract
// §11). It remembers recent identifiers in a bounded cache so that a busy
// workspace or creator costs one HMAC, not one per event; the cache lives in
// memory only and is never checkpointed. Not safe for concurrent use: each
// worker owns one.
type Pseudonymizer struct {
	mac  hash.Hash
	sum  []byte
	seed maphash.Seed
	// cache is two-way set-associative, by a hash of the identifier: a
	// slot holds the identifier itself beside its pseudonym, in one cache
	// line, so a hit reads one or two lines. A set's first slot is its most
	// recently used; a miss replaces the other. It starts small and
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
	set := z.set(id)
	if set[0].holds(id) {
		return set[0].p
	}
	if set[1].holds(id) {
		set[0], set[1] = set[1], set[0]
		return set[0].p
	}
	if set[1].n == 0 {
		if z.filled++; 2*z.filled > len(z.cache) && len(z.cache) < maxPseudonymSlots {
			z.grow()
			set = z.set(id)
		}
	}
	set[1] = set[0]
	set[0].p = z.hmac(id)
	set[0].n = uint8(copy(set[0].id[:], id))
	return set[0].p
}

func (s *pseudonymSlot) holds(id []byte) bool {
	return int(s.n) == len(id) && string(s.id[:len(id)]) == string(id)
}

// set returns the two slots id may be in.
func (z *Pseudonymizer) set(id []byte) *[2]pseudonymSlot {
	i := maphash.Bytes(z.seed, id) & uint64(len(z.cache)/2-1)
	return (*[2]pseudonymSlot)(z.cache[2*i:])
}

// grow doubles the cache, keeping what it holds.
func (z *Pseudonymizer) grow() {
	old := z.cache
	z.cache, z.filled = make([]pseudonymSlot, 2*len(old)), 0
	for i := range old {
		if o := &old[i]; o.n > 0 {
			set := z.set(o.id[:o.n])
			if set[0].n == 0 {
				set[0] = *o
				z.filled++
			} else if set[1].n == 0 {
				set[1] = *o
				z.filled++
			}
		}
	}
}

// hmac computes id's pseudonym.
func (z *Pseudonymizer) hmac(id []byte) Pseudonym {
	z.mac.Reset()
	z.mac.Write(id)
	z.sum = z.mac.Sum(z.sum[:0])
	return Pseudonym(z.sum[:16])
}
