package kafkadlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/mya/deid/internal/kafkaconn"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/deadletter"
)

// Header keys of a dead letter. The values are stable strings: the
// MalformedError's code, field and detail, and the record's position. The
// value repeats them as JSON (deadletter.Line).
const (
	HeaderReason          = "deid.reason"
	HeaderField           = "deid.field"
	HeaderDetail          = "deid.detail"
	HeaderSourceTopic     = "deid.source.topic"
	HeaderSourcePartition = "deid.source.partition"
	HeaderSourceOffset    = "deid.source.offset"
)

// TopicSuffix makes the default topic name from the consumer group:
// "<group>.dead-letters".
const TopicSuffix = ".dead-letters"

// Config configures the Kafka dead-letter sink.
type Config struct {
	// Kafka is the connection (brokers, TLS, SASL, timeouts, retries).
	// cmd/deid sets it from the kafka section.
	Kafka kafkaconn.Config `yaml:"-"`
	// Group is the consumer group, which names the default topic. cmd/deid
	// sets it from kafka.group.
	Group string `yaml:"-"`
	// Topic is the dead-letter topic; empty means "<group>.dead-letters".
	Topic string `yaml:"topic"`
	// KeepPayload keeps malformed records' bytes in their dead letters, in
	// file mode and in Kafka mode alike. It is a retention decision: off
	// (the default), a dead letter holds the record's position, reason,
	// length and SHA-256, and the source keeps the record for its own
	// retention; on, the dead letters hold raw input for as long as they
	// are kept. Even on, a record's bytes are withheld when its event_type
	// is or may be a message type, its workspace is excluded at that
	// moment, or it is too broken to tell (see deadletter.Retention).
	KeepPayload bool `yaml:"keep_payload"`
}

// DefaultConfig returns the defaults: the topic named after the group,
// "deid" as the kafka section's default group is.
func DefaultConfig() Config { return Config{Kafka: kafkaconn.DefaultConfig(), Group: "deid"} }

// Validate reports every problem, each prefixed with its YAML path.
func (c Config) Validate() error {
	var errs []error
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.Topic == "" && c.Group == "":
		errs = append(errs, errors.New(`dead_letters.topic: required when kafka.group is empty, e.g. "deid.dead-letters"`))
	case c.Topic != "" && !validTopic(c.Topic):
		errs = append(errs, fmt.Errorf("dead_letters.topic: %q is not a Kafka topic name (ASCII letters, digits, '.', '_', '-'; at most 249)", c.Topic))
	}
	return errors.Join(errs...)
}

// TopicName returns the dead-letter topic: Topic, or "<group>.dead-letters".
func (c Config) TopicName() string {
	if c.Topic != "" {
		return c.Topic
	}
	return c.Group + TopicSuffix
}

func validTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Option configures what code injects into the sink.
type Option func(*Sink)

// WithLogger sets the logger; kafka-go's account of batches and retries
// goes to it at debug level.
func WithLogger(l *zap.Logger) Option { return func(s *Sink) { s.log = l } }

// WithExcluded gives the sink the consent state: f tells whether a
// workspace's records are excluded at this moment. It is required with
// KeepPayload and must be safe for concurrent use.
func WithExcluded(f func(workspaceID []byte) bool) Option {
	return func(s *Sink) { s.keep.Excluded = f }
}

// maxKept bounds the bytes a dead letter keeps: base64 and the metadata
// must fit under the writer's BatchBytes, or the Flush would fail.
const maxKept = 600_000

// Sink produces dead letters to a Kafka topic. It implements
// pipeline.DeadLetterSink and is safe for concurrent use; each partition's
// writer is not.
type Sink struct {
	topic string
	w     *kafka.Writer
	// kafka holds the retry budget and backoff Flush retries with.
	kafka kafkaconn.Config
	log   *zap.Logger
	keep  deadletter.Retention
}

var _ pipeline.DeadLetterSink = (*Sink)(nil)

// New validates cfg and builds the sink. It reads the TLS files and the
// SASL password but does not connect until the first Flush. The topic must
// exist: deid never creates topics.
func New(cfg Config, opts ...Option) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr, err := cfg.Kafka.Transport()
	if err != nil {
		return nil, err
	}
	s := &Sink{topic: cfg.TopicName(), kafka: cfg.Kafka, log: zap.NewNop(),
		keep: deadletter.Retention{KeepPayload: cfg.KeepPayload, MaxPayload: maxKept}}
	for _, o := range opts {
		o(s)
	}
	if s.keep.KeepPayload && s.keep.Excluded == nil {
		return nil, errors.New("dead_letters.keep_payload: the dead-letter sink has no consent state to withhold excluded workspaces' records with (WithExcluded)")
	}
	log := s.log.Named("dead-letters")
	s.w = &kafka.Writer{
		Addr:      kafka.TCP(cfg.Kafka.Brokers...),
		Topic:     s.topic,
		Transport: tr,
		// A source partition's dead letters share a key, so they land on
		// one partition of the topic, in order.
		Balancer:     kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1 << 14,
		// Below the brokers' default message.max.bytes (1048588): a batch
		// is never refused as too large. A dead letter keeps at most
		// maxKept bytes of its record, so it always fits.
		BatchBytes:   1_000_000,
		BatchTimeout: time.Millisecond,
		WriteTimeout: cfg.Kafka.RequestTimeout,
		ReadTimeout:  cfg.Kafka.RequestTimeout,
		// kafka-go retries a failed batch a few times; Flush retries on
		// (kafkaconn.Retry) until kafka.retry_budget is spent, so that a
		// broker restart does not end the run.
		MaxAttempts:     3,
		WriteBackoffMin: cfg.Kafka.RetryBackoff,
		WriteBackoffMax: cfg.Kafka.RetryBackoffMax,
		Logger: kafka.LoggerFunc(func(format string, args ...any) {
			if ce := log.Check(zap.DebugLevel, ""); ce != nil {
				log.Debug(fmt.Sprintf(format, args...))
			}
		}),
	}
	return s, nil
}

