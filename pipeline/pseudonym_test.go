package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
)

// The cache must never change a pseudonym: ids of every length (cached and
// too long to cache), more distinct ids than the cache has slots (so slots
// are replaced), asked in a random order, each compared with the HMAC.
func TestPseudonymsEqualTheHMACWhateverTheCache(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	z := NewPseudonymizer(key)
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([][]byte, 3*maxPseudonymSlots)
	for i := range ids {
		id := fmt.Appendf(nil, "id-%d-", i)
		for len(id) < r.IntN(130) {
			id = append(id, byte('a'+r.IntN(26)))
		}
		ids[i] = id
	}
	ids = append(ids, []byte{}, make([]byte, maxCachedID), make([]byte, maxCachedID+1))
	want := func(id []byte) Pseudonym {
		m := hmac.New(sha256.New, key)
		m.Write(id)
		return Pseudonym(m.Sum(nil)[:16])
	}
	for range 3 {
		for _, i := range r.Perm(len(ids)) {
			if got, w := z.Of(ids[i]), want(ids[i]); got != w {
				t.Fatalf("Of(%q) = %x, want %x", ids[i], got, w)
			}
		}
	}
	// An id that differs from a cached one only past its prefix, or in
	// length, is not taken for it.
	a, b := []byte("creator-0001"), []byte("creator-00010")
	if z.Of(a) == z.Of(b) || z.Of(a) != want(a) || z.Of(b) != want(b) {
		t.Fatal("ids that share a prefix got the same pseudonym")
	}
}
