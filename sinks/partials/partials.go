package partials

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/mya/deid/internal/kafkaconn"
	"github.com/mya/deid/pipeline"
)

// Option configures what code injects into the sink.
type Option func(*Sink)

// WithLogger sets the logger: retries are logged as warnings, kafka-go's
// account of batches at debug level.
func WithLogger(l *zap.Logger) Option { return func(s *Sink) { s.log = l } }

// Sink produces close records to the partials topic. It implements
// pipeline.CloseSink and is safe for concurrent use.
type Sink struct {
	topic  string
	cfg    kafkaconn.Config
	w      *kafka.Writer
	client *kafka.Client
	log    *zap.Logger
	closed atomic.Bool
}

var _ pipeline.CloseSink = (*Sink)(nil)

// New validates the connection and the topic's name and builds the sink.
// It reads the TLS files and the SASL password but does not connect: Check
// does, and the first Send.
func New(cfg kafkaconn.Config, topic string, opts ...Option) (*Sink, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := validTopic(topic); err != nil {
		errs = append(errs, fmt.Errorf("kafka.partials_topic: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cn, err := cfg.Connect()
	if err != nil {
		return nil, err
	}
	s := &Sink{topic: topic, cfg: cfg, log: zap.NewNop(),
		client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.RequestTimeout, Transport: cn.Transport}}
	for _, o := range opts {
		o(s)
	}
	log := s.log.Named("partials")
	s.w = &kafka.Writer{
		Addr:      kafka.TCP(cfg.Brokers...),
		Topic:     topic,
		Transport: cn.Transport,
		// The dataset is the key: its records land on one partition, in
		// order (the hash Java clients use, so other tools agree).
		Balancer:     kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1000,
		// Below the brokers' default message.max.bytes (1048588).
		BatchBytes:   1_000_000,
		BatchTimeout: time.Millisecond,
		WriteTimeout: cfg.RequestTimeout,
		ReadTimeout:  cfg.RequestTimeout,
		// kafka-go retries a failed batch a few times; Send retries on
		// (kafkaconn.Retry) until kafka.retry_budget is spent.
		MaxAttempts:     3,
		WriteBackoffMin: cfg.RetryBackoff,
		WriteBackoffMax: cfg.RetryBackoffMax,
		Logger: kafka.LoggerFunc(func(format string, args ...any) {
			if ce := log.Check(zap.DebugLevel, ""); ce != nil {
				log.Debug(fmt.Sprintf(format, args...))
			}
		}),
	}
	return s, nil
}

// Topic returns the partials topic.
func (s *Sink) Topic() string { return s.topic }

// Check asks the cluster whether the partials topic exists, retrying
// transient failures within kafka.retry_budget. A topic that does not exist
// is an error naming it and how to create it: deid never creates topics,
// and a job must not start its workers with nowhere to send their closes.
// It blocks until the cluster answers or ctx is done.
func (s *Sink) Check(ctx context.Context) error {
	return kafkaconn.CheckPartialsTopic(ctx, &s.cfg, s.client, s.topic)
}

// Send produces recs, each keyed by its dataset, and returns once every
// in-sync replica has acknowledged all of them. Transient failures are
// retried within kafka.retry_budget; after a partial failure the records
// of each dataset from its first undelivered one on are sent again, so
// their order holds (some arrive twice). It sets no field of recs. Safe for
// concurrent use; it blocks until the acknowledgements, a failure, or ctx
// is done.
func (s *Sink) Send(ctx context.Context, recs []pipeline.CloseRecord) error {
	if s.closed.Load() {
		// Not the writer's io.ErrClosedPipe, which Retry would take for a
		// broken connection and retry for the whole budget.
		return fmt.Errorf("partials: sending to %q: the sink is closed", s.topic)
	}
	if len(recs) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(recs))
	for i := range recs {
		r := recs[i]
		v, err := pipeline.EncodeCloseRecord(&r)
		if err != nil {
			return fmt.Errorf("partials: close record of %s, %s: %w", r.Dataset, r.Partition, err)
		}
		msgs[i] = kafka.Message{Key: []byte(r.Dataset), Value: v}
	}
	n := len(msgs)
	err := kafkaconn.Retry(ctx, &s.cfg, func(ctx context.Context) error {
		err := s.w.WriteMessages(ctx, msgs...)
		if err != nil {
			msgs = resend(msgs, err)
			err = summarize(err)
			if kafkaconn.Transient(err) && ctx.Err() == nil {
				s.log.Warn("producing close records failed; retrying", zap.String("topic", s.topic),
					zap.Int("records", len(msgs)), zap.Error(err))
			}
		}
		return err
	})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("partials: producing %d close records to %q on %s: %w", n, s.topic, strings.Join(s.cfg.Brokers, ","), err)
	}
	return nil
}

// resend returns what to send again after a produce failed with err: for
// each key, every message from the first one not delivered on (delivered
// ones after it too, so that the copies read last keep the order), or all
// of them when err does not say which failed.
func resend(msgs []kafka.Message, err error) []kafka.Message {
	var we kafka.WriteErrors
	if !errors.As(err, &we) || len(we) != len(msgs) {
		return msgs
	}
	failed := map[string]bool{}
	kept := msgs[:0:0]
	for i, m := range msgs {
		if we[i] != nil {
			failed[string(m.Key)] = true
		}
		if failed[string(m.Key)] {
			kept = append(kept, m)
		}
	}
	return kept
}

// writeErrors is kafka-go's WriteErrors told in one line: how many
// records failed, and the first failure.
type writeErrors struct {
	we    kafka.WriteErrors
	first error
}

func (e writeErrors) Error() string {
	return fmt.Sprintf("%d of %d records failed, the first: %v", e.we.Count(), len(e.we), e.first)
}

// Unwrap lets kafkaconn.Transient see the WriteErrors and errors.Is the
// first failure.
func (e writeErrors) Unwrap() []error { return []error{e.we, e.first} }

// summarize shortens a WriteErrors, which lists every record's failure.
func summarize(err error) error {
	we, ok := err.(kafka.WriteErrors)
	if !ok {
		return err
	}
	for _, e := range we {
		if e != nil {
			return writeErrors{we, e}
		}
	}
	return err
}

// Close releases the sink's connections; Send fails from then on. Send
// returns only when its records are acknowledged, so nothing is left to
// write. Safe to call more than once.
func (s *Sink) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.w.Close()
}

// validTopic applies Kafka's rules for topic names.
func validTopic(t string) error {
	if t == "" {
		return errors.New("a topic name must not be empty")
	}
	if len(t) > 249 || t == "." || t == ".." {
		return fmt.Errorf("%.40q is not a valid topic name", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q may only contain ASCII letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}
