package consent

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSkippedRecordsAreNotQuoted checks that what is said about a settings
// record that cannot be read (the error ApplyJSON returns, which is logged,
// and Skipped) never quotes the record.
func TestSkippedRecordsAreNotQuoted(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"a number where a string belongs", `{"workspace_id":15551234567,"ai_training_opt_out":true}`,
			"not a settings record: workspace_id has the wrong type (want string)"},
		{"a string where a boolean belongs", `{"workspace_id":"w","ai_training_opt_out":"jane_doe_ssn_123456789"}`,
			"not a settings record: ai_training_opt_out has the wrong type (want bool)"},
		{"a bare number", `15551234567`, "not a settings record: not a JSON object"},
		{"free text", `jane_doe_ssn_123456789`, "not a settings record: invalid JSON at byte 1"},
		{"a record cut short", `{"workspace_id":"cr_748af4a635"`, "not a settings record: truncated JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(DefaultConfig(), []byte("key"))
			if err != nil {
				t.Fatal(err)
			}
			err = s.ApplyJSON([]byte(tt.in), "settings@7")
			if err == nil {
				t.Fatal("ApplyJSON accepted the record")
			}
			if diff := cmp.Diff("consent: settings@7: "+tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			sk := s.Skipped()
			if len(sk) != 1 || sk[0].Reason != tt.want {
				t.Errorf("Skipped = %+v, want reason %q", sk, tt.want)
			}
			for _, canary := range []string{"15551234567", "jane_doe", "cr_748af4a635", "'j'"} {
				if strings.Contains(err.Error(), canary) {
					t.Errorf("the error quotes the record: %v", err)
				}
			}
		})
	}
}
