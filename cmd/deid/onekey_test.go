package main

import (
	"path/filepath"
	"testing"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/transforms/consent"
)

// ingestedBeforeOptOut passes one workspace's events at ingest, as if its
// opt-out had arrived after them; everything else is the real consent store.
type ingestedBeforeOptOut struct {
	pipeline.Consent
	id string
}

func (c ingestedBeforeOptOut) Check(ev *pipeline.Event) pipeline.Reason {
	if string(ev.WorkspaceID) == c.id {
		return pipeline.ReasonNone
	}
	return c.Consent.Check(ev)
}

// TestTheConsentStoreWithdrawsWhatTheWorkersPseudonymized wires a run as
// deid run does and lets the real consent store, not a test double, decide
// at publication: a workspace that opted out after its events were ingested
// is withdrawn, which it can only be if the store's pseudonyms and the
// workers' come from the same key.
func TestTheConsentStoreWithdrawsWhatTheWorkersPseudonymized(t *testing.T) {
	withdrawn := withdrawnAtPublication(t, filepath.Join(t.TempDir(), "out"), "ws02", func(c pipeline.Consent, _ []byte) pipeline.Consent {
		store, ok := c.(*consent.Store)
		if !ok {
			t.Fatalf("the run's consent state is a %T, want the consent store", c)
		}
		must(t, store.ApplyValue(nil, []byte(`{"workspace_id":"ws02","ai_training_opt_out":true,"deleted":false,"updated_at":"2026-10-20T00:00:00Z","updated_by_role":"owner"}`), "test:1"))
		return ingestedBeforeOptOut{Consent: store, id: "ws02"}
	})
	// Of ws02's 9 lines, 4 pass every gate; the others are duplicates,
	// late or malformed.
	if withdrawn != 4 {
		t.Fatalf("the consent store withdrew %d events of ws02 at publication, want the 4 the workers aggregated", withdrawn)
	}
}
