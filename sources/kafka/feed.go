package kafka

import (
	"context"
	"fmt"
	"slices"
	"sync"

	kafka "github.com/segmentio/kafka-go"

	"github.com/mya/deid/internal/kafkaconn"
	"github.com/mya/deid/pipeline"
)

// Feed reads the partials topic (Config.Partials) as one member of the
// publisher group (Config.Publishers): stage 2's input in a job of several
// instances. It is a Source on that topic and group — the same session,
// rebalance, connection and retry settings, the same buffered dialer —
// whose generations hand out decoded close records. It implements
// pipeline.CloseFeed.
type Feed struct {
	src     *Source
	mu      sync.Mutex
	checked bool
}

var _ pipeline.CloseFeed = (*Feed)(nil)

// NewFeed validates cfg and builds the feed of its partials topic. It reads
// the TLS files and the SASL password but does not connect: the first
// Assign checks the topic and joins the group.
func NewFeed(cfg Config, opts ...Option) (*Feed, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fc := cfg
	fc.Topics = []string{cfg.Partials()}
	fc.Group = cfg.Publishers()
	// A partials partition is read from the group's committed offset, or
	// from its beginning; close records deleted under the feed are an
	// error, never skipped (stage 2 would publish without them).
	fc.Start = StartEarliest
	fc.OffsetOutOfRange = OutOfRangeFail
	// Not New: fc's one topic is the partials topic, which Validate
	// rightly refuses as an event topic.
	cn, err := fc.Connect()
	if err != nil {
		return nil, err
	}
	src := &Source{cfg: fc, opts: buildOptions(opts), conn: cn,
		client: &kafka.Client{Addr: kafka.TCP(fc.Brokers...), Timeout: fc.RequestTimeout, Transport: cn.Transport}}
	src.opts.stopAtEnd = false
	return &Feed{src: src}, nil
}

// Topic returns the partials topic.
func (f *Feed) Topic() string { return f.src.cfg.Topics[0] }

// Group returns the publisher group.
func (f *Feed) Group() string { return f.src.cfg.Group }

// Check asks the cluster whether the partials topic exists, retrying
// transient failures within the retry budget. A topic that does not exist
// is an error naming it and how to create it (deid never creates topics).
// Assign checks once by itself; call Check to fail before anything starts.
func (f *Feed) Check(ctx context.Context) error {
	if err := kafkaconn.CheckPartialsTopic(ctx, &f.src.cfg.Config, f.src.client, f.Topic()); err != nil {
		return err
	}
	f.mu.Lock()
	f.checked = true
	f.mu.Unlock()
	return nil
}

// Assign blocks until this instance joins the next generation of the
// publisher group, or ctx is done, as Source.Assign does; the first call
// checks that the topic exists. Each assigned partition is read from the
// generation's start by a goroutine of its own until the generation ends.
// Not safe for concurrent use.
func (f *Feed) Assign(ctx context.Context) (pipeline.FeedGeneration, error) {
	f.mu.Lock()
	checked := f.checked
	f.mu.Unlock()
	if !checked {
		if err := f.Check(ctx); err != nil {
			return nil, err
		}
	}
	g, err := f.src.Assign(ctx)
	if err != nil {
		return nil, err
	}
	return f.start(g.(*generation)), nil
}

// Close leaves the publisher group, ending the current generation (its
// readers stop). Safe to call more than once.
func (f *Feed) Close() error { return f.src.Close() }

// feedGeneration is one generation of the publisher group: a reader
// goroutine per assigned partition sends decoded close records (or the
// error that stopped it) to items.
type feedGeneration struct {
	g     *generation
	parts []int32
	items chan feedItem
}

type feedItem struct {
	rec *pipeline.CloseRecord
	pos pipeline.FeedPosition
	err error
}

