package aggregate

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/transforms/decode"
)

// tableValues reads the first column of a built-in table.
func tableValues(t *testing.T, name string) []string {
	t.Helper()
	f, err := builtinTables.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vals []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, _, ok := strings.Cut(sc.Text(), ";"); ok {
			vals = append(vals, v)
		}
	}
	slices.Sort(vals)
	return vals
}

// TestDefaultValueSets checks every string dimension of the default
// datasets against its declared value set: the fixed lists for platform,
// content_type, action, plan_tier and device_type (each with other), the
// built-in taxonomies for industry and feature, the country table for
// region. The numeric dimensions are bucket labels.
func TestDefaultValueSets(t *testing.T) {
	specs, err := Build(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"campaign_metrics.platform":      {"instagram", "linkedin", "other", "tiktok", "x", "youtube"},
		"campaign_metrics.content_type":  {"article", "live", "other", "post", "reel", "short", "story", "video"},
		"campaign_metrics.industry":      tableValues(t, "industries.csv"),
		"campaign_metrics.region":        tableValues(t, "region.csv"),
		"campaign_metrics.follower_tier": {"macro", "mega", "micro", "mid", "nano"},
		"usage_patterns.feature":         tableValues(t, "features.csv"),
		"usage_patterns.action":          {"click", "create", "delete", "export", "other", "update", "view"},
		"usage_patterns.plan_tier":       {"business", "enterprise", "free", "other", "pro"},
		"usage_patterns.team_size":       {"1", "101+", "2-5", "21-100", "6-20"},
		"usage_patterns.device_type":     {"desktop", "mobile", "other", "tablet"},
	}
	got := map[string][]string{}
	for _, s := range specs {
		for _, d := range s.Dimensions {
			got[s.Name+"."+d.Name] = d.Hierarchy.Domain(0)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("level-0 value sets (-want +got):\n%s", diff)
	}
	for _, name := range []string{"campaign_metrics.industry", "usage_patterns.feature"} {
		if !slices.Contains(got[name], Other) || len(got[name]) < 40 {
			t.Errorf("%s: %d values, want the taxonomy with other", name, len(got[name]))
		}
	}
	if !slices.Contains(got["campaign_metrics.region"], "ZZ") {
		t.Errorf("region has no ZZ for unknown countries")
	}
}

// TestStraysReadAsOtherAndAreCounted adds events whose string dimensions
// lie outside the declared value sets: each is aggregated under other (ZZ
// for the country), never under its text, and counted per dimension.
func TestStraysReadAsOtherAndAreCounted(t *testing.T) {
	camp, usage := defaultAggregators(t)
	pz := pipeline.NewPseudonymizer([]byte("key"))
	p := pipeline.NewPartial("campaign_metrics", pipeline.Window{})
	stray := campaignEvent("w1", "c1", "k1", "instagram", "<script>alert(1)</script>.x", "DE", 1)
	known := campaignEvent("w2", "c2", "k2", "instagram", "beauty.skincare", "DE", 1)
	absent := campaignEvent("w3", "c3", "k3", "other", "other", "ZZ", 1)
	for _, ev := range []*pipeline.Event{stray, stray, known, absent} {
		camp.Add(p, ev, pz.Of(ev.WorkspaceID), pz)
	}
	want := []string{
		"instagram|reel|beauty.skincare|DE|nano w2 events=1 sums=[1000 800 10 9 300 1 5000 9000] sets=[1 1] overflow=false",
		"instagram|reel|other|DE|nano w1 events=2 sums=[2000 1600 20 18 600 2 10000 18000] sets=[1 1] overflow=false",
		"other|reel|other|ZZ|nano w3 events=1 sums=[1000 800 10 9 300 1 5000 9000] sets=[1 1] overflow=false",
	}
	if diff := cmp.Diff(want, cellSummary(p, pz, "w1", "w2", "w3")); diff != "" {
		t.Errorf("cells (-want +got):\n%s", diff)
	}
	wantCounts := []OtherCount{
		{Dataset: "campaign_metrics", Dimension: "platform", Default: "other", Events: 1},
		{Dataset: "campaign_metrics", Dimension: "content_type", Default: "other", Events: 0},
		{Dataset: "campaign_metrics", Dimension: "industry", Default: "other", Events: 3},
		{Dataset: "campaign_metrics", Dimension: "region", Default: "ZZ", Events: 1},
	}
	if diff := cmp.Diff(wantCounts, camp.OtherCounts()); diff != "" {
		t.Errorf("OtherCounts (-want +got):\n%s", diff)
	}

	u := pipeline.NewPartial("usage_patterns", pipeline.Window{})
	ev := &pipeline.Event{Kind: pipeline.KindUsageInteraction, WorkspaceID: []byte("w1"), UserID: []byte("u1"),
		Usage: pipeline.UsageInteraction{Feature: "labs.beta_canvas", Action: "view", PlanTier: "pro", DeviceType: "desktop", TeamSize: 3}}
	usage.Add(u, ev, pz.Of(ev.WorkspaceID), pz)
	u.Seal()
	if len(u.Cells) != 1 {
		t.Errorf("one usage event makes %d cells, want 1", len(u.Cells))
	}
	for key := range u.Cells {
		if key[0] != Other {
			t.Errorf("a feature outside the taxonomy is aggregated as %q, want other", key[0])
		}
	}
	if got := usage.OtherCounts()[0]; got.Dimension != "feature" || got.Events != 1 {
		t.Errorf("usage OtherCounts()[0] = %+v, want one feature", got)
	}
}

// openH is a hierarchy whose level 0 takes any value.
type openH struct{}

func (openH) Levels() int                       { return 2 }
func (openH) Generalize(v string, l int) string { return map[bool]string{true: v, false: Star}[l <= 0] }
func (openH) Domain(l int) []string {
	if l <= 0 {
		return nil
	}
	return []string{Star}
}
func (openH) Describe() string { return "open" }

func TestNewRefusesAStringDimensionWithoutAValueSet(t *testing.T) {
	camp, _ := defaultAggregators(t)
	spec := *camp.Spec()
	spec.Dimensions = slices.Clone(spec.Dimensions)
	spec.Dimensions[2].Hierarchy = openH{}
	_, err := New(&spec)
	want := []string{`aggregate: dataset campaign_metrics: dimension industry: the string field "industry" needs a declared value set, and its hierarchy (open) takes any value at level 0`}
	if diff := cmp.Diff(want, errLines(err)); diff != "" {
		t.Errorf("New errors (-want +got):\n%s", diff)
	}
}

func TestBuildRefusesATableWhoseValuesCouldNeverMatch(t *testing.T) {
	c := DefaultConfig()
	c.Datasets[0].Dimensions[2].Hierarchy = HierarchyConfig{Type: TypeTable, Table: "industries.csv", Default: Other}
	c.Datasets[0].Dimensions[3].Hierarchy = HierarchyConfig{Type: TypeTable, Table: "region.csv", Default: "ZZ"}
	dir := fstest.MapFS{
		"industries.csv": {Data: []byte("Beauty.Skincare;beauty;*\nbeauty;beauty;*\nother;other;*\n")},
		"region.csv":     {Data: []byte("de;EU;*\nZZ;ZZ;*\n")},
	}
	_, err := Build(c, dir)
	want := []string{
		`datasets[0].dimensions[2].hierarchy.table: industries.csv: value "Beauty.Skincare" could never match: values are compared after normalization, which makes it "beauty.skincare"; write "beauty.skincare"`,
		`datasets[0].dimensions[3].hierarchy.table: region.csv: value "de" could never match: values are compared after normalization, which makes it "DE"; write "DE"`,
	}
	if diff := cmp.Diff(want, errLines(err)); diff != "" {
		t.Errorf("Build errors (-want +got):\n%s", diff)
	}
}

// TestClosedFieldsMatchTheDecoder holds the field table's fixed lists to
// the decoder: each value passes through it unchanged, and a value outside
// them reads other, so a declared value outside a list could never occur.
func TestClosedFieldsMatchTheDecoder(t *testing.T) {
	d, err := decode.New(decode.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string, f field, value string) string {
		t.Helper()
		line := fmt.Sprintf(`{"event_id":"e1","event_type":"usage.interaction","occurred_at":"2026-11-01T00:00:00Z","workspace_id":"w1","user_id":"u1",`+
			`"payload":{"team_size":3,%q:%q}}`, name, value)
		if f.kind == campaign {
			line = fmt.Sprintf(`{"event_id":"e1","event_type":"campaign.metrics","occurred_at":"2026-11-01T00:00:00Z","workspace_id":"w1",`+
				`"payload":{"campaign_id":"c1","creator_id":"cr1","follower_count":5,%q:%q}}`, name, value)
		}
		var ev pipeline.Event
		if err := d.Decode([]byte(line), &ev); err != nil {
			t.Fatalf("%s=%q: %v", name, value, err)
		}
		return f.str(&ev)
	}
	closed := 0
	for name, f := range fields {
		if f.typ != fieldString {
			continue
		}
		for _, v := range f.closed {
			if got := read(name, f, v); got != v {
				t.Errorf("%s: the field table lists %q, the decoder reads it as %q", name, v, got)
			}
		}
		if f.closed != nil {
			closed++
			if got := read(name, f, "surely-not-a-"+name); got != Other {
				t.Errorf("%s: an unknown value reads %q, the field table says other", name, got)
			}
		} else if got := read(name, f, "Surely.Open"); got != "surely.open" && got != "ZZ" {
			t.Errorf("%s: the field table says the decoder leaves it open, but it reads a value as %q", name, got)
		}
	}
	if closed != 5 {
		t.Errorf("%d fields with a fixed list, want platform, content_type, action, plan_tier, device_type", closed)
	}
}
