package verify

import (
	"strings"
	"testing"

	"github.com/mya/deid/pipeline"
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
