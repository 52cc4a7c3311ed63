package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/mya/deid/internal/kafkaconn"
	"github.com/mya/deid/pipeline"
)

// ErrGenerationEnded is wrapped by the errors of a generation that has
// ended (a rebalance, or the source closing): a PartitionReader's Next once
// the partition may belong to another member, and a Commit the coordinator
// refused because the group has moved on. The checkpoint is the source of
// truth, so neither loses anything; the engine moves to the next generation.
var ErrGenerationEnded = pipeline.ErrGenerationEnded

// Option configures what code injects into a Source, a Settings follower or
// a Producer.
type Option func(*options)

type options struct {
	log       *zap.Logger
	stopAtEnd bool
}

// WithLogger sets the logger. Retries and offset resets are logged; errors
// that are returned are not.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// StopAtEnd makes each partition reader of a Source read up to the
// high-water mark its partition had when the reader was opened, then
// return io.EOF: a bounded run over what is on the topic, for batch jobs
// and benchmarks. Without it a Kafka source never ends.
func StopAtEnd() Option { return func(o *options) { o.stopAtEnd = true } }

func buildOptions(opts []Option) options {
	o := options{log: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Source reads the event topics as one member of a Kafka consumer group,
// through kafka-go's ConsumerGroup: each generation assigns this instance
// some partitions, and each partition is read by its own PartitionReader
// over a connection to the partition's leader. It implements
// pipeline.StreamSource.
type Source struct {
	cfg    Config
	opts   options
	conn   *kafkaconn.Conn
	client *kafka.Client

	mu     sync.Mutex
	group  *kafka.ConsumerGroup
	closed bool
	// current is the generation Assign returned last: the next Assign, or
	// Close, releases it (the caller is done with it).
	current *generation
}

var _ pipeline.StreamSource = (*Source)(nil)

// New validates cfg and builds a Source. It reads the TLS files and the SASL
// password but does not connect: the group is joined by the first Assign.
func New(cfg Config, opts ...Option) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cn, err := cfg.Connect()
	if err != nil {
		return nil, err
	}
	return &Source{cfg: cfg, opts: buildOptions(opts), conn: cn,
		client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.RequestTimeout, Transport: cn.Transport}}, nil
}

// debugLogger adapts zap to kafka-go's Logger, at debug level: kafka-go's
// own chatter (the group's joins, the writer's batches) is for debugging.
type debugLogger struct{ l *zap.Logger }

func (g debugLogger) Printf(format string, args ...any) {
	if ce := g.l.Check(zap.DebugLevel, ""); ce != nil {
		g.l.Debug(strings.TrimSpace(fmt.Sprintf(format, args...)))
	}
}

// heartbeat returns the heartbeat interval: a tenth of the session, between
// 100ms and 3s, so a rebalance is noticed well within the session.
func (c *Config) heartbeat() time.Duration {
	return min(max(c.SessionTimeout/10, 100*time.Millisecond), 3*time.Second)
}

func (s *Source) groupLocked() (*kafka.ConsumerGroup, error) {
	if s.closed {
		return nil, errors.New("kafka: the source is closed")
	}
	if s.group != nil {
		return s.group, nil
	}
	start := kafka.FirstOffset
	if s.cfg.Start == StartLatest {
		start = kafka.LastOffset
	}
	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                s.cfg.Group,
		Brokers:           s.cfg.Brokers,
		Dialer:            s.conn.Dialer,
		Topics:            s.cfg.Topics,
		HeartbeatInterval: s.cfg.heartbeat(),
		SessionTimeout:    s.cfg.SessionTimeout,
		RebalanceTimeout:  s.cfg.RebalanceTimeout,
		JoinGroupBackoff:  s.cfg.RetryBackoffMax,
		// Partitions added to an event topic rebalance the group, so they
		// are read too.
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 10 * time.Second,
		StartOffset:            start,
		Timeout:                s.cfg.RequestTimeout,
		Logger:                 debugLogger{s.opts.log.Named("group")},
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: consumer group %q: %w", s.cfg.Group, err)
	}
	s.group = g
	return g, nil
}

