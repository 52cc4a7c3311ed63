package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// elsewhereSink refuses every commit as one another writer made first.
type elsewhereSink struct{ *memSinks }

func (elsewhereSink) Commit(context.Context, *WindowOutput) error {
	return fmt.Errorf("manifest exists: %w", ErrCommittedElsewhere)
}

func (elsewhereSink) Published(string, Window) (bool, error) { return false, nil }

// TestAWindowAnotherWriterCommittedIsRecordedNotAFailure: when the sink
// says another writer committed a window first, the run goes on and ends
// well, and its summary names the window.
func TestAWindowAnotherWriterCommittedIsRecordedNotAFailure(t *testing.T) {
	sinks := &memSinks{chains: map[string]*memChain{}}
	sink := elsewhereSink{sinks}
	st := Stages{Source: memSource{"p": {ev("campaign.metrics", "e1", "ok", t0.Add(time.Hour))}},
		NewDecoder: func() Decoder { return fakeDecoder{} }, Consent: &fakeConsent{},
		Gates: []Gate{fakeAgeGate{}}, Aggregators: []Aggregator{fakeAgg{}}, Privacy: fakePrivacy{},
		Datasets: sink, Exclusions: sinks, DeadLetters: sinks}
	sum, err := Run(context.Background(), DefaultConfig(), st, WithClock(func() time.Time { return t0.Add(30 * day) }))
	if err != nil {
		t.Fatalf("a window another writer committed failed the run: %v", err)
	}
	want := []Window{{Start: t0.UnixMicro(), End: t0.Add(day).UnixMicro()}}
	var got []Window
	for _, w := range sum.CommittedElsewhere {
		got = append(got, w.Window)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("windows committed elsewhere (-want +got):\n%s", diff)
	}
	if len(sum.Windows) != 0 {
		t.Errorf("the run counts %d windows as its own", len(sum.Windows))
	}
}
