package pipeline

import (
	"bytes"
	"encoding/gob"
	"slices"
	"testing"
)

// A checkpoint keeps each open window's dedup set. Encoded as a list of
// 16-byte arrays, gob writes every byte of every key on its own; as one
// byte string, it copies them. b.N windows of 500 000 keys each.
func BenchmarkCheckpointDedupSet(b *testing.B) {
	s := newDedupSet(0)
	for i := range 500_000 {
		s.Add(keyOf(uint64(i)))
	}
	b.Run("arrays", func(b *testing.B) {
		for b.Loop() {
			var keys []dedupKey
			for k := range s.All {
				keys = append(keys, k)
			}
			var buf bytes.Buffer
			if err := gob.NewEncoder(&buf).Encode(keys); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bytes", func(b *testing.B) {
		for b.Loop() {
			ws := snapWindow(&openWindow{seen: s}, true)
			var buf bytes.Buffer
			if err := gob.NewEncoder(&buf).Encode(ws); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A window's state survives a checkpoint: the dedup set's keys, no more
// and no fewer.
func TestCheckpointKeepsTheDedupSet(t *testing.T) {
	ow := &openWindow{w: Window{Start: 0, End: 10}, seen: newDedupSet(0)}
	for i := range 1000 {
		ow.seen.Add(keyOf(uint64(i)))
	}
	ow.seen.Add(dedupKey{}) // the all-zero key is a key too
	got := gobRoundTrip(t, snapWindow(ow, true)).restore().seen
	if got.Len() != 1001 {
		t.Fatalf("restored %d keys, want 1001", got.Len())
	}
	for i := range 1000 {
		if !got.Has(keyOf(uint64(i))) {
			t.Fatalf("key %d lost", i)
		}
	}
	if !got.Has(dedupKey{}) || got.Has(keyOf(5000)) {
		t.Fatal("the zero key lost, or a key never added found")
	}
}

// A window's partials survive a checkpoint: every contribution with its
// events, sums, overflow and entity sets, small and large.
func TestCheckpointKeepsThePartials(t *testing.T) {
	w := Window{Start: 0, End: 10}
	p := NewPartial("d", w)
	pseudo := func(i int) Pseudonym { return Pseudonym(keyOf(uint64(i))) }
	for cell := range 5 {
		key := CellKey{"a", string(rune('a' + cell))}
		p.Cells[key] = map[Pseudonym]*Contribution{}
		for ws := range 3 {
			c := NewContribution(2, 2)
			c.Events, c.Sums[0], c.Sums[1], c.Overflow = int64(cell+ws+1), int64(cell*100+ws), -7, ws == 2
			for m := range 1 + cell*10 { // past entitySetSmall from the third cell on
				c.Sets[0].Add(pseudo(1000 + m))
			}
			c.Sets[1].Add(pseudo(ws))
			p.Cells[key][pseudo(ws)] = c
		}
		p.Events += 6
	}
	back := gobRoundTrip(t, snapWindow(&openWindow{w: w, seen: newDedupSet(0), partials: []*Partial{p, nil}}, true))
	if err := (&checkpoint{Open: []windowSnap{*back}}).check(); err != nil {
		t.Fatal(err)
	}
	ow := back.restore()
	if ow.partials[1] != nil {
		t.Fatal("an empty partial came back")
	}
	got := ow.partials[0]
	if got.Events != p.Events || len(got.Cells) != len(p.Cells) {
		t.Fatalf("restored %d events in %d cells, want %d in %d", got.Events, len(got.Cells), p.Events, len(p.Cells))
	}
	for key, byWS := range p.Cells {
		for ws, c := range byWS {
			g := got.Cells[key][ws]
			if g == nil {
				t.Fatalf("cell %v workspace %x lost", key, ws)
			}
			if g.Events != c.Events || !slices.Equal(g.Sums, c.Sums) || g.Overflow != c.Overflow {
				t.Fatalf("cell %v workspace %x: %+v, want %+v", key, ws, g, c)
			}
			for i := range c.Sets {
				if !slices.Equal(g.Sets[i].Sorted(), c.Sets[i].Sorted()) {
					t.Fatalf("cell %v workspace %x: set %d differs", key, ws, i)
				}
			}
		}
	}
}

// gobRoundTrip encodes a window's checkpoint form as a checkpoint file does
// and decodes it back.
func gobRoundTrip(t *testing.T, snap windowSnap) *windowSnap {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(snap); err != nil {
		t.Fatal(err)
	}
	var back windowSnap
	if err := gob.NewDecoder(&buf).Decode(&back); err != nil {
		t.Fatal(err)
	}
	return &back
}
