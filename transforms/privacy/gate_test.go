package privacy

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
)

// regionH is a test hierarchy: "EU.DE" → "EU" → "*".
type regionH struct{}

func (regionH) Levels() int { return 3 }
func (regionH) Generalize(v string, l int) string {
	switch {
	case l <= 0:
		return v
	case l == 1:
		before, _, _ := strings.Cut(v, ".")
		return before
	}
	return "*"
}
func (regionH) Domain(int) []string { return nil }
func (regionH) Describe() string    { return "continent.country → continent → *" }

// valueH is a test hierarchy: value → "*".
type valueH struct{}

func (valueH) Levels() int { return 2 }
func (valueH) Generalize(v string, l int) string {
	if l <= 0 {
		return v
	}
	return "*"
}
func (valueH) Domain(int) []string { return nil }
func (valueH) Describe() string    { return "value → *" }

// testSpec has two dimensions, region (3 levels) and tier (2 levels), a
// three-step ladder, k = 3 over workspaces and creators, (2, 85)
// dominance and p = 10 over spend.
func testSpec() *pipeline.DatasetSpec {
	return &pipeline.DatasetSpec{
		Name:       "test",
		Dimensions: []pipeline.Dimension{{Name: "region", Hierarchy: regionH{}}, {Name: "tier", Hierarchy: valueH{}}},
		Ladder:     []string{"region", "tier", "region"},
		Measures: []pipeline.Measure{
			{Name: "events", Kind: pipeline.MeasureCount},
			{Name: "workspaces", Kind: pipeline.MeasureDistinct, Entity: "workspaces"},
			{Name: "creators", Kind: pipeline.MeasureDistinct, Entity: "creators"},
			{Name: "campaigns", Kind: pipeline.MeasureDistinct, Entity: "campaigns"},
			{Name: "spend", Kind: pipeline.MeasureSum, Fields: []string{"spend_cents"}},
			{Name: "conversions", Kind: pipeline.MeasureSum, Fields: []string{"conversions"}},
			{Name: "cpa", Kind: pipeline.MeasureRatio, Numerator: "spend", Denominator: "conversions", Scale: 1000},
		},
		Entities: []pipeline.Entity{
			{Name: "workspaces", Field: "workspace_id", Protected: true},
			{Name: "creators", Field: "creator_id", Protected: true},
			{Name: "campaigns", Field: "campaign_id"},
		},
		Privacy: pipeline.Privacy{K: 3, DominanceN: 2, DominanceK: 85, PPercent: 10, DominanceMeasures: []string{"spend"},
			Generalization: pipeline.GeneralizeLadder},
	}
}

var pz = pipeline.NewPseudonymizer([]byte("test"))

// wsName maps pseudonyms back to test workspace names.
var wsName = map[pipeline.Pseudonym]string{}

func wsOf(name string) pipeline.Pseudonym {
	p := pz.Of([]byte(name))
	wsName[p] = name
	return p
}

// contrib is one test workspace's contribution: its name, events, spend,
// conversions and creators (each creator is also a campaign).
type contrib struct {
	ws          string
	events      int64
	spend, conv int64
	creators    []string
	overflow    bool
}

// c is shorthand for a contribution with one event per creator.
func c(ws string, spend int64, creators ...string) contrib {
	return contrib{ws: ws, events: int64(len(creators)), spend: spend, conv: 1, creators: creators}
}

// partial builds a partial from cells "region|tier" → contributions.
func partial(cells map[string][]contrib) *pipeline.Partial {
	p := pipeline.NewPartial("test", pipeline.Window{Start: 0, End: 86_400_000_000})
	for k, cs := range cells {
		region, tier, _ := strings.Cut(k, "|")
		key := pipeline.CellKey{region, tier}
		byWS := p.Cells[key]
		if byWS == nil {
			byWS = map[pipeline.Pseudonym]*pipeline.Contribution{}
			p.Cells[key] = byWS
		}
		for _, x := range cs {
			ct := pipeline.NewContribution(2, 2)
			ct.Events, ct.Sums[0], ct.Sums[1], ct.Overflow = x.events, x.spend, x.conv, x.overflow
			for _, cr := range x.creators {
				ct.Sets[0].Add(pz.Of([]byte("creator-" + cr)))
				ct.Sets[1].Add(pz.Of([]byte("campaign-" + cr)))
			}
			if old := byWS[wsOf(x.ws)]; old != nil {
				old.Merge(ct)
			} else {
				byWS[wsOf(x.ws)] = ct
			}
			p.Events += x.events
		}
	}
	return p
}

// render shows rows as "dims@level events ws creators campaigns spend conv cpa".
func render(res *pipeline.GateResult) (rows, suppressed []string) {
	for _, r := range res.Rows {
		var vals []string
		for _, v := range r.Values {
			switch {
			case v.Null:
				vals = append(vals, "null")
			case v.Float != 0:
				vals = append(vals, fmt.Sprintf("%.6g", v.Float))
			default:
				vals = append(vals, fmt.Sprint(v.Int))
			}
		}
		rows = append(rows, fmt.Sprintf("%s@%d %s", strings.Join(r.Dims, "|"), r.Level, strings.Join(vals, " ")))
	}
	for _, s := range res.Suppressed {
		suppressed = append(suppressed, fmt.Sprintf("%s@%d %s events=%d workspaces=%d", strings.Join(s.Dims, "|"), s.Level,
			s.Reason, s.Events, s.Workspaces))
	}
	return rows, suppressed
}

