package decode

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/mya/deid/pipeline"
)

// piiValues are the personal data a hostile or careless producer puts in
// the fields the allowlist does not name.
var piiValues = []string{
	"Glow up with my new serum, DM me",       // caption
	"Hi Jane, here is my number: call me",    // message body
	"jane.doe@example.com",                   // e-mail
	"+1 415 555 0134",                        // phone
	"@glowqueen",                             // handle
	"203.0.113.42",                           // IP address
	"Mozilla/5.0 (Macintosh; Intel Mac OS X", // user agent
	"Jane Doe",                               // name
}

// piiRecord puts every PII value in fields at the top level, in the payload
// and nested inside it, around a well-formed record of the given type.
func piiRecord(eventType, payload string) string {
	return `{"ip":"203.0.113.42","user_agent":"Mozilla/5.0 (Macintosh; Intel Mac OS X","event_id":"e1","event_type":"` + eventType +
		`","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","user_id":"u1","author":{"name":"Jane Doe","email":"jane.doe@example.com"},` +
		`"payload":{"caption":"Glow up with my new serum, DM me","body":"Hi Jane, here is my number: call me","email":"jane.doe@example.com",` +
		`"phone":"+1 415 555 0134","handle":"@glowqueen","ip":"203.0.113.42","comments_text":["Jane Doe","@glowqueen"],` +
		`"profile":{"name":"Jane Doe","contact":{"phone":"+1 415 555 0134"}}` + payload + `}}`
}

func TestAllowlistKeepsNoPII(t *testing.T) { forEachPath(t, testAllowlistKeepsNoPII) }

func testAllowlistKeepsNoPII(t *testing.T, path uint8) {
	tests := []struct{ name, in string }{
		{"a campaign event keeps none of the PII around it", piiRecord("campaign.metrics", ","+minCampaign+`,"platform":"instagram","industry":"beauty.skincare"`)},
		{"a usage event keeps none of the PII around it", piiRecord("usage.interaction", `,"team_size":4,"feature":"inbox.compose"`)},
		{"a direct message keeps none of the PII around it", piiRecord("message.direct", "")},
		{"a support message keeps none of the PII around it", piiRecord("support.message", "")},
		{"an unsupported event keeps none of the PII around it", piiRecord("profile.updated", "")},
	}
	d := testDecoderOn(t, path)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev pipeline.Event
			if err := d.Decode([]byte(tt.in), &ev); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var texts []string
			collectText(reflect.ValueOf(ev), "Event", func(path, s string) { texts = append(texts, path+"="+s) })
			if len(texts) < 5 {
				t.Fatalf("found only %v: the reflection walk misses fields", texts)
			}
			for _, text := range texts {
				for _, pii := range piiValues {
					if strings.Contains(text, pii) {
						t.Errorf("%s holds %q", text, pii)
					}
				}
			}
		})
	}
}

// TestSkippedValuesAreNotCopied checks that the decoder's own buffers never
// hold a skipped value, even one with escapes.
func TestSkippedValuesAreNotCopied(t *testing.T) { forEachPath(t, testSkippedValuesAreNotCopied) }

func testSkippedValuesAreNotCopied(t *testing.T, path uint8) {
	d := testDecoderOn(t, path)
	var ev pipeline.Event
	in := piiRecord("campaign.metrics", `,"escaped":"jane.doe\u0040example.com call +1 415 555 0134",`+minCampaign)
	if err := d.Decode([]byte(in), &ev); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{d.text[:cap(d.text)], d.lowBuf[:cap(d.lowBuf)], d.keyBuf[:cap(d.keyBuf)]}
	for _, b := range d.ids {
		bufs = append(bufs, b[:cap(b)])
	}
	for _, b := range bufs {
		for _, pii := range append(piiValues, "jane.doe@example.com") {
			if bytes.Contains(b, []byte(pii)) {
				t.Errorf("a decoder buffer holds %q", pii)
			}
		}
	}
	for s := range d.strs {
		for _, pii := range piiValues {
			if strings.Contains(s, pii) {
				t.Errorf("the intern table holds %q", pii)
			}
		}
	}
}

// collectText calls fn with every string and byte slice reachable from v.
func collectText(v reflect.Value, path string, fn func(path, s string)) {
	switch v.Kind() {
	case reflect.String:
		fn(path, v.String())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			fn(path, string(v.Bytes()))
			return
		}
		for i := range v.Len() {
			collectText(v.Index(i), path+"[]", fn)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			collectText(v.Field(i), path+"."+v.Type().Field(i).Name, fn)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			collectText(v.Elem(), path, fn)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			collectText(it.Key(), path+"{key}", fn)
			collectText(it.Value(), path+"{}", fn)
		}
	}
}
