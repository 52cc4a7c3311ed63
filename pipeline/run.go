package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Stages are the concrete parts Run wires together; cmd/deid builds them.
type Stages struct {
	// Source is a finite source (files), read to its end. Exactly one of
	// Source and Stream is set.
	Source Source
	// Stream is an unbounded source whose partitions a consumer group
	// assigns (Kafka); Run works it until ctx is done.
	Stream StreamSource
	// NewDecoder returns a decoder for one worker.
	NewDecoder func() Decoder
	Consent    Consent
	// Gates run after consent, in order (the age gate).
	Gates       []Gate
	Aggregators []Aggregator
	Privacy     PrivacyGate
	Datasets    DatasetSink
	Exclusions  ExclusionLog
	DeadLetters DeadLetterSink
	// Checkpoints persists partition state; nil keeps none (a file run
	// then starts over after a crash).
	Checkpoints *Checkpoints
	// Closes, set in a job of several instances (contract §13), receives
	// the workers' close records: this run is then stage 1 only, and
	// Publish, on whichever instance the publisher group picks, publishes.
	// It needs Stream and Checkpoints.
	Closes CloseSink
	// PublishedEnd is the end (µs) of the newest window that earlier runs
	// published to the output, 0 when none. Events of a window ending at
	// or before it are late (contract §9), as they are once this run has
	// published a window: published windows stay published across runs.
	PublishedEnd int64
}

func (s *Stages) validate() error {
	var errs []error
	if (s.Source == nil) == (s.Stream == nil) {
		errs = append(errs, errors.New("exactly one of a file source and a stream source is needed"))
	}
	if s.NewDecoder == nil {
		errs = append(errs, errors.New("no decoder"))
	}
	if s.Consent == nil {
		errs = append(errs, errors.New("no consent store"))
	}
	if len(s.Aggregators) == 0 {
		errs = append(errs, errors.New("no dataset"))
	}
	if s.Privacy == nil || s.Datasets == nil || s.Exclusions == nil || s.DeadLetters == nil {
		errs = append(errs, errors.New("a sink or the privacy gate is missing"))
	}
	if s.Consent != nil && s.Consent.PseudonymKey() == nil {
		errs = append(errs, errors.New("the consent state has no pseudonym key"))
	}
	if s.Stream != nil && s.Checkpoints == nil {
		errs = append(errs, errors.New("a stream source needs checkpoints (state_dir)"))
	}
	if s.Closes != nil && (s.Stream == nil || s.Checkpoints == nil) {
		errs = append(errs, errors.New("a job of several instances needs a stream source and checkpoints"))
	}
	return errors.Join(errs...)
}

// WindowSummary is what was published for one dataset window.
type WindowSummary struct {
	Dataset string
	Window  Window
	Acct    WindowAccounting
}

// Summary is what a run did.
type Summary struct {
	// Partitions holds each partition's accounting when its worker last
	// stopped (cumulative over restarts when checkpoints are kept).
	Partitions []PartitionAccounting
	// Windows holds every dataset window published by this run, in order.
	Windows []WindowSummary
	// CommittedElsewhere holds the windows another writer committed first
	// (ErrCommittedElsewhere), in order.
	CommittedElsewhere []WindowSummary
}

// Option configures Run with what code injects.
type Option func(*runOptions)

type runOptions struct {
	now   func() time.Time
	log   *zap.Logger
	stats *Stats
}

// WithClock sets the processing clock (the reference for max_future_skew,
// idle partitions and decision times).
func WithClock(now func() time.Time) Option { return func(o *runOptions) { o.now = now } }

// WithLogger sets the logger.
func WithLogger(l *zap.Logger) Option { return func(o *runOptions) { o.log = l } }

// WithStats makes Run update s, so the caller can show progress or export
// metrics while it runs.
func WithStats(s *Stats) Option { return func(o *runOptions) { o.stats = s } }

// engine is one run: its workers, its publisher and what they share.
type engine struct {
	cfg     Config
	st      Stages
	o       runOptions
	notices chan closeNotice
	// publishedEnd is the end of the newest window published.
	publishedEnd atomicInt64
	pub          *publisher
	// gen is the stream's current generation (a job of several instances
	// resumes each partition from the checkpoint its commit names).
	gen Generation

	mu       sync.Mutex
	firstErr error
	finals   map[PartitionID]PartitionAccounting
}