func apply(t *testing.T, spec *pipeline.DatasetSpec, p *pipeline.Partial) *pipeline.GateResult {
	t.Helper()
	res, err := New().Apply(spec, p)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

func TestApply(t *testing.T) {
	tests := []struct {
		name           string
		spec           func(*pipeline.DatasetSpec)
		cells          map[string][]contrib
		wantRows       []string
		wantSuppressed []string
	}{
		{
			name: "a cell of k workspaces and k creators is published at level 0",
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", 40, "c1"), c("w2", 30, "c2"), c("w3", 30, "c3", "c4"),
			}},
			wantRows: []string{"EU.DE|a@0 4 3 4 4 100 3 33333.3"},
		},
		{
			name: "a cell of k-1 workspaces fails on workspaces up to the last step and is suppressed",
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", 50, "c1", "c2"), c("w2", 50, "c3", "c4"),
			}},
			wantSuppressed: []string{"*|*@3 suppressed_frequency events=4 workspaces=2"},
		},
		{
			name: "k workspaces bringing k-1 distinct creators fail on creators",
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", 30, "c1"), c("w2", 30, "c2"), c("w3", 40, "c1", "c2"),
			}},
			wantSuppressed: []string{"*|*@3 suppressed_frequency events=4 workspaces=3"},
		},
		{
			name: "creators are counted over the union of the workspaces' sets",
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", 30, "c1", "c2"), c("w2", 30, "c2", "c3"), c("w3", 40, "c1", "c3"),
			}},
			wantRows: []string{"EU.DE|a@0 6 3 3 3 100 3 33333.3"},
		},
		{
			name: "dominance at exactly 85% passes",
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", 50, "c1"), c("w2", 35, "c2"), c("w3", 15, "c3"),
			}},
			wantRows: []string{"EU.DE|a@0 3 3 3 3 100 3 33333.3"},
		},
		{
			name: "dominance above 85% fails, up to suppression",
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", 500, "c1"), c("w2", 351, "c2"), c("w3", 149, "c3"),
			}},
			wantSuppressed: []string{"*|*@3 suppressed_dominance events=3 workspaces=3"},
		},
		{
			name: "a dominance measure with a zero total is not checked",
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", 0, "c1"), c("w2", 0, "c2"), c("w3", 0, "c3"),
			}},
			wantRows: []string{"EU.DE|a@0 3 3 3 3 0 3 0"},
		},
		{
			name: "the p% rule passes when the rest is exactly p% of the largest",
			spec: func(s *pipeline.DatasetSpec) { s.Privacy.DominanceK = 99 },
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", 500, "c1"), c("w2", 450, "c2"), c("w3", 50, "c3"),
			}},
			wantRows: []string{"EU.DE|a@0 3 3 3 3 1000 3 333333"},
		},
		{
			name: "the p% rule fails when the rest is just under p% of the largest",
			spec: func(s *pipeline.DatasetSpec) { s.Privacy.DominanceK = 99 },
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", 500, "c1"), c("w2", 451, "c2"), c("w3", 49, "c3"),
			}},
			wantSuppressed: []string{"*|*@3 suppressed_dominance events=3 workspaces=3"},
		},
		{
			name: "a contribution marked as overflowed fails its cell closed",
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", 30, "c1"), c("w2", 30, "c2"), {ws: "w3", events: 1, spend: 40, conv: 1, creators: []string{"c3"}, overflow: true},
			}},
			wantSuppressed: []string{"*|*@3 suppressed_dominance events=3 workspaces=3"},
		},
		{
			name: "a total that overflows int64 fails its cell closed",
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", math.MaxInt64/3+1, "c1"), c("w2", math.MaxInt64/3+1, "c2"), c("w3", math.MaxInt64/3+1, "c3"),
			}},
			wantSuppressed: []string{"*|*@3 suppressed_dominance events=3 workspaces=3"},
		},
		{
			name: "a total near the int64 limit is judged exactly, though 100·X overflows int64",
			cells: map[string][]contrib{"EU.DE|a": {
				c("w1", math.MaxInt64/3, "c1"), c("w2", math.MaxInt64/3, "c2"), c("w3", math.MaxInt64/3, "c3"),
			}},
			wantRows: []string{fmt.Sprintf("EU.DE|a@0 3 3 3 3 %d 3 %.6g", int64(math.MaxInt64/3*3), 1000*float64(math.MaxInt64/3*3)/3)},
		},
		{
			name: "a failing sibling is generalized alone: the passing cell keeps only its data, the parent row only the failing cells'",
			cells: map[string][]contrib{
				"EU.DE|a": {c("w1", 40, "c1"), c("w2", 30, "c2"), c("w3", 30, "c3")},
				"EU.FR|a": {c("w4", 10, "c4"), c("w5", 10, "c5")},
				"EU.IT|a": {c("w6", 10, "c6")},
			},
			wantRows: []string{
				"EU|a@1 3 3 3 3 30 3 10000",
				"EU.DE|a@0 3 3 3 3 100 3 33333.3",
			},
		},
		{
			name: "a failing cell with no failing sibling goes up alone and must pass on its own data",
			cells: map[string][]contrib{
				"EU.DE|a": {c("w1", 40, "c1"), c("w2", 30, "c2"), c("w3", 30, "c3")},
				"EU.FR|a": {c("w4", 10, "c4"), c("w5", 10, "c5")},
			},
			wantRows:       []string{"EU.DE|a@0 3 3 3 3 100 3 33333.3"},
			wantSuppressed: []string{"*|*@3 suppressed_frequency events=2 workspaces=2"},
		},
		{
			name: "a workspace in two merged cells counts once",
			cells: map[string][]contrib{
				"EU.FR|a": {c("w1", 10, "c1"), c("w2", 10, "c2")},
				"EU.IT|a": {c("w1", 10, "c3")},
			},
			wantSuppressed: []string{"*|*@3 suppressed_frequency events=3 workspaces=2"},
		},
		{
			name: "dominance is judged on a workspace's total over the merged cells",
			cells: map[string][]contrib{
				// Per contribution the top two are 40+40 = 80%; per workspace w1 holds 80 and w1+w2 90%.
				"EU.FR|a": {c("w1", 40, "c1"), c("w2", 10, "c2")},
				"EU.IT|a": {c("w1", 40, "c3"), c("w3", 10, "c4")},
			},
			wantSuppressed: []string{"*|*@3 suppressed_dominance events=4 workspaces=3"},
		},
		{
			name: "cells fail and climb the ladder until they pass: region, then tier",
			cells: map[string][]contrib{
				"EU.FR|a": {c("w1", 10, "c1")},
				"AS.JP|a": {c("w2", 10, "c2")},
				"EU.IT|b": {c("w3", 10, "c3")},
				"EU.DE|b": {c("w4", 10, "c4")},
				"EU.ES|c": {c("w5", 10, "c5")},
			},
			// Step 1 (region to continent): EU|a, AS|a, EU|b, EU|c all fail.
			// Step 2 (tier to *): EU|* has w1, w3, w4, w5 and passes; AS|* fails.
			// Step 3 (region to *): *|* has AS.JP alone and is suppressed.
			wantRows:       []string{"EU|*@2 4 4 4 4 40 4 10000"},
			wantSuppressed: []string{"*|*@3 suppressed_frequency events=1 workspaces=1"},
		},
		{
			name: "a ratio with a zero denominator is null",
			cells: map[string][]contrib{"EU.DE|a": {
				{ws: "w1", events: 1, spend: 30, creators: []string{"c1"}}, {ws: "w2", events: 1, spend: 30, creators: []string{"c2"}},
				{ws: "w3", events: 1, spend: 40, creators: []string{"c3"}},
			}},
			wantRows: []string{"EU.DE|a@0 3 3 3 3 100 0 null"},
		},
		{
			name: "without a ladder, a failing cell is suppressed at level 0",
			spec: func(s *pipeline.DatasetSpec) { s.Ladder = nil },
			cells: map[string][]contrib{
				"EU.DE|a": {c("w1", 40, "c1"), c("w2", 30, "c2"), c("w3", 30, "c3")},
				"EU.FR|a": {c("w4", 10, "c4")},
			},
			wantRows:       []string{"EU.DE|a@0 3 3 3 3 100 3 33333.3"},
			wantSuppressed: []string{"EU.FR|a@0 suppressed_frequency events=1 workspaces=1"},
		},
		{
			name: "rows are sorted by dimension values, one dimension after the other, then level",
			cells: map[string][]contrib{
				"NA.US|b":   {c("w1", 40, "c1"), c("w2", 30, "c2"), c("w3", 30, "c3")},
				"AS.JP|a":   {c("w1", 40, "c1"), c("w2", 30, "c2"), c("w3", 30, "c3")},
				"AS.IN|a":   {c("w4", 10, "c4")},
				"AS.KR|a":   {c("w5", 10, "c5"), c("w6", 10, "c6")},
				"other|a":   {c("w1", 40, "c1"), c("w2", 30, "c2"), c("w3", 30, "c3")},
				"other.x|a": {c("w4", 10, "c4")},
				"other.y|a": {c("w5", 10, "c5"), c("w6", 10, "c6")},
			},
			// "AS" sorts before "AS.JP"; a value without a dot is its own
			// parent, so "other|a" is published at level 0 and level 1.
			wantRows: []string{
				"AS|a@1 3 3 3 3 30 3 10000",
				"AS.JP|a@0 3 3 3 3 100 3 33333.3",
				"NA.US|b@0 3 3 3 3 100 3 33333.3",
				"other|a@0 3 3 3 3 100 3 33333.3",
				"other|a@1 3 3 3 3 30 3 10000",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec()
			if tt.spec != nil {
				tt.spec(spec)
			}
			p := partial(tt.cells)
			res := apply(t, spec, p)
			rows, suppressed := render(res)
			if diff := cmp.Diff(tt.wantRows, rows); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSuppressed, suppressed); diff != "" {
				t.Errorf("suppressed (-want +got):\n%s", diff)
			}
			checkConservation(t, p, res)
		})
	}
}

