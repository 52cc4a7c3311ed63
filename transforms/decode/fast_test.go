package decode

import (
	"math/rand/v2"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
)

// FuzzFastDecode holds the fast path to the exact decoder, its oracle: for
// any input, each fast path (portable stage 1, and AVX2 stage 1 where the
// processor has it) returns the exact decoder's event, or its error with
// the same code, field and detail, and counts the same dropped fields.
// Seeds: the table tests' records, and lines of the generator's mix.
func FuzzFastDecode(f *testing.F) {
	for _, in := range seedRecords() {
		f.Add([]byte(in))
	}
	for _, in := range fastEdgeRecords() {
		f.Add([]byte(in))
	}
	for k, line := range genMix() {
		if k%97 == 0 {
			f.Add(line)
		}
	}
	cfg := DefaultConfig()
	exact, _ := newOn(cfg, pathExact)
	var fast []*Decoder
	for _, p := range decoderPaths()[1:] {
		d, _ := newOn(cfg, p.path)
		fast = append(fast, d)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		var want pipeline.Event
		wantErr := exact.Decode(value, &want)
		for _, d := range fast {
			var got pipeline.Event
			err := d.Decode(value, &got)
			name := decoderPaths()[d.path].name
			switch {
			case (err == nil) != (wantErr == nil):
				t.Fatalf("%s: Decode = %v, the exact decoder says %v", name, err, wantErr)
			case err != nil && err.Error() != wantErr.Error():
				t.Fatalf("%s: Decode = %v, the exact decoder says %v", name, err, wantErr)
			case err != nil:
				var me, wme *pipeline.MalformedError
				if !asMalformed(err, &me) || !asMalformed(wantErr, &wme) || *me != *wme {
					t.Fatalf("%s: Decode = %#v, the exact decoder says %#v", name, err, wantErr)
				}
			default:
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("%s: event differs from the exact decoder's (-exact +fast):\n%s", name, diff)
				}
			}
			if diff := cmp.Diff(exact.DroppedFields(), d.DroppedFields()); diff != "" {
				t.Fatalf("%s: dropped fields differ (-exact +fast):\n%s", name, diff)
			}
		}
	})
}

func asMalformed(err error, me **pipeline.MalformedError) bool {
	m, ok := err.(*pipeline.MalformedError)
	*me = m
	return ok
}

// TestFastPathDecodesCommonRecordsItself checks that well-formed records of
// the common shape do not fall back, so that the table tests run over
// decoderPaths exercise stage 2 and not only the exact decoder behind it.
func TestFastPathDecodesCommonRecordsItself(t *testing.T) {
	records := map[string]string{
		"a realistic campaign event":          string(benchCampaign),
		"a realistic usage event":             string(benchUsage),
		"a direct message":                    string(benchMessage),
		"a minimal campaign event":            campaignRec(minCampaign),
		"a minimal usage event":               usageRec(minUsage),
		"a campaign event with PII around it": piiRecord("campaign.metrics", ","+minCampaign),
		"a payload before the event type":     `{"payload":{` + minCampaign + `,"clicks":5},"event_id":"e1","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"}`,
		"every counter and dimension": campaignRec(minCampaign + `,"platform":"TikTok","content_type":"reel","industry":"Beauty.Skincare","audience_country":"fr",` +
			`"creator_age":17,"guardian_consent":true,"impressions":1000,"reach":900,"clicks":80,"likes":70,"comments":60,` +
			`"shares":50,"saves":40,"video_views":30,"conversions":20,"spend_cents":1000000000000,"revenue_cents":0`),
		"non-ASCII text in a dropped field": campaignRec(minCampaign + `,"caption":"Café ☕ für alle"`),
	}
	for _, p := range decoderPaths()[1:] {
		d := testDecoderOn(t, p.path)
		for name, in := range records {
			var ev pipeline.Event
			if !d.decodeFast([]byte(in), &ev) {
				t.Errorf("%s: %s fell back to the exact decoder", p.name, name)
			}
		}
	}
}

