package verify

import (
	"strings"
	"testing"

	"github.com/mya/deid/internal/spectest"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/parquet"
)

// TestEveryRowIsCheckedForK: verify recomputes k on every published row
// from its distinct counts, for every protected entity — a row one short of
// k for any one of them is a problem named by its row, column and count;
// rows at k pass.
func TestEveryRowIsCheckedForK(t *testing.T) {
	spec := &pipeline.DatasetSpec{
		Name:       "campaign_metrics",
		Dimensions: []pipeline.Dimension{{Name: "platform"}},
		Entities: []pipeline.Entity{{Name: "workspace", Protected: true}, {Name: "creator", Protected: true},
			{Name: "campaign"}},
		Measures: []pipeline.Measure{
			{Name: "workspaces", Kind: pipeline.MeasureDistinct, Entity: "workspace"},
			{Name: "creators", Kind: pipeline.MeasureDistinct, Entity: "creator"},
			{Name: "campaigns", Kind: pipeline.MeasureDistinct, Entity: "campaign"},
		},
	}
	row := func(ws, cr, camp int64) map[string]any {
		return map[string]any{"platform": "x", "workspaces": ws, "creators": cr, "campaigns": camp}
	}
	tests := []struct {
		name string
		rows []map[string]any
		want []string
	}{
		{"rows at k pass, whatever an unprotected count says", []map[string]any{row(10, 10, 1), row(11, 40, 2)}, nil},
		{"a row one workspace short of k is named", []map[string]any{row(10, 10, 1), row(9, 10, 1)},
			[]string{"row 2 (x): workspaces = 9 < k = 10"}},
		{"a row one creator short of k is named, though its workspaces pass", []map[string]any{row(12, 9, 5)},
			[]string{"row 1 (x): creators = 9 < k = 10"}},
		{"a count that is not a count is a problem", []map[string]any{{"platform": "x", "workspaces": "ten", "creators": int64(10)}},
			[]string{"row 1: workspaces is ten, not a count"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := (&verifier{}).rowK("w", spec, 10, tt.rows, map[string]bool{})
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q, want %q", got, tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("problem %q, want one saying %q", got[i], tt.want[i])
				}
			}
		})
	}
}

// listed is a test hierarchy that lists each level's values.
type listed [][]string

func (h listed) Levels() int                       { return len(h) }
func (h listed) Generalize(v string, l int) string { return v }
func (h listed) Domain(l int) []string             { return h[min(l, len(h)-1)] }
func (h listed) Describe() string                  { return "listed" }

