package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	kafka "github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/mya/deid/internal/kafkaconn"
	"github.com/mya/deid/pipeline"
)

// Settings follows the compacted workspace-settings topic (contract §4): it
// reads every partition from its beginning, without a consumer group (each
// instance needs the whole topic), hands each record to apply, and keeps
// following. WaitCaughtUp tells when everything on the topic at some moment
// has been applied, which the pipeline requires before it processes any
// event and before each publication (fail closed).
type Settings struct {
	cfg    Config
	topic  string
	apply  func(key, value []byte, pos pipeline.Position) error
	opts   options
	cn     *kafkaconn.Conn
	client *kafka.Client

	// applyMu serializes apply: it is never called concurrently.
	applyMu sync.Mutex

	mu   sync.Mutex
	next map[int32]int64 // per followed partition, the next offset to apply
	// progress is closed and replaced when next moves while someone waits.
	progress  chan struct{}
	waiters   int
	err       error // what stopped Run
	running   bool
	stopped   chan struct{} // closed when Run returns
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	refresh   chan struct{} // asks Run to look for new partitions

	// afterHighWaterMarks, set by tests, runs in WaitCaughtUp once the
	// high-water marks are read.
	afterHighWaterMarks func()
}

// NewSettings builds a follower of the settings topic. apply is called for
// every record, with its position, in offset order within each partition,
// never concurrently. An error from apply stops the follower (Run returns
// it, wrapped) before the record counts as applied, so WaitCaughtUp fails
// from then on: consent that cannot be applied fails closed.
// value is nil for a tombstone (kafka-go does not tell an empty value from a
// null one, so an empty value reads as a tombstone: the fail-closed side,
// since a tombstone deletes the workspace). key and value are valid only
// during the call. Only the connection part of cfg is used (brokers,
// client_id, tls, sasl, fetch sizes, timeouts, retries). It does not
// connect; Run does.
func NewSettings(cfg Config, topic string, apply func(key, value []byte, pos pipeline.Position) error, opts ...Option) (*Settings, error) {
	errs := cfg.validateClient()
	if err := validTopic(topic); err != nil {
		errs = append(errs, fmt.Errorf("settings topic: %w", err))
	}
	if apply == nil {
		errs = append(errs, errors.New("kafka: settings: apply must not be nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Consent fails closed: a settings partition whose records were
	// deleted under the follower is an error, whatever the event source
	// does.
	cfg.OffsetOutOfRange = OutOfRangeFail
	cn, err := cfg.Connect()
	if err != nil {
		return nil, err
	}
	return &Settings{cfg: cfg, topic: topic, apply: apply, opts: buildOptions(opts), cn: cn,
		client:   &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.RequestTimeout, Transport: cn.Transport},
		next:     map[int32]int64{},
		progress: make(chan struct{}),
		stopped:  make(chan struct{}),
		closing:  make(chan struct{}),
		refresh:  make(chan struct{}, 1),
	}, nil
}

// Run reads every partition of the topic from its beginning and keeps
// following it, one goroutine per partition, until ctx is done or Close is
// called. Partitions added to the topic later are picked up when
// WaitCaughtUp sees them. Transient failures are retried within the retry
// budget. Run blocks; it returns nil after Close, ctx.Err() when ctx is
// done, or the error that stopped a partition (after which WaitCaughtUp
// fails too). Call it once.
func (s *Settings) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("kafka: settings: Run called twice")
	}
	s.running = true
	s.mu.Unlock()
	err := s.run(ctx)
	s.mu.Lock()
	s.err = err
	if err == nil {
		s.err = errors.New("kafka: settings: the follower was closed")
	}
	close(s.stopped)
	s.mu.Unlock()
	return err
}

func (s *Settings) run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()

	var wg sync.WaitGroup
	failed := make(chan error, 1)
	followed := map[int32]bool{}
	startNew := func() error {
		parts, err := s.partitions(ctx)
		if err != nil {
			return err
		}
		for _, p := range parts {
			if followed[p] {
				continue
			}
			followed[p] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.follow(ctx, p); err != nil {
					select {
					case failed <- err:
					default:
					}
					cancel()
				}
			}()
		}
		return nil
	}
	err := startNew()
follow:
	for err == nil {
		select {
		case <-ctx.Done():
			break follow
		case <-s.refresh:
			err = startNew()
		}
	}
	cancel()
	wg.Wait()
	select {
	case ferr := <-failed:
		return ferr
	default:
	}
	select {
	case <-s.closing:
		return nil
	default:
	}
	if perr := parent.Err(); perr != nil {
		return perr
	}
	return err
}

// partitions lists the topic's partitions, retrying transient failures.
func (s *Settings) partitions(ctx context.Context) ([]int32, error) {
	var parts []int32
	err := kafkaconn.Retry(ctx, &s.cfg.Config, func(ctx context.Context) error {
		var err error
		parts, err = s.listPartitions(ctx)
		s.warnRetry(ctx, err, "listing the settings partitions failed; retrying")
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("kafka: settings topic %q on %s: %w", s.topic, addrs(s.cfg.Brokers), err)
	}
	return parts, nil
}

// warnRetry logs msg when err is a failure Retry will retry: a transient
// one, with ctx not yet done.
func (s *Settings) warnRetry(ctx context.Context, err error, msg string) {
	if err != nil && ctx.Err() == nil && kafkaconn.Transient(err) {
		s.opts.log.Warn(msg, zap.Error(err))
	}
}

func (s *Settings) listPartitions(ctx context.Context) ([]int32, error) {
	md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{s.topic}})
	if err != nil {
		return nil, err
	}
	for _, t := range md.Topics {
		if t.Name != s.topic {
			continue
		}
		if t.Error != nil {
			return nil, t.Error
		}
		parts := make([]int32, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			parts = append(parts, int32(p.ID))
		}
		slices.Sort(parts)
		return parts, nil
	}
	return nil, kafka.UnknownTopicOrPartition
}

