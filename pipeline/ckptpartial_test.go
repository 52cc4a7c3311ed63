package pipeline

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// A partial's checkpoint bytes give back what content() holds, whatever
// the shape: sealed Cells and an aggregation table at once, more sums and
// sets than a table record holds inline, sets past their inline members
// and past their list.
func TestCheckpointBytesGiveBackThePartialsContent(t *testing.T) {
	for _, shape := range []struct{ sums, sets int }{{0, 0}, {2, 1}, {8, 2}, {flatSums + 3, flatSets + 2}} {
		r := rand.New(rand.NewPCG(uint64(shape.sums), uint64(shape.sets)))
		fc := newFlatCase(shape.sums, shape.sets)
		fc.add(r, 4_000)
		fc.p.Seal() // Cells now
		fc.add(r, 4_000)
		if fc.p.flat == nil || len(fc.p.Cells) == 0 {
			t.Fatalf("%+v: want both Cells and a table", shape)
		}
		fc.p.Events = 8_000
		b := appendPartial(nil, fc.p)
		back, err := decodePartial(b, Window{Start: 5, End: 9})
		if err != nil {
			t.Fatalf("%+v: %v", shape, err)
		}
		if err := diffCells(back.Cells, fc.want); err != nil {
			t.Errorf("%+v: decoded: %v", shape, err)
		}
		if back.Dataset != fc.p.Dataset || back.Events != 8_000 || back.Window != (Window{Start: 5, End: 9}) {
			t.Errorf("%+v: decoded %s, %d events, window %v", shape, back.Dataset, back.Events, back.Window)
		}
		// Writing the checkpoint neither seals nor changes the partial.
		if fc.p.flat == nil {
			t.Errorf("%+v: appendPartial sealed the partial", shape)
		}
	}
}

// Damaged bytes are an error naming what could not be read, never a crash
// and never a partial with less in it.
func TestDamagedCheckpointBytesAreRefused(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fc := newFlatCase(3, 2)
	fc.add(r, 60)
	fc.p.Seal()
	fc.add(r, 60)
	b := appendPartial(nil, fc.p)
	for n := range len(b) {
		if _, err := decodePartial(b[:n], Window{}); err == nil {
			t.Fatalf("the first %d of %d bytes decoded without an error", n, len(b))
		}
	}
	if _, err := decodePartial(append(bytes.Clone(b), 0), Window{}); err == nil || !strings.Contains(err.Error(), "bytes after the end") {
		t.Errorf("a byte after the end: %v", err)
	}
	for range 1_000 {
		c := bytes.Clone(b)
		c[r.IntN(len(c))] ^= byte(1 + r.IntN(255))
		decodePartial(c, Window{}) // an error or a partial; never a panic
	}
}

// A checkpoint of the formats before is refused with the format named and
// what to do, not reported as damage: format 6 held the partials' bytes in
// the gob value, format 5 snapshot structs.
func TestACheckpointOfTheFormatBeforeIsRefused(t *testing.T) {
	type v5Partial struct {
		Present bool
		Dataset string
	}
	type v5Window struct {
		W        Window
		Partials []v5Partial
	}
	type v5Checkpoint struct {
		Version   int
		Partition PartitionID
		Seq       int64
		Open      []v5Window
	}
	type v6Window struct {
		W        Window
		Keys     int64
		Partials [][]byte
	}
	type v6Checkpoint struct {
		Version   int
		Partition PartitionID
		Seq       int64
		Open      []v6Window
		Handed    []v6Window
	}
	id := PartitionID{Source: "events", Partition: 0}
	for _, c := range []struct {
		format int
		value  any
	}{
		{5, v5Checkpoint{Version: 5, Partition: id, Seq: 1,
			Open: []v5Window{{Partials: []v5Partial{{Present: true, Dataset: "d"}}}}}},
		{6, v6Checkpoint{Version: 6, Partition: id, Seq: 1,
			Open: []v6Window{{Partials: [][]byte{[]byte("partial bytes")}}}, Handed: []v6Window{{Partials: [][]byte{nil}}}}},
	} {
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(c.value); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		store := newMemStore()
		cs, err := NewCheckpoints(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		p := cs.partition(id)
		if err := store.Put(ctx, p.checkpointKey(1), buf.Bytes(), true); err != nil {
			t.Fatal(err)
		}
		_, _, err = p.load(ctx)
		want := fmt.Sprintf("format %d and this deid reads format %d", c.format, checkpointVersion)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "start over") {
			t.Errorf("format %d: load = %v, want the format named and what to do", c.format, err)
		}
	}
}

