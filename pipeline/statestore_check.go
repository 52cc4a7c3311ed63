package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// StateStoreCase is one case of the checkpoint store's conformance suite:
// the checkpoint and key-log code run over a StateStore, with what it must
// find afterwards. Run gets an empty store and returns the first broken
// promise.
type StateStoreCase struct {
	Name string
	Run  func(ctx context.Context, store StateStore) error
}

// StateStoreCases is the conformance suite an adapter of a storage to
// StateStore passes (cmd/deid runs it over a directory and over S3): the
// checkpoint and key-log round trip, and a checkpoint interrupted half-way.
func StateStoreCases() []StateStoreCase {
	return []StateStoreCase{
		{"a checkpoint brings back its partition's state and exactly the dedup keys it counts", caseRoundTrip},
		{"a checkpoint interrupted half-way resumes from the last complete one", caseInterrupted},
		{"a checkpoint is never overwritten: a second writer of the same one is refused", caseSecondWriter},
		{"a checkpoint whose dedup keys are missing is refused as damaged", caseMissingRun},
		{"a fenced-off process writes no checkpoint", caseFence},
		{"the publish intent is replaced whole", caseIntent},
		{"checkpoints of format 4 are refused by name", caseLegacy},
	}
}

var caseID = PartitionID{Source: "events-00.ndjson", Partition: 3}

// caseKey is the i-th key of a case.
func caseKey(i int) dedupKey {
	var k dedupKey
	binary.BigEndian.PutUint64(k[8:], uint64(i)*0x9e3779b97f4a7c15)
	k[0] = 1
	return k
}

// caseKeys adds keys [from, to) to l, flushing every step keys.
func caseKeys(ctx context.Context, l *keyLog, from, to, step int) error {
	for i := from; i < to; i++ {
		l.add(caseKey(i))
		if (i+1-from)%step == 0 {
			if _, err := l.flush(ctx); err != nil {
				return err
			}
		}
	}
	_, err := l.flush(ctx)
	return err
}

// wantKeys returns keys [from, to), end to end.
func wantKeys(from, to int) []byte {
	var b []byte
	for i := from; i < to; i++ {
		k := caseKey(i)
		b = append(b, k[:]...)
	}
	return b
}

// caseCheckpoint saves a checkpoint of one open window with l's keys.
func caseCheckpoint(ctx context.Context, p *partitionState, l *keyLog, next int64) error {
	n, err := l.flush(ctx)
	if err != nil {
		return err
	}
	cp := &checkpoint{Partition: p.id, Next: next, MaxSeen: 5, ClosedEnd: noTime,
		Acct: PartitionAccounting{Partition: p.id.String(), Read: next, Excluded: map[string]int64{"duplicate": 2}},
		Open: []windowSnap{{W: Window{Start: l.start, End: l.start + 10}, Keys: n, Runs: slices.Clone(l.runs)}}}
	_, _, err = p.save(ctx, cp)
	return err
}

// caseLoad opens the store afresh, as a restarted run does, and returns
// the partition's checkpoint with its window's keys.
func caseLoad(ctx context.Context, store StateStore) (*checkpoint, []byte, error) {
	s, err := NewCheckpoints(ctx, store)
	if err != nil {
		return nil, nil, err
	}
	p := s.partition(caseID)
	cp, ok, err := p.load(ctx)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, errors.New("no checkpoint found")
	}
	if len(cp.Open) != 1 {
		return nil, nil, fmt.Errorf("%d open windows came back, want 1", len(cp.Open))
	}
	keys, err := p.readKeys(ctx, &cp.Open[0])
	return cp, keys, err
}

// sameKeys compares keys read back with keys [0, n).
func sameKeys(got []byte, n int) error {
	if !bytes.Equal(got, wantKeys(0, n)) {
		return fmt.Errorf("%d dedup keys came back, want the %d the checkpoint counts, in order", len(got)/len(dedupKey{}), n)
	}
	return nil
}