func (f *Feed) start(g *generation) *feedGeneration {
	fg := &feedGeneration{g: g, items: make(chan feedItem, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-g.done
		cancel()
	}()
	for _, id := range g.parts {
		fg.parts = append(fg.parts, id.Partition)
		start, explicit := g.committed[id], true
		if start < 0 {
			start, explicit = kafka.FirstOffset, false
		}
		go fg.read(ctx, f.src, id, start, explicit)
	}
	slices.Sort(fg.parts)
	return fg
}

// read reads one partials partition from start until ctx is done (the
// generation ended) or it fails, sending each close record to items.
func (fg *feedGeneration) read(ctx context.Context, s *Source, id pipeline.PartitionID, start int64, explicit bool) {
	r := newPartitionReader(&s.cfg, s.conn, s.opts.log.Named("partials"), id, nil)
	r.keyed = true
	defer r.Close()
	send := func(it feedItem) bool {
		select {
		case fg.items <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if err := r.open(ctx, start, explicit); err != nil {
		if ctx.Err() == nil {
			send(feedItem{err: fmt.Errorf("kafka: partials: %w", err)})
		}
		return
	}
	for {
		n, err := r.fetch(ctx)
		if n > 0 {
			r.retry.Reset()
			for i := range r.msgs {
				m := &r.msgs[i]
				pos := pipeline.FeedPosition{Partition: id.Partition, Offset: m.Offset}
				rec, derr := pipeline.DecodeCloseRecord(m.Value)
				if derr != nil {
					send(feedItem{pos: pos, err: fmt.Errorf("kafka: partials topic %q, partition %d, offset %d: %w; "+
						"the publisher stops rather than publish without it", id.Source, id.Partition, m.Offset, derr)})
					return
				}
				if !send(feedItem{rec: rec, pos: pos}) {
					return
				}
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			r.retry.Reset()
			continue
		}
		if err = r.recover(ctx, err); err != nil {
			if ctx.Err() == nil {
				send(feedItem{err: fmt.Errorf("kafka: partials: %w", err)})
			}
			return
		}
	}
}

// Partitions lists the assigned partials partitions, sorted (possibly
// none). The slice is the caller's.
func (fg *feedGeneration) Partitions() []int32 { return slices.Clone(fg.parts) }

// Done is closed when the generation ends.
func (fg *feedGeneration) Done() <-chan struct{} { return fg.g.done }

// Next returns the next close record of any assigned partition with its
// position; a partition's records come in offset order. It blocks until
// one is read, ctx is done (ctx.Err()), or the generation ends (an error
// wrapping ErrGenerationEnded). A record that does not decode is an error
// naming the topic, partition and offset, and so is a partition's read
// failure that retrying cannot fix; the partition's reader stops there.
// Not safe for concurrent use.
func (fg *feedGeneration) Next(ctx context.Context) (*pipeline.CloseRecord, pipeline.FeedPosition, error) {
	select {
	case <-fg.g.done:
		return nil, pipeline.FeedPosition{}, fg.ended()
	default:
	}
	select {
	case it := <-fg.items:
		return it.rec, it.pos, it.err
	case <-fg.g.done:
		return nil, pipeline.FeedPosition{}, fg.ended()
	case <-ctx.Done():
		return nil, pipeline.FeedPosition{}, ctx.Err()
	}
}

func (fg *feedGeneration) ended() error {
	return fmt.Errorf("kafka: partials topic %q, publisher group %q (generation %d): %w",
		fg.g.src.cfg.Topics[0], fg.g.gen.GroupID, fg.g.gen.ID, ErrGenerationEnded)
}

// Commit commits, for each partials partition, the offset a restart reads
// from, with this generation's id and member id, as Generation.Commit does:
// once the group has moved on the coordinator refuses it and the error
// wraps ErrGenerationEnded. Safe for concurrent use.
func (fg *feedGeneration) Commit(ctx context.Context, next map[int32]int64) error {
	c := make(map[pipeline.PartitionID]pipeline.Committed, len(next))
	for p, off := range next {
		c[pipeline.PartitionID{Source: fg.g.src.cfg.Topics[0], Partition: p}] = pipeline.Committed{Next: off}
	}
	return fg.g.Commit(ctx, c)
}
