package privacy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/transforms/aggregate"
	"github.com/mya/deid/transforms/decode"
	"github.com/mya/deid/transforms/privacy"
)

// TestAStrayIndustrySharedByElevenWorkspacesIsPublishedAsOther decodes,
// aggregates and gates records of 11 workspaces (k = 10) that all carry
// the same free text as their industry, evenly spread measures, and one
// creator each. The cell passes every rule, so it is published at level
// 0 — as other, never as the text.
func TestAStrayIndustrySharedByElevenWorkspacesIsPublishedAsOther(t *testing.T) {
	const stray = `<script>alert(1)</script>.x`
	for _, industry := range []string{stray, "  " + strings.ToUpper(stray) + " ", "beauty.<script>", "Beauty.Nails"} {
		t.Run(industry, func(t *testing.T) {
			spec := defaultSpecs(t)[0]
			agg, err := aggregate.New(spec)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := decode.New(decode.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			pz := pipeline.NewPseudonymizer([]byte("test"))
			p := pipeline.NewPartial(spec.Name, pipeline.Window{})
			for i := range 11 {
				rec := fmt.Sprintf(`{"event_id":"e%d","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00Z",`+
					`"workspace_id":"ws-%d","payload":{"campaign_id":"c%d","creator_id":"cr%d","follower_count":5000,`+
					`"platform":"tiktok","content_type":"video","audience_country":"BR","industry":%q,`+
					`"impressions":1000,"reach":900,"clicks":20,"likes":30,"video_views":400,"conversions":2,`+
					`"spend_cents":10000,"revenue_cents":20000}}`, i, i, i, i, industry)
				var ev pipeline.Event
				if err := dec.Decode([]byte(rec), &ev); err != nil {
					t.Fatalf("Decode: %v", err)
				}
				agg.Add(p, &ev, pz.Of(ev.WorkspaceID), pz)
				p.Events++
			}
			res, err := privacy.New().Apply(spec, p)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			ind := spec.DimIndex("industry")
			if len(res.Rows) != 1 || res.Rows[0].Level != 0 || res.Rows[0].Dims[ind] != aggregate.Other {
				t.Errorf("rows %v (suppressed %v), want one row at level 0 with industry other", res.Rows, res.Suppressed)
			}
			for _, r := range res.Rows {
				for _, v := range r.Dims {
					if strings.Contains(strings.ToLower(v), "script") || strings.Contains(v, "nails") {
						t.Errorf("row %v at level %d publishes the stray text", r.Dims, r.Level)
					}
				}
			}
			if c := agg.OtherCounts()[ind]; c.Dimension != "industry" || c.Events != 11 {
				t.Errorf("OtherCounts()[%d] = %+v, want 11 industry events read as other", ind, c)
			}
		})
	}
}
