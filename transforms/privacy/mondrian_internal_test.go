package privacy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mya/deid/pipeline"
)

// TestQuickVerdictAgreesWithJudge checks that the mondrian search's
// verdicts, taken from the flattened contributions, are judge's on random
// boxes of random partials: whether the box passes, and whether a failing
// box failed on frequency (which decides whether the search looks inside
// it at all).
func TestQuickVerdictAgreesWithJudge(t *testing.T) {
	spec := testSpec()
	spec.Privacy.Generalization = pipeline.GeneralizeMondrian
	pl, err := compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(42, 11))
	seen := map[string]int{}
	// Two boxes at the edge of k = 3 creators: exactly 3 pass, 2 fail.
	edge := []*pipeline.Partial{
		partial(map[string][]contrib{"EU.DE|a": {c("w1", 100, "x", "y"), c("w2", 100, "y", "z"), c("w3", 100, "x")}}),
		partial(map[string][]contrib{"EU.DE|a": {c("w1", 100, "x", "y"), c("w2", 100, "y"), c("w3", 100, "x")}}),
	}
	for iter := range 300 + len(edge) {
		var p *pipeline.Partial
		if iter < len(edge) {
			p = edge[iter]
		} else {
			p = randomPartial(rng)
		}
		r, cells, err := newRun(pl, p)
		if err != nil {
			t.Fatal(err)
		}
		r.number(cells)
		r.flatten(cells)
		// Large boxes, and small ones as most of the search's are: one or
		// two cells.
		var boxes [][]int32
		for range 20 {
			keep := []int{1, 2, 3, 10}[rng.IntN(4)] // keep a cell with chance 1 − 1/keep
			var box []int32
			for _, c := range cells {
				if keep == 1 || rng.IntN(keep) > 0 {
					box = append(box, c)
				}
			}
			boxes = append(boxes, box)
		}
		for range 40 {
			a, b := rng.IntN(len(cells)), rng.IntN(len(cells))
			if a == b {
				boxes = append(boxes, []int32{cells[a]})
			} else {
				boxes = append(boxes, []int32{cells[min(a, b)], cells[max(a, b)]})
			}
		}
		for _, box := range boxes {
			if len(box) == 0 {
				continue
			}
			want, got := r.judge(box, false), r.quickVerdict(box, -1)
			if counted := r.quickVerdict(box, r.contribs(box)); counted != got {
				t.Fatalf("partial %d, box %v: quickVerdict with the contributions counted gives %+v, without %+v", iter, r.keysOf(box), counted, got)
			}
			if got.pass != want.pass || got.frequency != want.frequency {
				t.Fatalf("partial %d, box of %d cells %v: quickVerdict gives pass %v, frequency %v; judge pass %v, frequency %v",
					iter, len(box), r.keysOf(box), got.pass, got.frequency, want.pass, want.frequency)
			}
			switch {
			case want.pass:
				seen["pass"]++
			case want.frequency:
				seen["frequency"]++
			default:
				seen["dominance or overflow"]++
			}
		}
	}
	for _, outcome := range []string{"pass", "frequency", "dominance or overflow"} {
		if seen[outcome] < 50 {
			t.Errorf("only %d boxes with outcome %q: %v", seen[outcome], outcome, seen)
		}
	}
	t.Logf("outcomes: %v", seen)
}

// TestQuickVerdictAgreesWithJudgeOnManyMeasures checks the search's
// verdicts against judge's where its dominance measures are added up side
// by side: three sums (fewer than the row's eight slots) and eleven (more),
// with values near the limit of int64, so that boxes' sums overflow, and
// negative ones.
func TestQuickVerdictAgreesWithJudgeOnManyMeasures(t *testing.T) {
	for _, nSums := range []int{3, 11} {
		spec := testSpec()
		spec.Privacy.Generalization = pipeline.GeneralizeMondrian
		spec.Measures = spec.Measures[:4] // events and the distinct counts
		spec.Privacy.DominanceMeasures = []string{"events"}
		for i := range nSums {
			name := fmt.Sprintf("sum%d", i)
			spec.Measures = append(spec.Measures, pipeline.Measure{Name: name, Kind: pipeline.MeasureSum, Fields: []string{name}})
			spec.Privacy.DominanceMeasures = append(spec.Privacy.DominanceMeasures, name)
		}
		pl, err := compile(spec)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, uint64(nSums)))
		seen := map[bool]int{}
		for iter := range 300 {
			p := pipeline.NewPartial("test", pipeline.Window{Start: 0, End: 86_400_000_000})
			huge, negative := iter%3 == 1, iter%7 == 3
			for range 1 + rng.IntN(20) {
				key := pipeline.CellKey{[]string{"EU.DE", "EU.FR", "NA.US"}[rng.IntN(3)], []string{"a", "b"}[rng.IntN(2)]}
				if p.Cells[key] == nil {
					p.Cells[key] = map[pipeline.Pseudonym]*pipeline.Contribution{}
				}
				ct := pipeline.NewContribution(nSums, 2)
				ct.Events = 1 + rng.Int64N(10)
				for i := range ct.Sums {
					ct.Sums[i] = rng.Int64N(1000)
					if huge && rng.IntN(4) == 0 {
						ct.Sums[i] = math.MaxInt64/2 + rng.Int64N(1000)
					}
					if negative && rng.IntN(8) == 0 {
						ct.Sums[i] = -1
					}
				}
				for range 1 + rng.IntN(3) {
					ct.Sets[0].Add(pz.Of(fmt.Appendf(nil, "creator-%d", rng.IntN(20))))
				}
				p.Cells[key][wsOf(fmt.Sprintf("w%d", rng.IntN(12)))] = ct
			}
			r, cells, err := newRun(pl, p)
			if err != nil {
				t.Fatal(err)
			}
			r.number(cells)
			r.flatten(cells)
			for range 10 {
				var box []int32
				for _, c := range cells {
					if rng.IntN(3) > 0 {
						box = append(box, c)
					}
				}
				if len(box) == 0 {
					continue
				}
				want, got := r.judge(box, false), r.quickVerdict(box, -1)
				if got.pass != want.pass || got.frequency != want.frequency {
					t.Fatalf("%d sums, partial %d, box %v: quickVerdict gives pass %v, frequency %v; judge pass %v, frequency %v",
						nSums, iter, r.keysOf(box), got.pass, got.frequency, want.pass, want.frequency)
				}
				seen[want.pass]++
			}
		}
		if seen[true] < 20 || seen[false] < 20 {
			t.Errorf("%d sums: %d boxes pass and %d fail; the test wants both", nSums, seen[true], seen[false])
		}
	}
}