// Assign blocks until this instance joins the next generation of the
// group, or ctx is done (ctx.Err()). Failures to join that Kafka marks
// retriable (the coordinator loading or moving, a broker restarting) are
// retried for up to the retry budget; the error after that, or any other
// failure (an unknown group protocol, an authorization failure), is
// returned. Not safe for concurrent use: there is one generation at a time.
func (s *Source) Assign(ctx context.Context) (pipeline.Generation, error) {
	s.mu.Lock()
	g, err := s.groupLocked()
	prev := s.current
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if prev != nil {
		// Asking for the next generation is being done with this one.
		prev.Release()
	}
	// Not kafkaconn.Retry: a rebalance in progress is retried though it is
	// not transient, and kafka-go already waits JoinGroupBackoff between
	// attempts, so the wait here stays at its first (BackoffConstant).
	r := kafkaconn.NewRetrier(&s.cfg.Config)
	for {
		kg, err := g.Next(ctx)
		if err == nil {
			gen := s.newGeneration(kg)
			s.mu.Lock()
			s.current = gen
			s.mu.Unlock()
			// The checkpoint names are read now, not at Open: the engine
			// loads a partition's checkpoint (Committed) to know where to
			// open it.
			if err := gen.fetchCheckpoints(ctx); err != nil {
				return nil, err
			}
			return gen, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, kafka.ErrGroupClosed) {
			return nil, errors.New("kafka: the source is closed")
		}
		if !kafkaconn.Transient(err) && !errors.Is(err, kafka.RebalanceInProgress) {
			return nil, fmt.Errorf("kafka: joining consumer group %q on %s: %w", s.cfg.Group, strings.Join(s.cfg.Brokers, ","), err)
		}
		s.opts.log.Warn("joining the consumer group failed; retrying", zap.String("group", s.cfg.Group), zap.Error(err))
		// kafka-go waits JoinGroupBackoff between attempts itself; the
		// retrier keeps the budget and waits no longer than its first wait.
		if berr := r.BackoffConstant(ctx, err); berr != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("kafka: joining consumer group %q on %s: %w", s.cfg.Group, strings.Join(s.cfg.Brokers, ","), berr)
		}
	}
}

// Close leaves the group (ending the current generation) and releases the
// source. Readers opened from a generation must be closed by their owner.
// Safe to call more than once.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	g, cur := s.group, s.current
	s.mu.Unlock()
	if cur != nil {
		cur.Release()
	}
	if g != nil {
		return g.Close()
	}
	return nil
}

// generation is one kafka-go generation of the group, as a
// pipeline.Generation.
type generation struct {
	src   *Source
	gen   *kafka.Generation
	parts []pipeline.PartitionID
	// committed holds the group's committed offset per partition when the
	// generation began, or kafka.FirstOffset/LastOffset when it has none.
	committed map[pipeline.PartitionID]int64
	// checkpoints holds the checkpoint name committed with each
	// partition's offset when the generation began ("" for none).
	checkpoints map[pipeline.PartitionID]string
	done        chan struct{}
	// released is closed by Release: the engine has made its last
	// checkpoints and commits of the generation.
	released    chan struct{}
	releaseOnce sync.Once
}

func (s *Source) newGeneration(kg *kafka.Generation) *generation {
	g := &generation{src: s, gen: kg, committed: map[pipeline.PartitionID]int64{}, done: make(chan struct{}),
		released: make(chan struct{})}
	for topic, assigned := range kg.Assignments {
		for _, a := range assigned {
			id := pipeline.PartitionID{Source: topic, Partition: int32(a.ID)}
			g.parts = append(g.parts, id)
			g.committed[id] = a.Offset
		}
	}
	slices.SortFunc(g.parts, comparePartitions)
	// kafka-go exposes the end of a generation only to functions it starts:
	// their context is done when the generation ends. It joins the next
	// generation only once they return, so this one holds the join until
	// the engine has made its last checkpoints and commits (Release) —
	// during the rebalance the coordinator still accepts this generation's
	// commits, and the partitions' next owners resume from them rather
	// than from an older checkpoint. Never longer than the rebalance
	// timeout, after which the coordinator drops a member that has not
	// joined anyway.
	kg.Start(func(ctx context.Context) {
		<-ctx.Done()
		close(g.done)
		t := time.NewTimer(s.cfg.RebalanceTimeout)
		defer t.Stop()
		select {
		case <-g.released:
		case <-t.C:
			s.opts.log.Warn("the engine did not release the generation within kafka.rebalance_timeout; joining the next one",
				zap.String("group", s.cfg.Group), zap.Int32("generation", kg.ID))
		}
	})
	s.opts.log.Info("joined a generation of the consumer group", zap.String("group", s.cfg.Group),
		zap.Int32("generation", kg.ID), zap.String("member", kg.MemberID), zap.Stringers("partitions", g.parts))
	return g
}

