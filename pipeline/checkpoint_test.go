package pipeline

import (
	"bytes"
	"encoding/gob"
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
	snap := snapWindow(ow, true)
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(snap); err != nil {
		t.Fatal(err)
	}
	var back windowSnap
	if err := gob.NewDecoder(&buf).Decode(&back); err != nil {
		t.Fatal(err)
	}
	got := back.restore().seen
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