func caseRoundTrip(ctx context.Context, store StateStore) error {
	s, err := NewCheckpoints(ctx, store)
	if err != nil {
		return err
	}
	p := s.partition(caseID)
	if _, ok, err := p.load(ctx); err != nil || ok {
		return fmt.Errorf("an empty store: checkpoint found %v, %v", ok, err)
	}
	l := p.newKeyLog(86_400_000_000)
	// Many checkpoints, so that runs are merged, some keys per run.
	const perCheckpoint, checkpoints = 37, 3 * keyRunFanout * keyRunFanout
	for c := range checkpoints {
		if err := caseKeys(ctx, l, c*perCheckpoint, (c+1)*perCheckpoint, perCheckpoint); err != nil {
			return err
		}
		if err := caseCheckpoint(ctx, p, l, int64(c+1)); err != nil {
			return err
		}
	}
	total := checkpoints * perCheckpoint
	// Another partition's checkpoint, which this one's restart leaves alone.
	other := s.partition(PartitionID{Source: caseID.Source, Partition: caseID.Partition * 10})
	if _, _, err := other.save(ctx, &checkpoint{Partition: other.id, Next: 1}); err != nil {
		return err
	}
	// Keys added after the last checkpoint, even written as a run, are not
	// its: a restart reads the input again from the checkpoint's position.
	if err := caseKeys(ctx, l, total, total+100, 50); err != nil {
		return err
	}
	cp, keys, err := caseLoad(ctx, store)
	if err != nil {
		return err
	}
	if cp.Next != checkpoints || cp.Seq != checkpoints || cp.Acct.Excluded["duplicate"] != 2 || cp.Partition != caseID {
		return fmt.Errorf("checkpoint %d came back with next %d, partition %s, accounting %v; want checkpoint %d at %d",
			cp.Seq, cp.Next, cp.Partition, cp.Acct, checkpoints, checkpoints)
	}
	if err := sameKeys(keys, total); err != nil {
		return err
	}
	// Merged: a window checkpointed 192 times holds a handful of runs.
	if n := len(cp.Open[0].Runs); n > 2*(keyRunFanout-1) {
		return fmt.Errorf("the window holds %d runs after %d checkpoints; runs are not merged", n, checkpoints)
	}
	// What the restart does not need is gone: older checkpoints, merged
	// runs, the runs written after the checkpoint.
	left, err := store.List(ctx, p.prefix)
	if err != nil {
		return err
	}
	if want := 1 + len(cp.Open[0].Runs); len(left) != want {
		return fmt.Errorf("the partition holds %d objects after the restart, want %d (the checkpoint and its runs): %v", len(left), want, left)
	}
	if cp, ok, err := other.load(ctx); err != nil || !ok || cp.Next != 1 {
		return fmt.Errorf("another partition's checkpoint after this one's restart: %v, %v; want it kept", ok, err)
	}
	// A window that closes takes its keys with it at the next checkpoint.
	p2 := s.partition(caseID)
	if _, _, err := p2.load(ctx); err != nil {
		return err
	}
	l2 := p2.resumeKeyLog(&cp.Open[0])
	l2.discard()
	if _, _, err := p2.save(ctx, &checkpoint{Partition: caseID, Next: 9999, ClosedEnd: l.start + 10}); err != nil {
		return err
	}
	if left, err = store.List(ctx, p.prefix); err != nil || len(left) != 1 {
		return fmt.Errorf("after the window closed the store holds %v (%v); want only the new checkpoint", left, err)
	}
	return nil
}

func caseInterrupted(ctx context.Context, store StateStore) error {
	s, err := NewCheckpoints(ctx, store)
	if err != nil {
		return err
	}
	p := s.partition(caseID)
	l := p.newKeyLog(0)
	// keyRunFanout-1 runs, checkpointed: the next run merges them.
	for c := range keyRunFanout - 1 {
		if err := caseKeys(ctx, l, c*10, (c+1)*10, 10); err != nil {
			return err
		}
		if err := caseCheckpoint(ctx, p, l, int64(c+1)); err != nil {
			return err
		}
	}
	n := (keyRunFanout - 1) * 10
	// The next checkpoint is interrupted after writing its runs (a merge
	// of the ones the last checkpoint names, and more) but not itself.
	if err := caseKeys(ctx, l, n, n+25, 10); err != nil {
		return err
	}
	cp, keys, err := caseLoad(ctx, store)
	if err != nil {
		return err
	}
	if cp.Seq != keyRunFanout-1 || cp.Next != keyRunFanout-1 {
		return fmt.Errorf("resumed from checkpoint %d at %d, want the last complete one, %d", cp.Seq, cp.Next, keyRunFanout-1)
	}
	if err := sameKeys(keys, n); err != nil {
		return err
	}
	// And the run after it goes on from there.
	p = (&Checkpoints{store: store}).partition(caseID)
	if _, _, err := p.load(ctx); err != nil {
		return err
	}
	l = p.resumeKeyLog(&cp.Open[0])
	if err := caseKeys(ctx, l, n, n+5, 5); err != nil {
		return err
	}
	if err := caseCheckpoint(ctx, p, l, 100); err != nil {
		return err
	}
	cp, keys, err = caseLoad(ctx, store)
	if err != nil {
		return err
	}
	if cp.Seq != keyRunFanout || cp.Next != 100 {
		return fmt.Errorf("after resuming, checkpoint %d at %d came back; want %d at 100", cp.Seq, cp.Next, keyRunFanout)
	}
	return sameKeys(keys, n+5)
}

