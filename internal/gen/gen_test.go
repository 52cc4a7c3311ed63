package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/pipeline"
)

// capture keeps every line written.
type capture struct {
	events   [][]string
	keys     [][]string
	settings []string
}

func (c *capture) Event(p int, key, line []byte) error {
	for len(c.events) <= p {
		c.events = append(c.events, nil)
		c.keys = append(c.keys, nil)
	}
	c.events[p] = append(c.events[p], string(line))
	c.keys[p] = append(c.keys[p], string(key))
	return nil
}

func (c *capture) Setting(_, line []byte) error {
	c.settings = append(c.settings, string(line))
	return nil
}

// hasher digests everything written, in order.
type hasher struct{ h [32]byte }

func (h *hasher) add(parts ...[]byte) {
	s := sha256.New()
	s.Write(h.h[:])
	for _, p := range parts {
		s.Write(p)
		s.Write([]byte{0})
	}
	copy(h.h[:], s.Sum(nil))
}

func (h *hasher) Event(p int, key, line []byte) error {
	h.add([]byte(strconv.Itoa(p)), key, line)
	return nil
}
func (h *hasher) Setting(key, line []byte) error { h.add(key, line); return nil }

// defaultSample is the default config's output, generated once for the
// tests that need a full-size run.
var defaultSample = sync.OnceValues(func() (*capture, Stats) {
	c := &capture{}
	st, err := Generate(DefaultConfig(), c)
	if err != nil {
		panic(err)
	}
	return c, st
})

func smallConfig(events int) Config {
	c := DefaultConfig()
	c.Events = events
	return c
}