// TestFastPathCoversTheMix checks that on the generator's mix the fast
// path decodes nearly every well-formed line itself, and that what it
// decodes is what the exact decoder makes of it.
func TestFastPathCoversTheMix(t *testing.T) {
	lines := genMix()
	exact := testDecoderOn(t, pathExact)
	for _, p := range decoderPaths()[1:] {
		d := testDecoderOn(t, p.path)
		var fallback, malformed int
		for _, l := range lines {
			var ev, want pipeline.Event
			if !d.decodeFast(l, &ev) {
				fallback++
				if d.decodeExact(l, &ev) != nil {
					malformed++
				}
				continue
			}
			if err := exact.Decode(l, &want); err != nil {
				t.Fatalf("%s decoded a line the exact decoder refuses (%v)", p.name, err)
			}
			if !reflect.DeepEqual(want, ev) {
				t.Fatalf("%s: event differs from the exact decoder's (-exact +fast):\n%s", p.name, cmp.Diff(want, ev))
			}
		}
		t.Logf("%s: %d of %d lines fall back, %d of them malformed", p.name, fallback, len(lines), malformed)
		if well := fallback - malformed; well*100 > len(lines) {
			t.Errorf("%s: %d well-formed lines of %d fall back; want at most 1%%", p.name, well, len(lines))
		}
	}
}

// stage1Reference is stage 1 byte by byte.
func stage1Reference(b []byte) (mask []uint64, class uint64) {
	mask = make([]uint64, len(b)/stage1Block+2)
	for k, c := range b {
		switch {
		case c == '"':
			mask[k/64] |= 1 << (k % 64)
		case c == '\\' || c < 0x20:
			class |= classFallback
		case c >= 0x80:
			class |= classNonASCII
		}
	}
	return mask, class
}

func TestStage1ImplementationsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{'"', '\\', 0, 0x1f, 0x20, 0x21, 'a', '{', 0x7f, 0x80, 0xff, 0xc3}
	for n := 0; n < 400; n++ {
		for round := 0; round < 20; round++ {
			b := make([]byte, n)
			for k := range b {
				if round%2 == 0 {
					b[k] = alphabet[rng.IntN(len(alphabet))]
				} else {
					// Mostly plain text with a rare special byte, so that
					// a single one in any position is caught.
					b[k] = "abc\":,{}"[rng.IntN(8)]
					if rng.IntN(n+1) == 0 {
						b[k] = alphabet[rng.IntN(len(alphabet))]
					}
				}
			}
			wantMask, wantClass := stage1Reference(b)
			for _, p := range decoderPaths()[1:] {
				mask := make([]uint64, len(wantMask))
				for k := range mask {
					mask[k] = ^uint64(0) // stale words must be overwritten
				}
				class := scanStructure(b, mask, p.path == pathAVX2)
				if class != wantClass || !slicesEqual(mask, wantMask) {
					t.Fatalf("%s on %q: class %b mask %x, want class %b mask %x", p.name, b, class, mask, wantClass, wantMask)
				}
			}
		}
	}
}

