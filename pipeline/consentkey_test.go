package pipeline

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestWorkersPseudonymizeWithTheConsentKey holds the workers to the consent
// state's key: a consent state keyed with another key than the tests' usual
// one still withdraws exactly the workspaces it names at publication. Were
// the workers keyed by a second route, the withdrawal would match nothing
// and the opted-out workspace would be published.
func TestWorkersPseudonymizeWithTheConsentKey(t *testing.T) {
	src := memSource{"p": {
		ev("campaign.metrics", "1", "stays", t0.Add(time.Hour)),
		ev("campaign.metrics", "2", "leaves", t0.Add(time.Hour)),
	}}
	c := &fakeConsent{key: mustKey("another key"), publish: map[string]Reason{"leaves": ReasonOptedOutBeforePublish}}
	r := runEngine(t, src, c)
	got := reasons(r.sinks.chains[PublishChain])
	slices.Sort(got)
	if diff := cmp.Diff([]string{"opted_out_before_publish leaves 1"}, got); diff != "" {
		t.Errorf("withdrawals (-want +got):\n%s", diff)
	}
	if o := r.sinks.outs[0]; o.Acct.Withdrawn != 1 || o.Acct.Published != 1 {
		t.Errorf("accounting %+v: want 1 published + 1 withdrawn", o.Acct)
	}
}

// keylessConsent is a consent state without a pseudonym key.
type keylessConsent struct{ fakeConsent }

func (*keylessConsent) PseudonymKey() *PseudonymKey { return nil }

func TestARunWithoutAPseudonymKeyIsRefused(t *testing.T) {
	sinks := &memSinks{chains: map[string]*memChain{}}
	st := Stages{Source: memSource{"p": nil}, NewDecoder: func() Decoder { return fakeDecoder{} }, Consent: &keylessConsent{},
		Aggregators: []Aggregator{fakeAgg{}}, Privacy: fakePrivacy{}, Datasets: sinks, Exclusions: sinks, DeadLetters: sinks}
	_, err := Run(context.Background(), DefaultConfig(), st)
	if err == nil || !strings.Contains(err.Error(), "the consent state has no pseudonym key") {
		t.Errorf("Run: err = %v, want a refusal naming the missing pseudonym key", err)
	}
}

func TestAnEmptyPseudonymKeyIsRefused(t *testing.T) {
	if _, err := NewPseudonymKey(nil); err == nil {
		t.Error("NewPseudonymKey(nil) accepted an empty key")
	}
}
