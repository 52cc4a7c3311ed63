package consent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
)

func TestReadIsStrict(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		value string
		// wantErr is a part of the error, "" for a readable record.
		wantErr string
		want    []string // Workspaces
	}{
		{"a full record is readable", "",
			`{"workspace_id":"w","ai_training_opt_out":true,"deleted":false,"updated_at":"2026-11-01T00:00:00Z","updated_by_role":"viewer"}`, "", []string{"w"}},
		{"a deletion needs no role and no opt-out", "", `{"workspace_id":"w","deleted":true}`, "", []string{"w"}},
		{"unknown fields are ignored", "", `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner","plan":{"tier":"pro"}}`, "", []string{"w"}},
		{"the opt-out as the string true is unreadable", "", `{"workspace_id":"w","ai_training_opt_out":"true","updated_by_role":"owner"}`, "ai_training_opt_out is a string, not a boolean", []string{"w"}},
		{"the opt-out as yes is unreadable", "", `{"workspace_id":"w","ai_training_opt_out":"yes","updated_by_role":"admin"}`, "not a boolean", []string{"w"}},
		{"a null opt-out is unreadable", "", `{"workspace_id":"w","ai_training_opt_out":null,"updated_by_role":"admin"}`, "is null", []string{"w"}},
		{"a numeric updated_at is unreadable", "", `{"workspace_id":"w","ai_training_opt_out":true,"updated_at":1700000000,"updated_by_role":"owner"}`, "updated_at is a number", []string{"w"}},
		{"deleted as a string is unreadable", "", `{"workspace_id":"w","deleted":"true"}`, "deleted is a string", []string{"w"}},
		{"a duplicate key is unreadable (it would read as the last value)", "", `{"workspace_id":"w","ai_training_opt_out":true,"ai_training_opt_out":false,"updated_by_role":"owner"}`, "appears more than once", []string{"w"}},
		{"a key that differs from a field only in case is unreadable", "", `{"workspace_id":"w","AI_Training_Opt_Out":false,"ai_training_opt_out":true,"updated_by_role":"owner"}`, "only in case", []string{"w"}},
		{"a Kelvin sign that folds into workspace_id is unreadable", "", "{\"wor\u212aspace_id\":\"v\",\"workspace_id\":\"w\",\"ai_training_opt_out\":true,\"updated_by_role\":\"owner\"}", "only in case", []string{"v", "w"}},
		{"a duplicate key inside an unknown field is unreadable", "", `{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner","x":{"a":1,"a":2}}`, "more than once", []string{"w"}},
		{"two objects on one line are unreadable, both attributed", "", `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}{"workspace_id":"v","ai_training_opt_out":true,"updated_by_role":"owner"}`, "data after the object", []string{"w", "v"}},
		{"trailing garbage is unreadable", "", `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"} x`, "data after the object", []string{"w"}},
		{"a missing role is unreadable", "", `{"workspace_id":"w","ai_training_opt_out":false}`, "missing updated_by_role", []string{"w"}},
		{"an unknown role is unreadable", "", `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"root"}`, "updated_by_role is not one of", []string{"w"}},
		{"a missing opt-out is unreadable", "", `{"workspace_id":"w","updated_by_role":"owner"}`, "missing ai_training_opt_out", []string{"w"}},
		{"a truncated record is attributed from its beginning", "", `{"workspace_id":"w","ai_training_opt_out":tr`, "truncated JSON", []string{"w"}},
		{"a numeric workspace_id names no workspace", "", `{"workspace_id":7,"ai_training_opt_out":true,"updated_by_role":"owner"}`, "workspace_id is a number", nil},
		{"not JSON names no workspace", "", `not json`, "invalid JSON", nil},
		{"an array is not a record", "", `[{"workspace_id":"w"}]`, "not a JSON object", nil},
		{"a nested workspace_id names no workspace", "", `{"x":{"workspace_id":"w"},"ai_training_opt_out":1}`, "not a boolean", nil},
		{"invalid UTF-8 is unreadable and its id identifies nothing", "", "{\"workspace_id\":\"w\xff\",\"ai_training_opt_out\":true,\"updated_by_role\":\"owner\"}", "not valid UTF-8", nil},
		{"the key identifies an unreadable record", "w", `{"ai_training_opt_out":"yes"}`, "not a boolean", []string{"w"}},
		{"a key that differs from workspace_id makes the record unreadable for both", "k", `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`, "differs from the record's key", []string{"k", "w"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var key []byte
			if tt.key != "" {
				key = []byte(tt.key)
			}
			rd := Read(key, []byte(tt.value))
			switch {
			case tt.wantErr == "" && rd.Err != nil:
				t.Fatalf("Read: %v, want readable", rd.Err)
			case tt.wantErr != "" && (rd.Err == nil || !strings.Contains(rd.Err.Error(), tt.wantErr)):
				t.Fatalf("Read error = %v, want one containing %q", rd.Err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, rd.Workspaces); diff != "" {
				t.Errorf("Workspaces (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnOverLongLineIsUnreadableAndTheFileGoesOn(t *testing.T) {
	long := `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner","pad":"` + strings.Repeat("x", MaxRecordBytes) + `"}`
	in := strings.Join([]string{
		`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`,
		long,
		`{"workspace_id":"v","ai_training_opt_out":false,"updated_by_role":"owner"}`,
	}, "\n")
	s, err := New(DefaultConfig(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(strings.NewReader(in), "settings.ndjson"); err != nil {
		t.Fatalf("Load: %v, want the long line read as unreadable and the rest applied", err)
	}
	got := []pipeline.Reason{check(s, "w"), check(s, "v")}
	if diff := cmp.Diff([]pipeline.Reason{pipeline.ReasonConsentUnreadable, pipeline.ReasonNone}, got); diff != "" {
		t.Errorf("Check w, v (-want +got):\n%s", diff)
	}
	if sk := s.Skipped(); len(sk) != 1 || sk[0].Position != "settings.ndjson:2" || !strings.Contains(sk[0].Reason, "longer than") {
		t.Errorf("Skipped = %+v, want line 2, too long", sk)
	}
}

func TestUnreadableRecordsFailClosed(t *testing.T) {
	const (
		in      = `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`
		out     = `{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`
		bad     = `{"workspace_id":"w","ai_training_opt_out":"yes","updated_by_role":"owner"}`
		deleted = `{"workspace_id":"w","deleted":true}`
	)
	optIn := func(role string) string {
		return `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"` + role + `"}`
	}
	tests := []struct {
		name  string
		lines []string
		want  pipeline.Reason
	}{
		{"an unreadable first record excludes the workspace", []string{bad}, pipeline.ReasonConsentUnreadable},
		{"an unreadable record after an opt-in excludes the workspace", []string{in, bad}, pipeline.ReasonConsentUnreadable},
		{"an editor's opt-in after an unreadable record is ignored", []string{bad, optIn("editor")}, pipeline.ReasonConsentUnreadable},
		{"an admin's opt-in after an unreadable record counts", []string{in, bad, optIn("admin")}, pipeline.ReasonNone},
		{"an owner's opt-in after an unreadable first record counts", []string{bad, optIn("owner")}, pipeline.ReasonNone},
		{"a readable opt-out after an unreadable record is an opt-out", []string{bad, out}, pipeline.ReasonOptedOut},
		{"an unreadable record does not undo a deletion", []string{deleted, bad, optIn("owner")}, pipeline.ReasonWorkspaceDeleted},
		{"a deletion after an unreadable record is a deletion", []string{bad, deleted}, pipeline.ReasonWorkspaceDeleted},
		{"a duplicate opt-out key does not read as its last value", []string{`{"workspace_id":"w","ai_training_opt_out":true,"ai_training_opt_out":false,"updated_by_role":"owner"}`}, pipeline.ReasonConsentUnreadable},
		{"the second object on a line is not dropped", []string{in + `{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`}, pipeline.ReasonConsentUnreadable},
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

func TestAtPublishWithdrawsAnUnreadableWorkspace(t *testing.T) {
	s := load(t, DefaultConfig(), `{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`)
	if err := s.ApplyValue([]byte("w"), []byte(`{"workspace_id":"w","ai_training_opt_out":"true"}`), "settings@7"); err != nil {
		t.Fatal(err)
	}
	r, id := s.AtPublish(key.Pseudonymizer().Of([]byte("w")))
	if r != pipeline.ReasonConsentUnreadableBeforePublish || id != "w" {
		t.Errorf("AtPublish = %q, %q; want %q, w", r, id, pipeline.ReasonConsentUnreadableBeforePublish)
	}
}

func TestUnattributableRecords(t *testing.T) {
	lines := strings.Join([]string{
		`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}`,
		`{"workspace_id":17,"ai_training_opt_out":true}`,
	}, "\n")
	t.Run("by default the load stops and names the line and the fix", func(t *testing.T) {
		s, _ := New(DefaultConfig(), key)
		err := s.Load(strings.NewReader(lines), "settings.ndjson")
		var ue *UnattributableError
		if !errors.As(err, &ue) || ue.Position != "settings.ndjson:2" {
			t.Fatalf("Load = %v, want an UnattributableError at settings.ndjson:2", err)
		}
		for _, want := range []string{"settings.ndjson:2", "names no workspace", "consent.unattributable: skip"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if cerr := s.CaughtUp(context.Background()); !errors.As(cerr, &ue) {
			t.Errorf("CaughtUp = %v, want the store to stay failed", cerr)
		}
	})
	t.Run("with skip the record is remembered and the load goes on", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Unattributable = UnattributableSkip
		s, _ := New(cfg, key)
		if err := s.Load(strings.NewReader(lines+"\n"+`{"workspace_id":"v","ai_training_opt_out":false,"updated_by_role":"owner"}`), "settings.ndjson"); err != nil {
			t.Fatal(err)
		}
		un := s.Unattributable()
		if len(un) != 1 || un[0].Position != "settings.ndjson:2" || len(un[0].Workspaces) != 0 {
			t.Errorf("Unattributable = %+v, want line 2", un)
		}
		if got := check(s, "v"); got != pipeline.ReasonNone {
			t.Errorf("a later record was not applied: Check(v) = %q", got)
		}
		if err := s.CaughtUp(context.Background()); err != nil {
			t.Errorf("CaughtUp = %v", err)
		}
		if st := s.Stats(); st.Unattributable != 1 || st.Malformed != 1 {
			t.Errorf("Stats = %+v, want one unattributable", st)
		}
	})
	t.Run("after a caught-up follower the failed store still fails", func(t *testing.T) {
		s, _ := New(DefaultConfig(), key)
		s.SetCaughtUp(func(context.Context) error { return nil })
		if err := s.ApplyValue(nil, []byte(`{"ai_training_opt_out":true}`), "settings@3"); err == nil {
			t.Fatal("ApplyValue = nil, want an error")
		}
		if err := s.CaughtUp(context.Background()); err == nil || !strings.Contains(err.Error(), "settings@3") {
			t.Errorf("CaughtUp = %v, want the unattributable record's error", err)
		}
	})
}

// FuzzRead checks the strict settings reader against encoding/json.
//
// Invariants, for any key and value:
//   - Read never panics, and a record is either readable (Err nil) or not;
//   - a readable record is valid JSON, has no duplicate key at any depth
//     (exact or differing only in case), decodes with encoding/json into
//     exactly the same Record, and names exactly its workspace_id;
//   - a value with a duplicate key, or whose known fields encoding/json
//     rejects for their type, is unreadable;
//   - an unreadable record's workspaces are non-empty strings without
//     repeats, and include the key when the key is valid UTF-8;
//   - Scan over the value as one line reads the same as Read with no key.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		`{"workspace_id":"w","ai_training_opt_out":true,"deleted":false,"updated_at":"2026-11-01T00:00:00Z","updated_by_role":"owner"}`,
		`{"workspace_id":"w","deleted":true}`,
		`{"workspace_id":"w","ai_training_opt_out":"true","updated_by_role":"owner"}`,
		`{"workspace_id":"w","ai_training_opt_out":true,"ai_training_opt_out":false,"updated_by_role":"owner"}`,
		`{"workspace_id":"w","ai_training_opt_out":false,"updated_by_role":"owner"}{"workspace_id":"w","ai_training_opt_out":true}`,
		`{"workspace_id":"w","updated_at":1,"ai_training_opt_out":true,"updated_by_role":"owner"}`,
		`{"Workspace_ID":"v","workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"admin"}`,
		`{"workspace_id":"w","x":{"a":[1,{"b":2,"b":3}]},"ai_training_opt_out":false,"updated_by_role":"editor"}`,
	} {
		f.Add([]byte(nil), []byte(s))
	}
	f.Add([]byte("w"), []byte(`{"ai_training_opt_out":"yes"}`))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		rd := Read(key, value)
		if rd.Err == nil {
			if !json.Valid(value) {
				t.Fatalf("readable but not valid JSON: %q", value)
			}
			if dup := duplicateKey(value); dup != "" {
				t.Fatalf("readable with the duplicate key %q: %q", dup, value)
			}
			var std Record
			if err := json.Unmarshal(value, &std); err != nil {
				t.Fatalf("readable, but encoding/json fails: %v: %q", err, value)
			}
			if diff := cmp.Diff(std, rd.Record); diff != "" {
				t.Fatalf("Read and encoding/json differ on %q (-json +Read):\n%s", value, diff)
			}
			if !cmp.Equal(rd.Workspaces, []string{rd.Record.WorkspaceID}) {
				t.Fatalf("Workspaces = %q, want the record's", rd.Workspaces)
			}
		} else {
			seen := map[string]bool{}
			for _, id := range rd.Workspaces {
				if id == "" || seen[id] {
					t.Fatalf("Workspaces = %q: empty or repeated", rd.Workspaces)
				}
				seen[id] = true
			}
			if len(key) > 0 && utf8Valid(key) && (len(rd.Workspaces) == 0 || rd.Workspaces[0] != string(key)) {
				t.Fatalf("Workspaces = %q, want the key %q first", rd.Workspaces, key)
			}
		}
		if json.Valid(value) {
			if duplicateKey(value) != "" && rd.Err == nil {
				t.Fatalf("a duplicate key was accepted: %q", value)
			}
			var typed struct {
				WorkspaceID *string `json:"workspace_id"`
				OptOut      *bool   `json:"ai_training_opt_out"`
				Deleted     *bool   `json:"deleted"`
				UpdatedAt   *string `json:"updated_at"`
				Role        *string `json:"updated_by_role"`
			}
			var ute *json.UnmarshalTypeError
			if err := json.Unmarshal(value, &typed); errors.As(err, &ute) && rd.Err == nil {
				t.Fatalf("a wrong type was accepted (%v): %q", err, value)
			}
		}
		if len(key) == 0 && !bytes.ContainsAny(value, "\n\r") && len(bytes.TrimSpace(value)) > 0 && !bytes.HasPrefix(value, []byte("\ufeff")) {
			var got *Reading
			if err := Scan(bytes.NewReader(value), func(_ int, r Reading) error { got = &r; return nil }); err != nil {
				t.Fatal(err)
			}
			if got == nil || (got.Err == nil) != (rd.Err == nil) || !cmp.Equal(got.Workspaces, rd.Workspaces) {
				t.Fatalf("Scan read %q differently from Read", value)
			}
		}
	})
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

// duplicateKey returns a key that appears twice in one object of value
// (exact match), or "". value must be valid JSON.
func duplicateKey(value []byte) string {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	type frame struct {
		obj, wantKey bool
		seen         map[string]bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF || err != nil {
			return ""
		}
		n := len(stack)
		if s, ok := tok.(string); ok && n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			if stack[n-1].seen[s] {
				return s
			}
			stack[n-1].seen[s] = true
			stack[n-1].wantKey = false
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, frame{obj: true, wantKey: true, seen: map[string]bool{}})
				continue
			case '[':
				stack = append(stack, frame{})
				continue
			}
			stack = stack[:n-1]
			n--
		}
		if n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
	}
}
