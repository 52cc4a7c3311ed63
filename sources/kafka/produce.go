package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/mya/deid/internal/kafkaconn"
)

// Producer loads events and settings into Kafka for `deid gen --brokers`:
// events to an explicit partition of the events topic, settings to the
// settings topic partitioned by key (the workspace id) with Kafka's own
// murmur2 partitioner, as the platform's Java producers do. It buffers
// records and writes them in large batches, each acknowledged by all
// in-sync replicas, one flush per topic in flight while the next fills.
// Order is kept within each partition; the two topics are flushed
// independently (Flush and Close do the settings first). It satisfies the
// generator's gen.Writer. Not safe for concurrent use.
type Producer struct {
	events, settings *buffered
	closed           bool
}

// Producer buffer bounds: a flush happens when either is reached.
const (
	produceBufferRecords = 16 << 10
	produceBufferBytes   = 8 << 20
	// produceBatchBytes caps one record batch (one partition's share of a
	// request) below the brokers' default message.max.bytes (1048588), so
	// no batch is refused as too large.
	produceBatchBytes = 1_000_000
)

// NewProducer builds a producer writing events to eventsTopic and settings
// to settingsTopic (either may be empty when unused). Only the connection
// part of cfg is used. It does not connect until the first flush. The
// topics must exist (brokers are expected to have topic auto-creation off).
// WithLogger receives kafka-go's account of batches and retries at debug
// level.
func NewProducer(cfg Config, eventsTopic, settingsTopic string, opts ...Option) (*Producer, error) {
	errs := cfg.validateClient()
	if eventsTopic == "" && settingsTopic == "" {
		errs = append(errs, errors.New("kafka: producer: name the events topic, the settings topic, or both"))
	}
	for _, t := range []string{eventsTopic, settingsTopic} {
		if t != "" {
			if err := validTopic(t); err != nil {
				errs = append(errs, fmt.Errorf("kafka: producer: %w", err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cn, err := cfg.Connect()
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	p := &Producer{}
	if eventsTopic != "" {
		p.events = newBuffered(&cfg, cn, eventsTopic, explicitPartition{}, o.log)
	}
	if settingsTopic != "" {
		p.settings = newBuffered(&cfg, cn, settingsTopic, kafka.Murmur2Balancer{}, o.log)
	}
	return p, nil
}

// Event buffers line as an event on partition (which must exist) of the
// events topic, keyed by key (which may be nil). key and line are copied.
// It returns the failure of an earlier flush once that is known; the
// producer is then unusable.
func (p *Producer) Event(partition int, key, line []byte) error {
	if p.closed {
		return errors.New("kafka: producer: closed")
	}
	if p.events == nil {
		return errors.New("kafka: producer: no events topic")
	}
	if partition < 0 {
		return fmt.Errorf("kafka: producer: partition %d of %s is negative", partition, p.events.w.Topic)
	}
	return p.events.add(partition, key, line)
}

// Setting buffers line as a settings record keyed by key (the workspace
// id); a nil line is a tombstone. key and line are copied. It returns the
// failure of an earlier flush once that is known.
func (p *Producer) Setting(key, line []byte) error {
	if p.closed {
		return errors.New("kafka: producer: closed")
	}
	if p.settings == nil {
		return errors.New("kafka: producer: no settings topic")
	}
	return p.settings.add(-1, key, line)
}

// Flush writes everything buffered and waits for the acknowledgements, or
// for ctx.
func (p *Producer) Flush(ctx context.Context) error {
	var errs []error
	// Settings first: a reader that sees an event should find its
	// workspace's settings already there.
	if p.settings != nil {
		errs = append(errs, p.settings.flush(ctx))
	}
	if p.events != nil {
		errs = append(errs, p.events.flush(ctx))
	}
	return errors.Join(errs...)
}

// Close flushes and releases the producer. Safe to call more than once.
func (p *Producer) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	err := p.Flush(context.Background())
	for _, b := range []*buffered{p.settings, p.events} {
		if b != nil {
			err = errors.Join(err, b.w.Close())
		}
	}
	return err
}

// explicitPartition sends each message to the partition it names.
type explicitPartition struct{}

func (explicitPartition) Balance(msg kafka.Message, partitions ...int) int { return msg.Partition }

// buffered holds one topic's pending messages, their bytes in one arena,
// and writes them with a kafka-go Writer, one flush in flight at a time:
// while a flush waits for its acknowledgements the caller fills the other
// buffer (double buffering). Order is kept per partition: flushes are
// written one after the other, and kafka-go writes a partition's batches in
// order. (kafka-go's Async mode, with every batch in flight at once, was
// measured 4× slower against a local broker, and timed out.)
type buffered struct {
	w     *kafka.Writer
	msgs  []kafka.Message
	arena []byte
	// inflight carries the result of the flush in flight; nil when none.
	inflight chan error
	// spare is the other buffer, free once the flush in flight is done.
	spareMsgs    []kafka.Message
	spareArena   []byte
	pendingMsgs  []kafka.Message
	pendingArena []byte
	// err is the first failure; every later call returns it.
	err error
}

func newBuffered(cfg *Config, cn *kafkaconn.Conn, topic string, bal kafka.Balancer, log *zap.Logger) *buffered {
	return &buffered{w: &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        topic,
		Balancer:     bal,
		Transport:    cn.Transport,
		RequiredAcks: kafka.RequireAll,
		BatchSize:    produceBufferRecords,
		BatchBytes:   produceBatchBytes,
		BatchTimeout: time.Millisecond,
		WriteTimeout: cfg.RequestTimeout,
		ReadTimeout:  cfg.RequestTimeout,
		MaxAttempts:  10,
		// kafka-go's own account of batches and retries, for debugging.
		Logger: debugLogger{log.Named("producer")},
	}}
}

func (b *buffered) add(partition int, key, value []byte) error {
	if b.err != nil {
		return b.err
	}
	if b.arena == nil {
		b.arena = make([]byte, 0, produceBufferBytes)
	}
	b.msgs = append(b.msgs, kafka.Message{Partition: partition, Key: b.copy(key), Value: b.copy(value)})
	if len(b.msgs) >= produceBufferRecords || len(b.arena) >= produceBufferBytes {
		return b.send(context.Background())
	}
	return nil
}

// copy keeps nil as nil (a tombstone), else copies into the arena.
func (b *buffered) copy(p []byte) []byte {
	if p == nil {
		return nil
	}
	if len(b.arena)+len(p) > cap(b.arena) {
		return append([]byte{}, p...)
	}
	start := len(b.arena)
	b.arena = append(b.arena, p...)
	return b.arena[start:len(b.arena):len(b.arena)]
}

// wait waits for the flush in flight, if any, and recycles its buffer.
func (b *buffered) wait(ctx context.Context) error {
	if b.inflight == nil {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-b.inflight:
		b.inflight = nil
		if err != nil {
			// The writer may still hold the failed buffer: drop it.
			b.pendingMsgs, b.pendingArena = nil, nil
			b.err = err
			return err
		}
		clear(b.pendingMsgs)
		b.spareMsgs, b.spareArena = b.pendingMsgs[:0], b.pendingArena[:0]
		b.pendingMsgs, b.pendingArena = nil, nil
		return nil
	}
}

// send waits for the previous flush, then starts writing the buffered
// messages and switches to the other buffer.
func (b *buffered) send(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	if err := b.wait(ctx); err != nil {
		return err
	}
	if len(b.msgs) == 0 {
		return nil
	}
	msgs := b.msgs
	b.pendingMsgs, b.pendingArena = b.msgs, b.arena
	b.msgs, b.arena = b.spareMsgs, b.spareArena
	b.spareMsgs, b.spareArena = nil, nil
	done := make(chan error, 1)
	b.inflight = done
	go func() {
		// Not ctx: the writer keeps the buffer until it is done with it.
		err := b.w.WriteMessages(context.Background(), msgs...)
		if err != nil {
			err = fmt.Errorf("kafka: producing %d records to %s: %w", len(msgs), b.w.Topic, firstWriteError(err))
		}
		done <- err
	}()
	return nil
}

// flush writes what is buffered and waits until it is acknowledged.
func (b *buffered) flush(ctx context.Context) error {
	if err := b.send(ctx); err != nil {
		return err
	}
	return b.wait(ctx)
}

// firstWriteError reduces kafka-go's per-message WriteErrors to the first.
func firstWriteError(err error) error {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil {
				return fmt.Errorf("%d of %d records failed, the first: %w", we.Count(), len(we), e)
			}
		}
	}
	return err
}
