package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// publishedSinks is memSinks whose output already holds some windows.
type publishedSinks struct {
	*memSinks
	done map[Window]bool
	asks int
}

func (s *publishedSinks) Published(_ string, w Window) (bool, error) {
	s.asks++
	return s.done[w], nil
}

// TestAPublishedWindowIsNeverCommittedAgain: the publisher asks the dataset
// sink before every commit, and a window its output already holds is not
// committed a second time — a second version of a window, without a
// workspace that left in between, would let anyone subtract the two.
func TestAPublishedWindowIsNeverCommittedAgain(t *testing.T) {
	first := Window{Start: t0.UnixMicro(), End: t0.Add(day).UnixMicro()}
	third := Window{Start: t0.Add(2 * day).UnixMicro(), End: t0.Add(3 * day).UnixMicro()}
	src := memSource{"p": {
		ev("campaign.metrics", "1", "w", t0.Add(time.Hour)),
		ev("campaign.metrics", "2", "w", t0.Add(2*day+time.Hour)),
	}}
	sinks := &publishedSinks{memSinks: &memSinks{chains: map[string]*memChain{}}, done: map[Window]bool{first: true}}
	st := Stages{Source: src, NewDecoder: func() Decoder { return fakeDecoder{} }, Consent: &fakeConsent{},
		Gates: []Gate{fakeAgeGate{}}, Aggregators: []Aggregator{fakeAgg{}}, Privacy: fakePrivacy{},
		Datasets: sinks, Exclusions: sinks, DeadLetters: sinks}
	if _, err := Run(context.Background(), DefaultConfig(), st, WithClock(func() time.Time { return t0.Add(30 * day) })); err != nil {
		t.Fatal(err)
	}
	var committed []Window
	for _, o := range sinks.outs {
		committed = append(committed, o.Window)
	}
	if diff := cmp.Diff([]Window{third}, committed); diff != "" {
		t.Errorf("committed windows (-want +got):\n%s", diff)
	}
	if sinks.asks < 2 {
		t.Errorf("the publisher asked the sink %d times, want once per window at least", sinks.asks)
	}
}

// TestTheLateBoundaryIsTheCloseBoundary pins both sides of lateness: a
// window [s, e) closes when the watermark (newest event time less
// max_out_of_orderness, 10m) reaches e + allowed_lateness (1h). At exactly
// that watermark the window's last microsecond is late and the next
// window's first is not; one microsecond earlier nothing is late.
func TestTheLateBoundaryIsTheCloseBoundary(t *testing.T) {
	closing := t0.Add(day + time.Hour + 10*time.Minute) // watermark = day 1 + 1h
	lastOfDay0 := t0.Add(day - time.Microsecond)
	tests := []struct {
		name   string
		newest time.Time
		want   []string
	}{
		{"at the close bound the window's last microsecond is late", closing, []string{"last late_event"}},
		{"a microsecond before it nothing is late", closing.Add(-time.Microsecond), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := memSource{"p": {
				ev("campaign.metrics", "0", "w", t0.Add(time.Hour)),
				evMicro("campaign.metrics", "newest", "w", tt.newest),
				evMicro("campaign.metrics", "last", "w", lastOfDay0),
				ev("campaign.metrics", "next", "w", t0.Add(day)),
			}}
			r := runEngine(t, src, nil)
			if diff := cmp.Diff(tt.want, reasons(r.sinks.chains["p[0]"])); diff != "" {
				t.Errorf("exclusions (-want +got):\n%s", diff)
			}
		})
	}
}

// evMicro is ev with the event time to the microsecond.
func evMicro(typ, id, ws string, at time.Time) string {
	return `{"event_type":"` + typ + `","event_id":"` + id + `","workspace_id":"` + ws + `","occurred_at":"` + at.Format(time.RFC3339Nano) + `","age":0}`
}
