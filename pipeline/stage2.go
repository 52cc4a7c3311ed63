package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.uber.org/zap"
)

// PublishStages are what stage 2 of a job of several instances needs
// (contract §13).
type PublishStages struct {
	// Feed is the partials topic, read as a member of the publisher group.
	Feed CloseFeed
	// InputPartitions lists every partition of the input topics from their
	// current metadata: a window publishes once each of them closed it.
	InputPartitions func(ctx context.Context) ([]PartitionID, error)
	// Lease blocks until this instance holds the publisher lease of the
	// job (one publisher at a time writes the publish exclusion chain). Its
	// fence fails once another instance has taken the lease over; release
	// gives it up.
	Lease       func(ctx context.Context) (fence func(context.Context) error, release func(), err error)
	Consent     Consent
	Aggregators []Aggregator
	Privacy     PrivacyGate
	Datasets    DatasetSink
	Exclusions  ExclusionLog
	// Checkpoints is the job's state store: partial blobs, the publish
	// intent, the mark of a finished bounded job.
	Checkpoints *Checkpoints
	// Bounded makes Publish return once every input partition has closed
	// every window (its input ended) and every window is published: a job
	// run with --stop-at-end. It then writes the job's done mark.
	Bounded bool
}

func (s *PublishStages) validate() error {
	var errs []error
	if s.Feed == nil || s.InputPartitions == nil || s.Lease == nil {
		errs = append(errs, errors.New("stage 2 needs the partials feed, the input topics' metadata and the publisher lease"))
	}
	if s.Consent == nil || s.Privacy == nil || s.Datasets == nil || s.Exclusions == nil || s.Checkpoints == nil || len(s.Aggregators) == 0 {
		errs = append(errs, errors.New("stage 2 needs consent, the privacy gate, the sinks, the state store and the datasets"))
	}
	return errors.Join(errs...)
}

// blobRef is a partition's partial of one pending window.
type blobRef struct {
	cw ClosedWindow
	// seq is the lineage of the checkpoint that covered the close.
	seq    int64
	offset int64
}

// s2part is what stage 2 knows of one input partition for one dataset.
type s2part struct {
	closedEnd int64
	acct      PartitionAccounting
	head      string
	// offset is the feed position of the partition's newest record.
	offset FeedPosition
}

type s2window struct {
	w    Window
	from map[PartitionID]blobRef
}

// s2dataset is stage 2's state of one dataset.
type s2dataset struct {
	idx     int
	name    string
	parts   map[PartitionID]*s2part
	pending map[int64]*s2window
	// published remembers windows found or made published.
	published map[int64]bool
}

// stage2 is one generation's publisher: it runs in one goroutine.
type stage2 struct {
	cfg      *Config
	st       *PublishStages
	o        *runOptions
	pub      *publisher
	fence    func(context.Context) error
	datasets map[string]*s2dataset
	order    []*s2dataset
	inputs   []PartitionID
}

// Publish runs stage 2 of a job of several instances: as a member of the
// publisher group, on each generation that assigns it the partials topic,
// it takes the publisher lease, gathers close records, and publishes each
// dataset window once every partition of the input topics has closed it,
// exactly as a single instance's publisher would (consent re-check,
// privacy gate, the publish exclusion chain, files, manifest). It runs
// until ctx is done (nil) or, Bounded, until the job is done.
func Publish(ctx context.Context, cfg Config, st PublishStages, opts ...Option) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := st.validate(); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	o := runOptions{now: time.Now, log: zap.NewNop(), stats: &Stats{}}
	for _, opt := range opts {
		opt(&o)
	}
	summary := &Summary{}
	for ctx.Err() == nil {
		gen, err := st.Feed.Assign(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return summary, nil
			}
			return summary, fmt.Errorf("stage 2: %w", err)
		}
		done, err := publishGeneration(ctx, &cfg, &st, &o, gen, summary)
		if err != nil {
			return summary, err
		}
		if done {
			return summary, nil
		}
	}
	return summary, nil
}

