package pipeline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// sameValue is a hierarchy whose level 0 is the value itself.
type sameValue struct{}

func (sameValue) Levels() int { return 2 }
func (sameValue) Generalize(v string, level int) string {
	return map[bool]string{true: v, false: "*"}[level == 0]
}
func (sameValue) Domain(int) []string { return nil }
func (sameValue) Describe() string    { return "value" }

// flatCase aggregates random events of one shape into a partial through
// its flat table, and the same events into a reference built the way
// contributions merge (Contribution, EntitySet).
type flatCase struct {
	nSums, nSets int
	p            *Partial
	want         map[CellKey]map[Pseudonym]*Contribution
}

func newFlatCase(nSums, nSets int) *flatCase {
	return &flatCase{nSums: nSums, nSets: nSets, p: NewPartial("d", Window{}),
		want: map[CellKey]map[Pseudonym]*Contribution{}}
}

// add aggregates n random events: 3 dimensions of a few values each, 40
// workspaces, members from pools small enough that a set fills its
// inline places, its list and its map, a sum now and then near the top of
// int64, and absent members.
func (fc *flatCase) add(r *rand.Rand, n int) {
	pseudo := func(i int) Pseudonym { return Pseudonym(keyOf(uint64(i))) }
	for range n {
		var key CellKey
		var a Addend
		for d := range 3 {
			key[d] = fmt.Sprintf("v%d", r.IntN(3+d))
			// Each value from its own string, as a decoder that shares
			// nothing would hand them out.
			a.Cell[d] = fc.p.ValueID(d, string([]byte(key[d])), sameValue{})
		}
		a.WS = pseudo(r.IntN(40))
		a.Sums = make([]int64, fc.nSums)
		for i := range a.Sums {
			a.Sums[i] = r.Int64N(1000)
			if r.IntN(2000) == 0 {
				a.Sums[i] = math.MaxInt64 - 500
			}
		}
		a.Overflow = r.IntN(5000) == 0
		a.Members, a.Has = make([]Pseudonym, fc.nSets), make([]bool, fc.nSets)
		for i := range a.Members {
			// Set i draws from 1+i*40 members: past the inline places and,
			// from the second set on, past the list into a map.
			a.Members[i], a.Has[i] = pseudo(1000*(i+1)+r.IntN(1+i*40)), r.IntN(10) > 0
		}
		fc.p.Add(&a)

		byWS := fc.want[key]
		if byWS == nil {
			byWS = map[Pseudonym]*Contribution{}
			fc.want[key] = byWS
		}
		c := byWS[a.WS]
		if c == nil {
			c = NewContribution(fc.nSums, fc.nSets)
			byWS[a.WS] = c
		}
		var ok bool
		if c.Events, ok = AddInt64(c.Events, 1); !ok {
			c.Overflow = true
		}
		for i, v := range a.Sums {
			if c.Sums[i], ok = AddInt64(c.Sums[i], v); !ok {
				c.Overflow = true
			}
		}
		c.Overflow = c.Overflow || a.Overflow
		for i := range a.Members {
			if a.Has[i] {
				c.Sets[i].Add(a.Members[i])
			}
		}
	}
}

// diffCells returns the first difference between two partials' contents.
func diffCells(got, want map[CellKey]map[Pseudonym]*Contribution) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d cells, want %d", len(got), len(want))
	}
	for key, wantWS := range want {
		gotWS := got[key]
		if len(gotWS) != len(wantWS) {
			return fmt.Errorf("cell %q: %d contributions, want %d", key, len(gotWS), len(wantWS))
		}
		for ws, w := range wantWS {
			g := gotWS[ws]
			if g == nil {
				return fmt.Errorf("cell %q: workspace %x missing", key, ws[:4])
			}
			if g.Events != w.Events || !slices.Equal(g.Sums, w.Sums) || g.Overflow != w.Overflow || len(g.Sets) != len(w.Sets) {
				return fmt.Errorf("cell %q workspace %x: events %d sums %v overflow %t sets %d, want %d %v %t %d", key, ws[:4],
					g.Events, g.Sums, g.Overflow, len(g.Sets), w.Events, w.Sums, w.Overflow, len(w.Sets))
			}
			for i := range w.Sets {
				if gs, ws2 := g.Sets[i].Sorted(), w.Sets[i].Sorted(); !slices.Equal(gs, ws2) {
					return fmt.Errorf("cell %q workspace %x: set %d has %d members, want %d", key, ws[:4], i, len(gs), len(ws2))
				}
			}
		}
	}
	return nil
}

