package aggregate

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
)

func defaultAggregators(t testing.TB) (campaignAgg, usageAgg *Aggregator) {
	t.Helper()
	specs, err := Build(DefaultConfig(), nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	var aggs []*Aggregator
	for _, s := range specs {
		a, err := New(s)
		if err != nil {
			t.Fatalf("New(%s): %v", s.Name, err)
		}
		aggs = append(aggs, a)
	}
	return aggs[0], aggs[1]
}

func campaignEvent(ws, creator, campaign, platform, industry, country string, followers int64) *pipeline.Event {
	return &pipeline.Event{Kind: pipeline.KindCampaignMetrics, WorkspaceID: []byte(ws),
		Campaign: pipeline.CampaignMetrics{CampaignID: []byte(campaign), CreatorID: []byte(creator), Platform: platform,
			ContentType: "reel", Industry: industry, Country: country, FollowerCount: followers,
			Impressions: 1000, Reach: 800, Clicks: 10, Likes: 5, Comments: 2, Shares: 1, Saves: 1, VideoViews: 300,
			Conversions: 1, SpendCents: 5000, RevenueCents: 9000}}
}

// cellSummary seals a partial and renders its cells: key, then per
// workspace the events, sums and entity-set sizes.
func cellSummary(p *pipeline.Partial, pz *pipeline.Pseudonymizer, workspaces ...string) []string {
	p.Seal()
	var out []string
	for key, byWS := range p.Cells {
		for _, ws := range workspaces {
			c := byWS[pz.Of([]byte(ws))]
			if c == nil {
				continue
			}
			var sets []int
			for i := range c.Sets {
				sets = append(sets, c.Sets[i].Len())
			}
			out = append(out, fmt.Sprintf("%s %s events=%d sums=%v sets=%v overflow=%t",
				strings.Join(slices.DeleteFunc(key[:], func(s string) bool { return s == "" }), "|"), ws, c.Events, c.Sums, sets, c.Overflow))
		}
	}
	slices.Sort(out)
	return out
}

func TestAdd(t *testing.T) {
	camp, usage := defaultAggregators(t)
	tests := []struct {
		name   string
		agg    *Aggregator
		events []*pipeline.Event
		want   []string
	}{
		{"one event makes one cell with its sums, creators and campaigns", camp, []*pipeline.Event{
			campaignEvent("w1", "c1", "k1", "instagram", "beauty.skincare", "DE", 15_000),
		}, []string{"instagram|reel|beauty.skincare|DE|micro w1 events=1 sums=[1000 800 10 9 300 1 5000 9000] sets=[1 1] overflow=false"}},
		{"events of one workspace in one cell add up; entity sets count distinct ids", camp, []*pipeline.Event{
			campaignEvent("w1", "c1", "k1", "instagram", "beauty.skincare", "DE", 15_000),
			campaignEvent("w1", "c2", "k1", "instagram", "beauty.skincare", "DE", 99_999),
			campaignEvent("w1", "c1", "k2", "instagram", "beauty.skincare", "DE", 10_000),
		}, []string{"instagram|reel|beauty.skincare|DE|micro w1 events=3 sums=[3000 2400 30 27 900 3 15000 27000] sets=[2 2] overflow=false"}},
		{"workspaces get their own contributions in a shared cell", camp, []*pipeline.Event{
			campaignEvent("w1", "c1", "k1", "tiktok", "food", "US", 0),
			campaignEvent("w2", "c1", "k9", "tiktok", "food", "US", 9_999),
		}, []string{
			"tiktok|reel|food|US|nano w1 events=1 sums=[1000 800 10 9 300 1 5000 9000] sets=[1 1] overflow=false",
			"tiktok|reel|food|US|nano w2 events=1 sums=[1000 800 10 9 300 1 5000 9000] sets=[1 1] overflow=false",
		}},
		{"a follower count is kept only as its tier, and an unknown country as ZZ", camp, []*pipeline.Event{
			campaignEvent("w1", "c1", "k1", "x", "tech.saas", "XK", 2_000_000),
			campaignEvent("w1", "c1", "k1", "x", "tech.saas", "QQ", 1_500_000),
		}, []string{
			"x|reel|tech.saas|XK|mega w1 events=1 sums=[1000 800 10 9 300 1 5000 9000] sets=[1 1] overflow=false",
			"x|reel|tech.saas|ZZ|mega w1 events=1 sums=[1000 800 10 9 300 1 5000 9000] sets=[1 1] overflow=false",
		}},
		{"an absent identifier adds nobody to an entity set", camp, []*pipeline.Event{
			campaignEvent("w1", "", "", "x", "tech", "FR", 1),
		}, []string{"x|reel|tech|FR|nano w1 events=1 sums=[1000 800 10 9 300 1 5000 9000] sets=[0 0] overflow=false"}},
		{"usage events are cut by feature, action, plan, team size and device", usage, []*pipeline.Event{
			{Kind: pipeline.KindUsageInteraction, WorkspaceID: []byte("w1"), UserID: []byte("u1"), Usage: pipeline.UsageInteraction{
				Feature: "analytics.dashboard", Action: "view", PlanTier: "pro", DeviceType: "desktop", TeamSize: 7, DurationMs: 1200}},
			{Kind: pipeline.KindUsageInteraction, WorkspaceID: []byte("w1"), UserID: []byte("u2"), Usage: pipeline.UsageInteraction{
				Feature: "analytics.dashboard", Action: "view", PlanTier: "pro", DeviceType: "desktop", TeamSize: 20, DurationMs: 800}},
		}, []string{"analytics.dashboard|view|pro|6-20|desktop w1 events=2 sums=[2000] sets=[2] overflow=false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pz := pipeline.NewPseudonymizer([]byte("key"))
			p := pipeline.NewPartial(tt.agg.Spec().Name, pipeline.Window{})
			for _, ev := range tt.events {
				tt.agg.Add(p, ev, pz.Of(ev.WorkspaceID), pz)
			}
			if diff := cmp.Diff(tt.want, cellSummary(p, pz, "w1", "w2")); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddMarksOverflowInsteadOfWrapping(t *testing.T) {
	camp, _ := defaultAggregators(t)
	pz := pipeline.NewPseudonymizer([]byte("key"))
	p := pipeline.NewPartial("campaign_metrics", pipeline.Window{})
	ev := campaignEvent("w1", "c1", "k1", "x", "tech", "FR", 1)
	ev.Campaign.SpendCents = math.MaxInt64 - 10
	camp.Add(p, ev, pz.Of(ev.WorkspaceID), pz)
	got := cellSummary(p, pz, "w1")
	if !strings.HasSuffix(got[0], "overflow=false") {
		t.Fatalf("one large value must not overflow: %s", got[0])
	}
	camp.Add(p, ev, pz.Of(ev.WorkspaceID), pz)
	if got := cellSummary(p, pz, "w1"); !strings.HasSuffix(got[0], "overflow=true") {
		t.Errorf("two values summing past int64: %s, want the contribution marked overflow=true", got[0])
	}
}

func TestAddInternsCellKeys(t *testing.T) {
	camp, _ := defaultAggregators(t)
	pz := pipeline.NewPseudonymizer([]byte("key"))
	p := pipeline.NewPartial("campaign_metrics", pipeline.Window{})
	// Two cells with the same industry, read from two distinct strings.
	a := campaignEvent("w1", "c1", "k1", "x", strings.Clone("beauty.skincare"), "FR", 1)
	b := campaignEvent("w1", "c1", "k1", "tiktok", strings.Clone("beauty.skincare"), "FR", 1)
	camp.Add(p, a, pz.Of(a.WorkspaceID), pz)
	camp.Add(p, b, pz.Of(b.WorkspaceID), pz)
	p.Seal()
	var ptrs []*byte
	for key := range p.Cells {
		ptrs = append(ptrs, unsafeData(key[2]))
	}
	if len(ptrs) != 2 || ptrs[0] != ptrs[1] {
		t.Errorf("the two cells' industry strings are not shared (%v)", ptrs)
	}
}

func TestNewRejectsASpecItCannotRead(t *testing.T) {
	camp, _ := defaultAggregators(t)
	spec := *camp.Spec()
	spec.Dimensions = slices.Clone(spec.Dimensions)
	spec.Dimensions[0].Field = "caption"
	spec.Dimensions[4].Hierarchy = StarHierarchy{}
	spec.Dimensions[1].Field = "device_type"
	spec.Measures = slices.Clone(spec.Measures)
	spec.Measures[4].Fields = []string{"follower_count"}
	_, err := New(&spec)
	want := []string{
		`aggregate: dataset campaign_metrics: dimension platform: unknown field "caption"`,
		`aggregate: dataset campaign_metrics: dimension content_type: "device_type" is a field of usage.interaction only, and the dataset takes campaign.metrics`,
		`aggregate: dataset campaign_metrics: dimension follower_tier: numeric field "follower_count" needs a buckets hierarchy`,
		`aggregate: dataset campaign_metrics: sum measure impressions: "follower_count" is not a counter`,
	}
	if diff := cmp.Diff(want, errLines(err)); diff != "" {
		t.Errorf("New errors (-want +got):\n%s", diff)
	}
}

// benchEvents returns n campaign events over a realistic spread of cells,
// workspaces and creators.
func benchEvents(n int) []*pipeline.Event {
	platforms := []string{"instagram", "tiktok", "x", "linkedin", "youtube"}
	industries := []string{"beauty.skincare", "beauty.makeup", "food.restaurants", "tech.saas", "fashion.apparel", "travel"}
	countries := []string{"US", "DE", "FR", "BR", "JP", "GB", "IN", "NG"}
	evs := make([]*pipeline.Event, n)
	for i := range evs {
		ws := fmt.Sprintf("ws-%d", (i*7919)%200)
		creator := fmt.Sprintf("cr-%d", (i*104729)%1000)
		evs[i] = campaignEvent(ws, creator, fmt.Sprintf("camp-%d", i%300), platforms[i%len(platforms)],
			industries[(i/5)%len(industries)], countries[(i/30)%len(countries)], int64((i*37)%2_000_000))
	}
	return evs
}

func TestAddDoesNotAllocateOnceTheCellExists(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	camp, _ := defaultAggregators(t)
	pz := pipeline.NewPseudonymizer([]byte("key"))
	p := pipeline.NewPartial("campaign_metrics", pipeline.Window{})
	evs := benchEvents(4096)
	for _, ev := range evs {
		camp.Add(p, ev, pz.Of(ev.WorkspaceID), pz)
	}
	i := 0
	allocs := testing.AllocsPerRun(10_000, func() {
		ev := evs[i%len(evs)]
		camp.Add(p, ev, pz.Of(ev.WorkspaceID), pz)
		i++
	})
	if allocs != 0 {
		t.Errorf("Add allocates %.2f times per event once its cell exists, want 0", allocs)
	}
}

func BenchmarkAdd(b *testing.B) {
	camp, _ := defaultAggregators(b)
	pz := pipeline.NewPseudonymizer([]byte("key"))
	p := pipeline.NewPartial("campaign_metrics", pipeline.Window{})
	evs := benchEvents(1 << 14)
	ws := make([]pipeline.Pseudonym, len(evs))
	for i, ev := range evs {
		ws[i] = pz.Of(ev.WorkspaceID)
		camp.Add(p, ev, ws[i], pz)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i & (len(evs) - 1)
		camp.Add(p, evs[j], ws[j], pz)
	}
	b.StopTimer()
	p.Seal()
	b.ReportMetric(float64(len(p.Cells)), "cells")
}
