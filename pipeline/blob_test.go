package pipeline

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// appendBlob writes, straight from the partial, the very bytes of the
// reference encoder (snapshot structs, sorted): a blob's name is its
// SHA-256, so the bytes may never change with the encoder. readBlob reads
// back the same content.
func TestAppendBlobWritesTheReferenceBytes(t *testing.T) {
	id := PartitionID{Source: "events", Partition: 4}
	for _, shape := range []struct{ sums, sets int }{{0, 0}, {2, 1}, {8, 2}, {flatSums + 3, flatSets + 2}} {
		for _, sealed := range []bool{true, false} {
			r := rand.New(rand.NewPCG(uint64(shape.sums+10), uint64(shape.sets)))
			fc := newFlatCase(shape.sums, shape.sets)
			fc.add(r, 3_000)
			fc.p.Seal()
			fc.add(r, 3_000)
			if sealed {
				fc.p.Seal()
			}
			fc.p.Events, fc.p.Window = 6_000, Window{Start: 100, End: 200}
			got := appendBlob(nil, id, fc.p)
			want := encodeBlob(&partialBlob{Version: blobVersion, Partition: id, Window: fc.p.Window, Partial: sortedSnap(fc.p)})
			if !bytes.Equal(got, want) {
				t.Fatalf("%+v sealed %v: appendBlob wrote %d bytes unlike the reference's %d", shape, sealed, len(got), len(want))
			}
			head, back, err := readBlob(got)
			if err != nil {
				t.Fatalf("%+v: %v", shape, err)
			}
			if head != (blobHead{Version: blobVersion, Partition: id, Window: fc.p.Window}) || back.Dataset != "d" || back.Events != 6_000 {
				t.Errorf("%+v: read %+v, %s, %d events", shape, head, back.Dataset, back.Events)
			}
			if err := diffCells(back.Cells, fc.want); err != nil {
				t.Errorf("%+v sealed %v: read back: %v", shape, sealed, err)
			}
			ref, err := decodeBlob(got)
			if err != nil {
				t.Fatalf("%+v: the reference decoder: %v", shape, err)
			}
			if err := diffCells(back.Cells, restoreSnap(&ref.Partial, ref.Window).Cells); err != nil {
				t.Errorf("%+v sealed %v: readBlob and the reference decoder differ: %v", shape, sealed, err)
			}
		}
	}
}

// A damaged blob is an error, never a crash: cut anywhere, a byte past its
// end, a workspace or a set that is not whole pseudonyms.
func TestADamagedBlobIsRefused(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	fc := newFlatCase(2, 2)
	fc.add(r, 80)
	fc.p.Seal()
	b := appendBlob(nil, PartitionID{Source: "e"}, fc.p)
	for n := range len(b) {
		if _, _, err := readBlob(b[:n]); err == nil {
			t.Fatalf("the first %d of %d bytes were read", n, len(b))
		}
	}
	if _, _, err := readBlob(append(bytes.Clone(b), 0)); err == nil {
		t.Error("a byte past the end was read")
	}
	bad := &partialBlob{Version: blobVersion, Partial: partialSnap{Present: true, Dataset: "d", Cells: []cellSnap{
		{WS: []contribSnap{{WS: []byte("short"), Sets: [][]byte{}}}}}}}
	if _, _, err := readBlob(encodeBlob(bad)); err == nil {
		t.Error("a 5-byte workspace pseudonym was read")
	}
	bad.Partial.Cells[0].WS[0] = contribSnap{WS: make([]byte, 16), Sets: [][]byte{[]byte("seventeen bytes!!")}}
	if _, _, err := readBlob(encodeBlob(bad)); err == nil {
		t.Error("a set of 17 bytes was read")
	}
	for range 1_000 {
		c := bytes.Clone(b)
		c[r.IntN(len(c))] ^= byte(1 + r.IntN(255))
		readBlob(c) // an error or a partial; never a panic
	}
}