// Run processes the input: one worker per partition, one publisher. With a
// file source it returns when every window is published; with a stream
// source it runs until ctx is done, then stops reading, checkpoints and
// returns nil (a graceful stop). Any other failure is returned, the other
// workers being stopped; a restart resumes from the checkpoints. Run blocks.
func Run(ctx context.Context, cfg Config, st Stages, opts ...Option) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := st.validate(); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	e := &engine{cfg: cfg, st: st, o: runOptions{now: time.Now, log: zap.NewNop(), stats: &Stats{}},
		notices: make(chan closeNotice, 16), finals: map[PartitionID]PartitionAccounting{}}
	for _, opt := range opts {
		opt(&e.o)
	}
	e.publishedEnd.Store(noTime)
	pubChain, err := st.Exclusions.Chain(PublishChain)
	if err != nil {
		return nil, fmt.Errorf("exclusion log: %w", err)
	}
	summary := &Summary{}
	e.pub = newPublisher(&e.cfg, &e.st, pubChain, e.o.now, e.o.stats, summary, &e.publishedEnd)
	if st.Closes == nil {
		// In a job of several instances stage 2 recovers its own intent.
		if err := e.pub.recover(ctx); err != nil {
			return nil, err
		}
	}

	// abort cancels everything on a failure; stop (the caller's ctx) is a
	// graceful stop.
	abort, cancel := context.WithCancel(context.Background())
	defer cancel()
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for n := range e.notices {
			if e.failed() != nil {
				continue // drain so that workers can stop
			}
			if err := e.pub.receive(abort, n); err != nil {
				e.fail(err, cancel)
			}
		}
	}()
	if st.Stream != nil {
		err = e.runStream(ctx, abort, cancel)
	} else {
		err = e.runFiles(ctx, abort, cancel)
	}
	if err != nil {
		e.fail(err, cancel)
	}
	close(e.notices)
	<-pubDone
	for _, id := range sortedPartitions(e.finals) {
		summary.Partitions = append(summary.Partitions, e.finals[id])
	}
	if err := e.failed(); err != nil {
		return summary, err
	}
	e.o.log.Info("run complete", zap.Int("partitions", len(summary.Partitions)), zap.Int("windows", len(summary.Windows)))
	return summary, nil
}

// register makes partitions known to the publisher before their workers
// start; the channel keeps the order.
func (e *engine) register(ids []PartitionID) {
	if e.st.Closes != nil {
		return // stage 2 learns the partitions from the topics' metadata
	}
	for _, id := range ids {
		e.notices <- closeNotice{Part: id, Register: true}
	}
}

func (e *engine) fail(err error, cancel context.CancelFunc) {
	e.mu.Lock()
	if e.firstErr == nil {
		e.firstErr = err
	}
	e.mu.Unlock()
	cancel()
}

func (e *engine) failed() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.firstErr
}

// openWorkers creates the worker of each partition the opener opens,
// resumed from its checkpoint, and attaches its reader. It refuses a
// partition with restored state that the source cannot start at its
// checkpointed position (fail closed: never re-read from the start with
// restored state).
func (e *engine) openWorkers(ctx context.Context, open func(resume Resume) ([]PartitionReader, error)) ([]*worker, error) {
	workers, err := e.openResumed(ctx, open)
	if errors.Is(err, ErrCannotResume) {
		return nil, fmt.Errorf("%w; reading it again from its start with the state restored from the checkpoint would count its records twice: "+
			"resume with an input the source can start at its checkpointed positions, or start over with a new state_dir and a new out", err)
	}
	return workers, err
}