func comparePartitions(a, b pipeline.PartitionID) int {
	return cmp.Or(strings.Compare(a.Source, b.Source), cmp.Compare(a.Partition, b.Partition))
}

// Partitions lists the partitions assigned in this generation, sorted by
// topic then partition. The slice is the caller's.
func (g *generation) Partitions() []pipeline.PartitionID { return slices.Clone(g.parts) }

// Done is closed when the generation ends: a rebalance, a lost connection to
// the coordinator, or the source closing.
func (g *generation) Done() <-chan struct{} { return g.done }

// Release lets the group go on to its next generation; it implements
// pipeline.Generation. Safe to call more than once.
func (g *generation) Release() { g.releaseOnce.Do(func() { close(g.released) }) }

// Open opens a reader for each assigned partition, in the order of
// Partitions, each connected to its partition's leader; it implements
// pipeline.Generation. A Kafka partition can always be resumed: it starts at
// the offset resume returns (its checkpoint); without a checkpoint, at the
// group's committed offset; else at the earliest (or, with start: latest,
// the latest) offset. An explicit
// offset that is no longer (or not yet) on the broker is an error, unless
// offset_out_of_range says otherwise. Open blocks while it connects,
// retrying transient failures within the retry budget; on error it closes
// what it opened.
func (g *generation) Open(ctx context.Context, resume pipeline.Resume) ([]pipeline.PartitionReader, error) {
	readers := make([]*partitionReader, len(g.parts))
	errs := make([]error, len(g.parts))
	var wg sync.WaitGroup
	for i, id := range g.parts {
		start, explicit := int64(0), false
		if resume != nil {
			start, explicit = resume(id)
		}
		if !explicit {
			start = g.committed[id]
			explicit = start >= 0
			if !explicit && g.src.cfg.Start == StartLatest {
				start = kafka.LastOffset
			} else if !explicit {
				start = kafka.FirstOffset
			}
		}
		r := g.src.newReader(id, g.done)
		readers[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.open(ctx, start, explicit)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, r := range readers {
			r.Close()
		}
		return nil, err
	}
	out := make([]pipeline.PartitionReader, len(readers))
	for i, r := range readers {
		out[i] = r
	}
	return out, nil
}

// Commit commits, for each partition, the next offset to read, with this
// generation's id and member id. The request goes to the group's current
// coordinator (found anew if it moved), so it also works while a rebalance
// is in progress; once the group has moved to a new generation the
// coordinator refuses it and the error wraps ErrGenerationEnded. Transient
// failures (the coordinator loading or moving) are retried within the
// retry budget. Commit blocks until the coordinator answers or ctx is done;
// safe for concurrent use.
func (g *generation) Commit(ctx context.Context, next map[pipeline.PartitionID]pipeline.Committed) error {
	if len(next) == 0 {
		return nil
	}
	topics := map[string][]kafka.OffsetCommit{}
	for id, c := range next {
		topics[id.Source] = append(topics[id.Source], kafka.OffsetCommit{Partition: int(id.Partition), Offset: c.Next, Metadata: c.Checkpoint})
	}
	// Not kafkaconn.Retry: the errors that end the generation are told
	// apart before Transient classifies the failure (a commit's error joins
	// one per partition, and one of them may be transient).
	r := kafkaconn.NewRetrier(&g.src.cfg.Config)
	for {
		err := g.commit(ctx, topics)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, kafka.IllegalGeneration) || errors.Is(err, kafka.UnknownMemberId) ||
			errors.Is(err, kafka.RebalanceInProgress) || errors.Is(err, kafka.FencedInstanceID) {
			err = fmt.Errorf("%w: %w", ErrGenerationEnded, err)
		} else if kafkaconn.Transient(err) {
			g.src.opts.log.Warn("committing offsets failed; retrying", zap.String("group", g.gen.GroupID), zap.Error(err))
			if err = r.Backoff(ctx, err); err == nil {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return fmt.Errorf("kafka: committing offsets of group %q (generation %d) to %s: %w",
			g.gen.GroupID, g.gen.ID, addrs(g.src.cfg.Brokers), err)
	}
}

func (g *generation) commit(ctx context.Context, topics map[string][]kafka.OffsetCommit) error {
	resp, err := g.src.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		Addr:         kafka.TCP(g.src.cfg.Brokers...),
		GroupID:      g.gen.GroupID,
		GenerationID: int(g.gen.ID),
		MemberID:     g.gen.MemberID,
		Topics:       topics,
	})
	if err != nil {
		return err
	}
	var errs []error
	for topic, parts := range resp.Topics {
		for _, p := range parts {
			if p.Error != nil {
				errs = append(errs, fmt.Errorf("%s: %w", pipeline.PartitionID{Source: topic, Partition: int32(p.Partition)}, p.Error))
			}
		}
	}
	return errors.Join(errs...)
}

