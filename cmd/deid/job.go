package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mya/deid/internal/claim"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/objstore"
	"github.com/mya/deid/sinks/partials"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

// A job of several instances (kafka.scale_out, contract §13): every
// instance runs stage 1 (the workers of the input partitions the consumer
// group gives it) and is a member of the publisher group, whose one
// partials partition makes one instance at a time stage 2. No instance
// locks the output or the state: the group generation fences each
// partition's writer, and a lease in the state store the publisher.

// publisherLockName is the lease of stage 2 in the state store.
const publisherLockName = "publisher.lock"

// claimJob binds the shared state and output to the key and policy, as
// claimDirs does for one instance, but takes no lock: several instances
// share both. A binding is created conditionally, so of instances that
// start at once one writes it and the others are checked against it.
func claimJob(ctx context.Context, cfg *Config, key []byte, out, state objstore.Store) (*claimed, error) {
	c := &claimed{out: out, state: state}
	policy := cfg.policy()
	want := &claim.Binding{KeyFingerprint: claim.Fingerprint(key), PolicyVersion: policy.Version(), Policy: policy,
		Created: time.Now().UTC().Truncate(time.Second)}
	have, ok, err := claim.ReadObject(ctx, state, stateBindingName)
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w; restore the state directory or start over with a new state_dir and a new out", err)
	}
	if !ok {
		if err := c.onlyStateClaim(ctx, cfg,
			"no binding to a pseudonym key and policy, so it is not a state directory this deid wrote; start over with a new state_dir and a new out"); err != nil {
			// Another instance of the job may have bound it and begun.
			if have, ok, _ = claim.ReadObject(ctx, state, stateBindingName); !ok {
				return nil, err
			}
		}
	}
	if !ok {
		if want.StateID, err = claim.NewStateID(); err != nil {
			return nil, err
		}
		var created bool
		if have, created, err = claim.CreateObject(ctx, state, stateBindingName, want); err != nil {
			return nil, fmt.Errorf("state_dir: binding: %w", err)
		}
		if created {
			have = want
		}
	} else {
		c.resuming = true
	}
	want.StateID = have.StateID
	if err := claim.Check("state_dir", cfg.StateDir, have, want); err != nil {
		return nil, err
	}
	have, ok, err = claim.ReadObject(ctx, out, outBindingName)
	if err != nil {
		return nil, fmt.Errorf("out: %w; the output is damaged — start over with a new out", err)
	}
	if !ok {
		if err := storeOnlyClaimObjects(ctx, out, "no binding to a pseudonym key and policy, so this deid did not write it and will not add to it; name a new out"); err != nil {
			if have, ok, _ = claim.ReadObject(ctx, out, outBindingName); !ok {
				return nil, err
			}
		}
	}
	if !ok {
		var created bool
		if have, created, err = claim.CreateObject(ctx, out, outBindingName, want); err != nil {
			return nil, fmt.Errorf("out: binding: %w", err)
		}
		if created {
			return c, nil
		}
	}
	return c, claim.Check("out", cfg.Out, have, want)
}

// publisherLease is the lease stage 2 holds while it publishes; the
// dataset sink's fence checks it before every manifest.
type publisherLease struct {
	state objstore.Store
	opts  claim.LeaseOptions
	log   *zap.Logger
	// acquired runs once the lease is held: what this instance read of
	// the output before may be stale (another instance published).
	acquired func()

	mu    sync.Mutex
	lease *claim.Lease
}

// acquire waits until this instance holds the lease: a holder that stopped
// heartbeating is taken over after storage.lease_ttl.
func (p *publisherLease) acquire(ctx context.Context) (func(context.Context) error, func(), error) {
	for {
		l, err := claim.AcquireLease(ctx, p.state, publisherLockName, "state_dir", p.opts)
		var held *claim.HeldError
		switch {
		case err == nil:
			p.mu.Lock()
			p.lease = l
			p.mu.Unlock()
			if p.acquired != nil {
				p.acquired()
			}
			release := func() {
				p.mu.Lock()
				p.lease = nil
				p.mu.Unlock()
				l.Release(context.WithoutCancel(ctx))
			}
			return l.Check, release, nil
		case errors.As(err, &held):
			p.log.Info("waiting for the publisher lease", zap.String("holder", held.Error()))
			select {
			case <-time.After(p.opts.Heartbeat):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		default:
			return nil, nil, err
		}
	}
}

// fence fails unless this instance holds the publisher lease now.
func (p *publisherLease) fence(ctx context.Context) error {
	p.mu.Lock()
	l := p.lease
	p.mu.Unlock()
	if l == nil {
		return errors.New("this instance does not hold the publisher lease; only stage 2's holder commits windows")
	}
	return l.Check(ctx)
}

// jobStages completes st for a job of several instances: the close-record
// sink of stage 1, and stage 2's stages.
func (b *builder) jobStages(ctx context.Context, st *pipeline.Stages, src *kafkasrc.Source) (*pipeline.PublishStages, error) {
	cfg := b.cfg
	sink, err := partials.New(cfg.Kafka.Config, cfg.Kafka.Partials(), partials.WithLogger(b.log))
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, sink.Close)
	// The operator creates the partials topic, like every topic; deid
	// checks it before any worker runs and says how to create it.
	if err := sink.Check(ctx); err != nil {
		return nil, err
	}
	feed, err := kafkasrc.NewFeed(cfg.Kafka, kafkasrc.WithLogger(b.log))
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, feed.Close)
	st.Closes = sink
	return &pipeline.PublishStages{Feed: feed, InputPartitions: src.InputPartitions, Lease: b.pubLease.acquire,
		Consent: st.Consent, Aggregators: st.Aggregators, Privacy: st.Privacy, Datasets: st.Datasets,
		Exclusions: st.Exclusions, Checkpoints: st.Checkpoints, Bounded: cfg.StopAtEnd}, nil
}

