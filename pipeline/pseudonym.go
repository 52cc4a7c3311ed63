package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
)

// Pseudonymizer maps identifiers to keyed HMAC-SHA-256 pseudonyms (SPEC
// §11). It remembers recent identifiers in a bounded cache so that a busy
// workspace or creator costs one HMAC, not one per event; the cache lives in
// memory only and is never checkpointed. Not safe for concurrent use: each
// worker owns one.
type Pseudonymizer struct {
	mac   hash.Hash
	sum   []byte
	cache map[string]Pseudonym
}

// pseudonymCacheSize bounds the cache; past it the cache starts over.
const pseudonymCacheSize = 1 << 16

// NewPseudonymizer returns a pseudonymizer keyed with key.
func NewPseudonymizer(key []byte) *Pseudonymizer {
	return &Pseudonymizer{mac: hmac.New(sha256.New, key), sum: make([]byte, 0, sha256.Size),
		cache: make(map[string]Pseudonym, 1024)}
}

// Of returns the pseudonym of id.
func (z *Pseudonymizer) Of(id []byte) Pseudonym {
	if p, ok := z.cache[string(id)]; ok {
		return p
	}
	z.mac.Reset()
	z.mac.Write(id)
	z.sum = z.mac.Sum(z.sum[:0])
	var p Pseudonym
	copy(p[:], z.sum)
	if len(z.cache) >= pseudonymCacheSize {
		clear(z.cache)
	}
	z.cache[string(id)] = p
	return p
}
