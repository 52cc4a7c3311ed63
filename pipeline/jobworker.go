package pipeline

import (
	"context"
	"fmt"
	"slices"
)

// jobWorker is what a worker of a job of several instances (stage 1) has
// beyond a worker of one instance.
type jobWorker struct {
	closes CloseSink
	// fence fails once the group has given the partition to another member.
	fence func(ctx context.Context) error
	// committed is the checkpoint the group's committed offset named when
	// the partition was assigned; gen is the generation.
	committed string
	gen       int32
	// checkpoint is the newest checkpoint committed, named in close records.
	checkpoint string
	// published remembers the dataset windows known to be published.
	published map[publishedKey]bool
}

type publishedKey struct {
	dataset string
	start   int64
}

// sendCloses writes the partials of the windows just closed as blobs and
// sends a close record per dataset. It runs after the checkpoint that
// holds the windows was committed, so a record never names a state that a
// takeover would not restore; a crash before it sends them again
// (sendAgain).
func (w *worker) sendCloses(ctx context.Context, closed []*openWindow) error {
	recs := make([]CloseRecord, len(w.st.Aggregators))
	acct := w.snapshot()
	for i, agg := range w.st.Aggregators {
		recs[i] = CloseRecord{Dataset: agg.Spec().Name, Partition: w.id(), ClosedEnd: w.closedEnd, Acct: acct,
			Head: w.chain.Head(), Checkpoint: w.job.checkpoint}
	}
	for _, ow := range closed {
		for i, p := range ow.partials {
			if p == nil {
				continue
			}
			cw, err := w.st.Checkpoints.putPartial(ctx, w.id(), p)
			if err != nil {
				return fmt.Errorf("partition %s: %w", w.id(), err)
			}
			recs[i].Windows = append(recs[i].Windows, cw)
		}
	}
	if err := w.job.closes.Send(ctx, recs); err != nil {
		return fmt.Errorf("partition %s: sending close records: %w", w.id(), err)
	}
	return nil
}

// sendAgain sends the close records of the windows the checkpoint holds as
// handed over but not yet published: the takeover or restart may have
// come between the checkpoint's commit and its close records.
func (w *worker) sendAgain(ctx context.Context) error {
	if w.job.committed == "" {
		return nil // a partition without state has sent nothing
	}
	if w.job.checkpoint == "" {
		w.job.checkpoint = w.job.committed
	}
	if err := w.job.fence(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	if err := w.dropPublished(); err != nil {
		return err
	}
	closed := make([]*openWindow, len(w.handed))
	for i := range w.handed {
		ow, err := w.handed[i].restore(nil)
		if err != nil {
			return damaged("partition %s: %v", w.id(), err)
		}
		closed[i] = ow
	}
	return w.sendCloses(ctx, closed)
}

// dropPublished forgets the handed windows whose every dataset with data
// is published.
func (w *worker) dropPublished() error {
	var err error
	w.handed = slices.DeleteFunc(w.handed, func(ws windowSnap) bool {
		if err != nil {
			return false
		}
		for i, b := range ws.partials {
			if len(b) == 0 {
				continue
			}
			k := publishedKey{w.st.Aggregators[i].Spec().Name, ws.W.Start}
			if w.job.published[k] {
				continue
			}
			var done bool
			if done, err = w.st.Datasets.Published(k.dataset, ws.W); err != nil || !done {
				return false
			}
			w.job.published[k] = true
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("partition %s: %w", w.id(), err)
	}
	return nil
}

// healChain answers a chain commit refused because the segment is there
// already. If the group has given the partition to another member, this
// worker is the stale writer: fenced. Otherwise the segment is a fenced
// former owner's, written between its check and its write: it goes (with
// a rollback line in the anchor log), and the commit is made again.
func (w *worker) healChain(ctx context.Context, acct *PartitionAccounting, cause error) error {
	if err := w.job.fence(ctx); err != nil {
		return fmt.Errorf("%w: %w (%w)", ErrFenced, err, cause)
	}
	h, ok := w.chain.(chainHealer)
	if !ok {
		return fmt.Errorf("exclusion log: %w", cause)
	}
	if err := h.DropForeign(ctx, w.chain.Seq()+1); err != nil {
		return fmt.Errorf("exclusion log: %w", err)
	}
	if _, err := w.chain.Commit(ctx, acct); err != nil {
		return fmt.Errorf("exclusion log: %w", err)
	}
	return nil
}