func slicesEqual(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// TestStage1AssemblyUsesAVX2AtMost reads the assembly of stage 1 and
// checks that every instruction is one of a list of SSE2 and AVX2
// instructions, and that no 512-bit register appears: the feature check
// only guarantees AVX2, and an AVX-512 instruction would fault on most of
// the processors that pass it.
func TestStage1AssemblyUsesAVX2AtMost(t *testing.T) {
	src, err := os.ReadFile("stage1_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		// General-purpose and SSE2 (every amd64 processor).
		"MOVQ": true, "MOVL": true, "CMPQ": true, "JB": true, "JMP": true, "JZ": true, "SHLQ": true, "ORQ": true,
		"ADDQ": true, "SUBQ": true, "XORQ": true, "TESTL": true, "RET": true,
		// AVX and AVX2 on 256-bit registers.
		"VPBROADCASTB": true, "VPXOR": true, "VMOVDQU": true, "VPCMPEQB": true, "VPMOVMSKB": true, "VPOR": true,
		"VPMAXUB": true, "VZEROUPPER": true,
	}
	label := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*:$`)
	wide := regexp.MustCompile(`\b[XYZ](1[6-9]|2[0-9]|3[01])\b|\bZ[0-9]+\b|\bK[0-7]\b`) // registers only EVEX reaches
	var seen int
	for _, line := range strings.Split(string(src), "\n") {
		if k := strings.Index(line, "//"); k >= 0 {
			line = line[:k]
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "TEXT") || label.MatchString(line) {
			continue
		}
		op := strings.Fields(line)[0]
		if !allowed[op] {
			t.Errorf("stage1_amd64.s uses %s, which is not on the list of SSE2 and AVX2 instructions: %q", op, line)
		}
		if wide.MatchString(line) {
			t.Errorf("stage1_amd64.s uses an AVX-512 register: %q", line)
		}
		seen++
	}
	if seen < 20 {
		t.Fatalf("read only %d instructions: the parse misses the file's shape", seen)
	}
}

// fastEdgeRecords are records at the edges of what the fast path handles:
// numbers of every length and form, bounds just inside and outside, blocks
// of 64 bytes, keys that share a hash slot with an allowlisted one, and
// what makes the fast path give up. FuzzFastDecode runs them as seeds, so
// every go test holds both paths to the same result on each.
func fastEdgeRecords() []string {
	var out []string
	for _, n := range []string{"0", "00", "01", "7", "12345678", "123456789", "1000000000000", "1000000000001",
		"9999999999999", "10000000000000", "99999999999999999999", "1.0", "1e3", "1E3", "0e1", "-1", "-0", "12a", "1 ", "+1", "\"1\"", "null", "true"} {
		out = append(out, campaignRec(minCampaign+`,"clicks":`+n), campaignRec(`"follower_count":`+n+`,"campaign_id":"c","creator_id":"c"`),
			campaignRec(`"clicks":`+n+`,"reach":`+n+`,`+minCampaign), campaignRec(minCampaign+`,"clicks":`+n+`,"x":"`+strings.Repeat("y", 10)+`"`),
			campaignRec(minCampaign+`,"creator_age":`+n), usageRec(`"team_size":`+n), usageRec(`"team_size":1,"duration_ms":`+n))
	}
	for _, v := range []string{"150", "151", "0"} {
		out = append(out, campaignRec(minCampaign+`,"creator_age":`+v))
	}
	for _, v := range []string{"true", "false", "tru", "True", "null", "1"} {
		out = append(out, campaignRec(minCampaign+`,"guardian_consent":`+v))
	}
	for _, n := range []int{0, 1, 127, 128, 129} {
		x := strings.Repeat("x", n)
		out = append(out, campaignRec(minCampaign+`,"industry":"`+x+`"`), usageRec(minUsage+`,"action":"`+x+`"`),
			rec(`"event_id":"`+x+`","event_type":"x","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`, ``),
			rec(envCampaign+`,"user_id":"`+x+`"`, minCampaign))
	}
	// Records of 60 to 200 bytes, across the 64-byte blocks of stage 1.
	for n := 0; n < 140; n++ {
		out = append(out, `{"p":"`+strings.Repeat("a", n)+`","event_id":"e1","event_type":"x","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","payload":{}}`)
	}
	for _, v := range []string{`"Instagram"`, `"INSTAGRAM"`, `" instagram"`, `"instagrام"`, `"X"`, `"x "`, `""`, `"tiktoK"`, `"youtubE"`, `"linkedin"`, `"facebook"`} {
		out = append(out, campaignRec(minCampaign+`,"platform":`+v+`,"content_type":`+v))
	}
	for _, v := range []string{`"Story"`, `"short"`, `"SHORT"`, `"reels"`, `"Article"`} {
		out = append(out, campaignRec(minCampaign+`,"content_type":`+v))
	}
	for _, v := range []string{`"Update"`, `"create"`, `"DELETE"`, `"export"`, `"Free"`, `"pro"`, `"Enterprise"`, `"MOBILE"`, `"tablet"`, `"desk top"`} {
		out = append(out, usageRec(minUsage+`,"action":`+v+`,"plan_tier":`+v+`,"device_type":`+v))
	}
	// Keys near the allowlisted ones, and allowlisted keys in the wrong object.
	for _, k := range []string{"event_ie", "fvent_id", "event_id ", "Event_id", "clicks", "payloac", "user_ie", "e", ""} {
		out = append(out, `{"`+k+`":"v",`+envCampaign+`,"payload":{`+minCampaign+`}}`)
	}
	for _, k := range []string{"clickt", "dlicks", "team_size", "event_id", "reacH", "saves2", "s"} {
		out = append(out, campaignRec(minCampaign+`,"`+k+`":1`))
	}
	// Timestamps: the date cache must follow each record.
	for _, ts := range []string{"2026-11-01T10:00:00Z", "2026-11-02T10:00:00Z", "2026-11-01T10:00:00.5+02:00", "2026-02-29T10:00:00Z",
		"2024-02-29T10:00:00Z", "2026-11-01T24:00:00Z", "2026-11-01", "2026-11-01T10:00:00", "2026-11-01T10:00:00.Z", "2026-11-01X10:00:00Z"} {
		out = append(out, rec(`"event_id":"e1","event_type":"campaign.metrics","occurred_at":"`+ts+`","workspace_id":"w1"`, minCampaign))
	}
	// What makes the fast path give up.
	out = append(out,
		"{ "+envCampaign+`,"payload":{`+minCampaign+`}}`,
		`{`+envCampaign+` ,"payload":{`+minCampaign+`}}`,
		`{`+envCampaign+`,"payload" :{`+minCampaign+`}}`,
		`{`+envCampaign+`,"payload":{`+minCampaign+`} }`,
		`{`+envCampaign+`,"payload":{`+minCampaign+`}} `,
		`{`+envCampaign+`,"payload":{`+minCampaign+`,"x":{ "a" : [ 1 , 2 ] }}}`,
		`{`+envCampaign+`,"payload":{`+minCampaign+`,"x":"a\\nb"}}`,
		`{`+envCampaign+`,"payload":{`+minCampaign+`,"x":"Café"}}`,
		`{`+envCampaign+`,"payload":{`+minCampaign+`,"industry":"Café.bar"}}`,
		`{`+envCampaign+`,"payload":{"campaign_id":"c1","creator_id":"crè","follower_count":1}}`,
		`{`+envCampaign+`,"payload":{`+minCampaign+`,"x":"a`+"\x01"+`b"}}`,
		`{`+envCampaign+`,"payload":{`+minCampaign+`,"x":"a`+"\xff"+`b"}}`,
		`{`+envCampaign+`,"payload":{`+minCampaign+`}`,
		`{`+envCampaign+`,"payload":{`+minCampaign+`}}}`,
		`{`+envCampaign+`,"payload":{`+minCampaign+`,}}`,
		`{`+envCampaign+`,"payload":{}}`,
		`{`+envCampaign+`,"payload":[]}`,
		`{`+envCampaign+`,"payload":null}`,
		`{`+envCampaign+`,"payload":"x"}`,
		`{"payload":{"team_size":2},"event_id":"e1","event_type":"usage.interaction","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"}`,
		`{"payload":{"team_size":2},"event_id":"e1","event_type":"usage.interaction","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","user_id":""}`,
		`{"payload":{"body":"x","team_size":"x"},"event_id":"e1","event_type":"message.sms","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"}`,
		`{"payload":{"x":`+strings.Repeat("[", 63)+strings.Repeat("]", 63)+`},"event_id":"e1","event_type":"x","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"}`,
		`{"payload":{"x":`+strings.Repeat("[", 62)+strings.Repeat("]", 62)+`},"event_id":"e1","event_type":"x","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"}`,
		`{"event_id":"e1","event_type":"campaign.metrics","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","payload":{`+minCampaign+`}}`,
		campaignRec(minCampaign+`,"clicks":1,"clicks":1`),
		`{"event_id":"e1"`,
		`{"event_id":"e1`,
		`{"event_id":`,
		`{"`,
		`{`,
		`{}`,
	)
	return out
}
