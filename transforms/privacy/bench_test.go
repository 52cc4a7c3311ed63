package privacy_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/transforms/aggregate"
	"github.com/mya/deid/transforms/privacy"
)

func defaultSpecs(tb testing.TB) []*pipeline.DatasetSpec {
	tb.Helper()
	specs, err := aggregate.Build(aggregate.DefaultConfig(), nil)
	if err != nil {
		tb.Fatalf("aggregate.Build: %v", err)
	}
	return specs
}

// pareto draws a heavy-tailed integer ≥ 1: most draws are 1 or 2, a few
// are in the hundreds.
func pareto(rng *rand.Rand, alpha float64, limit int) int {
	return min(int(math.Floor(1/math.Pow(1-rng.Float64(), 1/alpha))), limit)
}

var (
	platforms  = []string{"instagram", "tiktok", "x", "linkedin", "youtube", "other"}
	contents   = []string{"post", "reel", "story", "video", "short", "live", "article", "other"}
	industries = []string{"beauty.skincare", "beauty.makeup", "beauty.hair", "food.restaurants", "food.grocery",
		"tech.saas", "tech.hardware", "fashion.apparel", "fashion.shoes", "travel.hotels", "travel.airlines",
		"fitness.gyms", "gaming.mobile", "finance.banking", "auto.dealers", "other"}
	countries = []string{"US", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BR", "MX", "AR", "CA", "JP", "KR",
		"IN", "ID", "PH", "AU", "NZ", "NG", "ZA", "EG", "KE", "AE", "SA", "TR", "ZZ"}
	followers = []int64{1_000, 50_000, 200_000, 700_000, 5_000_000}
)

// campaignEvent draws a campaign event with a heavy-tailed choice of
// dimension values, workspace and creator.
func campaignEvent(rng *rand.Rand) (*pipeline.Event, string) {
	pick := func(n int) int { return (pareto(rng, 0.8, 1<<20) - 1) % n }
	ws := fmt.Sprintf("ws-%d", pick(3000))
	ev := &pipeline.Event{Kind: pipeline.KindCampaignMetrics, WorkspaceID: []byte(ws),
		Campaign: pipeline.CampaignMetrics{
			CampaignID: fmt.Appendf(nil, "%s-camp-%d", ws, rng.IntN(5)),
			CreatorID:  fmt.Appendf(nil, "creator-%d", pick(50_000)),
			Platform:   platforms[pick(len(platforms))], ContentType: contents[pick(len(contents))],
			Industry: industries[pick(len(industries))], Country: countries[pick(len(countries))],
			FollowerCount: followers[pick(len(followers))],
			Impressions:   rng.Int64N(100_000), Reach: rng.Int64N(50_000), Clicks: rng.Int64N(2_000),
			Likes: rng.Int64N(5_000), Comments: rng.Int64N(500), Shares: rng.Int64N(300), Saves: rng.Int64N(300),
			VideoViews: rng.Int64N(80_000), Conversions: rng.Int64N(20),
			SpendCents: int64(pareto(rng, 1.2, 10_000_000)), RevenueCents: rng.Int64N(1_000_000)}}
	return ev, ws
}

// campaignPartial aggregates events until the partial holds cells level-0
// cells (counted every 64 events, when it is sealed).
func campaignPartial(tb testing.TB, spec *pipeline.DatasetSpec, seed uint64, cells int) *pipeline.Partial {
	tb.Helper()
	agg, err := aggregate.New(spec)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	pz := pipeline.NewPseudonymizer([]byte("bench"))
	p := pipeline.NewPartial(spec.Name, pipeline.Window{})
	for len(p.Cells) < cells {
		for range 64 {
			ev, _ := campaignEvent(rng)
			agg.Add(p, ev, pz.Of(ev.WorkspaceID), pz)
			p.Events++
		}
		p.Seal()
	}
	return p
}

// TestDefaultDatasetEndToEnd runs events through the default campaign
// aggregator and the gate, and checks what `deid verify` can check from
// the rows alone: conservation, and k over workspaces and creators.
func TestDefaultDatasetEndToEnd(t *testing.T) {
	spec := defaultSpecs(t)[0]
	p := campaignPartial(t, spec, 1, 2000)
	res, err := privacy.New().Apply(spec, p)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	ws, creators, events := spec.MeasureIndex("workspaces"), spec.MeasureIndex("creators"), spec.MeasureIndex("events")
	var published, suppressed int64
	levels := map[int]int{}
	for _, r := range res.Rows {
		if r.Values[ws].Int < 10 || r.Values[creators].Int < 10 {
			t.Errorf("row %v@%d has %d workspaces and %d creators, below k = 10", r.Dims, r.Level, r.Values[ws].Int, r.Values[creators].Int)
		}
		published += r.Values[events].Int
		levels[r.Level]++
	}
	for _, s := range res.Suppressed {
		suppressed += s.Events
	}
	if published+suppressed != p.Events || published != res.PublishedEvents {
		t.Errorf("%d published + %d suppressed != %d contributed (PublishedEvents %d)", published, suppressed, p.Events, res.PublishedEvents)
	}
	t.Logf("%d level-0 cells, %d events: %d rows by level %v, %d suppressed cells (%d events)",
		len(p.Cells), p.Events, len(res.Rows), levels, len(res.Suppressed), suppressed)
}

// BenchmarkApply gates a campaign window of 5,000 level-0 cells whose
// workspace counts are heavy-tailed (most cells have one or two workspaces,
// a few have hundreds), as the default dataset produces them.
func BenchmarkApply(b *testing.B) {
	spec := defaultSpecs(b)[0]
	p := campaignPartial(b, spec, 2, 5000)
	g := privacy.New()
	var rows int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := g.Apply(spec, p)
		if err != nil {
			b.Fatal(err)
		}
		rows = len(res.Rows)
	}
	b.ReportMetric(float64(len(p.Cells)), "cells")
	b.ReportMetric(float64(rows), "rows")
	b.ReportMetric(float64(p.Events), "events")
}
