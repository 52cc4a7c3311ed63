package decode

import (
	"testing"

	gojson "github.com/goccy/go-json"
)

type gcEvent struct {
	EventID     string `json:"event_id"`
	EventType   string `json:"event_type"`
	OccurredAt  string `json:"occurred_at"`
	WorkspaceID string `json:"workspace_id"`
	UserID      string `json:"user_id"`
	Payload     struct {
		CampaignID      string `json:"campaign_id"`
		CreatorID       string `json:"creator_id"`
		Platform        string `json:"platform"`
		ContentType     string `json:"content_type"`
		Industry        string `json:"industry"`
		Country         string `json:"audience_country"`
		FollowerCount   int64  `json:"follower_count"`
		CreatorAge      *int64 `json:"creator_age"`
		GuardianConsent *bool  `json:"guardian_consent"`
		Impressions     int64  `json:"impressions"`
		Reach           int64  `json:"reach"`
		Clicks          int64  `json:"clicks"`
		Likes           int64  `json:"likes"`
		Comments        int64  `json:"comments"`
		Shares          int64  `json:"shares"`
		Saves           int64  `json:"saves"`
		VideoViews      int64  `json:"video_views"`
		Conversions     int64  `json:"conversions"`
		SpendCents      int64  `json:"spend_cents"`
		RevenueCents    int64  `json:"revenue_cents"`
	} `json:"payload"`
}

func BenchmarkCalibGoccy(b *testing.B) {
	var e gcEvent
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCampaign)))
	for b.Loop() {
		if err := gojson.Unmarshal(benchCampaign, &e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
