package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sources/file"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSettingsRules holds verify's own reading of the settings to contract §4.
func TestSettingsRules(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  pipeline.Reason
	}{
		{"a first opt-out by any role counts",
			[]string{`{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"viewer"}`}, pipeline.ReasonOptedOut},
		{"an opt-in by an editor is ignored",
			[]string{`{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`,
				`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"editor"}`}, pipeline.ReasonOptedOut},
		{"an opt-in by an owner counts",
			[]string{`{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`,
				`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`}, pipeline.ReasonNone},
		{"an opt-in by an admin counts",
			[]string{`{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`,
				`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"admin"}`}, pipeline.ReasonNone},
		{"deletion is final",
			[]string{`{"workspace_id":"w","deleted":true}`, `{"workspace_id":"w","ai_training_opt_out":false,"deleted":false,"updated_by_role":"owner"}`},
			pipeline.ReasonWorkspaceDeleted},
		{"an unreadable line excludes the workspace it names",
			[]string{`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`, `{"workspace_id":"w","ai_training_opt_out":"yes"}`},
			pipeline.ReasonConsentUnreadable},
		{"a truncated line is attributed from its beginning",
			[]string{`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`, `{"workspace_id":"w","ai_training_opt_out":tru`},
			pipeline.ReasonConsentUnreadable},
		{"a record without the opt-out field and not a deletion is unreadable",
			[]string{`{"workspace_id":"w","updated_by_role":"owner"}`}, pipeline.ReasonConsentUnreadable},
		{"a duplicate opt-out key is unreadable, not its last value",
			[]string{`{"workspace_id":"w","ai_training_opt_out":true,"ai_training_opt_out":false,"updated_by_role":"owner"}`}, pipeline.ReasonConsentUnreadable},
		{"a second object on the line is not dropped",
			[]string{`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`}, pipeline.ReasonConsentUnreadable},
		{"a missing role is unreadable",
			[]string{`{"workspace_id":"w","ai_training_opt_out":false}`}, pipeline.ReasonConsentUnreadable},
		{"an editor's opt-in after an unreadable record is ignored",
			[]string{`{"workspace_id":"w","ai_training_opt_out":"no","updated_by_role":"owner"}`, `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"editor"}`}, pipeline.ReasonConsentUnreadable},
		{"an owner's opt-in after an unreadable record counts",
			[]string{`{"workspace_id":"w","ai_training_opt_out":"no","updated_by_role":"owner"}`, `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`}, pipeline.ReasonNone},
		{"a readable opt-out after an unreadable record is an opt-out",
			[]string{`{"workspace_id":"w","ai_training_opt_out":"no","updated_by_role":"owner"}`, `{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"viewer"}`}, pipeline.ReasonOptedOut},
		{"an unreadable record leaves a deletion final",
			[]string{`{"workspace_id":"w","deleted":true}`, `{"workspace_id":"w","ai_training_opt_out":"no"}`, `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`}, pipeline.ReasonWorkspaceDeleted},
		{"no record is unknown consent", nil, pipeline.ReasonConsentUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "settings.ndjson", strings.Join(tc.lines, "\n")+"\n")
			in, err := ReadSettings(path, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := in.ExpectedReason("w"); got != tc.want {
				t.Errorf("reason %q, want %q", got, tc.want)
			}
		})
	}
	path := writeFile(t, t.TempDir(), "settings.ndjson", `{"ai_training_opt_out":true}`+"\n"+`{"workspace_id":"v","ai_training_opt_out":false,"updated_by_role":"owner"}`+"\n")
	in, err := ReadSettings(path, "include")
	if err != nil || in.SettingsSkipped != 1 || len(in.Unattributable) != 1 || in.Unattributable[0] != 1 || in.ExpectedReason("v") != pipeline.ReasonNone {
		t.Errorf("an unattributable line: err %v, skipped %d, unattributable %v; want line 1 noted and the rest read", err, in.SettingsSkipped, in.Unattributable)
	}
	if in.ExpectedReason("w") != pipeline.ReasonNone {
		t.Error("with unknown_workspaces: include, a workspace without a record is excluded")
	}
}