// fetchCheckpoints reads the checkpoint names committed with the assigned
// partitions' offsets (the offset-commit metadata), retrying transient
// failures within the retry budget.
func (g *generation) fetchCheckpoints(ctx context.Context) error {
	g.checkpoints = map[pipeline.PartitionID]string{}
	if len(g.parts) == 0 {
		return nil
	}
	topics := map[string][]int{}
	for _, id := range g.parts {
		topics[id.Source] = append(topics[id.Source], int(id.Partition))
	}
	return kafkaconn.Retry(ctx, &g.src.cfg.Config, func(ctx context.Context) error {
		resp, err := g.src.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
			Addr: kafka.TCP(g.src.cfg.Brokers...), GroupID: g.gen.GroupID, Topics: topics})
		if err == nil {
			err = resp.Error
		}
		if err != nil {
			return fmt.Errorf("kafka: fetching committed offsets of group %q from %s: %w", g.gen.GroupID, addrs(g.src.cfg.Brokers), err)
		}
		for topic, parts := range resp.Topics {
			for _, p := range parts {
				if p.Error != nil {
					return fmt.Errorf("kafka: fetching the committed offset of %s[%d]: %w", topic, p.Partition, p.Error)
				}
				if p.CommittedOffset >= 0 {
					g.checkpoints[pipeline.PartitionID{Source: topic, Partition: int32(p.Partition)}] = p.Metadata
				}
			}
		}
		return nil
	})
}

// ID is the generation's number in the group.
func (g *generation) ID() int32 { return g.gen.ID }

// Committed returns the checkpoint name committed with the partition's
// offset when the generation began ("" when none), as Assign read it.
func (g *generation) Committed(id pipeline.PartitionID) string { return g.checkpoints[id] }

// Fence sends the coordinator a heartbeat of this generation and member:
// nil while the member belongs to it (a rebalance in progress included,
// during which its commits are still accepted), an error wrapping
// ErrGenerationEnded once the group has moved on.
func (g *generation) Fence(ctx context.Context) error {
	r := kafkaconn.NewRetrier(&g.src.cfg.Config)
	for {
		err := g.src.heartbeat(ctx, g.gen.GroupID, g.gen.ID, g.gen.MemberID)
		switch {
		case err == nil || errors.Is(err, kafka.RebalanceInProgress):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, kafka.IllegalGeneration) || errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, kafka.FencedInstanceID):
			return fmt.Errorf("%w: %w", ErrGenerationEnded, err)
		case kafkaconn.Transient(err):
			if err = r.Backoff(ctx, err); err == nil {
				continue
			}
		}
		return fmt.Errorf("kafka: checking membership of group %q (generation %d) at %s: %w",
			g.gen.GroupID, g.gen.ID, addrs(g.src.cfg.Brokers), err)
	}
}

func addrs(brokers []string) string { return strings.Join(brokers, ",") }

// hostPort renders a broker as "host:port".
func hostPort(b kafka.Broker) string { return net.JoinHostPort(b.Host, fmt.Sprint(b.Port)) }
