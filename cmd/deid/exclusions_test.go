package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mya/deid/internal/gen"
)

// TestExclusionsOfAnOptedOutWorkspace asks about an opted-out workspace
// with the input: every entry is listed and the answer is a plain no.
func TestExclusionsOfAnOptedOutWorkspace(t *testing.T) {
	s := generatedSample(t)
	ws := s.stats.Workspaces.OptedOut[0]
	out := deid(t, "exclusions", s.out, "--workspace", ws, "--input", s.in, "--settings", filepath.Join(s.in, gen.SettingsFileName))
	for _, want := range []string{"Workspace " + ws, "opted out", "Record-level exclusions:", "event time", "decided at", "source position",
		"\n  No. It is opted out since"} {
		if !strings.Contains(out, want) {
			t.Errorf("the answer lacks %q:\n%s", want, out)
		}
	}
	entries := strings.Count(out, "  opted_out ")
	if entries == 0 {
		t.Errorf("no opted_out entry listed:\n%s", out)
	}
}

// TestExclusionsFromTheLogAlone asks without the input: the answer says
// what cannot be proven.
func TestExclusionsFromTheLogAlone(t *testing.T) {
	s := generatedSample(t)
	ws := s.stats.Workspaces.Deleted[0]
	out := deid(t, "exclusions", s.out, "--workspace", ws)
	for _, want := range []string{"Cannot be proven from the log alone", "contributed records are counted per partition, not listed", "--settings to know when"} {
		if !strings.Contains(out, want) {
			t.Errorf("the answer lacks %q:\n%s", want, out)
		}
	}
	out = deid(t, "exclusions", s.out, "--workspace", ws, "--settings", filepath.Join(s.in, gen.SettingsFileName))
	if !strings.Contains(out, "By the settings it is deleted since") {
		t.Errorf("with the settings alone, the answer does not give the deletion time:\n%s", out)
	}
}

// TestExclusionsNamesARecordThatContributed tells the command that an
// included workspace opted out before the data, and expects a YES with its
// records listed.
func TestExclusionsNamesARecordThatContributed(t *testing.T) {
	s := generatedSample(t)
	var included string
	for _, id := range s.stats.Workspaces.All {
		if s.stats.ConsentReason(id) == "" && !slices.Contains(s.stats.Workspaces.ReOptInOwner, id) {
			included = id
			break
		}
	}
	b, err := os.ReadFile(filepath.Join(s.in, gen.SettingsFileName))
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, fmt.Sprintf(`{"workspace_id":%q,"ai_training_opt_out":true,"deleted":false,"updated_at":"2024-01-01T00:00:00Z","updated_by_role":"owner"}`+"\n", included)...)
	settings := filepath.Join(t.TempDir(), "settings.ndjson")
	must(t, os.WriteFile(settings, b, 0o644))
	out := deid(t, "exclusions", s.out, "--workspace", included, "--input", s.in, "--settings", settings)
	if !strings.Contains(out, "YES: ") || !strings.Contains(out, "reached a published window") {
		t.Errorf("the answer does not say the workspace's records contributed:\n%s", out)
	}
}

// TestExclusionsTimeRange bounds the entries by event time.
func TestExclusionsTimeRange(t *testing.T) {
	s := generatedSample(t)
	ws := s.stats.Workspaces.OptedOut[0]
	all := deid(t, "exclusions", s.out, "--workspace", ws)
	day := deid(t, "exclusions", s.out, "--workspace", ws, "--from", "2026-11-02", "--to", "2026-11-03")
	if strings.Count(day, "\n  2026-11-01") != 0 || strings.Count(day, "\n  2026-11-02") == 0 || len(day) >= len(all) {
		t.Errorf("--from/--to did not bound the entries to 2026-11-02:\n%s", day)
	}
	if code, _, stderr := deidExit("exclusions", s.out, "--workspace", ws, "--from", "yesterday"); code != 2 || !strings.Contains(stderr, "neither RFC 3339") {
		t.Errorf("a bad --from: exit %d, %s", code, stderr)
	}
}
