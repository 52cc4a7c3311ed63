package consent

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
)

var key = mustKey("test-key")

func mustKey(raw string) *pipeline.PseudonymKey {
	k, err := pipeline.NewPseudonymKey([]byte(raw))
	if err != nil {
		panic(err)
	}
	return k
}

func load(t *testing.T, cfg Config, lines ...string) *Store {
	t.Helper()
	s, err := New(cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(strings.NewReader(strings.Join(lines, "\n")), "settings.ndjson"); err != nil {
		t.Fatal(err)
	}
	return s
}

func check(s *Store, ws string) pipeline.Reason {
	return s.Check(&pipeline.Event{WorkspaceID: []byte(ws)})
}

func TestRulesOfSpec4(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  pipeline.Reason
	}{
		{"a workspace with no record fails closed", nil, pipeline.ReasonConsentUnknown},
		{"a workspace that never opted out is included",
			[]string{`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`}, pipeline.ReasonNone},
		{"a first record sets the state whatever the role",
			[]string{`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"viewer"}`}, pipeline.ReasonNone},
		{"an opt-out by any role is honoured",
			[]string{`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`,
				`{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"viewer"}`}, pipeline.ReasonOptedOut},
		{"an opt-in by an editor is ignored",
			[]string{`{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`,
				`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"editor"}`}, pipeline.ReasonOptedOut},
		{"an opt-in by an admin counts",
			[]string{`{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`,
				`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"admin"}`}, pipeline.ReasonNone},
		{"an opt-in by the owner counts",
			[]string{`{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"admin"}`,
				`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`}, pipeline.ReasonNone},
		{"deletion is final, even after an owner's opt-in",
			[]string{`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`,
				`{"workspace_id":"w","deleted":true}`,
				`{"workspace_id":"w","ai_training_opt_out":false,"deleted":false,"updated_by_role":"owner"}`}, pipeline.ReasonWorkspaceDeleted},
		{"deletion wins over opt-out",
			[]string{`{"workspace_id":"w","ai_training_opt_out":true,"deleted":true,"updated_by_role":"owner"}`}, pipeline.ReasonWorkspaceDeleted},
		{"an unreadable record after an opt-out excludes the workspace as unreadable",
			[]string{`{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`,
				`{"workspace_id":"w","ai_training_opt_out":"no"}`}, pipeline.ReasonConsentUnreadable},
		{"a record without ai_training_opt_out is unreadable",
			[]string{`{"workspace_id":"w","updated_by_role":"owner"}`}, pipeline.ReasonConsentUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := load(t, DefaultConfig(), tt.lines...)
			if got := check(s, "w"); got != tt.want {
				t.Errorf("Check = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnknownWorkspacesCanBeIncluded(t *testing.T) {
	s := load(t, Config{Unknown: UnknownInclude})
	if got := check(s, "nobody"); got != pipeline.ReasonNone {
		t.Errorf("Check = %q, want included", got)
	}
}

func TestAtPublishSeesLaterChanges(t *testing.T) {
	s := load(t, DefaultConfig(),
		`{"workspace_id":"a","ai_training_opt_out":false,"updated_by_role":"owner"}`,
		`{"workspace_id":"b","ai_training_opt_out":false,"updated_by_role":"owner"}`,
		`{"workspace_id":"c","ai_training_opt_out":false,"updated_by_role":"owner"}`)
	pz := key.Pseudonymizer()
	if r, _ := s.AtPublish(pz.Of([]byte("a"))); r != pipeline.ReasonNone {
		t.Fatalf("before any change: %q", r)
	}
	s.Apply(Record{WorkspaceID: "a", OptOut: ptr(true), Role: "viewer"})
	s.Tombstone("b")
	type got struct {
		Reason pipeline.Reason
		ID     string
	}
	var all []got
	for _, ws := range []string{"a", "b", "c"} {
		r, id := s.AtPublish(pz.Of([]byte(ws)))
		all = append(all, got{r, id})
	}
	want := []got{{pipeline.ReasonOptedOutBeforePublish, "a"}, {pipeline.ReasonDeletedBeforePublish, "b"}, {pipeline.ReasonNone, "c"}}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("AtPublish (-want +got):\n%s", diff)
	}
}

func TestStatsAndSkipped(t *testing.T) {
	s := load(t, DefaultConfig(),
		`{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`,
		`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"editor"}`,
		`{"workspace_id":"w","ai_training_opt_out":"yes","updated_by_role":"owner"}`,
		``,
		`{"workspace_id":"w","deleted":true}`,
		`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`)
	want := Stats{Applied: 4, Malformed: 1, IgnoredOptIns: 1, AfterDeletion: 1}
	if diff := cmp.Diff(want, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	sk := s.Skipped()
	if len(sk) != 1 || sk[0].Position != "settings.ndjson:3" || !cmp.Equal(sk[0].Workspaces, []string{"w"}) {
		t.Errorf("Skipped = %+v, want line 3", sk)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Unknown: "maybe", Unattributable: "ignore"}.Validate()
	for _, path := range []string{"consent.unknown_workspaces", "consent.unattributable"} {
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Validate = %v, want an error naming %s", err, path)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
