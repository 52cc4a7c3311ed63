package privacy_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/transforms/aggregate"
	"github.com/mya/deid/transforms/privacy"
)

// TestADominatedSumOfTheDefaultDatasetIsNotPublished aggregates, with the
// default campaign_metrics declaration, one cell of 11 workspaces and 11
// creators in which one workspace has 1,000,000 of the 1,000,009 clicks
// and all 9,000,000 video views, every other measure evenly spread. The
// cell passes k, so only dominance over clicks and video_views can stop
// it: it must not be published at level 0, nor at any level above, since
// no other cell dilutes it.
func TestADominatedSumOfTheDefaultDatasetIsNotPublished(t *testing.T) {
	spec := defaultSpecs(t)[0]
	agg, err := aggregate.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	pz := pipeline.NewPseudonymizer([]byte("test"))
	p := pipeline.NewPartial(spec.Name, pipeline.Window{})
	for i := range 11 {
		ws := fmt.Sprintf("ws-%d", i)
		ev := &pipeline.Event{Kind: pipeline.KindCampaignMetrics, WorkspaceID: []byte(ws),
			Campaign: pipeline.CampaignMetrics{
				CampaignID: []byte(ws + "-camp"), CreatorID: fmt.Appendf(nil, "creator-%d", i),
				Platform: "instagram", ContentType: "reel", Industry: "beauty.skincare", Country: "DE",
				FollowerCount: 50_000, Impressions: 1000, Reach: 800, Likes: 10, Comments: 2, Shares: 1, Saves: 1,
				Conversions: 1, SpendCents: 5000, RevenueCents: 9000}}
		switch {
		case i == 0:
			ev.Campaign.Clicks, ev.Campaign.VideoViews = 1_000_000, 9_000_000
		case i < 10:
			ev.Campaign.Clicks = 1
		}
		agg.Add(p, ev, pz.Of(ev.WorkspaceID), pz)
		p.Events++
	}
	p.Seal()
	if len(p.Cells) != 1 {
		t.Fatalf("%d level-0 cells, want the one cell of the test", len(p.Cells))
	}
	res, err := privacy.New().Apply(spec, p)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, r := range res.Rows {
		t.Errorf("row %v published at level %d with %d clicks", r.Dims, r.Level, r.Values[spec.MeasureIndex("clicks")].Int)
	}
	var reasons []string
	for _, s := range res.Suppressed {
		reasons = append(reasons, fmt.Sprintf("%s events=%d workspaces=%d", s.Reason, s.Events, s.Workspaces))
	}
	if diff := cmp.Diff([]string{"suppressed_dominance events=11 workspaces=11"}, reasons); diff != "" {
		t.Errorf("suppressed (-want +got):\n%s", diff)
	}

	// The same cell with the one workspace's clicks and views spread like
	// the rest is published at level 0: nothing else holds it back.
	even := pipeline.NewPartial(spec.Name, pipeline.Window{})
	for i := range 11 {
		ws := fmt.Sprintf("ws-%d", i)
		ev := &pipeline.Event{Kind: pipeline.KindCampaignMetrics, WorkspaceID: []byte(ws),
			Campaign: pipeline.CampaignMetrics{
				CampaignID: []byte(ws + "-camp"), CreatorID: fmt.Appendf(nil, "creator-%d", i),
				Platform: "instagram", ContentType: "reel", Industry: "beauty.skincare", Country: "DE",
				FollowerCount: 50_000, Impressions: 1000, Reach: 800, Clicks: 1, VideoViews: 100, Likes: 10, Comments: 2,
				Shares: 1, Saves: 1, Conversions: 1, SpendCents: 5000, RevenueCents: 9000}}
		agg.Add(even, ev, pz.Of(ev.WorkspaceID), pz)
		even.Events++
	}
	res, err = privacy.New().Apply(spec, even)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(res.Rows) != 1 || res.Rows[0].Level != 0 {
		t.Errorf("the evenly spread cell: %d rows (%v), want one at level 0", len(res.Rows), res.Suppressed)
	}
}