// publishGeneration works one generation of the publisher group; done
// reports a bounded job finished.
func publishGeneration(ctx context.Context, cfg *Config, st *PublishStages, o *runOptions, gen FeedGeneration, summary *Summary) (done bool, err error) {
	if len(gen.Partitions()) == 0 {
		select {
		case <-gen.Done():
		case <-ctx.Done():
		}
		return false, nil
	}
	genCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-gen.Done():
		case <-genCtx.Done():
		}
		cancel()
	}()
	// A failure because the generation ended (instances joined or left
	// the publisher group) or the run stopped is no failure: the next
	// generation's publisher starts over from the committed close records.
	defer func() {
		if err != nil && genCtx.Err() != nil {
			done, err = false, nil
		}
	}()
	fence, release, err := st.Lease(genCtx)
	if err != nil {
		if genCtx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("stage 2: publisher lease: %w", err)
	}
	defer release()
	o.log.Info("publishing: holding the publisher lease", zap.Int32s("partials_partitions", gen.Partitions()))
	chain, err := st.Exclusions.Chain(PublishChain)
	if err != nil {
		return false, fmt.Errorf("stage 2: exclusion log: %w", err)
	}
	stages := &Stages{Consent: st.Consent, Aggregators: st.Aggregators, Privacy: st.Privacy, Datasets: st.Datasets,
		Exclusions: st.Exclusions, Checkpoints: st.Checkpoints}
	var published atomicInt64
	published.Store(noTime)
	s := &stage2{cfg: cfg, st: st, o: o, fence: fence, datasets: map[string]*s2dataset{},
		pub: newPublisher(cfg, stages, chain, o.now, o.stats, summary, &published)}
	for i, agg := range st.Aggregators {
		d := &s2dataset{idx: i, name: agg.Spec().Name, parts: map[PartitionID]*s2part{}, pending: map[int64]*s2window{}, published: map[int64]bool{}}
		s.datasets[d.name] = d
		s.order = append(s.order, d)
	}
	if err := fence(genCtx); err != nil {
		return false, fmt.Errorf("stage 2: %w", err)
	}
	// A window whose commit a crash interrupted is rolled back first.
	if err := s.pub.recover(genCtx); err != nil {
		return false, fmt.Errorf("stage 2: %w", err)
	}
	for {
		rec, pos, err := gen.Next(genCtx)
		if err != nil {
			if genCtx.Err() != nil || errors.Is(err, ErrGenerationEnded) {
				return false, nil
			}
			return false, fmt.Errorf("stage 2: %w", err)
		}
		if err := s.add(genCtx, rec, pos); err != nil {
			return false, err
		}
		n, err := s.publishReady(genCtx)
		if err != nil {
			if genCtx.Err() != nil {
				return false, nil
			}
			return false, err
		}
		if n > 0 {
			if err := gen.Commit(genCtx, s.commitPoints()); err != nil && !errors.Is(err, ErrGenerationEnded) {
				return false, fmt.Errorf("stage 2: %w", err)
			}
		}
		s.gauge()
		if st.Bounded && s.finished() {
			if err := s.markDone(genCtx); err != nil {
				return false, err
			}
			return true, nil
		}
	}
}

// add takes one close record in. Of two records of one partition for one
// window, the newer lineage's counts (a takeover may close a window again
// after the previous owner committed it); the same lineage with another
// blob fails closed.
func (s *stage2) add(ctx context.Context, rec *CloseRecord, pos FeedPosition) error {
	d := s.datasets[rec.Dataset]
	if d == nil {
		return fmt.Errorf("stage 2: a close record at %d/%d is of dataset %q, which this configuration does not declare: run every instance of the job with the same configuration",
			pos.Partition, pos.Offset, rec.Dataset)
	}
	p := d.parts[rec.Partition]
	if p == nil {
		p = &s2part{closedEnd: noTime}
		d.parts[rec.Partition] = p
	}
	if rec.ClosedEnd >= p.closedEnd {
		p.closedEnd, p.acct, p.head = rec.ClosedEnd, rec.Acct, rec.Head
	}
	p.offset = pos
	seq := lineageSeq(rec.Checkpoint)
	for _, cw := range rec.Windows {
		if d.published[cw.Window.Start] {
			continue
		}
		pw := d.pending[cw.Window.Start]
		if pw == nil {
			done, err := s.st.Datasets.Published(d.name, cw.Window)
			if err != nil {
				return fmt.Errorf("stage 2: %s: %w", d.name, err)
			}
			if done {
				d.published[cw.Window.Start] = true
				continue
			}
			pw = &s2window{w: cw.Window, from: map[PartitionID]blobRef{}}
			d.pending[cw.Window.Start] = pw
		}
		old, ok := pw.from[rec.Partition]
		switch {
		case !ok || seq > old.seq:
			pw.from[rec.Partition] = blobRef{cw: cw, seq: seq, offset: pos.Offset}
		case seq == old.seq && cw.SHA256 != old.cw.SHA256:
			return fmt.Errorf("stage 2: %s window %s: partition %s closed it twice from checkpoint %s with different partials (%s, %s): "+
				"two writers share the partition's state; stop the job and find the second writer", d.name, formatWindow(cw.Window),
				rec.Partition, rec.Checkpoint, cw.SHA256[:12], old.cw.SHA256[:12])
		case seq == old.seq:
			pw.from[rec.Partition] = blobRef{cw: old.cw, seq: seq, offset: min(old.offset, pos.Offset)}
		}
	}
	return nil
}