// cloneCells copies a partial's content deeply.
func cloneCells(m map[CellKey]map[Pseudonym]*Contribution) map[CellKey]map[Pseudonym]*Contribution {
	out := map[CellKey]map[Pseudonym]*Contribution{}
	for key, byWS := range m {
		out[key] = map[Pseudonym]*Contribution{}
		for ws, c := range byWS {
			d := NewContribution(len(c.Sums), len(c.Sets))
			d.Merge(c)
			out[key][ws] = d
		}
	}
	return out
}

// The flat table aggregates exactly as contributions merge, for every
// shape: no sums or sets, the default datasets' (up to eight sums and two
// sets, all in the record) and wider ones (the rest beside it). What a
// checkpoint reads before handover (content) and Cells after Seal are the
// same content.
func TestFlatTableAggregatesLikeContributions(t *testing.T) {
	for _, shape := range [][2]int{{0, 0}, {1, 1}, {8, 2}, {11, 4}} {
		t.Run(fmt.Sprintf("%d sums and %d sets", shape[0], shape[1]), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(shape[0]), uint64(shape[1])))
			fc := newFlatCase(shape[0], shape[1])
			fc.add(r, 20_000)
			if len(fc.p.Cells) != 0 {
				t.Fatalf("Cells has %d cells while the partial aggregates, want none before Seal", len(fc.p.Cells))
			}
			if err := diffCells(fc.p.content(), fc.want); err != nil {
				t.Fatalf("content before Seal: %v", err)
			}
			if got := fc.p.contributions(); got != countContributions(fc.want) {
				t.Errorf("contributions() = %d, want %d", got, countContributions(fc.want))
			}
			fc.p.Seal()
			if err := diffCells(fc.p.Cells, fc.want); err != nil {
				t.Fatalf("Cells after Seal: %v", err)
			}
			fc.p.Seal() // a second Seal changes nothing
			if err := diffCells(fc.p.Cells, fc.want); err != nil {
				t.Fatalf("Cells after a second Seal: %v", err)
			}
		})
	}
}

func countContributions(m map[CellKey]map[Pseudonym]*Contribution) int {
	n := 0
	for _, byWS := range m {
		n += len(byWS)
	}
	return n
}

// A partial whose Cells already hold contributions (restored from a
// checkpoint, or sealed and then added to) keeps them: what the flat
// table aggregates on top is merged in by Seal, and shown merged by
// content without changing Cells.
func TestFlatTableMergesIntoCellsItHolds(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	fc := newFlatCase(8, 2)
	fc.add(r, 5_000)
	fc.p.Seal()
	sealed := cloneCells(fc.p.Cells)
	fc.add(r, 5_000)
	if err := diffCells(fc.p.Cells, sealed); err != nil {
		t.Fatalf("Cells changed while the partial aggregated on top of them: %v", err)
	}
	if err := diffCells(fc.p.content(), fc.want); err != nil {
		t.Fatalf("content: %v", err)
	}
	if err := diffCells(fc.p.Cells, sealed); err != nil {
		t.Fatalf("content changed Cells: %v", err)
	}
	fc.p.Seal()
	if err := diffCells(fc.p.Cells, fc.want); err != nil {
		t.Fatalf("Cells after the second Seal: %v", err)
	}
}

