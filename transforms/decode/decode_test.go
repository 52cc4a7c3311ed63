package decode

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
)

// Test records are built from an envelope and a payload, so that each case
// shows only what it is about.
const (
	envCampaign = `"event_id":"e1","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`
	envUsage    = `"event_id":"e1","event_type":"usage.interaction","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","user_id":"u1"`
	minCampaign = `"campaign_id":"c1","creator_id":"cr1","follower_count":10`
	minUsage    = `"team_size":3`
)

// at is the microseconds of 2026-11-01T10:00:00Z.
const at = 1793527200_000000

func rec(env, payload string) string { return `{` + env + `,"payload":{` + payload + `}}` }

func campaignRec(payload string) string { return rec(envCampaign, payload) }
func usageRec(payload string) string    { return rec(envUsage, payload) }

// campaignEvent is the event of campaignRec(minCampaign + extra), with edit
// applied to its payload.
func campaignEvent(edit func(*pipeline.CampaignMetrics)) pipeline.Event {
	ev := pipeline.Event{Kind: pipeline.KindCampaignMetrics, EventID: []byte("e1"), EventType: []byte("campaign.metrics"),
		OccurredAt: at, WorkspaceID: []byte("w1"),
		Campaign: pipeline.CampaignMetrics{CampaignID: []byte("c1"), CreatorID: []byte("cr1"), FollowerCount: 10,
			Platform: "other", ContentType: "other", Industry: "other", Country: "ZZ"}}
	if edit != nil {
		edit(&ev.Campaign)
	}
	return ev
}

func usageEvent(edit func(*pipeline.UsageInteraction)) pipeline.Event {
	ev := pipeline.Event{Kind: pipeline.KindUsageInteraction, EventID: []byte("e1"), EventType: []byte("usage.interaction"),
		OccurredAt: at, WorkspaceID: []byte("w1"), UserID: []byte("u1"),
		Usage: pipeline.UsageInteraction{TeamSize: 3, Feature: "other", Action: "other", PlanTier: "other", DeviceType: "other"}}
	if edit != nil {
		edit(&ev.Usage)
	}
	return ev
}

func envEvent(kind pipeline.EventKind, typ string) pipeline.Event {
	return pipeline.Event{Kind: kind, EventID: []byte("e1"), EventType: []byte(typ), OccurredAt: at, WorkspaceID: []byte("w1")}
}

// decoderPath is one way a Decoder decodes.
type decoderPath struct {
	name string
	path uint8
}

// decoderPaths are the paths this processor can run: the exact decoder
// alone, the fast path with portable stage 1, and with AVX2 stage 1 where
// the processor has it.
func decoderPaths() []decoderPath {
	paths := []decoderPath{{"exact", pathExact}, {"fast portable", pathPortable}}
	if hasAVX2 {
		paths = append(paths, decoderPath{"fast AVX2", pathAVX2})
	}
	return paths
}

// forEachPath runs test once on each decoding path, as a subtest.
func forEachPath(t *testing.T, test func(t *testing.T, path uint8)) {
	for _, p := range decoderPaths() {
		t.Run(p.name, func(t *testing.T) { test(t, p.path) })
	}
}

// newOn is New with the decoding path chosen.
func newOn(cfg Config, path uint8) (*Decoder, error) {
	d, err := New(cfg)
	if d != nil {
		d.path = path
	}
	return d, err
}