// Topic returns the dead-letter topic.
func (s *Sink) Topic() string { return s.topic }

// Writer returns the dead-letter writer of partition id. Writers share the
// sink's connections.
func (s *Sink) Writer(id pipeline.PartitionID) (pipeline.DeadLetterWriter, error) {
	return &writer{s: s, key: []byte(id.String())}, nil
}

// Close releases the sink's connections. Flush every writer first: Close
// does not write what they buffer.
func (s *Sink) Close() error { return s.w.Close() }

// writer buffers one partition's dead letters until Flush.
type writer struct {
	s      *Sink
	key    []byte
	msgs   []kafka.Message
	closed bool
}

// Write buffers rec's dead letter: a deadletter.Line as JSON — position,
// reason, length and SHA-256, and the record's bytes only when KeepPayload
// and deadletter.Retention allow — with the reason and position as headers
// too. Nothing of rec.Value is referenced after it returns; nothing is
// sent until Flush.
func (w *writer) Write(rec pipeline.Record, reason *pipeline.MalformedError) error {
	if w.closed {
		return fmt.Errorf("dead letters to %s: writer of %s is closed", w.s.topic, w.key)
	}
	l := w.s.keep.Letter(rec, reason)
	// Marshal copies a kept Value (as base64).
	value, err := json.Marshal(&l)
	if err != nil {
		return fmt.Errorf("dead letters to %s: %w", w.s.topic, err)
	}
	w.msgs = append(w.msgs, kafka.Message{
		Key:   w.key,
		Value: value,
		Headers: []kafka.Header{
			{Key: HeaderReason, Value: []byte(l.Reason)},
			{Key: HeaderField, Value: []byte(l.Field)},
			{Key: HeaderDetail, Value: []byte(l.Detail)},
			{Key: HeaderSourceTopic, Value: []byte(rec.Pos.Source)},
			{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(rec.Pos.Partition), 10)},
			{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, rec.Pos.Offset, 10)},
		},
	})
	return nil
}

// Flush produces everything written so far and waits until every in-sync
// replica has it. Transient failures (a broker restarting, a leader moving)
// are retried for up to kafka.retry_budget, resending only what the broker
// did not take. On error the dead letters not taken stay buffered, so a
// later Flush sends them again (some may then appear twice: dead letters
// are delivered at least once). It blocks until the acknowledgements or
// ctx is done.
func (w *writer) Flush(ctx context.Context) error {
	if len(w.msgs) == 0 {
		return nil
	}
	n := len(w.msgs)
	err := kafkaconn.Retry(ctx, &w.s.kafka, func(ctx context.Context) error {
		err := w.s.w.WriteMessages(ctx, w.msgs...)
		if err != nil {
			w.keepFailed(err)
			w.s.log.Warn("producing dead letters failed; retrying", zap.String("topic", w.s.topic),
				zap.Int("messages", len(w.msgs)), zap.Error(err))
		}
		return err
	})
	if err != nil {
		var we kafka.WriteErrors
		if errors.As(err, &we) {
			for _, e := range we {
				if e != nil {
					err = fmt.Errorf("%d of %d failed, the first: %w", we.Count(), len(we), e)
					break
				}
			}
		}
		return fmt.Errorf("producing %d to %s: %w", n, w.s.topic, err)
	}
	clear(w.msgs)
	w.msgs = w.msgs[:0]
	return nil
}

// keepFailed drops from the buffer the messages a partly failed produce
// delivered, keeping those it did not.
func (w *writer) keepFailed(err error) {
	var we kafka.WriteErrors
	if !errors.As(err, &we) || len(we) != len(w.msgs) {
		return
	}
	kept := 0
	for i, e := range we {
		if e != nil {
			w.msgs[kept] = w.msgs[i]
			kept++
		}
	}
	clear(w.msgs[kept:])
	w.msgs = w.msgs[:kept]
}

// Close flushes (bounded by the request timeout) and releases the writer.
// Safe to call more than once.
func (w *writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), w.s.w.WriteTimeout+w.s.w.ReadTimeout)
	defer cancel()
	return w.Flush(ctx)
}
