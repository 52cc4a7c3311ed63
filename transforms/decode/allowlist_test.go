package decode

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mya/deid/pipeline"
)

// allowlist is contract §3.3's payload allowlist per aggregated event
// type, written out here independently of the decoder's tables.
var allowlist = map[string][]string{
	"campaign.metrics": {"campaign_id", "creator_id", "platform", "content_type", "industry", "audience_country",
		"follower_count", "creator_age", "guardian_consent", "impressions", "reach", "clicks", "likes", "comments",
		"shares", "saves", "video_views", "conversions", "spend_cents", "revenue_cents"},
	"usage.interaction": {"feature", "action", "plan_tier", "team_size", "device_type", "duration_ms"},
}

// validValue is a value the allowlist reads without making the record
// malformed.
func validValue(field string) string {
	switch field {
	case "campaign_id", "creator_id", "platform", "content_type", "industry", "audience_country",
		"feature", "action", "plan_tier", "device_type":
		return `"x"`
	case "guardian_consent":
		return "true"
	case "creator_age":
		return "30"
	}
	return "7"
}

// TestThePayloadAllowlistIsExactlyTheContracts probes the decoder with one
// extra payload field at a time, for the fields of both allowlists and for
// names an upstream team might add tomorrow: a field of the type's own
// allowlist is read (nothing dropped); any other field — a caption, a
// handle, the other type's fields — is dropped whatever its JSON type. A
// decoder that starts keeping one more field fails here, not only in
// verify's scan of the outputs.
func TestThePayloadAllowlistIsExactlyTheContracts(t *testing.T) {
	forEachPath(t, testThePayloadAllowlistIsExactlyTheContracts)
}

func testThePayloadAllowlistIsExactlyTheContracts(t *testing.T, path uint8) {
	base := map[string]string{
		"campaign.metrics":  `"campaign_id":"c1","creator_id":"cr1","follower_count":10`,
		"usage.interaction": `"team_size":3`,
	}
	required := []string{"campaign_id", "creator_id", "follower_count", "team_size"}
	strangers := []string{"caption", "body", "text", "title", "description", "handle", "username", "name", "email",
		"phone", "ip", "user_agent", "location", "bio", "url", "hashtags", "mentions", "comment", "comments_text",
		"notes", "message", "campaign_name", "creator_name", "brand", "audience_age", "event_id", "workspace_id",
		"user_id", "session_id", "payload", "Platform", "CLICKS", "campaign_id ", "follower_count2"}
	for typ, own := range allowlist {
		var probes []string
		probes = append(probes, strangers...)
		for _, fields := range allowlist {
			probes = append(probes, fields...)
		}
		slices.Sort(probes)
		probes = slices.Compact(probes)
		for _, field := range probes {
			kept := slices.Contains(own, field)
			values := []string{`"free text"`, "12", `{"x":"free text"}`, `["free text"]`, "true", "null"}
			if kept {
				values = []string{validValue(field)}
			}
			for _, v := range values {
				d := testDecoderOn(t, path)
				fields := []string{base[typ]}
				if kept && slices.Contains(required, field) {
					fields = nil // the probe is the required field itself
					for _, f := range required {
						if f != field && slices.Contains(own, f) {
							fields = append(fields, fmt.Sprintf(`"%s":%s`, f, validValue(f)))
						}
					}
				}
				fields = append(fields, fmt.Sprintf("%q:%s", field, v))
				user := ""
				if typ == "usage.interaction" {
					user = `"user_id":"u1",`
				}
				rec := fmt.Sprintf(`{"event_id":"e1","event_type":%q,"occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1",%s"payload":{%s}}`,
					typ, user, strings.Join(fields, ","))
				var ev pipeline.Event
				if err := d.Decode([]byte(rec), &ev); err != nil {
					t.Errorf("%s with %s=%s: %v", typ, field, v, err)
					continue
				}
				var dropped int64
				for _, n := range d.DroppedFields() {
					dropped += n
				}
				switch {
				case kept && dropped != 0:
					t.Errorf("%s: the allowlisted field %q was dropped", typ, field)
				case !kept && dropped != 1:
					t.Errorf("%s: %q = %s is not on the allowlist, yet the decoder read it (dropped %d fields, want 1)", typ, field, v, dropped)
				}
			}
		}
	}
}