// Merge seals both partials: contributions still in a flat table count.
func TestMergeSealsBothPartials(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	a, b := newFlatCase(8, 2), newFlatCase(8, 2)
	a.add(r, 3_000)
	b.add(r, 3_000)
	want := cloneCells(a.want)
	(&Partial{Cells: want}).Merge(&Partial{Cells: cloneCells(b.want)})
	a.p.Merge(b.p)
	if err := diffCells(a.p.Cells, want); err != nil {
		t.Fatal(err)
	}
}

// An open window's checkpoint holds what its partials aggregated so far,
// and a restored window aggregates on where it stopped.
func TestCheckpointOfAnAggregatingPartial(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	fc := newFlatCase(8, 2)
	fc.add(r, 5_000)
	snap := gobRoundTrip(t, snapWindow(&openWindow{w: Window{}, seen: newDedupSet(0), partials: []*Partial{fc.p}}, 0, nil))
	ow, err := snap.restore(nil)
	if err != nil {
		t.Fatal(err)
	}
	restored := ow.partials[0]
	if err := diffCells(restored.Cells, fc.want); err != nil {
		t.Fatalf("restored: %v", err)
	}
	fc.p = restored
	fc.add(r, 5_000)
	fc.p.Seal()
	if err := diffCells(fc.p.Cells, fc.want); err != nil {
		t.Fatalf("aggregated on after the restore: %v", err)
	}
}

// A contribution record is two cache lines.
func TestFlatRecordIs128Bytes(t *testing.T) {
	if n := unsafe.Sizeof(flatRecord{}); n != 128 {
		t.Errorf("flatRecord is %d bytes, want 128", n)
	}
}

// Ids of the entity table are dense, stable and distinct, through growth,
// for pseudonyms that differ in one byte only.
func TestEntityTableGivesDenseIDs(t *testing.T) {
	var e entityTable
	e.init()
	want := map[Pseudonym]uint32{}
	for i := range 50_000 {
		var p Pseudonym
		p[i%16] = byte(i / 16)
		p[(i+7)%16] ^= byte(i >> 12)
		id := e.id(&p)
		if w, ok := want[p]; ok {
			if id != w {
				t.Fatalf("pseudonym %x: id %d, earlier %d", p, id, w)
			}
			continue
		}
		if int(id) != len(want)+1 {
			t.Fatalf("new pseudonym %x: id %d, want %d", p, id, len(want)+1)
		}
		want[p] = id
	}
	for p, id := range want {
		if got := e.id(&p); got != id || e.ps[id] != p {
			t.Fatalf("after growth, pseudonym %x: id %d (%x), want %d", p, got, e.ps[got], id)
		}
	}
}

// Sums that overflow int64 mark the contribution, in the record and in the
// sums beside it; so does an overflow the aggregator saw within an event.
func TestFlatTableMarksOverflow(t *testing.T) {
	for _, tt := range []struct {
		name     string
		sum      int
		overflow bool
	}{
		{"a sum in the record", 3, false},
		{"a sum beside the record", 9, false},
		{"an event's own fields", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPartial("d", Window{})
			a := Addend{Sums: make([]int64, 10)}
			a.Cell[0] = p.ValueID(0, "v", sameValue{})
			a.Sums[tt.sum] = math.MaxInt64 - 10
			p.Add(&a)
			a.Overflow = tt.overflow
			if !tt.overflow {
				a.Sums[tt.sum] = 11
			}
			p.Add(&a)
			p.Seal()
			c := p.Cells[CellKey{"v"}][Pseudonym{}]
			if c == nil || !c.Overflow {
				t.Fatalf("contribution %+v, want it marked overflow", c)
			}
		})
	}
	p := NewPartial("d", Window{})
	a := Addend{Sums: []int64{math.MaxInt64 - 10}}
	p.Add(&a)
	p.Add(&Addend{Sums: []int64{10}})
	p.Seal()
	if c := p.Cells[CellKey{}][Pseudonym{}]; c == nil || c.Overflow || c.Sums[0] != math.MaxInt64 {
		t.Errorf("contribution %+v, want the sum at the top of int64 without overflow", c)
	}
}