// TestReadInput checks the reading of lines: positions, validity, minors,
// messages, and which strings count as free text.
func TestReadInput(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "settings.ndjson", `{"workspace_id":"w1","ai_training_opt_out":false,"updated_by_role":"owner"}`+"\n")
	writeFile(t, dir, "events-00.ndjson", "\ufeff"+strings.Join([]string{
		`{"event_id":"e1","event_type":"campaign.metrics","occurred_at":"2026-11-01T00:00:00Z","workspace_id":"w1","source":"metrics-poller-east",` +
			`"payload":{"campaign_id":"c1","creator_id":"cr1","industry":"beauty.skincare.serums","creator_age":12,"caption":"My go-to for busy mornings #reels",` +
			`"sent_at":"2026-11-01T00:00:00Z","tags":["a-very-long-tag-value"]}}`,
		`not json at all`,
		`{"event_id":"e3","event_type":"MESSAGE.direct","occurred_at":"2026-11-01T00:00:00Z","workspace_id":"w1","payload":{"body":"beauty.skincare.serums is great"}}`,
		`{"event_id":"e4","event_type":"campaign.metrics","occurred_at":"2026-11-01T00:00:00Z","workspace_id":"w1","payload":{"creator_age":15,"guardian_consent":true}}`,
		`{"event_id":"e5","event_type":"campaign.metrics","occurred_at":"2026-11-01T00:00:00Z","workspace_id":"w1","payload":{"creator_age":16}}`,
	}, "\r\n")+"\n")
	in, err := ReadInput(file.Config{Paths: []string{dir}}, filepath.Join(dir, "settings.ndjson"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Partitions) != 1 || in.Partitions[0].Name != "events-00.ndjson[0]" || len(in.Partitions[0].Lines) != 5 {
		t.Fatalf("partitions %+v", in.Partitions)
	}
	ls := in.Partitions[0].Lines
	if !ls[0].Valid || ls[0].EventID != "e1" || ls[0].Minor != "minor_under_13" || ls[1].Valid {
		t.Errorf("lines 1–2 read as %+v, %+v", ls[0], ls[1])
	}
	if !ls[2].Message() || ls[3].Minor != "" || ls[4].Minor != "minor_without_guardian_consent" {
		t.Errorf("lines 3–5 read as %+v, %+v, %+v", ls[2], ls[3], ls[4])
	}
	ix := in.content
	for s, want := range map[string]bool{
		"My go-to for busy mornings #reels": true,  // a caption
		"metrics-poller-east":               true,  // a top-level field outside the envelope
		"a-very-long-tag-value":             true,  // inside an array
		"beauty.skincare.serums":            false, // an allowlisted value, even inside a message body
		"2026-11-01T00:00:00Z":              false, // a timestamp
		"My go-to":                          false, // too short
	} {
		if _, got := ix.planted[s]; got != want {
			t.Errorf("%q taken for free text: %v, want %v", s, got, want)
		}
	}
	if hit, ok := ix.find("prefix My go-to for busy mornings #reels suffix"); !ok || hit != "My go-to for busy mornings #reels" {
		t.Errorf("find = %q, %v", hit, ok)
	}
	if _, ok := ix.find("beauty.skincare.serums and nothing else"); ok {
		t.Error("an allowlisted value was found as free text")
	}
}

func TestForbiddenColumn(t *testing.T) {
	for name, bad := range map[string]bool{"workspace_id": true, "id": true, "creator_ids": true, "caption": true, "comment_text": true,
		"creator_name": true, "email_domain": true, "platform": false, "content_type": false, "workspaces": false, "engagements": false} {
		if got := forbiddenColumn(name) != ""; got != bad {
			t.Errorf("forbiddenColumn(%q) = %v, want %v", name, got, bad)
		}
	}
}

func TestWithdrawnLines(t *testing.T) {
	day := int64(24 * time.Hour / time.Microsecond)
	w0 := pipeline.Window{Start: 0, End: day}
	line := func(ws string, at int64) Line { return Line{Valid: true, WorkspaceID: ws, OccurredAt: at} }
	in := &Input{Partitions: []*InputPartition{{Name: "p[0]", Lines: []Line{
		line("a", 10), line("a", 20), line("a", day+5), line("b", 10), line("b", 20), line("c", 10),
	}}}}
	withdrawal := func(ws string, r pipeline.Reason, events int64) pipeline.Exclusion {
		return pipeline.Exclusion{Reason: r, Cell: &pipeline.CellExclusion{Dataset: "d", Window: w0, Reason: r, Events: events, Workspaces: 1, WorkspaceID: ws}}
	}
	out := &Output{Chains: []*Chain{{Name: PublishChain, Segments: []Segment{{Entries: []pipeline.Exclusion{
		withdrawal("a", pipeline.ReasonOptedOutBeforePublish, 2),
		withdrawal("b", pipeline.ReasonConsentUnreadableBeforePublish, 1),
		withdrawal("c", pipeline.ReasonSuppressedFrequency, 1),
	}}}}}}
	got := withdrawnLines(out, in, func(string, int) bool { return true })
	// a: both lines of the window are covered, not the one of the next day;
	// b: two lines but one event withdrawn, so neither is excused;
	// c: a suppression is no consent withdrawal.
	want := map[string]bool{"p[0]@1": true, "p[0]@2": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("withdrawnLines (-want +got):\n%s", diff)
	}
}
