package infoloss

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/spectest"
	"github.com/mya/deid/pipeline"
)

// open is a hierarchy without a declared domain: value → "*".
type open struct{}

func (open) Levels() int                       { return 2 }
func (open) Generalize(v string, l int) string { return map[bool]string{true: v, false: "*"}[l <= 0] }
func (open) Domain(int) []string               { return nil }
func (open) Describe() string                  { return "open" }

var region = spectest.Tree{"eu.de", "eu.fr", "eu.it", "as.jp", "na.us"}

func TestNCP(t *testing.T) {
	d := NewDim("region", region)
	tests := []struct {
		name  string
		level int
		value string
		want  float64
	}{
		{"a level-0 value loses nothing", 0, "eu.de", 0},
		{"a parent of three of five leaves loses (3−1)/(5−1)", 1, "eu", 0.5},
		{"a parent of one leaf loses nothing", 1, "as", 0},
		{"the top loses everything", 2, "*", 1},
		{"a level past the top loses everything", 7, "*", 1},
		{"a value the domain does not know falls back to level/top", 1, "zz", 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.NCP(tt.level, tt.value); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("NCP(%d, %q) = %v, want %v", tt.level, tt.value, got, tt.want)
			}
		})
	}
	if got := NewDim("x", open{}).NCP(1, "*"); got != 1 {
		t.Errorf("an open hierarchy's top: NCP = %v, want 1", got)
	}
	if got := NewDim("one", spectest.Tree{"eu.de"}).NCP(1, "eu"); got != 0 {
		t.Errorf("a single-leaf dimension's parent: NCP = %v, want 0", got)
	}
}

func TestScore(t *testing.T) {
	spec := &pipeline.DatasetSpec{Name: "d", Dimensions: []pipeline.Dimension{
		{Name: "region", Hierarchy: region}, {Name: "tier", Hierarchy: open{}}}}
	tl := New(spec)
	for _, r := range []struct {
		vals   []string
		levels []int
		events int64
	}{
		{[]string{"eu.de", "a"}, []int{0, 0}, 60},
		{[]string{"eu", "*"}, []int{1, 1}, 20},
		{[]string{"*", "b"}, []int{2, 0}, 10},
	} {
		if err := tl.AddRow(r.vals, r.levels, r.events); err != nil {
			t.Fatal(err)
		}
	}
	tl.AddSuppressed(10)
	got := tl.Score()
	// region: (60·0 + 20·0.5 + 10·1 + 10·1)/100; tier: (20·1 + 10)/100.
	want := Score{Dataset: "d", Published: 90, Suppressed: 10, Rows: 3, Loss: (0.3 + 0.3) / 2, Dims: []DimScore{
		{Name: "region", Loss: 0.3, EventsByLevel: []int64{60, 20, 10}},
		{Name: "tier", Loss: 0.3, EventsByLevel: []int64{70, 20}},
	}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-12 })); diff != "" {
		t.Errorf("score (-want +got):\n%s", diff)
	}
	if text := got.Text(); !strings.Contains(text, "d: information loss 0.300") || !strings.Contains(text, "region 60.0/20.0/10.0%") ||
		!strings.Contains(text, "suppressed 10.0%") {
		t.Errorf("text %q", text)
	}
}

func TestAddRowRefusesWhatDoesNotFit(t *testing.T) {
	spec := &pipeline.DatasetSpec{Name: "d", Dimensions: []pipeline.Dimension{{Name: "region", Hierarchy: region}}}
	tl := New(spec)
	for name, err := range map[string]error{
		"a level above the top": tl.AddRow([]string{"*"}, []int{3}, 5),
		"a negative level":      tl.AddRow([]string{"eu.de"}, []int{-1}, 5),
		"too few levels":        tl.AddRow([]string{"eu.de"}, nil, 5),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if s := tl.Score(); s.Published != 0 || s.Rows != 0 {
		t.Errorf("a refused row was counted: %+v", s)
	}
}

func TestEmptyTallyScoresZero(t *testing.T) {
	spec := &pipeline.DatasetSpec{Name: "d", Dimensions: []pipeline.Dimension{{Name: "region", Hierarchy: region}}}
	if s := New(spec).Score(); s.Loss != 0 || math.IsNaN(s.Loss) {
		t.Errorf("empty tally: loss %v", s.Loss)
	}
}