func (e *engine) openResumed(ctx context.Context, open func(resume Resume) ([]PartitionReader, error)) ([]*worker, error) {
	byID := map[PartitionID]*worker{}
	var rerr error
	readers, err := open(func(id PartitionID) (int64, bool) {
		w, err := newWorker(e, id)
		if err == nil {
			var next int64
			var ok bool
			began := time.Now()
			next, ok, err = w.resume(ctx)
			if err == nil {
				if ok {
					e.o.stats.Restore.Observe(time.Since(began))
				}
				byID[id] = w
				return next, ok
			}
		}
		rerr = errors.Join(rerr, fmt.Errorf("partition %s: %w", id, err))
		return 0, false
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		for _, r := range readers {
			r.Close()
		}
		return nil, err
	}
	workers := make([]*worker, 0, len(readers))
	for _, r := range readers {
		w := byID[r.ID()]
		if w == nil {
			// The source opened the partition without asking where to
			// resume it: that is only sound without restored state.
			if w, err = newWorker(e, r.ID()); err == nil {
				var next int64
				var ok bool
				if next, ok, err = w.resume(ctx); err == nil && ok {
					err = fmt.Errorf("partition %s has a checkpoint (next position %d), but the source opened it without asking where to resume: %w", r.ID(), next, ErrCannotResume)
				}
			}
			if err != nil {
				for _, r := range readers {
					r.Close()
				}
				return nil, err
			}
		}
		w.reader = r
		workers = append(workers, w)
	}
	return workers, nil
}

func (e *engine) runFiles(stop, abort context.Context, cancel context.CancelFunc) error {
	workers, err := e.openWorkers(abort, func(resume Resume) ([]PartitionReader, error) {
		return e.st.Source.Open(abort, resume)
	})
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	ids := make([]PartitionID, len(workers))
	for i, w := range workers {
		ids[i] = w.id()
	}
	e.register(ids)
	e.o.stats.Assigned(ids)
	e.runWorkers(stop, abort, cancel, workers)
	return stop.Err()
}

// runWorkers runs one generation's workers to their end, records their
// final accounting, and reports whether every one read its input to the end
// (rather than being stopped).
func (e *engine) runWorkers(stop, abort context.Context, cancel context.CancelFunc, workers []*worker) bool {
	var wg sync.WaitGroup
	var ended atomic.Int64
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.reader.Close()
			defer w.dead.Close()
			if err := w.run(abort, stop); err != nil {
				if w.job != nil && errors.Is(err, ErrFenced) {
					// Another member owns the partition now: its state
					// here is dropped, and the run goes on.
					e.o.log.Warn("partition fenced: another instance owns it now; its state here is dropped",
						zap.Stringer("partition", w.id()), zap.Error(err))
					e.o.stats.Fenced.Add(1)
					return
				}
				e.fail(err, cancel)
			}
			if w.closedEnd == math.MaxInt64 {
				ended.Add(1)
			}
			e.mu.Lock()
			e.finals[w.id()] = w.snapshot()
			e.mu.Unlock()
		}()
	}
	wg.Wait()
	return int(ended.Load()) == len(workers)
}

func (e *engine) runStream(stop, abort context.Context, cancel context.CancelFunc) error {
	// Consent first: no event is processed before the settings are read to
	// their high-water mark (contract §4).
	if err := e.st.Consent.CaughtUp(stop); err != nil {
		if stop.Err() != nil {
			return nil
		}
		return fmt.Errorf("consent: %w", err)
	}
	for stop.Err() == nil && abort.Err() == nil {
		gen, err := e.st.Stream.Assign(stop)
		if err != nil {
			if stop.Err() != nil {
				return nil
			}
			return fmt.Errorf("source: %w", err)
		}
		genStop, genCancel := context.WithCancel(stop)
		go func() {
			select {
			case <-gen.Done():
			case <-genStop.Done():
			}
			genCancel()
		}()
		e.gen = gen
		workers, err := e.openWorkers(abort, func(resume Resume) ([]PartitionReader, error) {
			return gen.Open(abort, resume)
		})
		if err != nil {
			genCancel()
			gen.Release()
			return fmt.Errorf("source: %w", err)
		}
		for _, w := range workers {
			id := w.id()
			w.commitOffset = func(ctx context.Context, c Committed) error {
				return gen.Commit(ctx, map[PartitionID]Committed{id: c})
			}
		}
		e.register(gen.Partitions())
		ids := make([]PartitionID, len(workers))
		for i, w := range workers {
			ids[i] = w.id()
		}
		e.o.stats.Assigned(ids)
		e.o.log.Info("generation assigned", zap.Int("partitions", len(workers)))
		atEnd := e.runWorkers(genStop, abort, cancel, workers)
		genCancel()
		// Every worker has made its last checkpoint and commit: the group
		// may go on to its next generation.
		gen.Release()
		if atEnd && len(workers) > 0 {
			if e.st.Closes == nil {
				// A bounded run (the source stops at the topics' ends): done.
				return nil
			}
			e.o.log.Info("partitions read to their end here; staying a member of the group until the whole job is done")
		}
		// In a job of several instances this one stays a member until its
		// caller stops it (the whole job done): the partitions of an
		// instance that fails come to the members left.
	}
	return nil
}