func caseMissingRun(ctx context.Context, store StateStore) error {
	s, err := NewCheckpoints(ctx, store)
	if err != nil {
		return err
	}
	p := s.partition(caseID)
	l := p.newKeyLog(0)
	if err := caseKeys(ctx, l, 0, 30, 10); err != nil {
		return err
	}
	if err := caseCheckpoint(ctx, p, l, 1); err != nil {
		return err
	}
	if err := store.Delete(ctx, p.runKey(0, l.runs[1])); err != nil {
		return err
	}
	_, _, err = caseLoad(ctx, store)
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		return fmt.Errorf("a checkpoint with a run missing: %v; want it refused as damaged", err)
	}
	return nil
}

func caseFence(ctx context.Context, store StateStore) error {
	s, err := NewCheckpoints(ctx, store)
	if err != nil {
		return err
	}
	taken := errors.New("taken over")
	s.WithFence(func(context.Context) error { return taken })
	if _, _, err := s.partition(caseID).save(ctx, &checkpoint{Partition: caseID, Next: 1}); !errors.Is(err, taken) {
		return fmt.Errorf("a checkpoint past a failing fence: %v; want the fence's error", err)
	}
	if keys, err := store.List(ctx, checkpointsDir); err != nil || len(keys) != 0 {
		return fmt.Errorf("a fenced-off checkpoint left %v (%v); want nothing", keys, err)
	}
	return nil
}

func caseSecondWriter(ctx context.Context, store StateStore) error {
	s, err := NewCheckpoints(ctx, store)
	if err != nil {
		return err
	}
	a, b := s.partition(caseID), s.partition(caseID)
	if _, _, err := a.save(ctx, &checkpoint{Partition: caseID, Next: 1}); err != nil {
		return err
	}
	_, _, err = b.save(ctx, &checkpoint{Partition: caseID, Next: 2})
	if !errors.Is(err, ErrStateExists) {
		return fmt.Errorf("a second writer of checkpoint 1: %v; want it refused (ErrStateExists)", err)
	}
	cp, ok, err := s.partition(caseID).load(ctx)
	if err != nil || !ok || cp.Next != 1 {
		return fmt.Errorf("after the refused write the checkpoint reads %+v, %v, %v; want the first writer's", cp, ok, err)
	}
	return nil
}

func caseIntent(ctx context.Context, store StateStore) error {
	s, err := NewCheckpoints(ctx, store)
	if err != nil {
		return err
	}
	if _, ok, err := s.loadIntent(ctx); ok || err != nil {
		return fmt.Errorf("an empty store has an intent (%v, %v)", ok, err)
	}
	for i, d := range []string{"campaign_metrics_with_a_longer_name", "usage"} {
		if err := s.saveIntent(ctx, &publishIntent{Dataset: d, Window: Window{Start: int64(i), End: 10}, SeqBefore: i}); err != nil {
			return err
		}
	}
	in, ok, err := s.loadIntent(ctx)
	if err != nil || !ok || in.Dataset != "usage" || in.SeqBefore != 1 {
		return fmt.Errorf("the intent reads %+v, %v, %v; want the last one written", in, ok, err)
	}
	return nil
}

func caseLegacy(ctx context.Context, store StateStore) error {
	if err := store.Put(ctx, legacyStateDir+"events-00.ndjson%5B0%5D.ckpt", []byte("old"), false); err != nil {
		return err
	}
	_, err := NewCheckpoints(ctx, store)
	if err == nil || !strings.Contains(err.Error(), "format 4") {
		return fmt.Errorf("a store with format-4 checkpoints: %v; want a refusal naming format 4", err)
	}
	return nil
}

// KeyLogLoad drives the key log of one open window as a worker does, for
// benchmarks of a StateStore: checkpoints times, keysPerCheckpoint new dedup
// keys (spilled as runs when they pass keyLogSpill), then a checkpoint
// naming the window's runs (merged as keyRunFanout says). The store is
// used from its first checkpoint on; the partition's objects are left.
func KeyLogLoad(ctx context.Context, store StateStore, part string, keysPerCheckpoint, checkpoints int) error {
	s, err := NewCheckpoints(ctx, store)
	if err != nil {
		return err
	}
	p := s.partition(PartitionID{Source: part})
	l := p.newKeyLog(0)
	next := 0
	for c := range checkpoints {
		for range keysPerCheckpoint {
			l.add(caseKey(next))
			next++
			if l.full() {
				if _, err := l.flush(ctx); err != nil {
					return err
				}
			}
		}
		if err := caseCheckpoint(ctx, p, l, int64(c+1)); err != nil {
			return err
		}
	}
	return nil
}
