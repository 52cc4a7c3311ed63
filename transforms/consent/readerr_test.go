package consent

import (
	"strings"
	"testing"
)

// TestWhatIsSaidOfAnUnreadableRecordNeverQuotesIt checks that what is said
// about a settings record that cannot be read (the reason Skipped keeps,
// which is logged) never quotes the record: its values, its keys and the
// characters encoding/json would quote are input data.
func TestWhatIsSaidOfAnUnreadableRecordNeverQuotesIt(t *testing.T) {
	tests := []struct {
		name, key, in string
	}{
		{"a number where a string belongs", "", `{"workspace_id":15551234567,"ai_training_opt_out":true,"updated_by_role":"owner"}`},
		{"a string where a boolean belongs", "", `{"workspace_id":"w","ai_training_opt_out":"jane_doe_ssn_123456789","updated_by_role":"owner"}`},
		{"a bare number", "", `15551234567`},
		{"free text", "", `jane_doe_ssn_123456789`},
		{"a record cut short", "", `{"workspace_id":"cr_748af4a635"`},
		{"an unknown key twice", "", `{"15551234567":1,"15551234567":2,"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`},
		{"a nested key twice", "", `{"x":{"jane_doe_ssn_123456789":1,"jane_doe_ssn_123456789":2},"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"owner"}`},
		{"an unknown role", "", `{"workspace_id":"w","ai_training_opt_out":true,"updated_by_role":"jane_doe_ssn_123456789"}`},
		{"a key that differs from the workspace id", "cr_748af4a635", `{"workspace_id":"15551234567","ai_training_opt_out":true,"updated_by_role":"owner"}`},
		{"a field in another case", "", `{"Workspace_ID":"15551234567","ai_training_opt_out":true,"updated_by_role":"owner"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := Read([]byte(tt.key), []byte(tt.in))
			if rd.Err == nil {
				t.Fatal("Read accepted the record")
			}
			s, err := New(DefaultConfig(), key)
			if err != nil {
				t.Fatal(err)
			}
			_ = s.ApplyReading(rd, "settings@7")
			said := rd.Err.Error()
			for _, sk := range s.Skipped() {
				said += " " + sk.Reason
			}
			for _, canary := range []string{"15551234567", "jane_doe", "cr_748af4a635", "'j'", "Workspace_ID"} {
				if strings.Contains(said, canary) {
					t.Errorf("what is said quotes the record: %s", said)
				}
			}
		})
	}
}
