package pipeline

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// An EntitySet is a set whatever its representation: inline, slice or map,
// and through Union of sets of every size.
func TestEntitySetAgreesWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pseudo := func(i int) Pseudonym { return Pseudonym(keyOf(uint64(i))) }
	check := func(t *testing.T, s *EntitySet, want map[Pseudonym]bool) {
		t.Helper()
		if s.Len() != len(want) {
			t.Fatalf("Len = %d, want %d", s.Len(), len(want))
		}
		got := s.Sorted()
		wantSorted := slices.SortedFunc(maps.Keys(want), Pseudonym.Compare)
		if !slices.Equal(got, wantSorted) {
			t.Fatalf("members %x, want %x", got, wantSorted)
		}
		if b := s.appendTo(nil); len(b) != 16*len(want) {
			t.Fatalf("appendTo wrote %d bytes, want %d", len(b), 16*len(want))
		}
	}
	for _, size := range []int{0, 1, 2, 3, entitySetSmall - 1, entitySetSmall, entitySetSmall + 1, 100} {
		for _, universe := range []int{size + 1, 2*size + 1} {
			var s EntitySet
			want := map[Pseudonym]bool{}
			for range 3 * size {
				p := pseudo(r.IntN(universe))
				s.Add(p)
				want[p] = true
			}
			check(t, &s, want)
			// Union with sets of every representation.
			for _, other := range []int{0, 1, 2, 5, 40} {
				var o EntitySet
				u := maps.Clone(want)
				for range other {
					p := pseudo(1000 + r.IntN(60))
					o.Add(p)
					u[p] = true
				}
				o.Add(pseudo(r.IntN(universe))) // often one s has already
				for _, p := range o.Sorted() {
					u[p] = true
				}
				c := EntitySet{}
				c.Union(&s)
				c.Union(&o)
				check(t, &c, u)
			}
		}
	}
}
