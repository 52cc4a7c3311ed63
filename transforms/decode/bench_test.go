package decode

import (
	"testing"

	"github.com/mya/deid/pipeline"
)

// Realistic records of about 420 bytes, each with fields the allowlist drops
// at the top level and in the payload.
var (
	benchCampaign = []byte(`{"event_id":"01JD3W6Q8K2M5N7P9R1T","event_type":"campaign.metrics","occurred_at":"2026-11-03T14:22:31.482Z","workspace_id":"ws_8f2c41d7","source":"rollup","payload":{"campaign_id":"cmp_71c4e9","creator_id":"crt_55ab02","platform":"Instagram","content_type":"reel","industry":"beauty.skincare","audience_country":"us","follower_count":48213,"impressions":120934,"likes":5234,"spend_cents":250000,"caption":"Glow #ad","handle":"@glow"}}`)
	benchUsage    = []byte(`{"event_id":"01JD3W7B2C4D6E8F0G2H4J6K8M","event_type":"usage.interaction","occurred_at":"2026-11-03T14:22:31.482+01:00","workspace_id":"ws_8f2c41d7","user_id":"usr_3b9e0a12","session_id":"sess_9a8b7c6d","payload":{"feature":"analytics.dashboard","action":"View","plan_tier":"business","team_size":14,"device_type":"desktop","duration_ms":48210,"ip":"203.0.113.42","user_agent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) Safari/605.1","email":"jane.doe@example.com"}}`)
	benchMessage  = []byte(`{"event_id":"01JD3W8H6J8K0L2M4N6P8Q0R2S","event_type":"message.direct","occurred_at":"2026-11-03T14:22:31Z","workspace_id":"ws_8f2c41d7","user_id":"usr_3b9e0a12","payload":{"thread_id":"thr_0c9d8e7f","from":"@glowqueen","to":"@brandco","body":"Hi! Loved the brief. Send the contract to jane.doe@example.com or call +1 415 555 0134?","attachments":[{"type":"image","url":"https://cdn.example.com/a/9f8e7d.jpg"}]}}`)
)

func benchDecode(b *testing.B, value []byte) {
	d, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	var ev pipeline.Event
	if err := d.Decode(value, &ev); err != nil {
		b.Fatalf("Decode: %v", err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	for b.Loop() {
		if err := d.Decode(value, &ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeCampaign(b *testing.B) { benchDecode(b, benchCampaign) }
func BenchmarkDecodeUsage(b *testing.B)    { benchDecode(b, benchUsage) }
func BenchmarkDecodeMessage(b *testing.B)  { benchDecode(b, benchMessage) }