// waitJobDone blocks until stage 2 (on whichever instance) has marked the
// bounded job done through every partition's end as this instance saw it
// at start, or ctx is done, or stage 1 or stage 2 here ends with an error.
func waitJobDone(ctx context.Context, ckpt *pipeline.Checkpoints, ends map[pipeline.PartitionID]int64, failed <-chan error) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		through, err := ckpt.JobDoneThrough(ctx)
		if err != nil {
			return err
		}
		if through != nil && doneThrough(through, ends) {
			return nil
		}
		select {
		case err := <-failed:
			return err
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func doneThrough(through map[string]int64, ends map[pipeline.PartitionID]int64) bool {
	for id, end := range ends {
		if through[id.String()] < end {
			return false
		}
	}
	return true
}

// runJobInstance runs this instance's part of a job: stage 1 and, when the
// publisher group gives it the partials topic, stage 2. With --stop-at-end
// it returns once the whole job is done: every partition read to the end
// found at start and every window published, by whichever instance. Until
// then it stays a member of both groups, so that the partitions of an
// instance that fails come to it.
func runJobInstance(ctx context.Context, cfg *Config, log *zap.Logger, stdout io.Writer, b *builder, st *pipeline.Stages,
	pcfg pipeline.Config, opts []pipeline.Option, start time.Time) error {
	var ends map[pipeline.PartitionID]int64
	if cfg.StopAtEnd {
		var err error
		if ends, err = b.src.EndOffsets(ctx); err != nil {
			return err
		}
	}
	// failed carries the first error of either stage; stop ends both.
	failed := make(chan error, 2)
	stop, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var wg sync.WaitGroup
	var s1sum, s2sum *pipeline.Summary
	var s1err, s2err error
	wg.Add(2)
	go func() {
		defer wg.Done()
		s2sum, s2err = pipeline.Publish(stop, pcfg, *b.job, opts...)
		if s2err != nil && stop.Err() == nil {
			failed <- fmt.Errorf("stage 2: %w", s2err)
		}
	}()
	go func() {
		defer wg.Done()
		s1sum, s1err = pipeline.Run(stop, pcfg, *st, opts...)
		switch {
		case s1err != nil:
			failed <- s1err
		case stop.Err() != nil:
			// Stopped: the job is done, or this instance is told to stop.
		case cfg.StopAtEnd:
			// Never "done" on stage 1's word alone: only job.done says so.
			failed <- errors.New("stage 1 ended before the whole job was done; restart the instance")
		default:
			failed <- nil // a stream job ends only on a stop
		}
	}()
	var err error
	if cfg.StopAtEnd {
		err = waitJobDone(stop, st.Checkpoints, ends, failed)
		if err == nil {
			log.Info("the whole job is done: every partition read to its end and every window published")
		}
	} else {
		select {
		case err = <-failed:
		case <-ctx.Done():
		}
	}
	stopAll()
	wg.Wait()
	if ctx.Err() != nil {
		err = nil // a stop signal is a graceful stop
	}
	if err != nil {
		return err
	}
	if b.consentErr != nil {
		if cerr := b.consentErr(); cerr != nil {
			return fmt.Errorf("consent: %w", cerr)
		}
	}
	summary := s1sum
	if summary == nil {
		summary = &pipeline.Summary{}
	}
	if s2sum != nil {
		summary.Windows = append(summary.Windows, s2sum.Windows...)
		summary.CommittedElsewhere = append(summary.CommittedElsewhere, s2sum.CommittedElsewhere...)
	}
	elapsed := time.Since(start)
	var read int64
	for _, p := range summary.Partitions {
		read += p.Read
	}
	fmt.Fprintf(stdout, "deid %s: kafka mode, one instance of a job, %d partitions here, %d records in %s, %d windows published here, policy %s\n\n",
		version, len(summary.Partitions), read, elapsed.Round(time.Millisecond), len(summary.Windows), pcfg.PolicyVersion)
	printSummary(stdout, summary, cfg.Out)
	return nil
}