// testDecoderOn is a decoder with the default configuration on path.
func testDecoderOn(t testing.TB, path uint8) *Decoder {
	t.Helper()
	d, err := newOn(DefaultConfig(), path)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

func TestDecodeWellFormed(t *testing.T) { forEachPath(t, testDecodeWellFormed) }

func testDecodeWellFormed(t *testing.T, path uint8) {
	tests := []struct {
		name string
		in   string
		want pipeline.Event
	}{
		{"a campaign event with only its required fields gets zero counters and unknown dimensions",
			campaignRec(minCampaign), campaignEvent(nil)},
		{"a campaign event with every allowlisted field reads them all",
			`{"event_id":"evt-1","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00.123456Z","workspace_id":"ws-9","user_id":"usr-3","payload":{` +
				`"campaign_id":"cmp-1","creator_id":"crt-2","platform":"TikTok","content_type":"Reel","industry":"Beauty.Skincare","audience_country":"fr",` +
				`"follower_count":48213,"creator_age":17,"guardian_consent":true,"impressions":1000,"reach":900,"clicks":80,"likes":70,"comments":60,` +
				`"shares":50,"saves":40,"video_views":30,"conversions":20,"spend_cents":1000000000000,"revenue_cents":0}}`,
			pipeline.Event{Kind: pipeline.KindCampaignMetrics, EventID: []byte("evt-1"), EventType: []byte("campaign.metrics"),
				OccurredAt: at + 123456, WorkspaceID: []byte("ws-9"), UserID: []byte("usr-3"),
				Campaign: pipeline.CampaignMetrics{CampaignID: []byte("cmp-1"), CreatorID: []byte("crt-2"), Platform: "tiktok",
					ContentType: "reel", Industry: "beauty.skincare", Country: "FR", FollowerCount: 48213, HasAge: true, CreatorAge: 17,
					GuardianConsent: true, Impressions: 1000, Reach: 900, Clicks: 80, Likes: 70, Comments: 60, Shares: 50, Saves: 40,
					VideoViews: 30, Conversions: 20, SpendCents: 1_000_000_000_000}}},
		{"a usage event with every allowlisted field reads them all",
			usageRec(`"feature":"Analytics.Dashboard","action":"EXPORT","plan_tier":"Enterprise","team_size":250,"device_type":"tablet","duration_ms":4821`),
			usageEvent(func(u *pipeline.UsageInteraction) {
				*u = pipeline.UsageInteraction{Feature: "analytics.dashboard", Action: "export", PlanTier: "enterprise", TeamSize: 250,
					DeviceType: "tablet", DurationMs: 4821}
			})},
		{"a usage event with only team_size gets other for every dimension", usageRec(minUsage), usageEvent(nil)},
		{"fields the allowlist does not name are dropped wherever they are",
			`{"ip":"203.0.113.9",` + envCampaign + `,"meta":{"a":[1,2,{"b":null}]},"payload":{"caption":"hi","nested":{"body":"x"},` +
				minCampaign + `,"tags":["a","b"],"score":1.5e3,"ok":true,"no":false,"nil":null}}`,
			campaignEvent(nil)},
		{"a non-allowlisted key may appear twice", campaignRec(minCampaign + `,"caption":"a","caption":"b"`), campaignEvent(nil)},
		{"the payload may come before the event type",
			`{"payload":{` + minCampaign + `,"clicks":5},"event_id":"e1","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"}`,
			campaignEvent(func(c *pipeline.CampaignMetrics) { c.Clicks = 5 })},
		{"whitespace anywhere between tokens is allowed",
			"\n\t {\r\n \"event_id\" : \"e1\" ,\n \"event_type\":\"campaign.metrics\" , \"occurred_at\" :\"2026-11-01T10:00:00Z\",\"workspace_id\":\"w1\",\n" +
				" \"payload\" : { \"campaign_id\" : \"c1\" , \"creator_id\":\"cr1\" ,\"follower_count\" : 10 , \"x\" : [ 1 , { } , [ ] ] } \n } \n",
			campaignEvent(nil)},
		{"null is absent for optional fields",
			`{"event_id":"e1","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","user_id":null,"payload":{` + minCampaign +
				`,"platform":null,"content_type":null,"industry":null,"audience_country":null,"creator_age":null,"guardian_consent":null,"clicks":null}}`,
			campaignEvent(nil)},
		{"an empty user_id is no user_id", rec(envCampaign+`,"user_id":""`, minCampaign), campaignEvent(nil)},
		{"minus zero is zero, not negative", campaignRec(minCampaign + `,"clicks":-0`), campaignEvent(nil)},
		{"a counter of exactly 10^12 is plausible", campaignRec(minCampaign + `,"impressions":1000000000000`),
			campaignEvent(func(c *pipeline.CampaignMetrics) { c.Impressions = 1_000_000_000_000 })},
		{"creator_age 0 and guardian_consent false are present values", campaignRec(minCampaign + `,"creator_age":0,"guardian_consent":false`),
			campaignEvent(func(c *pipeline.CampaignMetrics) { c.HasAge = true })},
		{"ids are unescaped", `{"event_id":"a\"b\\c\/d\u00e9\ud83d\ude00","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w\n1","payload":{"campaign_id":"c\u0031","creator_id":"cr1","follower_count":10}}`,
			func() pipeline.Event {
				ev := campaignEvent(func(c *pipeline.CampaignMetrics) { c.CampaignID = []byte("c1") })
				ev.EventID, ev.WorkspaceID = []byte("a\"b\\c/dé😀"), []byte("w\n1")
				return ev
			}()},
		{"every JSON escape is decoded in an id", `{"event_id":"\b\f\n\r\t\u00C9\u20AC","event_type":"message.direct","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","payload":{}}`,
			func() pipeline.Event {
				ev := envEvent(pipeline.KindMessage, "message.direct")
				ev.EventID = []byte("\b\f\n\r\tÉ€")
				return ev
			}()},
		{"a long escaped key is skipped like any unknown key", campaignRec(minCampaign + `,"` + strings.Repeat(`\u0061`, 70) + `":{"b":"c"}`), campaignEvent(nil)},
		{"a lone surrogate escape becomes U+FFFD as encoding/json makes it",
			`{"event_id":"a\ud800b","event_type":"message.direct","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","payload":{}}`,
			func() pipeline.Event {
				ev := envEvent(pipeline.KindMessage, "message.direct")
				ev.EventID = []byte("a\uFFFDb")
				return ev
			}()},
		{"an escaped event type is classified by its value",
			`{"event_id":"e1","event_type":"campaign\u002emetrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","payload":{` + minCampaign + `}}`,
			campaignEvent(nil)},
		{"escaped keys are matched by their value",
			`{"event\u005fid":"e1","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","payload":{"campaign_id":"c1","creator_id":"cr1","\u0066ollower_count":10}}`,
			campaignEvent(nil)},
		{"non-ASCII ids are kept as UTF-8", rec(`"event_id":"événement","event_type":"message.sms","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``),
			func() pipeline.Event {
				ev := envEvent(pipeline.KindMessage, "message.sms")
				ev.EventID = []byte("événement")
				return ev
			}()},
		{"an id of exactly 128 bytes is accepted", rec(`"event_id":"`+strings.Repeat("x", 128)+`","event_type":"x","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``),
			func() pipeline.Event {
				ev := envEvent(pipeline.KindUnsupported, "x")
				ev.EventID = []byte(strings.Repeat("x", 128))
				return ev
			}()},
		{"an escaped id of 128 bytes once unescaped is accepted", rec(`"event_id":"`+strings.Repeat(`\u0078`, 128)+`","event_type":"x","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``),
			func() pipeline.Event {
				ev := envEvent(pipeline.KindUnsupported, "x")
				ev.EventID = []byte(strings.Repeat("x", 128))
				return ev
			}()},

		// Event types (contract §3.2).
		{"a direct message is a message and its payload is not read",
			rec(`"event_id":"e1","event_type":"message.direct","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, `"body":"secret","campaign_id":5,"clicks":-1`),
			envEvent(pipeline.KindMessage, "message.direct")},
		{"any type starting with message. is a message", rec(`"event_id":"e1","event_type":"message.carrier_pigeon","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``),
			envEvent(pipeline.KindMessage, "message.carrier_pigeon")},
		{"support.message is a message", rec(`"event_id":"e1","event_type":"support.message","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``),
			envEvent(pipeline.KindMessage, "support.message")},
		{"message types are recognized whatever their ASCII case", rec(`"event_id":"e1","event_type":"Message.SMS","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``),
			envEvent(pipeline.KindMessage, "Message.SMS")},
		{"SUPPORT.MESSAGE is a message", rec(`"event_id":"e1","event_type":"SUPPORT.MESSAGE","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``),
			envEvent(pipeline.KindMessage, "SUPPORT.MESSAGE")},
		{"a message type's payload before the type is still not read",
			`{"payload":{"body":"secret","team_size":"x"},"event_id":"e1","event_type":"message.email","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"}`,
			envEvent(pipeline.KindMessage, "message.email")},
		{"an unknown type is unsupported and its payload is not read",
			rec(`"event_id":"e1","event_type":"account.login","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, `"ip":"1.2.3.4"`),
			envEvent(pipeline.KindUnsupported, "account.login")},
		{"aggregated types match exactly", rec(`"event_id":"e1","event_type":"Campaign.Metrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``),
			envEvent(pipeline.KindUnsupported, "Campaign.Metrics")},
		{"messages is not message.", rec(`"event_id":"e1","event_type":"messages","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``),
			envEvent(pipeline.KindUnsupported, "messages")},
		{"a message needs no user_id", rec(`"event_id":"e1","event_type":"support.message","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","user_id":"u7"`, ``),
			func() pipeline.Event {
				ev := envEvent(pipeline.KindMessage, "support.message")
				ev.UserID = []byte("u7")
				return ev
			}()},

		// Timestamps.
		{"a timestamp with an offset is converted to UTC", rec(`"event_id":"e1","event_type":"x","occurred_at":"2026-11-01T12:30:00+02:30","workspace_id":"w1"`, ``),
			envEvent(pipeline.KindUnsupported, "x")},
		{"a negative offset is converted to UTC", rec(`"event_id":"e1","event_type":"x","occurred_at":"2026-11-01T05:00:00.5-05:00","workspace_id":"w1"`, ``),
			func() pipeline.Event {
				ev := envEvent(pipeline.KindUnsupported, "x")
				ev.OccurredAt = at + 500000
				return ev
			}()},
		{"a fraction beyond microseconds is truncated", rec(`"event_id":"e1","event_type":"x","occurred_at":"2026-11-01T10:00:00.9999999999Z","workspace_id":"w1"`, ``),
			func() pipeline.Event {
				ev := envEvent(pipeline.KindUnsupported, "x")
				ev.OccurredAt = at + 999999
				return ev
			}()},
	}
	d := testDecoderOn(t, path)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got pipeline.Event
			if err := d.Decode([]byte(tt.in), &got); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
			if ref, ok := refDecode([]byte(tt.in), DefaultConfig()); !ok {
				t.Errorf("the fuzz reference rejects the record")
			} else if diff := cmp.Diff(tt.want, ref); diff != "" {
				t.Errorf("the fuzz reference disagrees (-want +reference):\n%s", diff)
			}
		})
	}
}

func TestNormalization(t *testing.T) { forEachPath(t, testNormalization) }

func testNormalization(t *testing.T, path uint8) {
	type dims struct{ Platform, ContentType, Industry, Country string }
	campaign := []struct {
		name, payload string
		want          dims
	}{
		{"dimensions are trimmed and lower-cased", `"platform":"  Instagram ","content_type":"\tVIDEO\n","industry":" Beauty.SkinCare ","audience_country":" us "`,
			dims{"instagram", "video", "beauty.skincare", "US"}},
		{"every platform of the closed set is kept", `"platform":"x","content_type":"short"`, dims{"x", "short", "other", "ZZ"}},
		{"linkedin and youtube are platforms", `"platform":"LinkedIn","content_type":"live"`, dims{"linkedin", "live", "other", "ZZ"}},
		{"youtube and article", `"platform":"YOUTUBE","content_type":"article"`, dims{"youtube", "article", "other", "ZZ"}},
		{"post and story are content types", `"content_type":"Post"`, dims{"other", "post", "other", "ZZ"}},
		{"a platform outside the set is other", `"platform":"facebook","content_type":"carousel"`, dims{"other", "other", "other", "ZZ"}},
		{"an empty platform is other", `"platform":"","content_type":"  "`, dims{"other", "other", "other", "ZZ"}},
		{"a prefix of a platform is other", `"platform":"insta","content_type":"reels"`, dims{"other", "other", "other", "ZZ"}},
		{"Unicode case folding applies as strings.ToLower does", `"platform":"LIN\u212aEDIN"`, dims{"linkedin", "other", "other", "ZZ"}},
		{"Unicode spaces are trimmed", `"platform":"\u00a0tiktok\u2003"`, dims{"tiktok", "other", "other", "ZZ"}},
		{"an industry without a dot is kept as its own parent", `"industry":"Fashion"`, dims{"other", "other", "fashion", "ZZ"}},
		{"an industry of spaces is other", `"industry":"   "`, dims{"other", "other", "other", "ZZ"}},
		{"an empty industry is other", `"industry":""`, dims{"other", "other", "other", "ZZ"}},
		{"a non-ASCII industry is lower-cased", `"industry":"Café.Bäckerei"`, dims{"other", "other", "café.bäckerei", "ZZ"}},
		{"a three-letter country is unknown", `"audience_country":"USA"`, dims{"other", "other", "other", "ZZ"}},
		{"a country with a digit is unknown", `"audience_country":"U1"`, dims{"other", "other", "other", "ZZ"}},
		{"an empty country is unknown", `"audience_country":""`, dims{"other", "other", "other", "ZZ"}},
		{"a non-ASCII country is unknown", `"audience_country":"ÜS"`, dims{"other", "other", "other", "ZZ"}},
		{"a lower-case country is upper-cased", `"audience_country":"de"`, dims{"other", "other", "other", "DE"}},
	}
	d := testDecoderOn(t, path)
	for _, tt := range campaign {
		t.Run(tt.name, func(t *testing.T) {
			var ev pipeline.Event
			if err := d.Decode([]byte(campaignRec(minCampaign+","+tt.payload)), &ev); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got := dims{ev.Campaign.Platform, ev.Campaign.ContentType, ev.Campaign.Industry, ev.Campaign.Country}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("dimensions (-want +got):\n%s", diff)
			}
		})
	}

	type udims struct{ Feature, Action, PlanTier, DeviceType string }
	usage := []struct {
		name, payload string
		want          udims
	}{
		{"usage dimensions are trimmed and lower-cased", `"feature":" Inbox.Compose ","action":"Click","plan_tier":" PRO","device_type":"Mobile "`,
			udims{"inbox.compose", "click", "pro", "mobile"}},
		{"every action of the closed set is kept", `"action":"create"`, udims{"other", "create", "other", "other"}},
		{"update and delete are actions", `"action":"UPDATE","plan_tier":"free","device_type":"desktop"`, udims{"other", "update", "free", "desktop"}},
		{"delete and business", `"action":"delete","plan_tier":"Business"`, udims{"other", "delete", "business", "other"}},
		{"view is an action", `"action":"view"`, udims{"other", "view", "other", "other"}},
		{"values outside the sets are other", `"feature":"","action":"share","plan_tier":"gold","device_type":"tv"`, udims{"other", "other", "other", "other"}},
		{"a feature without a dot is kept", `"feature":"Search"`, udims{"search", "other", "other", "other"}},
	}
	for _, tt := range usage {
		t.Run(tt.name, func(t *testing.T) {
			var ev pipeline.Event
			if err := d.Decode([]byte(usageRec(minUsage+","+tt.payload)), &ev); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got := udims{ev.Usage.Feature, ev.Usage.Action, ev.Usage.PlanTier, ev.Usage.DeviceType}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("dimensions (-want +got):\n%s", diff)
			}
		})
	}
}

// secret marks values in malformed records: no error may quote it.
const secret = "SECRET-PII"

func TestDecodeMalformed(t *testing.T) { forEachPath(t, testDecodeMalformed) }

func testDecodeMalformed(t *testing.T, path uint8) {
	long := strings.Repeat("x", 129)
	env := func(field, value string) string { // the campaign envelope with one field replaced
		fields := map[string]string{"event_id": `"e1"`, "event_type": `"campaign.metrics"`, "occurred_at": `"2026-11-01T10:00:00Z"`, "workspace_id": `"w1"`}
		var parts []string
		for _, k := range []string{"event_id", "event_type", "occurred_at", "workspace_id"} {
			v := fields[k]
			if k == field {
				if value == "" {
					continue
				}
				v = value
			}
			parts = append(parts, fmt.Sprintf("%q:%s", k, v))
		}
		return strings.Join(parts, ",")
	}
	ts := func(s string) string { return campaignRec2(env("occurred_at", `"`+s+`"`)) }
	deep := func(n int) string {
		return campaignRec(minCampaign + `,"x":` + strings.Repeat("[", n) + strings.Repeat("]", n))
	}
	tests := []struct {
		name  string
		in    string
		code  string
		field string
	}{
		// Not JSON.
		{"an empty record is invalid JSON", ``, CodeInvalidJSON, ""},
		{"whitespace alone is invalid JSON", " \n ", CodeInvalidJSON, ""},
		{"text is invalid JSON", `not json ` + secret, CodeInvalidJSON, ""},
		{"a top-level array is invalid JSON", `[` + campaignRec(minCampaign) + `]`, CodeInvalidJSON, ""},
		{"a top-level string is invalid JSON", `"` + secret + `"`, CodeInvalidJSON, ""},
		{"a top-level null is invalid JSON", `null`, CodeInvalidJSON, ""},
		{"a truncated record is invalid JSON", campaignRec(minCampaign)[:40], CodeInvalidJSON, ""},
		{"a record cut after a key is invalid JSON", `{"event_id"`, CodeInvalidJSON, ""},
		{"a record cut after a colon is invalid JSON", `{"event_id":`, CodeInvalidJSON, ""},
		{"data after the record is invalid JSON", campaignRec(minCampaign) + ` x`, CodeInvalidJSON, ""},
		{"two records on one line are invalid JSON", campaignRec(minCampaign) + campaignRec(minCampaign), CodeInvalidJSON, ""},
		{"a trailing comma is invalid JSON", campaignRec(minCampaign + `,`), CodeInvalidJSON, ""},
		{"a missing colon is invalid JSON", `{"event_id" "e1"}`, CodeInvalidJSON, ""},
		{"a missing comma is invalid JSON", `{"event_id":"e1" "event_type":"x"}`, CodeInvalidJSON, ""},
		{"single quotes are invalid JSON", `{'event_id':'e1'}`, CodeInvalidJSON, ""},
		{"an unquoted key is invalid JSON", `{event_id:"e1"}`, CodeInvalidJSON, ""},
		{"an invalid escape in a skipped string is invalid JSON", campaignRec(minCampaign + `,"caption":"` + secret + `\x"`), CodeInvalidJSON, ""},
		{"a short unicode escape is invalid JSON", campaignRec(minCampaign + `,"caption":"\u12"`), CodeInvalidJSON, ""},
		{"a raw control byte in a string is invalid JSON", campaignRec(minCampaign + ",\"caption\":\"a\tb\""), CodeInvalidJSON, ""},
		{"a leading zero is invalid JSON", campaignRec(minCampaign + `,"score":01`), CodeInvalidJSON, ""},
		{"a bare minus is invalid JSON", campaignRec(minCampaign + `,"score":-`), CodeInvalidJSON, ""},
		{"a fraction without digits is invalid JSON", campaignRec(minCampaign + `,"score":1.`), CodeInvalidJSON, ""},
		{"an exponent without digits is invalid JSON", campaignRec(minCampaign + `,"score":1e+`), CodeInvalidJSON, ""},
		{"a leading plus is invalid JSON", campaignRec(minCampaign + `,"score":+1`), CodeInvalidJSON, ""},
		{"NaN is invalid JSON", campaignRec(minCampaign + `,"score":NaN`), CodeInvalidJSON, ""},
		{"a misspelled literal is invalid JSON", campaignRec(minCampaign + `,"ok":tru`), CodeInvalidJSON, ""},
		{"a counter with a leading zero is invalid JSON", campaignRec(minCampaign + `,"clicks":012`), CodeInvalidJSON, ""},
		{"a counter of 1. is invalid JSON", campaignRec(minCampaign + `,"clicks":1.`), CodeInvalidJSON, ""},
		{"an unclosed nested object is invalid JSON", campaignRec(minCampaign + `,"x":{"a":1`), CodeInvalidJSON, ""},
		{"a mismatched bracket is invalid JSON", campaignRec(minCampaign + `,"x":[1}`), CodeInvalidJSON, ""},
		{"nesting deeper than 64 is invalid JSON", deep(63), CodeInvalidJSON, ""},
		{"very deep nesting is invalid JSON and does not exhaust the stack", deep(1_000_000), CodeInvalidJSON, ""},
		{"invalid JSON wins over an earlier wrong type", campaignRec(minCampaign+`,"clicks":"x"`) + `}`, CodeInvalidJSON, ""},
		{"invalid JSON wins over a missing field", `{"event_id":"e1",}`, CodeInvalidJSON, ""},

		// Missing fields.
		{"an empty object lacks event_id", `{}`, CodeMissingField, "event_id"},
		{"a record without event_id is malformed", campaignRec2(env("event_id", "")), CodeMissingField, "event_id"},
		{"a record without event_type is malformed", campaignRec2(env("event_type", "")), CodeMissingField, "event_type"},
		{"a record without occurred_at is malformed", campaignRec2(env("occurred_at", "")), CodeMissingField, "occurred_at"},
		{"a record without workspace_id is malformed", campaignRec2(env("workspace_id", "")), CodeMissingField, "workspace_id"},
		{"a record without payload is malformed", `{` + envCampaign + `}`, CodeMissingField, "payload"},
		{"a message without payload is malformed", `{"event_id":"e1","event_type":"message.direct","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"}`, CodeMissingField, "payload"},
		{"a null event_id is missing", campaignRec2(env("event_id", "null")), CodeMissingField, "event_id"},
		{"a null workspace_id is missing", campaignRec2(env("workspace_id", "null")), CodeMissingField, "workspace_id"},
		{"a null payload is missing", `{` + envCampaign + `,"payload":null}`, CodeMissingField, "payload"},
		{"a campaign without campaign_id is malformed", campaignRec(`"creator_id":"cr1","follower_count":10`), CodeMissingField, "payload.campaign_id"},
		{"a campaign without creator_id is malformed", campaignRec(`"campaign_id":"c1","follower_count":10`), CodeMissingField, "payload.creator_id"},
		{"a campaign without follower_count is malformed", campaignRec(`"campaign_id":"c1","creator_id":"cr1"`), CodeMissingField, "payload.follower_count"},
		{"a null follower_count is missing", campaignRec(`"campaign_id":"c1","creator_id":"cr1","follower_count":null`), CodeMissingField, "payload.follower_count"},
		{"a null creator_id is missing", campaignRec(`"campaign_id":"c1","creator_id":null,"follower_count":1`), CodeMissingField, "payload.creator_id"},
		{"an empty campaign payload lacks campaign_id", campaignRec(``), CodeMissingField, "payload.campaign_id"},
		{"a usage event without team_size is malformed", usageRec(`"feature":"a.b"`), CodeMissingField, "payload.team_size"},
		{"a null team_size is missing", usageRec(`"team_size":null`), CodeMissingField, "payload.team_size"},
		{"a usage event without user_id is malformed", rec(`"event_id":"e1","event_type":"usage.interaction","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, minUsage), CodeMissingField, "user_id"},
		{"a usage event with an empty user_id is malformed", rec(`"event_id":"e1","event_type":"usage.interaction","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","user_id":""`, minUsage), CodeMissingField, "user_id"},
		{"a usage event with a null user_id is malformed", rec(`"event_id":"e1","event_type":"usage.interaction","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","user_id":null`, minUsage), CodeMissingField, "user_id"},

		// Wrong types.
		{"a numeric event_id is the wrong type", campaignRec2(env("event_id", "12345")), CodeWrongType, "event_id"},
		{"an object event_type is the wrong type", campaignRec2(env("event_type", `{"a":"`+secret+`"}`)), CodeWrongType, "event_type"},
		{"a numeric occurred_at is the wrong type", campaignRec2(env("occurred_at", "1793527200")), CodeWrongType, "occurred_at"},
		{"a boolean workspace_id is the wrong type", campaignRec2(env("workspace_id", "true")), CodeWrongType, "workspace_id"},
		{"an array user_id is the wrong type", rec(envCampaign+`,"user_id":["`+secret+`"]`, minCampaign), CodeWrongType, "user_id"},
		{"a string payload is the wrong type", `{` + envCampaign + `,"payload":"` + secret + `"}`, CodeWrongType, "payload"},
		{"an array payload is the wrong type", `{` + envCampaign + `,"payload":[]}`, CodeWrongType, "payload"},
		{"a message's payload must still be an object", `{"event_id":"e1","event_type":"message.direct","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","payload":"` + secret + `"}`, CodeWrongType, "payload"},
		{"a numeric campaign_id is the wrong type", campaignRec(`"campaign_id":7,"creator_id":"cr1","follower_count":10`), CodeWrongType, "payload.campaign_id"},
		{"a numeric platform is the wrong type", campaignRec(minCampaign + `,"platform":3`), CodeWrongType, "payload.platform"},
		{"an array industry is the wrong type", campaignRec(minCampaign + `,"industry":["beauty"]`), CodeWrongType, "payload.industry"},
		{"a string counter is the wrong type", campaignRec(`"campaign_id":"c1","creator_id":"cr1","follower_count":"10"`), CodeWrongType, "payload.follower_count"},
		{"a fractional counter is the wrong type", campaignRec(minCampaign + `,"clicks":1.5`), CodeWrongType, "payload.clicks"},
		{"an integral fraction is still the wrong type", campaignRec(minCampaign + `,"clicks":1.0`), CodeWrongType, "payload.clicks"},
		{"an exponent is the wrong type", campaignRec(minCampaign + `,"impressions":1e3`), CodeWrongType, "payload.impressions"},
		{"a negative exponent is the wrong type", campaignRec(minCampaign + `,"impressions":-1E-3`), CodeWrongType, "payload.impressions"},
		{"a boolean counter is the wrong type", campaignRec(minCampaign + `,"likes":true`), CodeWrongType, "payload.likes"},
		{"an object counter is the wrong type", campaignRec(minCampaign + `,"saves":{}`), CodeWrongType, "payload.saves"},
		{"a string guardian_consent is the wrong type", campaignRec(minCampaign + `,"guardian_consent":"yes"`), CodeWrongType, "payload.guardian_consent"},
		{"a numeric guardian_consent is the wrong type", campaignRec(minCampaign + `,"guardian_consent":1`), CodeWrongType, "payload.guardian_consent"},
		{"a string creator_age is the wrong type", campaignRec(minCampaign + `,"creator_age":"12"`), CodeWrongType, "payload.creator_age"},
		{"a fractional creator_age is the wrong type", campaignRec(minCampaign + `,"creator_age":12.5`), CodeWrongType, "payload.creator_age"},
		{"a fractional team_size is the wrong type", usageRec(`"team_size":2.5`), CodeWrongType, "payload.team_size"},
		{"a numeric feature is the wrong type", usageRec(minUsage + `,"feature":1`), CodeWrongType, "payload.feature"},
		{"a string duration is the wrong type", usageRec(minUsage + `,"duration_ms":"5"`), CodeWrongType, "payload.duration_ms"},

		// Counters and values.
		{"a negative counter is malformed", campaignRec(minCampaign + `,"clicks":-1`), CodeNegativeCounter, "payload.clicks"},
		{"a negative follower_count is malformed", campaignRec(`"campaign_id":"c1","creator_id":"cr1","follower_count":-5`), CodeNegativeCounter, "payload.follower_count"},
		{"a hugely negative counter is negative", campaignRec(minCampaign + `,"spend_cents":-99999999999999999999999`), CodeNegativeCounter, "payload.spend_cents"},
		{"a negative duration is malformed", usageRec(minUsage + `,"duration_ms":-1`), CodeNegativeCounter, "payload.duration_ms"},
		{"a counter above 10^12 is implausible", campaignRec(minCampaign + `,"impressions":1000000000001`), CodeImplausibleCounter, "payload.impressions"},
		{"a counter beyond int64 is implausible", campaignRec(minCampaign + `,"revenue_cents":99999999999999999999999`), CodeImplausibleCounter, "payload.revenue_cents"},
		{"an implausible follower_count is malformed", campaignRec(`"campaign_id":"c1","creator_id":"cr1","follower_count":5000000000000`), CodeImplausibleCounter, "payload.follower_count"},
		{"an implausible duration is malformed", usageRec(minUsage + `,"duration_ms":1000000000001`), CodeImplausibleCounter, "payload.duration_ms"},
		{"a negative creator_age is invalid", campaignRec(minCampaign + `,"creator_age":-1`), CodeInvalidValue, "payload.creator_age"},
		{"a creator_age above 150 is invalid", campaignRec(minCampaign + `,"creator_age":151`), CodeInvalidValue, "payload.creator_age"},
		{"a team_size of 0 is invalid", usageRec(`"team_size":0`), CodeInvalidValue, "payload.team_size"},
		{"a negative team_size is invalid", usageRec(`"team_size":-3`), CodeInvalidValue, "payload.team_size"},
		{"an empty event_id is invalid", campaignRec2(env("event_id", `""`)), CodeInvalidValue, "event_id"},
		{"an empty workspace_id is invalid", campaignRec2(env("workspace_id", `""`)), CodeInvalidValue, "workspace_id"},
		{"an empty event_type is invalid", campaignRec2(env("event_type", `""`)), CodeInvalidValue, "event_type"},
		{"an empty campaign_id is invalid", campaignRec(`"campaign_id":"","creator_id":"cr1","follower_count":10`), CodeInvalidValue, "payload.campaign_id"},
		{"invalid UTF-8 in an id is invalid", campaignRec2(env("event_id", "\"e\xff1"+secret+"\"")), CodeInvalidValue, "event_id"},
		{"an encoded surrogate in an id is invalid UTF-8", campaignRec2(env("workspace_id", "\"w\xed\xa0\x80\"")), CodeInvalidValue, "workspace_id"},
		{"invalid UTF-8 in a dimension is invalid", campaignRec(minCampaign + ",\"platform\":\"insta\xc3\""), CodeInvalidValue, "payload.platform"},

		// Timestamps.
		{"a date alone is not a timestamp", ts("2026-11-01"), CodeInvalidTimestamp, "occurred_at"},
		{"a space instead of T is not RFC 3339", ts("2026-11-01 10:00:00Z"), CodeInvalidTimestamp, "occurred_at"},
		{"a lower-case t is refused as Go refuses it", ts("2026-11-01t10:00:00Z"), CodeInvalidTimestamp, "occurred_at"},
		{"a lower-case z is refused", ts("2026-11-01T10:00:00z"), CodeInvalidTimestamp, "occurred_at"},
		{"a timestamp without a zone is refused", ts("2026-11-01T10:00:00"), CodeInvalidTimestamp, "occurred_at"},
		{"month 13 is not a date", ts("2026-13-01T10:00:00Z"), CodeInvalidTimestamp, "occurred_at"},
		{"month 0 is not a date", ts("2026-00-01T10:00:00Z"), CodeInvalidTimestamp, "occurred_at"},
		{"February 29 of a common year is not a date", ts("2026-02-29T10:00:00Z"), CodeInvalidTimestamp, "occurred_at"},
		{"February 30 is not a date", ts("2028-02-30T10:00:00Z"), CodeInvalidTimestamp, "occurred_at"},
		{"April 31 is not a date", ts("2026-04-31T10:00:00Z"), CodeInvalidTimestamp, "occurred_at"},
		{"hour 24 is not a time", ts("2026-11-01T24:00:00Z"), CodeInvalidTimestamp, "occurred_at"},
		{"a leap second is refused as Go refuses it", ts("2016-12-31T23:59:60Z"), CodeInvalidTimestamp, "occurred_at"},
		{"a one-digit hour is refused", ts("2026-11-01T1:00:00Z"), CodeInvalidTimestamp, "occurred_at"},
		{"an offset without a colon is refused", ts("2026-11-01T10:00:00+0100"), CodeInvalidTimestamp, "occurred_at"},
		{"an offset hour of 24 is refused", ts("2026-11-01T10:00:00+24:00"), CodeInvalidTimestamp, "occurred_at"},
		{"an offset minute of 60 is refused", ts("2026-11-01T10:00:00+01:60"), CodeInvalidTimestamp, "occurred_at"},
		{"a dot without digits is refused", ts("2026-11-01T10:00:00.Z"), CodeInvalidTimestamp, "occurred_at"},
		{"a comma fraction is refused", ts("2026-11-01T10:00:00,5Z"), CodeInvalidTimestamp, "occurred_at"},
		{"text is not a timestamp", ts(secret), CodeInvalidTimestamp, "occurred_at"},
		{"a timestamp longer than 64 bytes is refused", ts("2026-11-01T10:00:00." + strings.Repeat("1", 50) + "Z"), CodeInvalidTimestamp, "occurred_at"},
		{"a Unix time in a string is not a timestamp", ts("1793527200"), CodeInvalidTimestamp, "occurred_at"},

		// Bounds.
		{"an event_id of 129 bytes is too long", campaignRec2(env("event_id", `"`+long+`"`)), CodeTooLong, "event_id"},
		{"an event_id of 129 bytes once unescaped is too long", campaignRec2(env("event_id", `"`+strings.Repeat("x", 127)+`\u00e9"`)), CodeTooLong, "event_id"},
		{"a workspace_id of 129 bytes is too long", campaignRec2(env("workspace_id", `"`+long+`"`)), CodeTooLong, "workspace_id"},
		{"an event_type of 129 bytes is too long", campaignRec2(env("event_type", `"message.`+long+`"`)), CodeTooLong, "event_type"},
		{"a user_id of 129 bytes is too long", rec(envCampaign+`,"user_id":"`+long+`"`, minCampaign), CodeTooLong, "user_id"},
		{"a campaign_id of 129 bytes is too long", campaignRec(`"campaign_id":"` + long + `","creator_id":"cr1","follower_count":10`), CodeTooLong, "payload.campaign_id"},
		{"a creator_id of 129 bytes is too long", campaignRec(`"campaign_id":"c1","creator_id":"` + long + `","follower_count":10`), CodeTooLong, "payload.creator_id"},
		{"free text in a dimension field is too long", campaignRec(minCampaign + `,"industry":"` + strings.Repeat(secret+" ", 20) + `"`), CodeTooLong, "payload.industry"},
		{"a long feature is too long", usageRec(minUsage + `,"feature":"` + long + `"`), CodeTooLong, "payload.feature"},

		// Duplicates.
		{"a duplicate event_id is malformed", `{` + envCampaign + `,"event_id":"e2","payload":{` + minCampaign + `}}`, CodeDuplicateField, "event_id"},
		{"a duplicate payload is malformed", `{` + envCampaign + `,"payload":{` + minCampaign + `},"payload":{` + minCampaign + `}}`, CodeDuplicateField, "payload"},
		{"a duplicate null is still a duplicate", rec(envCampaign+`,"user_id":null,"user_id":"u1"`, minCampaign), CodeDuplicateField, "user_id"},
		{"a duplicate counter is malformed", campaignRec(minCampaign + `,"clicks":1,"clicks":2`), CodeDuplicateField, "payload.clicks"},
		{"a duplicate dimension is malformed", campaignRec(minCampaign + `,"platform":"x","platform":"tiktok"`), CodeDuplicateField, "payload.platform"},
		{"a duplicate written with an escape is a duplicate", campaignRec(minCampaign + `,"cl\u0069cks":1,"clicks":2`), CodeDuplicateField, "payload.clicks"},
		{"a duplicate team_size is malformed", usageRec(`"team_size":1,"team_size":2`), CodeDuplicateField, "payload.team_size"},
		{"a duplicate event_type is malformed even when equal", `{"event_type":"message.sms",` + envCampaign + `,"payload":{}}`, CodeDuplicateField, "event_type"},
	}
	d := testDecoderOn(t, path)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev pipeline.Event
			err := d.Decode([]byte(tt.in), &ev)
			var me *pipeline.MalformedError
			if !errors.As(err, &me) {
				t.Fatalf("Decode = %v, want a *pipeline.MalformedError", err)
			}
			if me.Code != tt.code || me.Field != tt.field {
				t.Errorf("Decode = %v, want code %q field %q", err, tt.code, tt.field)
			}
			if strings.Contains(me.Error(), secret) {
				t.Errorf("the error %q quotes the record's value", me.Error())
			}
			if _, ok := refDecode([]byte(tt.in), DefaultConfig()); ok {
				t.Errorf("the fuzz reference accepts the record")
			}
		})
	}
}

// campaignRec2 is a campaign record with the given envelope fields.
func campaignRec2(env string) string { return rec(env, minCampaign) }

func TestDroppedFieldsAreCountedPerKind(t *testing.T) {
	forEachPath(t, testDroppedFieldsAreCountedPerKind)
}

func testDroppedFieldsAreCountedPerKind(t *testing.T, path uint8) {
	d := testDecoderOn(t, path)
	var ev pipeline.Event
	for _, in := range []string{
		`{"ip":"1.2.3.4",` + envCampaign + `,"payload":{` + minCampaign + `,"caption":"a","handle":"@b"}}`,
		`{"ip":"1.2.3.4",` + envCampaign + `,"payload":{` + minCampaign + `,"caption":"c","jane@example.com":1,"` + strings.Repeat("k", 65) + `":2}}`,
		usageRec(minUsage + `,"email":"x@example.com","clicks":3`),
		`{"ip":"1.2.3.4","event_id":"e1","event_type":"message.direct","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","payload":{"body":"hi"}}`,
		`{"ip":"1.2.3.4","+15551234567":1,"event_id":"e2","event_type":"profile.updated","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","payload":{"bio":"hi"}}`,
		// Malformed records count nothing.
		`{"ip":"1.2.3.4",` + envCampaign + `,"payload":{"caption":"a"}}`,
	} {
		d.Decode([]byte(in), &ev)
	}
	want := map[pipeline.EventKind]int64{
		pipeline.KindCampaignMetrics:  7,
		pipeline.KindUsageInteraction: 2,
		pipeline.KindMessage:          1,
		pipeline.KindUnsupported:      2,
	}
	if diff := cmp.Diff(want, d.DroppedFields()); diff != "" {
		t.Errorf("DroppedFields (-want +got):\n%s", diff)
	}
}

func TestDroppedFieldsIsSafeDuringDecode(t *testing.T) {
	forEachPath(t, testDroppedFieldsIsSafeDuringDecode)
}

func testDroppedFieldsIsSafeDuringDecode(t *testing.T, path uint8) {
	d := testDecoderOn(t, path)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ev pipeline.Event
		for i := range 2000 {
			d.Decode([]byte(campaignRec(minCampaign+fmt.Sprintf(`,"f%d":1`, i%300))), &ev)
		}
	}()
	for {
		select {
		case <-done:
			want := map[pipeline.EventKind]int64{pipeline.KindCampaignMetrics: 2000}
			if diff := cmp.Diff(want, d.DroppedFields()); diff != "" {
				t.Errorf("DroppedFields (-want +got):\n%s", diff)
			}
			return
		default:
			d.DroppedFields()
		}
	}
}

func TestInternTableIsBounded(t *testing.T) { forEachPath(t, testInternTableIsBounded) }

func testInternTableIsBounded(t *testing.T, path uint8) {
	cfg := DefaultConfig()
	cfg.InternEntries = 2
	d, err := newOn(cfg, path)
	if err != nil {
		t.Fatal(err)
	}
	var ev pipeline.Event
	for i := range 5 {
		in := campaignRec(minCampaign + fmt.Sprintf(`,"industry":"Beauty.N%d"`, i))
		if err := d.Decode([]byte(in), &ev); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("beauty.n%d", i); ev.Campaign.Industry != want {
			t.Errorf("industry = %q, want %q", ev.Campaign.Industry, want)
		}
	}
	if len(d.strs) != 2 {
		t.Errorf("intern table holds %d values, want 2", len(d.strs))
	}
}

func TestWellFormedEventsDoNotAllocate(t *testing.T) {
	forEachPath(t, testWellFormedEventsDoNotAllocate)
}

func testWellFormedEventsDoNotAllocate(t *testing.T, path uint8) {
	d := testDecoderOn(t, path)
	for name, in := range map[string][]byte{"campaign": benchCampaign, "usage": benchUsage, "message": benchMessage,
		"escaped ids": []byte(`{"event_id":"e\u00e9","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00+01:00","workspace_id":"w\"1","payload":{"campaign_id":"c\/1","creator_id":"cr1","follower_count":10,"industry":"Food.Vegan","platform":" X "}}`)} {
		var ev pipeline.Event
		if err := d.Decode(in, &ev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := testing.AllocsPerRun(100, func() { d.Decode(in, &ev) }); n != 0 {
			t.Errorf("%s: %v allocations per event, want 0", name, n)
		}
	}
}

func TestDecodeResetsTheEvent(t *testing.T) { forEachPath(t, testDecodeResetsTheEvent) }

func testDecodeResetsTheEvent(t *testing.T, path uint8) {
	d := testDecoderOn(t, path)
	var ev pipeline.Event
	if err := d.Decode([]byte(campaignRec(minCampaign+`,"clicks":9,"creator_age":30`)), &ev); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode([]byte(rec(`"event_id":"e1","event_type":"message.direct","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``)), &ev); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(envEvent(pipeline.KindMessage, "message.direct"), ev); diff != "" {
		t.Errorf("second event keeps parts of the first (-want +got):\n%s", diff)
	}
}

func TestEscapedIDsOfOneRecordDoNotOverwriteEachOther(t *testing.T) {
	forEachPath(t, testEscapedIDsOfOneRecordDoNotOverwriteEachOther)
}

func testEscapedIDsOfOneRecordDoNotOverwriteEachOther(t *testing.T, path uint8) {
	d := testDecoderOn(t, path)
	var ev pipeline.Event
	in := `{"event_id":"\u0045","event_type":"campaign\u002emetrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"\u0057","user_id":"\u0055",` +
		`"payload":{"campaign_id":"\u0043","creator_id":"\u0052","follower_count":1}}`
	if err := d.Decode([]byte(in), &ev); err != nil {
		t.Fatal(err)
	}
	got := []string{string(ev.EventID), string(ev.EventType), string(ev.WorkspaceID), string(ev.UserID), string(ev.Campaign.CampaignID), string(ev.Campaign.CreatorID)}
	if diff := cmp.Diff([]string{"E", "campaign.metrics", "W", "U", "C", "R"}, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	bad := Config{MaxIDBytes: 0, MaxDimensionBytes: 5000, MaxDepth: 1, InternEntries: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	want := []string{
		"decode.max_id_bytes: must be between 1 and 1024, e.g. 128 as contract §3.1 sets (got 0)",
		"decode.max_dimension_bytes: must be between 1 and 1024, e.g. 128 (got 5000)",
		"decode.max_depth: must be between 2 and 1024, e.g. 64 (got 1)",
		"decode.intern_entries: must be between 0 and 16777216, e.g. 65536 (got -1)",
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("Validate (-want +got):\n%s", diff)
	}
	if d, err := New(bad); d != nil || err == nil {
		t.Errorf("New(bad) = %v, %v; want nil and an error", d, err)
	}
}

func TestSmallerBoundsApply(t *testing.T) { forEachPath(t, testSmallerBoundsApply) }

func testSmallerBoundsApply(t *testing.T, path uint8) {
	cfg := DefaultConfig()
	cfg.MaxIDBytes, cfg.MaxDimensionBytes, cfg.MaxDepth = 4, 3, 3
	d, err := newOn(cfg, path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in    string
		code, field string
	}{
		{"ids are bounded by max_id_bytes", rec(`"event_id":"12345","event_type":"x","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``), CodeTooLong, "event_id"},
		{"dimensions are bounded by max_dimension_bytes", rec(`"event_id":"e1","event_type":"usage.interaction","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","user_id":"u"`, `"team_size":1,"action":"view"`), CodeTooLong, "payload.action"},
		{"event_type keeps its own bound of 128 bytes", rec(`"event_id":"e1","event_type":"`+strings.Repeat("m", 129)+`","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``), CodeTooLong, "event_type"},
		{"depth is bounded by max_depth", rec(`"event_id":"e1","event_type":"x","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, `"a":{"b":{}}`), CodeInvalidJSON, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev pipeline.Event
			err := d.Decode([]byte(tt.in), &ev)
			var me *pipeline.MalformedError
			if !errors.As(err, &me) || me.Code != tt.code || me.Field != tt.field {
				t.Errorf("Decode = %v, want code %q field %q", err, tt.code, tt.field)
			}
		})
	}
	var ev pipeline.Event
	if err := d.Decode([]byte(rec(`"event_id":"e1","event_type":"x","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, `"a":{"b":1}`)), &ev); err != nil {
		t.Errorf("depth 3 within max_depth 3: %v", err)
	}
}

func TestDecodersSumTheirDecodersCounts(t *testing.T) {
	ds, err := NewDecoders(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	in := []byte(campaignRec(minCampaign + `,"caption":"x"`))
	var ev pipeline.Event
	a, b := ds.NewDecoder(), ds.NewDecoder()
	for _, d := range []pipeline.Decoder{a, a, b} {
		if err := d.Decode(in, &ev); err != nil {
			t.Fatal(err)
		}
	}
	want := map[pipeline.EventKind]int64{pipeline.KindCampaignMetrics: 3}
	if diff := cmp.Diff(want, ds.DroppedFields()); diff != "" {
		t.Errorf("DroppedFields (-want +got):\n%s", diff)
	}
	// What the garbage collector does once a worker's decoder is gone.
	ds.fold(a.(*Decoder).drops)
	if diff := cmp.Diff(want, ds.DroppedFields()); diff != "" {
		t.Errorf("DroppedFields after a decoder is folded (-want +got):\n%s", diff)
	}
	if len(ds.live) != 1 {
		t.Errorf("%d live decoders, want 1", len(ds.live))
	}
	if _, err := NewDecoders(Config{}); err == nil {
		t.Error("NewDecoders accepted an invalid config")
	}
}

func TestDecodersForgetCollectedDecodersWithoutLosingCounts(t *testing.T) {
	ds, err := NewDecoders(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	func() {
		var ev pipeline.Event
		if err := ds.NewDecoder().Decode([]byte(campaignRec(minCampaign+`,"caption":"x"`)), &ev); err != nil {
			t.Fatal(err)
		}
	}()
	live := func() int {
		ds.mu.Lock()
		defer ds.mu.Unlock()
		return len(ds.live)
	}
	// Each round is a full collection; the cleanup then runs on its own
	// goroutine.
	for round := 0; live() > 0 && round < 1000; round++ {
		runtime.GC()
		runtime.Gosched()
	}
	if n := live(); n != 0 {
		t.Fatalf("%d decoders still held after they became unreachable", n)
	}
	want := map[pipeline.EventKind]int64{pipeline.KindCampaignMetrics: 1}
	if diff := cmp.Diff(want, ds.DroppedFields()); diff != "" {
		t.Errorf("DroppedFields (-want +got):\n%s", diff)
	}
}
