package pipeline

import (
	"math/rand/v2"
	"testing"
)

// The contribution table finds every contribution put into it, through its
// growth, and nothing else; keys differ by cell only, by workspace only, or
// by one id in any slot.
func TestContribTableAgreesWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	workspaces := make([]Pseudonym, 50)
	for i := range workspaces {
		for j := range workspaces[i] {
			workspaces[i][j] = byte(r.Uint32())
		}
	}
	tbl := newContribTable(0)
	ref := map[indexKey]*Contribution{}
	for range 100_000 {
		var k indexKey
		for d := range MaxDims {
			k.cell[d] = r.Uint32N(4)
		}
		k.ws = workspaces[r.IntN(len(workspaces))]
		want := ref[k]
		if got := tbl.get(&k); got != want {
			t.Fatalf("get(%v) = %p, want %p", k, got, want)
		}
		if want == nil {
			c := &Contribution{}
			ref[k] = c
			tbl.put(&k, c)
		}
	}
	if tbl.n != len(ref) {
		t.Fatalf("table holds %d, want %d", tbl.n, len(ref))
	}
	for k, c := range ref {
		if got := tbl.get(&k); got != c {
			t.Fatalf("after growth, get(%v) = %p, want %p", k, got, c)
		}
		k.cell[MaxDims-1] += 10 // an id no key has
		if got := tbl.get(&k); got != nil {
			t.Fatalf("get(%v) = %p for a key never put", k, got)
		}
	}
}