func generate(t testing.TB, cfg Config) (*capture, Stats) {
	t.Helper()
	c := &capture{}
	st, err := Generate(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

func digest(t *testing.T, cfg Config) [32]byte {
	t.Helper()
	h := &hasher{}
	if _, err := Generate(cfg, h); err != nil {
		t.Fatal(err)
	}
	return h.h
}

func TestTheSameSeedGivesTheSameBytes(t *testing.T) {
	cfg := smallConfig(20_000)
	a := digest(t, cfg)
	if b := digest(t, cfg); a != b {
		t.Error("two runs with one seed wrote different bytes")
	}
	// However many CPUs render the lines.
	prev := runtime.GOMAXPROCS(1)
	one := digest(t, cfg)
	runtime.GOMAXPROCS(prev)
	if one != a {
		t.Error("a run on one CPU wrote different bytes")
	}
	cfg.Seed++
	if c := digest(t, cfg); c == a {
		t.Error("another seed wrote the same bytes")
	}
}

func TestTheDefaultSampleHasEveryHazard(t *testing.T) {
	c, st := defaultSample()
	for _, h := range Hazards() {
		if st.Hazards[h] == 0 {
			t.Errorf("hazard %s: none in the default sample", h)
		}
	}
	for _, r := range pipeline.RecordReasons() {
		if st.Expected.Excluded[r.String()] == 0 {
			t.Errorf("no line to be excluded as %s", r)
		}
	}
	for _, code := range codeNames {
		if st.Expected.DeadLetters[code] == 0 {
			t.Errorf("no malformed line of code %s", code)
		}
	}
	for _, d := range []string{DatasetCampaignMetrics, DatasetUsagePatterns} {
		if st.Expected.Contributed[d] == 0 {
			t.Errorf("nothing contributes to %s", d)
		}
	}
	for _, typ := range typeNames {
		if st.ByType[typ] == 0 {
			t.Errorf("no %s event", typ)
		}
	}
	ws := st.Workspaces
	for name, l := range map[string][]string{"opted out": ws.OptedOut, "deleted": ws.Deleted,
		"deleted by tombstone": ws.DeletedByTombstone, "unknown": ws.Unknown,
		"re-opted-in by an editor": ws.ReOptInEditor, "re-opted-in by an owner": ws.ReOptInOwner} {
		if len(l) == 0 {
			t.Errorf("no %s workspace", name)
		}
	}
	s := st.Settings
	if s.Malformed == 0 || s.Tombstones == 0 || s.IgnoredOptIns == 0 || s.AfterDeletion == 0 {
		t.Errorf("settings %+v: want malformed lines, tombstones, ignored opt-ins and a record after deletion", s)
	}
	var canaries int
	seen := map[string]bool{}
	for _, lines := range c.events {
		for _, l := range lines {
			if !seen[l] { // a duplicate repeats its original's canary
				seen[l] = true
				canaries += strings.Count(l, CanaryMarker)
			}
		}
	}
	if canaries == 0 || int64(canaries) != st.Hazards[HazardCanary] {
		t.Errorf("%d canaries in distinct lines, Stats says %d", canaries, st.Hazards[HazardCanary])
	}
}

func TestRatesAreRoughlyAsConfigured(t *testing.T) {
	cfg := DefaultConfig()
	_, st := defaultSample()
	n := float64(st.Events)
	rt := cfg.Rates
	campaign := float64(st.ByType["campaign.metrics"])
	tests := []struct {
		name      string
		got, want float64
	}{
		{"usage.interaction", float64(st.ByType["usage.interaction"]) / n, rt.Usage},
		{"campaign.metrics", campaign / n, 1 - rt.Usage - rt.Message - rt.Unsupported},
		{"message", float64(st.Hazards[HazardMessage]) / n, rt.Message},
		{"unsupported", float64(st.Hazards[HazardUnsupported]) / n, rt.Unsupported},
		{"malformed", float64(st.Hazards[HazardMalformed]) / n, rt.Malformed},
		{"duplicate", float64(st.Hazards[HazardDuplicate]) / n, rt.Duplicate},
		{"late", float64(st.Hazards[HazardLate]) / n, rt.Late},
		{"far future", float64(st.Hazards[HazardFarFuture]) / n, rt.FarFuture},
		{"pii (of campaign events)", float64(st.Hazards[HazardPII]) / campaign, rt.PII},
		{"minor (of campaign events)", float64(st.Hazards[HazardMinorUnder13]+st.Hazards[HazardMinorWithConsent]+
			st.Hazards[HazardMinorWithoutConsent]) / campaign, rt.Minor},
	}
	for _, tt := range tests {
		if math.Abs(tt.got-tt.want) > 0.15*tt.want {
			t.Errorf("%s: rate %.4f, want %.4f ± 15%%", tt.name, tt.got, tt.want)
		}
	}
	wsRates := []struct {
		name string
		got  int
		rate float64
	}{
		{"opted out (incl. editor re-opt-ins)", len(st.Workspaces.OptedOut), rt.OptedOut + rt.ReOptInEditor},
		{"deleted", len(st.Workspaces.Deleted), rt.Deleted},
		{"unknown", len(st.Workspaces.Unknown), rt.Unknown},
		{"owner re-opt-ins", len(st.Workspaces.ReOptInOwner), rt.ReOptInOwner},
	}
	for _, w := range wsRates {
		if want := int(math.Round(w.rate * float64(cfg.Workspaces))); w.got != want {
			t.Errorf("%s workspaces: %d, want %d", w.name, w.got, want)
		}
	}
}

func TestStatsDescribeTheLinesWritten(t *testing.T) {
	c, st := generate(t, smallConfig(20_000))
	var lines, bytes int64
	for p, ps := range st.Partitions {
		var b int64
		for _, l := range c.events[p] {
			b += int64(len(l))
			if strings.ContainsAny(l, "\n\r") {
				t.Fatalf("partition %d: a line holds a raw line break: %q", p, l)
			}
		}
		if ps.Lines != int64(len(c.events[p])) || ps.Bytes != b || ps.Expected.Total() != ps.Lines {
			t.Errorf("partition %d: stats %d lines %d bytes (%d expected), written %d lines %d bytes",
				p, ps.Lines, ps.Bytes, ps.Expected.Total(), len(c.events[p]), b)
		}
		lines += ps.Lines
		bytes += b
	}
	if st.Events != lines || st.Bytes != bytes || st.Expected.Total() != lines {
		t.Errorf("stats: %d events, %d bytes, %d expected; written %d lines, %d bytes", st.Events, st.Bytes, st.Expected.Total(), lines, bytes)
	}
	var byType int64
	for _, n := range st.ByType {
		byType += n
	}
	if byType != lines {
		t.Errorf("ByType counts %d lines, %d written", byType, lines)
	}
	// Keys are the workspace ids, and every workspace's events go to one
	// partition.
	home := map[string]int{}
	known := map[string]bool{}
	for _, id := range st.Workspaces.All {
		known[id] = true
	}
	for p, keys := range c.keys {
		for i, k := range keys {
			if !known[k] {
				t.Fatalf("partition %d line %d: key %q is no workspace", p, i+1, k)
			}
			if h, ok := home[k]; ok && h != p {
				t.Fatalf("workspace %s has events in partitions %d and %d", k, h, p)
			}
			home[k] = p
			if !strings.Contains(c.events[p][i], k) && st.Expected.DeadLetters[codeMissing] == 0 {
				t.Errorf("partition %d line %d does not name its key's workspace", p, i+1)
			}
		}
	}
	if int64(len(c.settings)) != st.Settings.Lines {
		t.Errorf("%d settings lines, Stats says %d", len(c.settings), st.Settings.Lines)
	}
	for _, l := range c.settings {
		for _, id := range st.Workspaces.Unknown {
			if strings.Contains(l, id) {
				t.Errorf("unknown workspace %s has a settings record: %s", id, l)
			}
		}
	}
}

func TestSettingsAreInTimeOrder(t *testing.T) {
	c, _ := generate(t, smallConfig(0))
	var prev string
	for i, l := range c.settings {
		var rec struct {
			At string `json:"updated_at"`
		}
		if json.Unmarshal([]byte(l), &rec) != nil || rec.At == "" {
			continue // a malformed line or a tombstone
		}
		if rec.At < prev {
			t.Errorf("settings line %d at %s comes after one at %s", i+1, rec.At, prev)
		}
		prev = rec.At
	}
}

// The reference model below reads the lines with encoding/json and applies
// contract §3-§5 on its own; the generator's expected accounting must agree
// with it, partition by partition.

type refSetting struct {
	WorkspaceID *string `json:"workspace_id"`
	OptOut      *bool   `json:"ai_training_opt_out"`
	Deleted     *bool   `json:"deleted"`
	Role        string  `json:"updated_by_role"`
}

// refConsent applies the settings lines under contract §4 and returns each
// workspace's ingest reason ("" for included) and the unreadable count. An
// unreadable line is attributed to the workspace_id it starts with.
func refConsent(lines []string) (map[string]string, int) {
	type state struct{ out, deleted, unreadable bool }
	states := map[string]*state{}
	bad := 0
	named := regexp.MustCompile(`^\{"workspace_id":"([^"]+)"`)
	for _, l := range lines {
		var r refSetting
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.WorkspaceID == nil ||
			(r.Deleted == nil || !*r.Deleted) && (r.OptOut == nil || r.Role == "") {
			bad++
			if m := named.FindStringSubmatch(l); m != nil {
				switch s := states[m[1]]; {
				case s == nil:
					states[m[1]] = &state{unreadable: true}
				case !s.deleted:
					s.unreadable = true
				}
			}
			continue
		}
		del := r.Deleted != nil && *r.Deleted
		out := r.OptOut != nil && *r.OptOut
		s := states[*r.WorkspaceID]
		switch {
		case s == nil:
			states[*r.WorkspaceID] = &state{out: out, deleted: del}
		case s.deleted:
		case del:
			s.deleted = true
		case out:
			s.out, s.unreadable = true, false
		case (s.out || s.unreadable) && (r.Role == "owner" || r.Role == "admin"):
			s.out, s.unreadable = false, false
		}
	}
	reasons := map[string]string{}
	for id, s := range states {
		switch {
		case s.deleted:
			reasons[id] = "workspace_deleted"
		case s.unreadable:
			reasons[id] = "consent_unreadable"
		case s.out:
			reasons[id] = "opted_out"
		default:
			reasons[id] = ""
		}
	}
	return reasons, bad
}

type refEvent struct {
	id, typ, ws string
	at          time.Time
	age         *int64
	guardian    bool
}

var refCounters = []string{"impressions", "reach", "clicks", "likes", "comments", "shares", "saves",
	"video_views", "conversions", "spend_cents", "revenue_cents"}

// refValidate returns the event, or the malformed code of contract §3.1.
func refValidate(line string, now time.Time) (refEvent, string) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &env); err != nil {
		return refEvent{}, codeInvalidJSON
	}
	var ev refEvent
	str := func(m map[string]json.RawMessage, k string, dst *string) string {
		v, ok := m[k]
		if !ok {
			return codeMissing
		}
		if json.Unmarshal(v, dst) != nil {
			return codeWrongType
		}
		return ""
	}
	num := func(m map[string]json.RawMessage, k string, required bool, minimum int64) (int64, bool, string) {
		v, ok := m[k]
		if !ok {
			if required {
				return 0, false, codeMissing
			}
			return 0, false, ""
		}
		var n int64
		if json.Unmarshal(v, &n) != nil {
			return 0, true, codeWrongType
		}
		if n < minimum {
			return n, true, codeNegative
		}
		if n > 1_000_000_000_000 {
			return n, true, codeImplausible
		}
		return n, true, ""
	}
	var at string
	for _, f := range []struct {
		k   string
		dst *string
	}{{"event_id", &ev.id}, {"event_type", &ev.typ}, {"occurred_at", &at}, {"workspace_id", &ev.ws}} {
		if code := str(env, f.k, f.dst); code != "" {
			return ev, code
		}
	}
	raw, ok := env["payload"]
	if !ok {
		return ev, codeMissing
	}
	var payload map[string]json.RawMessage
	if json.Unmarshal(raw, &payload) != nil {
		return ev, codeWrongType
	}
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return ev, codeBadTimestamp
	}
	ev.at = t
	switch ev.typ {
	case "campaign.metrics":
		var s string
		for _, k := range []string{"campaign_id", "creator_id"} {
			if code := str(payload, k, &s); code != "" {
				return ev, code
			}
		}
		if _, _, code := num(payload, "follower_count", true, 0); code != "" {
			return ev, code
		}
		for _, k := range refCounters {
			if _, _, code := num(payload, k, false, 0); code != "" {
				return ev, code
			}
		}
		if age, ok, code := num(payload, "creator_age", false, 0); code != "" {
			return ev, code
		} else if ok {
			ev.age = &age
		}
		if g, ok := payload["guardian_consent"]; ok && json.Unmarshal(g, &ev.guardian) != nil {
			return ev, codeWrongType
		}
	case "usage.interaction":
		var s string
		if code := str(env, "user_id", &s); code != "" {
			return ev, code
		}
		if _, _, code := num(payload, "team_size", true, 1); code != "" {
			return ev, code
		}
		if _, _, code := num(payload, "duration_ms", false, 0); code != "" {
			return ev, code
		}
	}
	if ev.at.After(now.Add(15 * time.Minute)) {
		return ev, codeFuture
	}
	return ev, ""
}

