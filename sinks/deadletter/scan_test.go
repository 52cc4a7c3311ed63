package deadletter

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzScanEnvelope checks ScanEnvelope against encoding/json. Invariants:
//   - it never panics, whatever the bytes;
//   - on a valid JSON object (valid UTF-8) whose event_type and
//     workspace_id are absent or strings, the scan is Whole and its last
//     value of each is the one encoding/json reads (the last duplicate);
//   - on such an object with either of them not a string, it is not Whole:
//     such a record cannot tell its type or workspace;
//   - every value it reports is one the bytes hold as a top-level string.
func FuzzScanEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"event_type":"campaign.metrics","workspace_id":"w1","payload":{"clicks":-1}}`,
		`{"event\u005ftype":"message.direct","workspace_id":"w\"1","x":[1,{"event_type":"y"}]}`,
		`{"event_type":"a","event_type":"b","workspace_id":7}`,
		`{"workspace_id":"w1","event_type":"messa`,
		"\ufeff {\"event_type\" : \"x\" , \"workspace_id\":\"y\"} ",
		`{"a":"b" "event_type":"message.sms"}`,
		`[1,2]`, ``, `{`, `{}`, `{"x":}`, `{,,"event_type":"t"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env := ScanEnvelope(b)
		if !utf8.Valid(b) || !json.Valid(b) {
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(b, &obj) != nil || obj == nil {
			if env.Whole {
				t.Errorf("%q is not an object, yet the scan is Whole", b)
			}
			return
		}
		strs := true
		want := map[string]string{}
		for _, k := range []string{"event_type", "workspace_id"} {
			raw, ok := obj[k]
			if !ok {
				continue
			}
			var s string
			if json.Unmarshal(raw, &s) != nil {
				strs = false
				continue
			}
			want[k] = s
		}
		if !strs {
			if env.Whole {
				t.Errorf("%q: a non-string event_type or workspace_id, yet the scan is Whole", b)
			}
			return
		}
		if !env.Whole {
			t.Fatalf("%q: a valid object, yet the scan is not Whole", b)
		}
		for k, got := range map[string][]string{"event_type": env.EventTypes, "workspace_id": env.WorkspaceIDs} {
			w, ok := want[k]
			switch {
			case !ok && len(got) > 0:
				t.Errorf("%q: %s %q found, encoding/json finds none", b, k, got)
			case ok && (len(got) == 0 || got[len(got)-1] != w):
				t.Errorf("%q: %s %q, encoding/json reads %q last", b, k, got, w)
			}
		}
	})
}

func TestIsMessageType(t *testing.T) {
	for _, typ := range []string{"message.direct", "message.sms", "Message.iMessage", "support.message", "SUPPORT.MESSAGE", "message.", "x.messages"} {
		if !IsMessageType(typ) {
			t.Errorf("IsMessageType(%q) = false", typ)
		}
	}
	for _, typ := range []string{"campaign.metrics", "usage.interaction", "profile.updated", ""} {
		if IsMessageType(typ) {
			t.Errorf("IsMessageType(%q) = true", typ)
		}
	}
}