// publishReady publishes every pending window that every input partition
// has closed, oldest first, and returns how many it published.
func (s *stage2) publishReady(ctx context.Context) (int, error) {
	var candidates bool
	for _, d := range s.order {
		for _, pw := range d.pending {
			if s.closedByAll(d, pw.w, s.inputs) {
				candidates = true
			}
		}
	}
	if !candidates && s.inputs != nil && !s.st.Bounded {
		return 0, nil
	}
	// The partitions of the input topics as of now: a window waits for a
	// partition added since, never publishes without it.
	inputs, err := s.st.InputPartitions(ctx)
	if err != nil {
		return 0, fmt.Errorf("stage 2: the input topics' partitions: %w", err)
	}
	if len(inputs) == 0 {
		return 0, errors.New("stage 2: the input topics have no partitions")
	}
	s.inputs = inputs
	n := 0
	for _, d := range s.order {
		starts := make([]int64, 0, len(d.pending))
		for start := range d.pending {
			starts = append(starts, start)
		}
		slices.Sort(starts)
		for _, start := range starts {
			pw := d.pending[start]
			if !s.closedByAll(d, pw.w, inputs) {
				break // windows publish in order
			}
			if err := s.publish(ctx, d, pw); err != nil {
				return n, err
			}
			delete(d.pending, start)
			d.published[start] = true
			n++
		}
	}
	return n, nil
}

func (s *stage2) closedByAll(d *s2dataset, w Window, inputs []PartitionID) bool {
	if len(inputs) == 0 {
		return false
	}
	for _, id := range inputs {
		p := d.parts[id]
		if p == nil || p.closedEnd < w.End {
			return false
		}
	}
	return true
}

// publish merges a window's blobs and commits it through the publisher.
func (s *stage2) publish(ctx context.Context, d *s2dataset, pw *s2window) error {
	var merged *Partial
	for _, id := range sortedRefs(pw.from) {
		part, err := s.st.Checkpoints.getPartial(ctx, d.name, id, pw.from[id].cw)
		if err != nil {
			return fmt.Errorf("stage 2: %w", err)
		}
		if merged == nil {
			merged = part
		} else {
			merged.Merge(part)
		}
	}
	if err := s.fence(ctx); err != nil {
		return fmt.Errorf("stage 2: %w", err)
	}
	s.pub.parts = map[PartitionID]*partState{}
	for _, id := range s.inputs {
		p := d.parts[id]
		s.pub.parts[id] = &partState{closedEnd: p.closedEnd, acct: p.acct, head: p.head}
	}
	partials := make([]*Partial, len(s.st.Aggregators))
	partials[d.idx] = merged
	return s.pub.publish(ctx, &pendingWindow{w: pw.w, partials: partials})
}

// commitPoints returns, per partials partition, the offset a restart must
// read from: the oldest record of a pending window, and each partition's
// newest record (which holds how far it closed).
func (s *stage2) commitPoints() map[int32]int64 {
	pts := map[int32]int64{}
	note := func(p int32, off int64) {
		if cur, ok := pts[p]; !ok || off < cur {
			pts[p] = off
		}
	}
	for _, d := range s.order {
		for _, p := range d.parts {
			note(p.offset.Partition, p.offset.Offset)
		}
		for _, pw := range d.pending {
			for id, r := range pw.from {
				note(d.parts[id].offset.Partition, r.offset)
			}
		}
	}
	return pts
}

// finished tells whether every input partition closed every window of
// every dataset and nothing waits.
func (s *stage2) finished() bool {
	if len(s.inputs) == 0 {
		return false
	}
	for _, d := range s.order {
		if len(d.pending) > 0 {
			return false
		}
		for _, id := range s.inputs {
			if p := d.parts[id]; p == nil || p.closedEnd != math.MaxInt64 {
				return false
			}
		}
	}
	return true
}

// markDone records that a bounded job is done, with how far it read each
// partition, so that every instance can stop.
func (s *stage2) markDone(ctx context.Context) error {
	d := &JobDone{Through: map[string]int64{}}
	for _, id := range s.inputs {
		d.Through[id.String()] = s.order[0].parts[id].acct.LastOffset + 1
	}
	if err := s.st.Checkpoints.saveJobDone(ctx, d); err != nil {
		return fmt.Errorf("stage 2: %w", err)
	}
	s.o.log.Info("job done: every partition closed and every window published", zap.Int("partitions", len(s.inputs)))
	return nil
}

// gauge updates what operators watch of stage 2.
func (s *stage2) gauge() {
	var pending, waiting, oldest int64
	for _, d := range s.order {
		for _, pw := range d.pending {
			pending++
			waiting += int64(len(pw.from))
			if oldest == 0 || pw.w.End < oldest {
				oldest = pw.w.End
			}
		}
	}
	s.o.stats.PendingWindows.Store(pending)
	s.o.stats.CloseRecordsWaiting.Store(waiting)
	s.o.stats.OldestPending.Store(oldest)
}
