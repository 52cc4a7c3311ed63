package pipeline

import (
	"bytes"
	"context"
	"encoding/gob"
	"slices"
	"testing"
)

// What a checkpoint costs for a window's dedup keys: the format-3 way,
// every key of the window encoded again at each checkpoint, against the key
// log, each key written in a run once (and again when runs merge), here in
// memory; cmd/deid's BenchmarkKeyLog measures it on a directory and on S3.
// b.N checkpoints of a window of 500 000 keys that gained 50 000 since the
// checkpoint before.
func BenchmarkCheckpointDedupSet(b *testing.B) {
	s := newDedupSet(0)
	for i := range 500_000 {
		s.Add(keyOf(uint64(i)))
	}
	b.Run("whole set", func(b *testing.B) {
		for b.Loop() {
			keys := make([]byte, 0, s.Len()*len(dedupKey{}))
			for k := range s.All {
				keys = append(keys, k[:]...)
			}
			var buf bytes.Buffer
			if err := gob.NewEncoder(&buf).Encode(keys); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("key log", func(b *testing.B) {
		cps, err := NewCheckpoints(context.Background(), newMemStore())
		if err != nil {
			b.Fatal(err)
		}
		p := cps.partition(PartitionID{Source: "b"})
		log := p.newKeyLog(0)
		i := uint64(0)
		for b.Loop() {
			for range 50_000 {
				log.add(keyOf(i))
				i++
			}
			if _, err := log.flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			if _, _, err := p.save(context.Background(), &checkpoint{Partition: p.id}); err != nil {
				b.Fatal(err)
			}
		}
	})
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
	back := gobRoundTrip(t, snapWindow(&openWindow{w: w, seen: newDedupSet(0), partials: []*Partial{p, nil}}, 0, nil))
	if err := (&checkpoint{Open: []windowSnap{*back}}).check(); err != nil {
		t.Fatal(err)
	}
	ow, err := back.restore(nil)
	if err != nil {
		t.Fatal(err)
	}
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
// (the gob header, then the partials) and decodes it back.
func gobRoundTrip(t *testing.T, snap windowSnap) *windowSnap {
	t.Helper()
	b, err := encodeCheckpoint(&checkpoint{Version: checkpointVersion, Open: []windowSnap{snap}})
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	return &back.Open[0]
}

// What encoding a checkpoint costs, with the windows' partials after the
// gob header (format 7) against inside the gob value (format 6, which gob
// copied into its own growing buffer on every checkpoint). The checkpoint
// is one a partition of the benchmark input writes as it closes its third
// day: two closed windows not yet published of 1.4 MB each and an open one
// of 0.3 MB, in two datasets.
func BenchmarkCheckpointEncode(b *testing.B) {
	r := bytes.Repeat([]byte("partial bytes, as appendPartial writes them. "), 1<<16)
	snap := func(n int) windowSnap {
		ps := [][]byte{r[:n*9/10], r[:n/10]}
		return windowSnap{W: Window{Start: 1, End: 2}, partials: ps}
	}
	cp := &checkpoint{Version: checkpointVersion, Seq: 3, Open: []windowSnap{snap(300_000)},
		Handed: []windowSnap{snap(1_400_000), snap(1_400_000)}}
	b.Run("format 7", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeCheckpoint(cp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("format 6", func(b *testing.B) {
		type v6Window struct {
			W        Window
			Partials [][]byte
		}
		type v6Checkpoint struct {
			Version      int
			Seq          int64
			Open, Handed []v6Window
		}
		v6 := func(l []windowSnap) (out []v6Window) {
			for _, ws := range l {
				out = append(out, v6Window{W: ws.W, Partials: ws.partials})
			}
			return out
		}
		old := v6Checkpoint{Version: 6, Seq: 3, Open: v6(cp.Open), Handed: v6(cp.Handed)}
		for b.Loop() {
			var buf bytes.Buffer
			if err := gob.NewEncoder(&buf).Encode(old); err != nil {
				b.Fatal(err)
			}
		}
	})
}