// TestLinesAgreeWithAReferenceModel checks that every well-formed line
// parses with encoding/json and every malformed one does not pass the
// the contract's checks, and that the expected accounting agrees with a model of
// contract §3-§5 that reads the lines on its own.
func TestLinesAgreeWithAReferenceModel(t *testing.T) {
	cfg := smallConfig(12_000)
	c, st := generate(t, cfg)
	consent, badSettings := refConsent(c.settings)
	if int64(badSettings) != st.Settings.Malformed {
		t.Errorf("reference skipped %d settings lines, Stats says %d", badSettings, st.Settings.Malformed)
	}
	now := cfg.Start.AddDate(0, 0, cfg.Days+1)
	var malformed int64
	for p, lines := range c.events {
		got := newExpected()
		maxSeen := int64(math.MinInt64)
		seen := map[string]bool{}
		for _, l := range lines {
			ev, code := refValidate(l, now)
			valid := json.Valid([]byte(l))
			if code != "" {
				malformed++
				got.DeadLetters[code]++
				if valid && code == codeInvalidJSON {
					t.Errorf("a truncated line parses: %s", l)
				}
				continue
			}
			if !valid {
				t.Errorf("a well-formed line does not parse: %s", l)
			}
			at := ev.at.UnixMilli()
			maxSeen = max(maxSeen, at)
			reason := ""
			if windowEnd(at) <= bound(maxSeen) {
				reason = "late_event"
			} else if key := fmt.Sprint(windowEnd(at), ev.id); seen[key] {
				reason = "duplicate"
			} else {
				seen[key] = true
				switch {
				case strings.HasPrefix(ev.typ, "message.") || ev.typ == "support.message":
					reason = "message_content"
				case ev.typ != "campaign.metrics" && ev.typ != "usage.interaction":
					reason = "unsupported_event_type"
				default:
					r, ok := consent[ev.ws]
					switch {
					case !ok:
						reason = "consent_unknown"
					case r != "":
						reason = r
					case ev.age != nil && *ev.age < 13:
						reason = "minor_under_13"
					case ev.age != nil && *ev.age <= 17 && !ev.guardian:
						reason = "minor_without_guardian_consent"
					}
				}
			}
			switch {
			case reason != "":
				got.Excluded[reason]++
			case ev.typ == "campaign.metrics":
				got.Contributed[DatasetCampaignMetrics]++
			default:
				got.Contributed[DatasetUsagePatterns]++
			}
		}
		if diff := cmp.Diff(st.Partitions[p].Expected, got); diff != "" {
			t.Errorf("partition %d: Stats (-) and the reference model (+) disagree:\n%s", p, diff)
		}
	}
	var want int64
	for _, n := range st.Malformed {
		want += n
	}
	if malformed != want {
		t.Errorf("%d lines are malformed, Stats says %d", malformed, want)
	}
	for id, want := range consent {
		if got := st.ConsentReason(id); got != want {
			t.Errorf("ConsentReason(%s) = %q, the settings say %q", id, got, want)
		}
	}
	for _, id := range st.Workspaces.Unknown {
		if st.ConsentReason(id) != "consent_unknown" {
			t.Errorf("ConsentReason(%s) = %q, want consent_unknown", id, st.ConsentReason(id))
		}
	}
}

