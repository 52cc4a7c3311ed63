package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// cannotResume is a source that cannot start a partition anywhere but at
// its beginning, and says so.
type cannotResume struct{ memSource }

func (s cannotResume) Open(ctx context.Context, resume Resume) ([]PartitionReader, error) {
	for name := range s.memSource {
		if next, ok := resume(PartitionID{Source: name}); ok && next > 0 {
			return nil, fmt.Errorf("partition %s: %w", name, ErrCannotResume)
		}
	}
	return s.memSource.Open(ctx, nil)
}

// ignoresResume is a source that opens its partitions at their beginning
// without asking where to resume them.
type ignoresResume struct{ memSource }

func (s ignoresResume) Open(ctx context.Context, _ Resume) ([]PartitionReader, error) {
	return s.memSource.Open(ctx, nil)
}

// TestASourceThatCannotResumeIsRefusedWithRestoredState: a run with
// checkpointed state refuses to start on a source that cannot open its
// partitions at the checkpointed positions, naming the problem and the fix,
// rather than reading them again from the start with the restored state. The
// same source runs without checkpointed state, and a source that resumes
// runs with it.
func TestASourceThatCannotResumeIsRefusedWithRestoredState(t *testing.T) {
	lines := memSource{"p": {
		ev("campaign.metrics", "1", "w", t0.Add(time.Hour)),
		ev("campaign.metrics", "2", "w", t0.Add(2*time.Hour)),
		ev("campaign.metrics", "3", "w", t0.Add(3*time.Hour)),
	}}
	now := WithClock(func() time.Time { return t0.Add(30 * day) })
	run := func(src Source, ckpt *Checkpoints, sinks *memSinks) error {
		st := Stages{Source: src, NewDecoder: func() Decoder { return fakeDecoder{} }, Consent: &fakeConsent{},
			Gates: []Gate{fakeAgeGate{}}, Aggregators: []Aggregator{fakeAgg{}}, Privacy: fakePrivacy{},
			Datasets: sinks, Exclusions: sinks, DeadLetters: sinks, Checkpoints: ckpt}
		_, err := Run(context.Background(), DefaultConfig(), st, now)
		return err
	}
	newCkpt := func() *Checkpoints {
		ckpt, err := NewCheckpoints(context.Background(), newMemStore())
		if err != nil {
			t.Fatal(err)
		}
		return ckpt
	}
	// restored returns checkpoints a first run left, and its sinks.
	restored := func() (*Checkpoints, *memSinks) {
		ckpt, sinks := newCkpt(), &memSinks{chains: map[string]*memChain{}}
		if err := run(lines, ckpt, sinks); err != nil {
			t.Fatalf("first run: %v", err)
		}
		return ckpt, sinks
	}
	for _, tt := range []struct {
		name string
		src  Source
	}{
		{"a source that says it cannot resume", cannotResume{lines}},
		{"a source that opens its partitions without asking where to resume", ignoresResume{lines}},
	} {
		t.Run(tt.name+" is refused with restored state", func(t *testing.T) {
			ckpt, sinks := restored()
			err := run(tt.src, ckpt, sinks)
			if !errors.Is(err, ErrCannotResume) {
				t.Fatalf("Run = %v, want an error wrapping ErrCannotResume", err)
			}
			for _, want := range []string{"source: ", "partition p", "would count its records twice", "start over with a new state_dir and a new out"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Run = %q, want it to say %q", err, want)
				}
			}
			if n := len(sinks.outs); n != 1 {
				t.Errorf("%d windows published in all, want the first run's 1 only", n)
			}
		})
		t.Run(tt.name+" runs without restored state", func(t *testing.T) {
			if err := run(tt.src, newCkpt(), &memSinks{chains: map[string]*memChain{}}); err != nil {
				t.Errorf("Run = %v", err)
			}
		})
	}
	t.Run("a source that resumes runs with restored state", func(t *testing.T) {
		ckpt, sinks := restored()
		if err := run(lines, ckpt, sinks); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// A checkpoint whose windows hold partials of another number of datasets
// than the run has cannot be matched to the run's datasets: the run is
// refused as damaged, naming both numbers, rather than misplacing them.
func TestACheckpointOfAnotherNumberOfDatasetsIsRefused(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	ckpt, err := NewCheckpoints(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	id := PartitionID{Source: "p"}
	w := Window{Start: t0.UnixMicro(), End: t0.Add(day).UnixMicro()}
	b, err := encodeCheckpoint(&checkpoint{Version: checkpointVersion, Partition: id, Seq: 1,
		Open: []windowSnap{{W: w, partials: [][]byte{nil, nil}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, ckpt.partition(id).checkpointKey(1), b, true); err != nil {
		t.Fatal(err)
	}
	sinks := &memSinks{chains: map[string]*memChain{}}
	st := Stages{Source: memSource{"p": {ev("campaign.metrics", "1", "w", t0.Add(time.Hour))}},
		NewDecoder: func() Decoder { return fakeDecoder{} }, Consent: &fakeConsent{},
		Gates: []Gate{fakeAgeGate{}}, Aggregators: []Aggregator{fakeAgg{}}, Privacy: fakePrivacy{},
		Datasets: sinks, Exclusions: sinks, DeadLetters: sinks, Checkpoints: ckpt}
	_, err = Run(ctx, DefaultConfig(), st, WithClock(func() time.Time { return t0.Add(30 * day) }))
	if err == nil || !strings.Contains(err.Error(), "holds partials of 2 datasets, and this run has 1") || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("Run = %v, want the checkpoint refused as damaged, naming 2 datasets and 1", err)
	}
}