// TestMondrian: the mondrian strategy places what fails at level 0 in the
// finest cells that pass, one dimension at a time, whichever dimension
// that is; and when the failing cells fail even all together, the parts
// that pass are still published and only the rest is suppressed.
func TestMondrian(t *testing.T) {
	tests := []struct {
		name                     string
		cells                    map[string][]contrib
		wantLadder, wantMondrian []string
		wantSuppressed           []string
	}{
		{
			name: "two failing tiers of one country: the ladder raises the region first, mondrian only the tier",
			cells: map[string][]contrib{
				"EU.DE|a": {c("w1", 10, "c1"), c("w2", 10, "c2")},
				"EU.DE|b": {c("w3", 10, "c3"), c("w4", 10, "c4")},
			},
			wantLadder:   []string{"EU|*@2 4 4 4 4 40 4 10000"},
			wantMondrian: []string{"EU.DE|*@1 4 4 4 4 40 4 10000"},
		},
		{
			name: "failing cells that fail together: the part that passes is published, the rest suppressed",
			cells: map[string][]contrib{
				"EU.DE|a": {c("w1", 10, "c1"), c("w2", 10, "c2")},
				"EU.FR|a": {c("w3", 10, "c3"), c("w4", 10, "c4")},
				"NA.US|b": {c("w5", 1_000_000, "c5"), c("w6", 1, "c6"), c("w7", 1, "c7")},
			},
			wantLadder:     []string{"EU|a@1 4 4 4 4 40 4 10000"},
			wantMondrian:   []string{"EU|a@1 4 4 4 4 40 4 10000"},
			wantSuppressed: []string{"*|*@3 suppressed_dominance events=3 workspaces=3"},
		},
	}
	for _, tt := range tests {
		for _, strategy := range pipeline.Generalizations {
			t.Run(tt.name+"/"+strategy, func(t *testing.T) {
				spec := testSpec()
				spec.Privacy.Generalization = strategy
				p := partial(tt.cells)
				res := apply(t, spec, p)
				rows, suppressed := render(res)
				want := tt.wantMondrian
				if strategy == pipeline.GeneralizeLadder {
					want = tt.wantLadder
				}
				if diff := cmp.Diff(want, rows); diff != "" {
					t.Errorf("rows (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantSuppressed, suppressed); diff != "" {
					t.Errorf("suppressed (-want +got):\n%s", diff)
				}
				checkConservation(t, p, res)
			})
		}
	}
}

// TestEveryDominanceMeasureIsChecked gives cells whose first dominance
// measure (spend) is spread evenly and whose later one (conversions) is
// held by one workspace: the rules apply to every dominance measure, not
// just the first, and to every sum even when the declaration leaves it out.
func TestEveryDominanceMeasureIsChecked(t *testing.T) {
	// cc is a contribution with one creator and the given spend and conversions.
	cc := func(ws string, spend, conv int64) contrib {
		return contrib{ws: ws, events: 1, spend: spend, conv: conv, creators: []string{ws}}
	}
	both := []string{"spend", "conversions"}
	tests := []struct {
		name           string
		dominance      []string
		dominanceK     int
		cells          map[string][]contrib
		wantRows       []string
		wantSuppressed []string
	}{
		{
			name: "a cell that passes on both measures is published", dominance: both, dominanceK: 85,
			cells:    map[string][]contrib{"EU.DE|a": {cc("w1", 34, 3), cc("w2", 33, 3), cc("w3", 33, 3)}},
			wantRows: []string{"EU.DE|a@0 3 3 3 3 100 9 11111.1"},
		},
		{
			name: "the first measure passes and the second fails dominance", dominance: both, dominanceK: 85,
			cells:          map[string][]contrib{"EU.DE|a": {cc("w1", 34, 98), cc("w2", 33, 1), cc("w3", 33, 1)}},
			wantSuppressed: []string{"*|*@3 suppressed_dominance events=3 workspaces=3"},
		},
		{
			name: "the first measure passes and the second fails the p% rule", dominance: both, dominanceK: 99,
			// Conversions: the top two hold 95.1%, under 99%, but the rest
			// (49) is less than 10% of the largest (500).
			cells:          map[string][]contrib{"EU.DE|a": {cc("w1", 34, 500), cc("w2", 33, 451), cc("w3", 33, 49)}},
			wantSuppressed: []string{"*|*@3 suppressed_dominance events=3 workspaces=3"},
		},
		{
			name: "the same cell passes the p% rule when the rest is p% of the largest", dominance: both, dominanceK: 99,
			cells:    map[string][]contrib{"EU.DE|a": {cc("w1", 34, 500), cc("w2", 33, 450), cc("w3", 33, 50)}},
			wantRows: []string{"EU.DE|a@0 3 3 3 3 100 1000 100"},
		},
		{
			name: "a sum the declaration leaves out is checked for dominance all the same", dominance: []string{"spend"}, dominanceK: 85,
			cells:          map[string][]contrib{"EU.DE|a": {cc("w1", 34, 98), cc("w2", 33, 1), cc("w3", 33, 1)}},
			wantSuppressed: []string{"*|*@3 suppressed_dominance events=3 workspaces=3"},
		},
		{
			name: "a sum the declaration leaves out is checked for the p% rule all the same", dominance: []string{"events"}, dominanceK: 99,
			cells:          map[string][]contrib{"EU.DE|a": {cc("w1", 34, 500), cc("w2", 33, 451), cc("w3", 33, 49)}},
			wantSuppressed: []string{"*|*@3 suppressed_dominance events=3 workspaces=3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec()
			spec.Privacy.DominanceMeasures = tt.dominance
			spec.Privacy.DominanceK = tt.dominanceK
			p := partial(tt.cells)
			rows, suppressed := render(apply(t, spec, p))
			if diff := cmp.Diff(tt.wantRows, rows); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSuppressed, suppressed); diff != "" {
				t.Errorf("suppressed (-want +got):\n%s", diff)
			}
		})
	}
}