func TestValidateReportsEveryProblemWithItsPath(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Events = -1
	cfg.Partitions = 0
	cfg.Days = 0
	cfg.Start = time.Time{}
	cfg.Rates.Usage = 0.99
	cfg.Rates.PII = 2
	cfg.Rates.OptedOut = -0.1
	want := []string{
		"gen.events: must be between 0 and 17179869184 (got -1)",
		"gen.partitions: must be between 1 and 4096 (got 0)",
		"gen.days: must be between 1 and 3660 (got 0)",
		"gen.start: must be set, e.g. 2026-11-01T00:00:00Z",
		"gen.rates: the line rates (usage, message, unsupported, malformed, duplicate, late, far_future) add up to 1.036; they must leave room for campaign events (at most 1)",
		"gen.rates.pii: must be between 0 and 1 (got 2)",
		"gen.rates.opted_out: must be between 0 and 1 (got -0.1)",
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate = nil")
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	small := DefaultConfig()
	small.Workspaces = 4
	if err := small.Validate(); err == nil || !strings.Contains(err.Error(), "gen.workspaces: 4 workspaces leave none ordinary") {
		t.Errorf("4 workspaces: %v, want an error about the workspace rates", err)
	}
	if _, err := Generate(cfg, &capture{}); err == nil {
		t.Error("Generate accepted a bad config")
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
}

func TestTinyConfigsWork(t *testing.T) {
	for _, cfg := range []Config{
		{Seed: 1, Events: 1, Partitions: 1, Workspaces: 1, Start: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), Days: 1},
		{Seed: 2, Events: 500, Partitions: 16, Workspaces: 10, Start: time.Date(2026, 11, 1, 13, 7, 0, 0, time.UTC), Days: 1, Rates: DefaultRates()},
		{Seed: 3, Events: 3000, Partitions: 3, Workspaces: 50, Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Days: 10, Rates: DefaultRates()},
	} {
		c, st := generate(t, cfg)
		var n int
		for _, l := range c.events {
			n += len(l)
		}
		if n != cfg.Events || st.Expected.Total() != int64(n) {
			t.Errorf("%+v: %d lines, %d expected; want %d", cfg, n, st.Expected.Total(), cfg.Events)
		}
	}
}

func TestTimestampsAreRFC3339(t *testing.T) {
	for _, ms := range []int64{0, 1_793_491_200_123, -86_400_000 * 366, 4_102_444_799_999, 951_782_400_000} {
		want := time.UnixMilli(ms).UTC()
		for _, style := range []int{tsSeconds, tsMillis, tsOffset} {
			s := string(appendTimeBare(nil, ms, style))
			got, err := time.Parse(time.RFC3339, s)
			if err != nil {
				t.Fatalf("%d style %d: %q: %v", ms, style, s, err)
			}
			w := want
			if style != tsMillis {
				w = w.Truncate(time.Second)
			}
			if !got.Equal(w) {
				t.Errorf("%d style %d: %q is %s, want %s", ms, style, s, got, w)
			}
		}
	}
}

func TestFreeTextIsValidJSONWhateverItHolds(t *testing.T) {
	for _, s := range []string{"plain", "quote \" backslash \\ newline \n tab \t", "ctrl \x01\x1f", "Zoë Łukasz 美咲 🏋️ ✨", ""} {
		for _, ascii := range []bool{false, true} {
			b := appendString(nil, s, ascii)
			var got string
			if err := json.Unmarshal(b, &got); err != nil || got != s {
				t.Errorf("appendString(%q, ascii=%v) = %s: decodes to %q, %v", s, ascii, b, got, err)
			}
			if ascii && bytes.ContainsFunc(b, func(r rune) bool { return r > 0x7f }) {
				t.Errorf("appendString(%q, ascii) = %s: not ASCII", s, b)
			}
		}
	}
}

// failing fails its nth event.
type failing struct{ n int }

var errWrite = errors.New("disk full")

func (f *failing) Event(int, []byte, []byte) error {
	if f.n--; f.n == 0 {
		return errWrite
	}
	return nil
}
func (f *failing) Setting([]byte, []byte) error { return nil }

func TestAWriterErrorStopsGeneration(t *testing.T) {
	for _, n := range []int{1, 3000, 9_999} {
		if _, err := Generate(smallConfig(10_000), &failing{n: n}); !errors.Is(err, errWrite) {
			t.Errorf("failing at event %d: Generate = %v, want the writer's error", n, err)
		}
	}
}