// The partials after a checkpoint's header must account for every byte:
// a checkpoint cut short, or with bytes after its partials, is damaged.
func TestACheckpointsPartialsAccountForItsBytes(t *testing.T) {
	ctx := context.Background()
	id := PartitionID{Source: "events", Partition: 0}
	ow := &openWindow{w: Window{Start: 0, End: 10}, partials: []*Partial{NewPartial("d", Window{Start: 0, End: 10}), nil}}
	ow.partials[0].Events = 3
	snap := snapWindow(ow, 0, nil)
	cp := &checkpoint{Version: checkpointVersion, Partition: id, Seq: 1, Handed: []windowSnap{snap, snap}}
	b, err := encodeCheckpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"whole", b, ""},
		{"cut short", b[:len(b)-1], "remain"},
		{"a byte after", append(bytes.Clone(b), 0), "1 bytes after the windows' partials"},
	} {
		store := newMemStore()
		cs, err := NewCheckpoints(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		p := cs.partition(id)
		if err := store.Put(ctx, p.checkpointKey(1), c.b, true); err != nil {
			t.Fatal(err)
		}
		got, _, err := p.load(ctx)
		if c.want == "" {
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			for i, ws := range got.Handed {
				if len(ws.partials) != len(snap.partials) || !bytes.Equal(ws.partials[0], snap.partials[0]) || len(ws.partials[1]) != 0 {
					t.Errorf("%s: handed window %d's partials %q, saved %q", c.name, i, ws.partials, snap.partials)
				}
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("%s: load = %v, want damage: %s", c.name, err, c.want)
		}
	}
}

// BenchmarkCheckpointPartial encodes a closed window's partial for the
// checkpoint, as the worker does when it hands the window over: from its
// aggregation table (before Seal, what the worker does) and from the
// Cells that Seal builds (what the worker did before). The partial is
// about a day's window of one partition of the benchmark input: 60 000
// events, nearly each its own contribution, in cells of five dimensions,
// 400 workspaces, two sets (creators, campaigns) of a member or a few.
func BenchmarkCheckpointPartial(b *testing.B) {
	build := func() *Partial {
		r := rand.New(rand.NewPCG(1, 2))
		p := NewPartial("d", Window{})
		pseudo := func(i int) Pseudonym { return Pseudonym(keyOf(uint64(i))) }
		values := make([][]string, 5)
		for d := range values {
			for v := range 4 + 3*d {
				values[d] = append(values[d], fmt.Sprintf("d%dv%d", d, v))
			}
		}
		for range 60_000 {
			var a Addend
			for d := range values {
				a.Cell[d] = p.ValueID(d, values[d][r.IntN(len(values[d]))], sameValue{})
			}
			a.WS = pseudo(r.IntN(400))
			a.Sums = []int64{r.Int64N(1000), r.Int64N(100), r.Int64N(10), 1}
			a.Members = []Pseudonym{pseudo(10_000 + r.IntN(3000)), pseudo(20_000 + r.IntN(800))}
			a.Has = []bool{true, r.IntN(4) > 0}
			p.Add(&a)
			p.Events++
		}
		return p
	}
	b.Run("table", func(b *testing.B) {
		p := build()
		var out []byte
		for b.Loop() {
			out = appendPartial(make([]byte, 0, partialSizeHint(p)), p)
		}
		b.ReportMetric(float64(p.contributions()), "contributions")
		b.ReportMetric(float64(len(out))/float64(p.contributions()), "B/contribution")
	})
	b.Run("sealed", func(b *testing.B) {
		p := build()
		p.Seal()
		for b.Loop() {
			appendPartial(make([]byte, 0, partialSizeHint(p)), p)
		}
	})
}