// TestLevelColumnsAreChecked: every row's <dimension>_level must be the
// level the ladder gives that dimension at the row's generalization_level,
// and the dimension's value must be one that level can take — an edited
// or forged level column, or a value that does not fit its level, is named
// by row and column.
func TestLevelColumnsAreChecked(t *testing.T) {
	spec := &pipeline.DatasetSpec{
		Name: "campaign_metrics",
		Dimensions: []pipeline.Dimension{
			{Name: "platform", Hierarchy: listed{{"instagram", "x"}, {"*"}}},
			{Name: "region", Hierarchy: listed{{"DE", "NA"}, {"africa", "europe"}, {"*"}}},
		},
		Ladder: []string{"region", "region", "platform"},
	}
	row := func(level int32, platform, region string, platformLevel, regionLevel any) map[string]any {
		r := map[string]any{"generalization_level": level, "platform": platform, "region": region}
		if platformLevel != nil {
			r["platform_level"] = platformLevel
		}
		if regionLevel != nil {
			r["region_level"] = regionLevel
		}
		return r
	}
	tests := []struct {
		name string
		row  map[string]any
		want []string
	}{
		{"a level-0 row has every dimension at level 0", row(0, "x", "NA", int32(0), int32(0)), nil},
		{"a level-1 row has its region at the continent", row(1, "x", "africa", int32(0), int32(1)), nil},
		{"at the top of the ladder every dimension is at its top level", row(3, "*", "*", int32(1), int32(2)), nil},
		{"a region_level edited to look finer is named", row(1, "x", "africa", int32(0), int32(0)),
			[]string{"row 1: region_level = 0, but generalization_level 1 puts region at level 1"}},
		{"a missing level column is named", row(0, "x", "DE", int32(0), nil),
			[]string{"row 1: region_level = <nil>, but generalization_level 0 puts region at level 0"}},
		{"a level column of the wrong type is named", row(0, "x", "DE", int64(0), int32(0)),
			[]string{"row 1: platform_level = 0, but generalization_level 0 puts platform at level 0"}},
		{"a continent in a level-0 row is not a level-0 value, whatever its level column says",
			row(0, "x", "europe", int32(0), int32(1)), []string{
				"row 1: region_level = 1, but generalization_level 0 puts region at level 0",
				`row 1: region = "europe" is not a value region takes at level 0`}},
		{"a country in a level-1 row is not a continent", row(1, "x", "NA", int32(0), int32(1)),
			[]string{`row 1: region = "NA" is not a value region takes at level 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lv := int(tt.row["generalization_level"].(int32))
			acct := &parquet.Published{RowsByLevel: map[int]int64{lv: 1}}
			got := (&verifier{}).rowCells("w", spec, pipeline.GeneralizeLadder, []map[string]any{tt.row}, acct)
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q, want %q", got, tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("problem %q, want one saying %q", got[i], tt.want[i])
				}
			}
		})
	}
}

// TestLevelColumnsAreRequired: a data file without a dimension's level
// column, or with it as another type, does not match the declared schema.
func TestLevelColumnsAreRequired(t *testing.T) {
	spec := &pipeline.DatasetSpec{Name: "d", Dimensions: []pipeline.Dimension{{Name: "platform"}, {Name: "region"}},
		Ladder: []string{"region"}, Measures: []pipeline.Measure{{Name: "events", Kind: pipeline.MeasureCount}}}
	want := parquet.Columns(spec)
	var without, mistyped []parquet.Column
	for _, c := range want {
		c.Role = ""
		if c.Name != "region_level" {
			without = append(without, c)
		}
		if c.Name == "platform_level" {
			c.Type = parquet.TypeInt64
		}
		mistyped = append(mistyped, c)
	}
	if got := columnProblems("f", without, want); len(got) != 1 || !strings.Contains(got[0], "lacks the declared column region_level") {
		t.Errorf("without region_level: problems %q", got)
	}
	if got := columnProblems("f", mistyped, want); len(got) != 1 || !strings.Contains(got[0], "column platform_level is int64, declared int32") {
		t.Errorf("platform_level as int64: problems %q", got)
	}
}

// TestCellsOfAnyStrategyAreChecked: under a strategy other than the
// ladder, each row's levels must add up to its generalization_level and
// lie in the hierarchy, and the rows' cells must form a laminar family —
// nested cells (a remainder beside the finer rows inside it) pass, cells
// that cross (one finer in region, the other in industry) are named, so
// verify checks the real invariant whatever strategy wrote the rows.
func TestCellsOfAnyStrategyAreChecked(t *testing.T) {
	spec := &pipeline.DatasetSpec{
		Name:       "campaign_metrics",
		Dimensions: spectest.Dimensions(),
		Ladder:     []string{"region", "industry", "region", "industry"},
		Measures:   []pipeline.Measure{{Name: "events", Kind: pipeline.MeasureCount}},
	}
	row := func(level int32, region string, rl int32, industry string, il int32) map[string]any {
		return map[string]any{"generalization_level": level, "region": region, "region_level": rl,
			"industry": industry, "industry_level": il, "events": int64(10)}
	}
	tests := []struct {
		name string
		rows []map[string]any
		want []string
	}{
		{"a level-0 row, a remainder inside the root and the root pass", []map[string]any{
			row(0, "eu.de", 0, "beauty.hair", 0), row(2, "eu", 1, "beauty", 1), row(4, "*", 2, "*", 2)}, nil},
		{"disjoint cells at crossing levels pass", []map[string]any{
			row(1, "eu", 1, "beauty.hair", 0), row(1, "na.us", 0, "tech", 1)}, nil},
		{"cells that cross are named", []map[string]any{
			row(1, "eu", 1, "beauty.hair", 0), row(1, "eu.de", 0, "beauty", 1)},
			[]string{"rows 1 and 2 overlap without one containing the other"}},
		{"cells that cross above level 1 are named", []map[string]any{
			row(2, "*", 2, "beauty.hair", 0), row(2, "eu.fr", 0, "*", 2)},
			[]string{"rows 1 and 2 overlap without one containing the other"}},
		{"a generalization_level that is not the levels' sum is named", []map[string]any{row(3, "eu", 1, "beauty", 1)},
			[]string{"generalization_level = 3, but its dimensions' levels add up to 2"}},
		{"a level above the hierarchy is named", []map[string]any{row(3, "*", 3, "beauty.hair", 0)},
			[]string{"region_level = 3 is not a level of region's hierarchy"}},
		{"a value its level cannot take is named", []map[string]any{row(1, "eu.de", 1, "tech.saas", 0)},
			[]string{`region = "eu.de" is not a value region takes at level 1`}},
		{"the same cell twice is named", []map[string]any{row(1, "eu", 1, "tech.saas", 0), row(1, "eu", 1, "tech.saas", 0)},
			[]string{"rows 1 and 2 describe the same cell"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acct := &parquet.Published{RowsByLevel: map[int]int64{}, EventsByLevel: map[int]int64{}}
			for _, r := range tt.rows {
				acct.RowsByLevel[int(r["generalization_level"].(int32))]++
				acct.EventsByLevel[int(r["generalization_level"].(int32))] += 10
			}
			got := (&verifier{}).rowCells("w", spec, pipeline.GeneralizeMondrian, tt.rows, acct)
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q, want %q", got, tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("problem %q, want one saying %q", got[i], tt.want[i])
				}
			}
		})
	}
}
