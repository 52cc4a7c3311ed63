package gen

import (
	"slices"
	"strings"
	"testing"

	datasets "github.com/mya/deid/transforms/aggregate"
)

// TestTaxonomiesAreDeidsValueSets checks that the generator draws
// industries and features from the value sets of the default datasets,
// every value of them but other, and that its strays lie outside them
// even once normalized.
func TestTaxonomiesAreDeidsValueSets(t *testing.T) {
	specs, err := datasets.Build(datasets.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	domain := func(dataset, dim string) []string {
		for _, s := range specs {
			if i := s.DimIndex(dim); s.Name == dataset && i >= 0 {
				return slices.DeleteFunc(s.Dimensions[i].Hierarchy.Domain(0), func(v string) bool { return v == datasets.Other })
			}
		}
		t.Fatalf("no dimension %s.%s", dataset, dim)
		return nil
	}
	for _, tc := range []struct {
		name   string
		drawn  table
		set    []string
		strays []string
	}{
		{"industry", industries, domain("campaign_metrics", "industry"), append(slices.Clone(strayIndustries), oddIndustries...)},
		{"feature", features, domain("usage_patterns", "feature"), oddFeatures},
	} {
		if diff := slices.Compare(slices.Sorted(slices.Values(tc.drawn.vals)), tc.set); diff != 0 {
			t.Errorf("%s: the generator draws %v, the value set is %v", tc.name, tc.drawn.vals, tc.set)
		}
		outside := 0
		for _, s := range tc.strays {
			if !slices.Contains(tc.set, strings.ToLower(strings.TrimSpace(s))) {
				outside++
			}
		}
		if outside < 3 {
			t.Errorf("%s: %d strays outside the value set, want at least 3", tc.name, outside)
		}
	}
	if !slices.ContainsFunc(strayIndustries, func(s string) bool { return strings.Contains(s, "<script>") }) {
		t.Errorf("no <script> among the stray industries")
	}
}
