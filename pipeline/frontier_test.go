package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestEventsOfWindowsEarlierRunsPublishedAreLate: with Stages.PublishedEnd
// at the end of the second day, a partition new to the output excludes the
// events of the first two days as late_event, and publishes the third day
// alone; the partition's accounting adds up.
func TestEventsOfWindowsEarlierRunsPublishedAreLate(t *testing.T) {
	src := memSource{"new": {
		ev("campaign.metrics", "d1", "ok", t0.Add(time.Hour)),
		ev("campaign.metrics", "d2", "ok", t0.Add(day+time.Hour)),
		ev("campaign.metrics", "d3", "ok", t0.Add(2*day+time.Hour)),
		ev("campaign.metrics", "d2-again", "ok", t0.Add(day+2*time.Hour)),
	}}
	sinks := &memSinks{chains: map[string]*memChain{}}
	st := Stages{Source: src, NewDecoder: func() Decoder { return fakeDecoder{} }, Consent: &fakeConsent{},
		Gates: []Gate{fakeAgeGate{}}, Aggregators: []Aggregator{fakeAgg{}}, Privacy: fakePrivacy{},
		Datasets: sinks, Exclusions: sinks, DeadLetters: sinks,
		PublishedEnd: t0.Add(2 * day).UnixMicro()}
	sum, err := Run(context.Background(), DefaultConfig(), st, WithClock(func() time.Time { return t0.Add(30 * day) }))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"d1 late_event", "d2 late_event", "d2-again late_event"}
	if diff := cmp.Diff(want, reasons(sinks.chains["new[0]"])); diff != "" {
		t.Errorf("exclusions (-want +got):\n%s", diff)
	}
	var published []Window
	for _, o := range sinks.outs {
		published = append(published, o.Window)
	}
	third := Window{Start: t0.Add(2 * day).UnixMicro(), End: t0.Add(3 * day).UnixMicro()}
	if diff := cmp.Diff([]Window{third}, published); diff != "" {
		t.Errorf("published windows (-want +got):\n%s", diff)
	}
	if a := sum.Partitions[0]; !a.Balanced() || a.Contributed != 1 {
		t.Errorf("accounting %+v: want 1 contributed, balanced", a)
	}
}

// usageDecoder is fakeDecoder with "usage.interaction" events.
type usageDecoder struct{ fakeDecoder }

func (d usageDecoder) Decode(b []byte, e *Event) error {
	if err := d.fakeDecoder.Decode(b, e); err != nil {
		return err
	}
	if string(e.EventType) == "usage.interaction" {
		e.Kind = KindUsageInteraction
	}
	return nil
}

var usageSpec = &DatasetSpec{Name: "usage_patterns", Kinds: []EventKind{KindUsageInteraction}, Dimensions: []Dimension{{Name: "d"}}}

type usageAgg struct{ fakeAgg }

func (usageAgg) Spec() *DatasetSpec { return usageSpec }

// halfSink commits campaign_metrics and fails usage_patterns while failing
// is set, as a crash between the two datasets' commits of one window would.
type halfSink struct {
	*memSinks
	failing   bool
	published map[string]bool
}

func (h *halfSink) Commit(ctx context.Context, out *WindowOutput) error {
	if h.failing && out.Spec.Name == usageSpec.Name {
		return context.Canceled
	}
	h.published[out.Spec.Name] = true
	return h.memSinks.Commit(ctx, out)
}

func (h *halfSink) Published(dataset string, _ Window) (bool, error) {
	return h.published[dataset], nil
}

// TestAWindowHalfCommittedBeforeACrashIsCompletedAfterIt: a run that stops
// after committing one dataset of a window and before the other leaves the
// window in its checkpoint; the next run, whose published frontier (from the
// manifests) covers that window, still publishes the other dataset of it
// from the checkpoint rather than dropping its contributions.
func TestAWindowHalfCommittedBeforeACrashIsCompletedAfterIt(t *testing.T) {
	lines := []string{
		ev("campaign.metrics", "c1", "ok", t0.Add(time.Hour)),
		ev("usage.interaction", "u1", "ok", t0.Add(2*time.Hour)),
	}
	ckpt, err := NewCheckpoints(context.Background(), newMemStore())
	if err != nil {
		t.Fatal(err)
	}
	sink := &halfSink{memSinks: &memSinks{chains: map[string]*memChain{}}, failing: true, published: map[string]bool{}}
	stages := func(end int64) Stages {
		return Stages{Source: memSource{"p": lines}, NewDecoder: func() Decoder { return usageDecoder{} }, Consent: &fakeConsent{},
			Gates: []Gate{fakeAgeGate{}}, Aggregators: []Aggregator{fakeAgg{}, usageAgg{}}, Privacy: fakePrivacy{},
			Datasets: sink, Exclusions: sink, DeadLetters: sink, Checkpoints: ckpt, PublishedEnd: end}
	}
	now := WithClock(func() time.Time { return t0.Add(30 * day) })
	if _, err := Run(context.Background(), DefaultConfig(), stages(0), now); err == nil {
		t.Fatal("the first run did not fail")
	}
	if !sink.published["campaign_metrics"] || sink.published["usage_patterns"] {
		t.Fatalf("after the first run: published %v, want campaign_metrics only", sink.published)
	}
	sink.failing = false
	if _, err := Run(context.Background(), DefaultConfig(), stages(t0.Add(day).UnixMicro()), now); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range sink.outs {
		got = append(got, o.Spec.Name)
	}
	if diff := cmp.Diff([]string{"campaign_metrics", "usage_patterns"}, got); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
}
