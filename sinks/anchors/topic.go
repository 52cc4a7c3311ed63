package anchors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	kafka "github.com/segmentio/kafka-go"

	"github.com/mya/deid/internal/kafkaconn"
)

// Topic produces anchor lines to a Kafka topic (one message per line, the
// line's JSON as its value, its kind and name as its key), each
// acknowledged by every in-sync replica before Anchor returns. The topic
// must exist with infinite retention (retention.ms=-1, not compacted):
// deid never creates topics. It implements Anchorer; safe for concurrent
// use.
type Topic struct {
	topic string
	w     *kafka.Writer
	// kafka holds the retry budget and backoff Anchor retries with.
	kafka kafkaconn.Config
	now   func() time.Time
}

var _ Anchorer = (*Topic)(nil)

// NewTopic returns the anchorer of topic, connecting through the kafka
// section's settings (brokers, TLS, SASL, timeouts). It does not connect
// until the first Anchor.
func NewTopic(conn kafkaconn.Config, topic string) (*Topic, error) {
	if err := conn.Validate(); err != nil {
		return nil, fmt.Errorf("anchors.topic needs the kafka connection settings: %w", err)
	}
	if !validTopic(topic) {
		return nil, fmt.Errorf("anchors.topic: %q is not a Kafka topic name (ASCII letters, digits, '.', '_', '-'; at most 249)", topic)
	}
	tr, err := conn.Transport()
	if err != nil {
		return nil, err
	}
	return &Topic{topic: topic, kafka: conn, now: time.Now, w: &kafka.Writer{
		Addr:      kafka.TCP(conn.Brokers...),
		Topic:     topic,
		Transport: tr,
		// A chain's lines share a key, so they stay in order on one
		// partition.
		Balancer:        kafka.Murmur2Balancer{},
		RequiredAcks:    kafka.RequireAll,
		BatchTimeout:    time.Millisecond,
		WriteTimeout:    conn.RequestTimeout,
		ReadTimeout:     conn.RequestTimeout,
		MaxAttempts:     3,
		WriteBackoffMin: conn.RetryBackoff,
		WriteBackoffMax: conn.RetryBackoffMax,
	}}, nil
}

// Anchor produces l, its Time set to now when zero, and waits for every
// in-sync replica. Transient failures are retried within kafka.retry_budget.
func (t *Topic) Anchor(ctx context.Context, l Line) error {
	if l.Time.IsZero() {
		l.Time = t.now()
	}
	l.Time = l.Time.UTC()
	b, err := json.Marshal(&l)
	if err != nil {
		return err
	}
	msg := kafka.Message{Key: []byte(l.Kind + " " + l.Name), Value: b}
	err = kafkaconn.Retry(ctx, &t.kafka, func(ctx context.Context) error { return t.w.WriteMessages(ctx, msg) })
	if err != nil {
		var we kafka.WriteErrors
		if errors.As(err, &we) && len(we) == 1 && we[0] != nil {
			err = we[0]
		}
		return fmt.Errorf("anchors: producing to %s: %w", t.topic, err)
	}
	return nil
}

// Close releases the connections.
func (t *Topic) Close() error { return t.w.Close() }

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
