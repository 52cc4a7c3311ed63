package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Producer loads events and settings into Kafka for `deid gen --brokers`:
// events to an explicit partition of the events topic, settings to the
// settings topic partitioned by key (the workspace id) with Kafka's own
// murmur2 partitioner, as the platform's Java producers do. It buffers
// records and writes them in large batches, each acknowledged by all
// in-sync replicas; order is kept within each partition. It satisfies the
// generator's gen.Writer. Not safe for concurrent use.
type Producer struct {
	events, settings *buffered
	closed           bool
}

// Producer buffer bounds: a flush happens when either is reached.
const (
	produceBufferRecords = 16 << 10
	produceBufferBytes   = 8 << 20
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
	cn, err := cfg.connect()
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

// Event buffers line as an event on partition of the events topic, keyed
// by key (which may be nil). key and line are copied. It returns the error
// of a flush it triggered.
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
// error of a flush it triggered.
func (p *Producer) Setting(key, line []byte) error {
	if p.closed {
		return errors.New("kafka: producer: closed")
	}
	if p.settings == nil {
		return errors.New("kafka: producer: no settings topic")
	}
	return p.settings.add(-1, key, line)
}

// Flush writes everything buffered and waits for the acknowledgements.
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

// buffered holds one topic's pending messages, their bytes in one arena.
type buffered struct {
	w     *kafka.Writer
	msgs  []kafka.Message
	arena []byte
	mu    sync.Mutex
}

func newBuffered(cfg *Config, cn *conn, topic string, b kafka.Balancer, log *zap.Logger) *buffered {
	return &buffered{w: &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        topic,
		Balancer:     b,
		Transport:    cn.transport,
		RequiredAcks: kafka.RequireAll,
		BatchSize:    produceBufferRecords,
		BatchBytes:   produceBufferBytes + 1<<20,
		BatchTimeout: 5 * time.Millisecond,
		WriteTimeout: cfg.RequestTimeout,
		ReadTimeout:  cfg.RequestTimeout,
		MaxAttempts:  10,
		// kafka-go's own account of batches and retries, for debugging.
		Logger: debugLogger{log.Named("producer")},
	}}
}

func (b *buffered) add(partition int, key, value []byte) error {
	b.mu.Lock()
	if b.arena == nil {
		b.arena = make([]byte, 0, produceBufferBytes)
	}
	// Copies go to the arena while it has room; past that, on their own.
	m := kafka.Message{Partition: partition, Key: b.copy(key), Value: b.copy(value)}
	b.msgs = append(b.msgs, m)
	full := len(b.msgs) >= produceBufferRecords || len(b.arena) >= produceBufferBytes
	b.mu.Unlock()
	if full {
		return b.flush(context.Background())
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

// flush writes the buffered messages and waits for them to be acknowledged.
// After a failure the buffer is dropped (the messages may be partly
// written) and a fresh arena is used, since the writer may still hold the
// old one.
func (b *buffered) flush(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.msgs) == 0 {
		return nil
	}
	err := b.w.WriteMessages(ctx, b.msgs...)
	n := len(b.msgs)
	clear(b.msgs)
	b.msgs = b.msgs[:0]
	if err != nil {
		b.arena = nil
		return fmt.Errorf("kafka: producing %d records to %s: %w", n, b.w.Topic, firstWriteError(err))
	}
	b.arena = b.arena[:0]
	return nil
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
