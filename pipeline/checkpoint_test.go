package pipeline

import (
	"bytes"
	"encoding/gob"
	"os"
	"slices"
	"strings"
	"testing"
)

// What a checkpoint costs for a window's dedup keys: the format-3 way,
// every key of the window encoded again at each checkpoint, against the key
// log, each key appended once and made durable by the checkpoint after it.
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
		cps, err := NewCheckpoints(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		log, err := cps.openKeyLog(PartitionID{Source: "b"}, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer log.remove()
		i := uint64(0)
		for b.Loop() {
			for range 50_000 {
				log.add(keyOf(i))
				i++
			}
			if _, err := log.sync(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A window's dedup keys survive a checkpoint through its key log: the keys
// the checkpoint counts, no more and no fewer. Keys added after it are
// dropped on restore, and the log goes on after the last key it counts.
func TestCheckpointKeepsTheDedupSet(t *testing.T) {
	cps, err := NewCheckpoints(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, start := PartitionID{Source: "in", Partition: 3}, int64(86_400_000_000)
	log, err := cps.openKeyLog(id, start, 0)
	if err != nil {
		t.Fatal(err)
	}
	log.add(dedupKey{}) // the all-zero key is a key too
	for i := range 1000 {
		log.add(keyOf(uint64(i)))
	}
	n, err := log.sync()
	if err != nil || n != 1001 {
		t.Fatalf("sync = %d, %v; want 1001 keys", n, err)
	}
	for i := 1000; i < 1500; i++ { // after the checkpoint
		log.add(keyOf(uint64(i)))
	}
	log.sync()
	log.close()

	restore := func(n int64) *dedupSet {
		t.Helper()
		keys, err := cps.readKeys(id, start, n)
		if err != nil {
			t.Fatal(err)
		}
		return (&windowSnap{W: Window{Start: start}}).restore(keys).seen
	}
	got := restore(1001)
	if got.Len() != 1001 || !got.Has(dedupKey{}) || !got.Has(keyOf(999)) || got.Has(keyOf(1000)) {
		t.Fatalf("restored %d keys (zero key %v, key 999 %v, key 1000 %v); want the 1001 the checkpoint counts",
			got.Len(), got.Has(dedupKey{}), got.Has(keyOf(999)), got.Has(keyOf(1000)))
	}

	// Reopened after the checkpoint's keys, the log forgets the later ones.
	log, err = cps.openKeyLog(id, start, 1001)
	if err != nil {
		t.Fatal(err)
	}
	log.add(keyOf(7777))
	if n, err := log.sync(); err != nil || n != 1002 {
		t.Fatalf("sync = %d, %v; want 1002", n, err)
	}
	log.close()
	if got := restore(1002); got.Len() != 1002 || !got.Has(keyOf(7777)) || got.Has(keyOf(1000)) {
		t.Fatalf("after reopening: %d keys, 7777 %v, 1000 %v", got.Len(), got.Has(keyOf(7777)), got.Has(keyOf(1000)))
	}
	if _, err := cps.readKeys(id, start, 1003); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("reading more keys than the log holds: %v; want an error naming the damage", err)
	}

	// Logs of windows the checkpoint does not list go; its own stay, and so
	// do other partitions'.
	other, _ := cps.openKeyLog(PartitionID{Source: "in", Partition: 4}, start, 0)
	other.close()
	stale, _ := cps.openKeyLog(id, 0, 0)
	stale.close()
	if err := cps.removeKeyLogs(id, map[int64]bool{start: true}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		cps.keyLogPath(id, start): true, cps.keyLogPath(id, 0): false,
		cps.keyLogPath(PartitionID{Source: "in", Partition: 4}, start): true,
	} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s: there %v, want %v", path, err == nil, want)
		}
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
	back := gobRoundTrip(t, snapWindow(&openWindow{w: w, seen: newDedupSet(0), partials: []*Partial{p, nil}}, 0))
	if err := (&checkpoint{Open: []windowSnap{*back}}).check(); err != nil {
		t.Fatal(err)
	}
	ow := back.restore(nil)
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