// follow reads one partition from its beginning, forever.
func (s *Settings) follow(ctx context.Context, p int32) error {
	id := pipeline.PartitionID{Source: s.topic, Partition: p}
	r := newPartitionReader(&s.cfg, s.cn, s.opts.log.Named("settings"), id, nil)
	r.keyed = true
	defer r.Close()
	if err := r.open(ctx, kafka.FirstOffset, false); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("settings: %w", err)
	}
	s.advance(p, r.next)
	for {
		n, err := r.fetch(ctx)
		if n > 0 {
			r.retry.Reset()
			for i := range r.msgs {
				m := &r.msgs[i]
				pos := pipeline.Position{Source: s.topic, Partition: p, Offset: m.Offset}
				s.applyMu.Lock()
				err := s.apply(m.Key, m.Value, pos)
				s.applyMu.Unlock()
				if err != nil {
					return fmt.Errorf("settings: %s: %w", pos, err)
				}
				// Progress per record: a waiter needs only the records
				// below its high-water mark, not the rest of the batch.
				s.advance(p, m.Offset+1)
			}
			s.advance(p, r.next)
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			r.retry.Reset()
			s.advance(p, r.next)
			continue
		}
		if err = r.recover(ctx, err); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("settings: %w", err)
		}
	}
}

// advance records that partition p has been applied up to next.
func (s *Settings) advance(p int32, next int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.next[p]; ok && cur >= next {
		return
	}
	s.next[p] = next
	if s.waiters > 0 {
		close(s.progress)
		s.progress = make(chan struct{})
	}
}

// WaitCaughtUp blocks until every partition of the topic has been applied
// up to the high-water mark it had when WaitCaughtUp was called; records
// produced after the call are not waited for. It returns ctx.Err() when ctx
// is done first, and an error when the follower stopped (Close, or a
// failure) or the high-water marks cannot be read: the caller must then
// not go on as if consent were current (fail closed). It needs Run to be
// running (or to start). Safe for concurrent use.
func (s *Settings) WaitCaughtUp(ctx context.Context) error {
	targets, err := s.highWaterMarks(ctx)
	if err != nil {
		return err
	}
	if s.afterHighWaterMarks != nil {
		s.afterHighWaterMarks()
	}
	s.mu.Lock()
	s.waiters++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waiters--
		s.mu.Unlock()
	}()
	asked := false
	for {
		s.mu.Lock()
		runErr, progress := s.err, s.progress
		behind := -1
		for _, t := range targets {
			if next, ok := s.next[t.Partition]; !ok || next < t.Offset {
				behind = int(t.Partition)
				if !ok && !asked && s.running {
					// A partition Run does not follow yet (added to the topic).
					asked = true
					select {
					case s.refresh <- struct{}{}:
					default:
					}
				}
				break
			}
		}
		s.mu.Unlock()
		if behind < 0 {
			return nil
		}
		if runErr != nil {
			return fmt.Errorf("kafka: settings topic %q: not caught up (partition %d behind): %w", s.topic, behind, runErr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-progress:
		case <-s.stopped:
		}
	}
}

type partitionOffset struct {
	Partition int32
	Offset    int64
}

// highWaterMarks reads the current high-water mark of every partition,
// retrying transient failures.
func (s *Settings) highWaterMarks(ctx context.Context) ([]partitionOffset, error) {
	var hwm []partitionOffset
	err := kafkaconn.Retry(ctx, &s.cfg.Config, func(ctx context.Context) error {
		var err error
		hwm, err = s.readHighWaterMarks(ctx)
		s.warnRetry(ctx, err, "reading the settings high-water marks failed; retrying")
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("kafka: settings topic %q on %s: reading the high-water marks: %w", s.topic, addrs(s.cfg.Brokers), err)
	}
	return hwm, nil
}

func (s *Settings) readHighWaterMarks(ctx context.Context) ([]partitionOffset, error) {
	parts, err := s.listPartitions(ctx)
	if err != nil {
		return nil, err
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range parts {
		req.Topics[s.topic] = append(req.Topics[s.topic], kafka.LastOffsetOf(int(p)))
	}
	resp, err := s.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []partitionOffset
	for _, po := range resp.Topics[s.topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", po.Partition, po.Error)
		}
		out = append(out, partitionOffset{Partition: int32(po.Partition), Offset: po.LastOffset})
	}
	if len(out) != len(parts) {
		return nil, fmt.Errorf("high-water marks of %d partitions for %d partitions: %w", len(out), len(parts), kafka.LeaderNotAvailable)
	}
	return out, nil
}

// Err returns the error that stopped Run (an error of apply, a failure, or
// Close), or nil while it runs or before it starts. Readiness checks it: a
// stopped follower means consent is no longer current. Safe for
// concurrent use.
func (s *Settings) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close stops Run and makes WaitCaughtUp fail from then on. Safe to call
// more than once and concurrently with Run; it does not wait for Run to
// return.
func (s *Settings) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	return nil
}
