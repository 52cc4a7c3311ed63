package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Stages are the concrete parts Run wires together; cmd/deid builds them.
type Stages struct {
	Source Source
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
	// PseudonymKey keys the HMAC of SPEC §11.
	PseudonymKey []byte
}

func (s *Stages) validate() error {
	var errs []error
	if s.Source == nil {
		errs = append(errs, errors.New("no source"))
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
	if len(s.PseudonymKey) == 0 {
		errs = append(errs, errors.New("no pseudonym key"))
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
	// Partitions holds each partition's final accounting.
	Partitions []PartitionAccounting
	// Windows holds every dataset window published, in publication order.
	Windows []WindowSummary
}

// Option configures Run with what code injects.
type Option func(*runOptions)

type runOptions struct {
	now   func() time.Time
	log   *zap.Logger
	stats *Stats
}

// WithClock sets the processing clock (the reference for max_future_skew
// and decision times).
func WithClock(now func() time.Time) Option { return func(o *runOptions) { o.now = now } }

// WithLogger sets the logger.
func WithLogger(l *zap.Logger) Option { return func(o *runOptions) { o.log = l } }

// WithStats makes Run update s, so the caller can show progress or export
// metrics while it runs.
func WithStats(s *Stats) Option { return func(o *runOptions) { o.stats = s } }

// Run processes the source's partitions to their end: one worker per
// partition, one publisher. It returns when every window is published, or
// with the first error (the others are cancelled). Run blocks.
func Run(ctx context.Context, cfg Config, st Stages, opts ...Option) (*Summary, error) {
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	readers, err := st.Source.Partitions(ctx)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	ids := make([]PartitionID, len(readers))
	workers := make([]*worker, len(readers))
	notices := make(chan closeNotice, 2*len(readers))
	for i, r := range readers {
		ids[i] = r.ID()
		chain, err := st.Exclusions.Chain(ids[i].String())
		if err != nil {
			return nil, fmt.Errorf("exclusion log: %w", err)
		}
		dead, err := st.DeadLetters.Writer(ids[i])
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		defer dead.Close()
		workers[i] = newWorker(&cfg, &st, r, chain, dead, o.now, notices, o.stats)
	}
	pubChain, err := st.Exclusions.Chain(PublishChain)
	if err != nil {
		return nil, fmt.Errorf("exclusion log: %w", err)
	}
	summary := &Summary{}
	pub := newPublisher(&cfg, &st, pubChain, ids, o.now, o.stats, summary)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(ctx); err != nil {
				fail(err)
			}
		}()
	}
	go func() { wg.Wait(); close(notices) }()
	for n := range notices {
		if failed() != nil {
			continue // drain so workers can stop
		}
		if err := pub.receive(ctx, n); err != nil {
			fail(err)
		}
	}
	if err := failed(); err != nil {
		return summary, err
	}
	if err := ctx.Err(); err != nil {
		return summary, err
	}
	for _, w := range workers {
		summary.Partitions = append(summary.Partitions, w.snapshot())
	}
	o.log.Info("run complete", zap.Int("partitions", len(readers)), zap.Int("windows", len(summary.Windows)))
	return summary, nil
}