// checkConservation checks that every event ends in a row or a suppressed
// cell, and that EventsByLevel adds up.
func checkConservation(t *testing.T, p *pipeline.Partial, res *pipeline.GateResult) {
	t.Helper()
	var rows, suppressed, byLevel int64
	for _, r := range res.Rows {
		rows += r.Values[0].Int
	}
	for _, s := range res.Suppressed {
		suppressed += s.Events
	}
	for _, n := range res.EventsByLevel {
		byLevel += n
	}
	if rows+suppressed != p.Events || res.PublishedEvents != rows || byLevel != rows {
		t.Errorf("events: %d in rows + %d suppressed != %d contributed (PublishedEvents %d, EventsByLevel sum %d)",
			rows, suppressed, p.Events, res.PublishedEvents, byLevel)
	}
}

func TestApplyRefusesWhatItCannotApplyExactly(t *testing.T) {
	tests := []struct {
		name   string
		spec   func(*pipeline.DatasetSpec)
		change func(*pipeline.Partial)
		want   string
	}{
		{"k below the floor", func(s *pipeline.DatasetSpec) { s.Privacy.K = 2 }, nil,
			"privacy: dataset test: k = 2 is below the floor of 3"},
		{"dominance over a ratio", func(s *pipeline.DatasetSpec) { s.Privacy.DominanceMeasures = []string{"cpa"} }, nil,
			`privacy: dataset test: dominance measure "cpa" is neither a count nor a sum`},
		{"no dominance rule", func(s *pipeline.DatasetSpec) { s.Privacy.DominanceK = 100 }, nil,
			"privacy: dataset test: dominance k% = 100 is outside 1..99"},
		{"a ladder step naming no dimension", func(s *pipeline.DatasetSpec) { s.Ladder = []string{"country"} }, nil,
			`privacy: dataset test: ladder step "country" is not a dimension`},
		{"a contribution of the wrong shape", nil, func(p *pipeline.Partial) {
			p.Cells[pipeline.CellKey{"EU.DE", "a"}] = map[pipeline.Pseudonym]*pipeline.Contribution{wsOf("w1"): pipeline.NewContribution(1, 2)}
		}, `privacy: dataset test: a contribution to cell ["EU.DE" "a"] does not fit the spec (2 sums and 2 entity sets expected)`},
		{"another dataset's partial", nil, func(p *pipeline.Partial) { p.Dataset = "other" },
			`privacy: partial of dataset "other" given with the spec of "test"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec()
			if tt.spec != nil {
				tt.spec(spec)
			}
			p := partial(nil)
			if tt.change != nil {
				tt.change(p)
			}
			_, err := New().Apply(spec, p)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Apply: err = %v, want %q", err, tt.want)
			}
		})
	}
}

// randomPartial builds a partial with heavy-tailed workspace counts per
// cell, shared workspaces and creators across cells, zero and huge values,
// and an occasional overflowed contribution.
func randomPartial(rng *rand.Rand) *pipeline.Partial {
	regions := []string{"EU.DE", "EU.FR", "EU.IT", "EU.ES", "AS.JP", "AS.IN", "NA.US", "NA.CA", "SA.BR"}
	tiers := []string{"a", "b", "c"}
	cells := map[string][]contrib{}
	nCells := 1 + rng.IntN(25)
	for range nCells {
		key := regions[rng.IntN(len(regions))] + "|" + tiers[rng.IntN(len(tiers))]
		nWS := 1 + int(math.Floor(1/math.Pow(1-rng.Float64(), 1/1.3)))%12
		for range nWS {
			x := contrib{ws: fmt.Sprintf("w%d", rng.IntN(15)), events: 1 + rng.Int64N(20), conv: rng.Int64N(3)}
			switch rng.IntN(10) {
			case 0:
				x.spend = 0
			case 1:
				x.spend = rng.Int64N(1_000_000_000)
			default:
				x.spend = rng.Int64N(1000)
			}
			for range 1 + rng.IntN(3) {
				x.creators = append(x.creators, fmt.Sprintf("c%d", rng.IntN(25)))
			}
			x.overflow = rng.IntN(200) == 0
			cells[key] = append(cells[key], x)
		}
	}
	return partial(cells)
}

// TestApplyInvariants checks, on randomized partials with a fixed seed and
// under every strategy, the invariants recomputed here independently of
// the gate: every level-0 cell ends in exactly one row or suppressed cell,
// and the events add up; every row's values and the k, dominance and p%
// rules hold when recomputed from the row's own contributions; every row's
// cell contains the level-0 cells it holds, at the levels it states (the
// ladder's at its step, or adding up to its level); no two rows describe
// the same cell, and no two rows' cells overlap without one containing the
// other; each level-0 cell is in the smallest row whose cell contains it,
// and a suppressed one in no row's; Apply leaves its input untouched and
// is deterministic.
func TestApplyInvariants(t *testing.T) {
	for _, strategy := range pipeline.Generalizations {
		t.Run(strategy, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(42, 7))
			spec := testSpec()
			spec.Privacy.Generalization = strategy
			seen := map[string]int{}
			for iter := range 300 {
				checkInvariants(t, spec, randomPartial(rng), iter, seen)
			}
			// The random partials must exercise every outcome.
			want := []string{"rows at level 0", "rows at level 1", "rows at level 2", "rows at level 3",
				"suppressed_frequency", "suppressed_dominance"}
			if strategy == pipeline.GeneralizeMondrian {
				want = append(want, "rows with region finer than tier", "rows with tier finer than region", "rows holding a remainder")
			}
			for _, outcome := range want {
				if seen[outcome] == 0 {
					t.Errorf("no %s in 300 random partials: %v", outcome, seen)
				}
			}
			t.Logf("outcomes: %v", seen)
		})
	}
}

// universe lists every level-0 cell randomPartial can make.
func universe() []pipeline.CellKey {
	var keys []pipeline.CellKey
	for _, r := range []string{"EU.DE", "EU.FR", "EU.IT", "EU.ES", "AS.JP", "AS.IN", "NA.US", "NA.CA", "SA.BR"} {
		for _, t := range []string{"a", "b", "c"} {
			keys = append(keys, pipeline.CellKey{r, t})
		}
	}
	return keys
}

// cellAt is a row's or suppressed cell's cell: its values at its levels.
type cellAt struct {
	level      int
	levels     []int
	dims       []string
	suppressed bool
	cells      []pipeline.CellKey
}

func (c cellAt) String() string { return fmt.Sprintf("%s@%v", strings.Join(c.dims, "|"), c.levels) }

// holds tells whether the cell contains level-0 key k: k generalized to the
// cell's levels, with the test hierarchies, is the cell.
func (c cellAt) holds(k pipeline.CellKey) bool {
	return regionH{}.Generalize(k[0], c.levels[0]) == c.dims[0] && valueH{}.Generalize(k[1], c.levels[1]) == c.dims[1]
}

// contains tells whether every level-0 cell of the universe in d is in c.
func (c cellAt) contains(d cellAt) bool {
	for _, k := range universe() {
		if d.holds(k) && !c.holds(k) {
			return false
		}
	}
	return true
}

func checkInvariants(t *testing.T, spec *pipeline.DatasetSpec, p *pipeline.Partial, iter int, seen map[string]int) {
	t.Helper()
	before := snapshot(p)
	var traces []cellAt
	g := &Gate{trace: func(level int, levels []int, dims []string, suppressed bool, cells []pipeline.CellKey) {
		traces = append(traces, cellAt{level, slices.Clone(levels), slices.Clone(dims), suppressed, slices.Clone(cells)})
	}}
	res, err := g.Apply(spec, p)
	if err != nil {
		t.Fatalf("iteration %d: Apply: %v", iter, err)
	}
	checkConservation(t, p, res)
	for _, r := range res.Rows {
		seen[fmt.Sprintf("rows at level %d", r.Level)]++
		switch {
		case r.DimLevels[0] < r.DimLevels[1]:
			seen["rows with region finer than tier"]++
		case r.DimLevels[0] > r.DimLevels[1]:
			seen["rows with tier finer than region"]++
		}
	}
	for _, s := range res.Suppressed {
		seen[s.Reason.String()]++
	}

	// Every level-0 cell in exactly one row or suppressed cell, inside it.
	owner := map[pipeline.CellKey]cellAt{}
	for _, tr := range traces {
		for _, k := range tr.cells {
			if prev, dup := owner[k]; dup {
				t.Fatalf("iteration %d: cell %v is in %s and in %s", iter, k[:2], prev, tr)
			}
			owner[k] = tr
			if !tr.holds(k) {
				t.Errorf("iteration %d: %s holds level-0 cell %v, which it does not contain", iter, tr, k[:2])
			}
		}
	}
	if len(owner) != len(p.Cells) {
		t.Fatalf("iteration %d: %d of %d level-0 cells accounted for", iter, len(owner), len(p.Cells))
	}

	// Each row's levels: the ladder's at its step, or adding up to it.
	var rows []cellAt
	for _, tr := range traces {
		if tr.suppressed {
			continue
		}
		rows = append(rows, tr)
		want := tr.levels[0] + tr.levels[1]
		if spec.Privacy.Generalization == pipeline.GeneralizeLadder {
			if got := spec.DimLevels(tr.level); !slices.Equal(got, tr.levels) {
				t.Errorf("iteration %d: row %s at ladder step %d, whose levels are %v", iter, tr, tr.level, got)
			}
		} else if tr.level != want {
			t.Errorf("iteration %d: row %s at generalization level %d, want %d", iter, tr, tr.level, want)
		}
	}

	// No two rows for one cell; any two disjoint or nested.
	for i, a := range rows {
		for _, b := range rows[i+1:] {
			if a.String() == b.String() {
				t.Errorf("iteration %d: two rows for %s", iter, a)
			}
			overlap := slices.ContainsFunc(universe(), func(k pipeline.CellKey) bool { return a.holds(k) && b.holds(k) })
			if overlap && !a.contains(b) && !b.contains(a) {
				t.Errorf("iteration %d: rows %s and %s overlap, neither containing the other", iter, a, b)
			}
		}
	}

	// Each level-0 cell in the smallest row containing it; a suppressed
	// one in no row's cell. A row holding a cell whose level-0 row would
	// also contain other held cells is a remainder.
	for k, o := range owner {
		var smallest *cellAt
		for i, r := range rows {
			if r.holds(k) && (smallest == nil || smallest.contains(r)) {
				smallest = &rows[i]
			}
		}
		switch {
		case o.suppressed && smallest != nil:
			t.Errorf("iteration %d: level-0 cell %v is suppressed, yet row %s contains it", iter, k[:2], smallest)
		case !o.suppressed && (smallest == nil || smallest.String() != o.String()):
			t.Errorf("iteration %d: level-0 cell %v is in row %s, not in the smallest row containing it, %v", iter, k[:2], o, smallest)
		}
	}
	for _, r := range rows {
		for _, q := range rows {
			if r.String() != q.String() && r.contains(q) {
				seen["rows holding a remainder"]++
				break
			}
		}
	}

	// Every row recomputed from its own contributions.
	rowAt := map[string]pipeline.Row{}
	for _, r := range res.Rows {
		rowAt[cellAt{levels: r.DimLevels, dims: r.Dims}.String()] = r
	}
	for _, tr := range rows {
		r, ok := rowAt[tr.String()]
		if !ok {
			t.Errorf("iteration %d: traced row %s is not in the result", iter, tr)
			continue
		}
		if r.Level != tr.level {
			t.Errorf("iteration %d: row %s at level %d, traced at %d", iter, tr, r.Level, tr.level)
		}
		want, ok, why := recompute(spec, p, tr.cells)
		if !ok {
			t.Errorf("iteration %d: row %s breaks the rules when recomputed: %s", iter, tr, why)
		}
		if diff := cmp.Diff(want, r.Values); diff != "" {
			t.Errorf("iteration %d: row %s values (-recomputed +published):\n%s", iter, tr, diff)
		}
	}

	if diff := cmp.Diff(before, snapshot(p)); diff != "" {
		t.Fatalf("iteration %d: Apply modified its input (-before +after):\n%s", iter, diff)
	}
	again, _ := New().Apply(spec, p)
	if diff := cmp.Diff(res, again); diff != "" {
		t.Fatalf("iteration %d: a second Apply differs (-first +second):\n%s", iter, diff)
	}
}

// recompute merges the contributions of the given level-0 cells per
// workspace with the pipeline's own Merge, and checks the rules with
// arbitrary-precision arithmetic; it returns the row's expected values.
func recompute(spec *pipeline.DatasetSpec, p *pipeline.Partial, cells []pipeline.CellKey) ([]pipeline.Value, bool, string) {
	byWS := map[pipeline.Pseudonym]*pipeline.Contribution{}
	for _, k := range cells {
		for ws, c := range p.Cells[k] {
			if byWS[ws] == nil {
				byWS[ws] = pipeline.NewContribution(2, 2)
			}
			byWS[ws].Merge(c)
		}
	}
	creators, campaigns := map[pipeline.Pseudonym]bool{}, map[pipeline.Pseudonym]bool{}
	var events int64
	// perWS[i] holds every workspace's total of sum i (spend, conversions),
	// totals[i] their sum: every sum is a dominance measure.
	perWS := [2][]*big.Int{}
	totals := [2]*big.Int{new(big.Int), new(big.Int)}
	overflow := false
	for _, c := range byWS {
		overflow = overflow || c.Overflow
		events += c.Events
		for i := range perWS {
			perWS[i] = append(perWS[i], big.NewInt(c.Sums[i]))
			totals[i].Add(totals[i], big.NewInt(c.Sums[i]))
		}
		for _, x := range c.Sets[0].Sorted() {
			creators[x] = true
		}
		for _, x := range c.Sets[1].Sorted() {
			campaigns[x] = true
		}
	}
	k := spec.Privacy.K
	switch {
	case overflow:
		return nil, false, "an overflowed contribution"
	case !totals[0].IsInt64() || !totals[1].IsInt64():
		return nil, false, "a sum overflows int64"
	case len(byWS) < k:
		return nil, false, fmt.Sprintf("%d workspaces", len(byWS))
	case len(creators) < k:
		return nil, false, fmt.Sprintf("%d creators", len(creators))
	}
	for i, xs := range perWS {
		total := totals[i]
		if total.Sign() == 0 {
			continue
		}
		slices.SortFunc(xs, func(a, b *big.Int) int { return b.Cmp(a) })
		for len(xs) < 2 {
			xs = append(xs, new(big.Int))
		}
		top2 := new(big.Int).Add(xs[0], xs[1])
		lhs := new(big.Int).Mul(big.NewInt(100), top2)
		rhs := new(big.Int).Mul(big.NewInt(int64(spec.Privacy.DominanceK)), total)
		if lhs.Cmp(rhs) > 0 {
			return nil, false, fmt.Sprintf("dominance of sum %d: top two %v of %v", i, top2, total)
		}
		rest := new(big.Int).Sub(total, top2)
		lhs = new(big.Int).Mul(big.NewInt(100), rest)
		rhs = new(big.Int).Mul(big.NewInt(int64(spec.Privacy.PPercent)), xs[0])
		if lhs.Cmp(rhs) < 0 {
			return nil, false, fmt.Sprintf("p%% of sum %d: rest %v, largest %v", i, rest, xs[0])
		}
	}
	total, conv := totals[0], totals[1].Int64()
	cpa := pipeline.Value{Null: true}
	if conv != 0 {
		cpa = pipeline.Value{Float: 1000 * float64(total.Int64()) / float64(conv)}
	}
	return []pipeline.Value{{Int: events}, {Int: int64(len(byWS))}, {Int: int64(len(creators))}, {Int: int64(len(campaigns))},
		{Int: total.Int64()}, {Int: conv}, cpa}, true, ""
}

// snapshot renders a partial in full, to detect any modification.
func snapshot(p *pipeline.Partial) []string {
	var out []string
	for k, byWS := range p.Cells {
		for ws, c := range byWS {
			out = append(out, fmt.Sprintf("%v %s %d %v %v %v %t", k[:2], wsName[ws], c.Events, c.Sums,
				c.Sets[0].Sorted(), c.Sets[1].Sorted(), c.Overflow))
		}
	}
	slices.Sort(out)
	return append(out, fmt.Sprint(p.Events))
}

func TestRules(t *testing.T) {
	tests := []struct {
		name              string
		topN, total, kdom int64
		wantDominated     bool
	}{
		{name: "two at exactly 85% are not dominant", topN: 85, total: 100, kdom: 85},
		{name: "two at 85.0001% are dominant", topN: 850_001, total: 1_000_000, kdom: 85, wantDominated: true},
		{name: "dominance near the int64 limit is exact", topN: math.MaxInt64 / 100 * 85, total: math.MaxInt64 / 100 * 100, kdom: 85},
		{name: "dominance just above the limit at huge totals", topN: math.MaxInt64/100*85 + 1, total: math.MaxInt64 / 100 * 100, kdom: 85, wantDominated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dominated(tt.topN, tt.total, tt.kdom); got != tt.wantDominated {
				t.Errorf("dominated(%d, %d, %d) = %t, want %t", tt.topN, tt.total, tt.kdom, got, tt.wantDominated)
			}
		})
	}
	pTests := []struct {
		name             string
		total, x1, x2, p int64
		want             bool
	}{
		{"a rest of exactly p% of the largest passes", 1000, 500, 450, 10, false},
		{"a rest just under p% of the largest fails", 1000, 500, 451, 10, true},
		{"a single contributor fails", 7, 7, 0, 10, true},
		{"huge values are compared exactly", math.MaxInt64, math.MaxInt64 / 2, math.MaxInt64/2 - math.MaxInt64/20, 10, false},
	}
	for _, tt := range pTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pRuleFails(tt.total, tt.x1, tt.x2, tt.p); got != tt.want {
				t.Errorf("pRuleFails(%d, %d, %d, %d) = %t, want %t", tt.total, tt.x1, tt.x2, tt.p, got, tt.want)
			}
		})
	}
}

func TestTopN(t *testing.T) {
	top := make(topN, 3)
	for _, v := range []int64{5, 1, 9, 9, 0, 7, 3} {
		top.add(v)
	}
	if diff := cmp.Diff(topN{9, 9, 7}, top); diff != "" {
		t.Errorf("top three (-want +got):\n%s", diff)
	}
	if got := top.sum(2); got != 18 {
		t.Errorf("sum of the top two = %d, want 18", got)
	}
}
