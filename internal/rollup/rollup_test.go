package rollup

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/spectest"
	"github.com/mya/deid/pipeline"
)

func spec() *pipeline.DatasetSpec {
	return &pipeline.DatasetSpec{
		Name:       "d",
		Dimensions: spectest.Dimensions(),
		Measures: []pipeline.Measure{
			{Name: "events", Kind: pipeline.MeasureCount},
			{Name: "workspaces", Kind: pipeline.MeasureDistinct, Entity: "workspaces"},
			{Name: "clicks", Kind: pipeline.MeasureSum},
			{Name: "ctr", Kind: pipeline.MeasureRatio, Numerator: "clicks", Denominator: "events", Scale: 100},
		},
	}
}

var start, end = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func row(region string, rl int32, industry string, il int32, events, clicks int64) map[string]any {
	return map[string]any{"window_start": start, "window_end": end, "region": region, "region_level": rl,
		"industry": industry, "industry_level": il, "events": events, "workspaces": int64(10), "clicks": clicks}
}

// TestRowsRollUpToOneGranularity: rows at mixed levels (a level-0 row, a
// row raised in region, one raised in industry, one at "*") roll up to
// regions at level 1 with industries at level 1: the rows at or below the
// target are mapped up and summed, ratios recomputed from the sums,
// distinct counts left out, and the row coarser than the target left out
// and counted.
func TestRowsRollUpToOneGranularity(t *testing.T) {
	rows := []map[string]any{
		row("eu.de", 0, "beauty.hair", 0, 10, 1),
		row("eu", 1, "beauty.skin", 0, 20, 4),
		row("eu.fr", 0, "beauty", 1, 30, 5),
		row("na.us", 0, "tech.saas", 0, 15, 3),
		row("*", 2, "*", 2, 7, 7),
	}
	got, err := Rows(spec(), rows, []int{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	want := &Table{
		Header: []string{"window_start", "window_end", "region", "industry", "region_level", "industry_level", "events", "clicks", "ctr"},
		Rows: [][]string{
			{"2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "eu", "beauty", "1", "1", "60", "10", "16.666666666666668"},
			{"2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "na", "tech", "1", "1", "15", "3", "20"},
		},
		In: 5, Left: 1, LeftEvents: 7,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("roll-up (-want +got):\n%s", diff)
	}
	// At the top every row has a place, and the events add up.
	top, err := Rows(spec(), rows, []int{2, 2})
	if err != nil {
		t.Fatal(err)
	}
	if top.Left != 0 || len(top.Rows) != 1 || top.Rows[0][6] != "82" {
		t.Errorf("roll-up to *: %+v", top)
	}
}

func TestRowsRefusesWhatItCannotRollUp(t *testing.T) {
	for name, tt := range map[string]struct {
		rows   []map[string]any
		target []int
	}{
		"a target above a hierarchy's top": {nil, []int{3, 0}},
		"too few targets":                  {nil, []int{1}},
		"a value outside the hierarchy":    {[]map[string]any{row("xx", 1, "tech.saas", 0, 1, 1)}, []int{2, 1}},
		"a row without its level columns":  {[]map[string]any{{"region": "eu", "industry": "tech"}}, []int{2, 2}},
	} {
		if _, err := Rows(spec(), tt.rows, tt.target); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
