package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/mya/deid/internal/kafkaconn"
)

// Start positions a Config accepts, for partitions the group has no
// committed offset for.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
)

// Offset-out-of-range policies a Config accepts.
const (
	// OutOfRangeFail returns an error naming the partition and the range:
	// records would otherwise be skipped silently.
	OutOfRangeFail = "fail"
	// OutOfRangeEarliest moves to the earliest offset still on the broker,
	// accepting that the records before it (deleted by retention) are lost.
	OutOfRangeEarliest = "earliest"
	// OutOfRangeLatest moves to the end of the partition, skipping
	// everything on it.
	OutOfRangeLatest = "latest"
)

// Config configures the connection to Kafka and the consumer group. It is
// the `kafka:` section of deid's configuration: the connection (brokers,
// client_id, tls, sasl, timeouts, retries; see kafkaconn), embedded inline
// so that its keys sit directly under `kafka.`, and the consumer's settings.
// The settings follower and the sample producer use the connection and the
// fetch settings; the sinks take the connection alone.
type Config struct {
	kafkaconn.Config `yaml:",inline"`

	// Topics are the event topics the group consumes.
	Topics []string `yaml:"topics"`
	// Group is the consumer group id; instances sharing it share the
	// partitions.
	Group string `yaml:"group"`

	// FetchMinBytes is how much data a fetch waits for (up to
	// FetchMaxWait) before the broker answers.
	FetchMinBytes int `yaml:"fetch_min_bytes"`
	// FetchMaxBytes caps one fetch of one partition; it is also the size of
	// each partition reader's buffer (it grows for a larger record).
	FetchMaxBytes int `yaml:"fetch_max_bytes"`
	// FetchMaxWait is how long the broker may hold a fetch waiting for
	// FetchMinBytes.
	FetchMaxWait time.Duration `yaml:"fetch_max_wait"`
	// RecordParser is what reads a fetch's records: "deid" (the default:
	// one request per fetch, values sliced in place from the response or
	// from a compressed batch decompressed, kafka-go for control batches
	// and older formats) or "kafka-go" (kafka-go's batch API for every
	// fetch).
	RecordParser string `yaml:"record_parser"`

	// SessionTimeout is how long the group coordinator waits for a
	// heartbeat before it drops this member and rebalances.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// RebalanceTimeout is how long the coordinator waits for every member
	// to rejoin during a rebalance.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`

	// Start is where a partition without a committed offset (and without
	// a checkpoint) starts: "earliest" or "latest".
	Start string `yaml:"start"`
	// OffsetOutOfRange is what happens when a partition's next offset is
	// no longer (or not yet) on the broker: "fail" (the default: never
	// skip records silently), "earliest" or "latest".
	OffsetOutOfRange string `yaml:"offset_out_of_range"`

	// ScaleOut makes this instance one of several that form one job
	// (contract §13): its workers send close records to PartialsTopic and
	// the publisher group reads them there. Without it one instance owns
	// the group and publishes itself.
	ScaleOut bool `yaml:"scale_out"`
	// PartialsTopic is the topic of close records in a job of several
	// instances; "" means "<group>.partials". The operator creates it, as
	// every topic.
	PartialsTopic string `yaml:"partials_topic"`
	// PublisherGroup is the consumer group of the partials topic; ""
	// means "<group>.publish".
	PublisherGroup string `yaml:"publisher_group"`
}

// Partials returns the partials topic: PartialsTopic, or "<group>.partials".
func (c Config) Partials() string {
	if c.PartialsTopic != "" {
		return c.PartialsTopic
	}
	return c.Group + ".partials"
}

// Publishers returns the publisher group: PublisherGroup, or "<group>.publish".
func (c Config) Publishers() string {
	if c.PublisherGroup != "" {
		return c.PublisherGroup
	}
	return c.Group + ".publish"
}

// DefaultConfig returns the defaults: topic "events", group "deid", fetches
// of up to 1 MiB waiting at most 500ms, a 30s session, start at the earliest
// offset, fail on an out-of-range offset, and retries for up to a minute.
// Brokers must be set.
func DefaultConfig() Config {
	return Config{
		Config:           kafkaconn.DefaultConfig(),
		Topics:           []string{"events"},
		Group:            "deid",
		FetchMinBytes:    1,
		FetchMaxBytes:    1 << 20,
		FetchMaxWait:     500 * time.Millisecond,
		RecordParser:     ParserDeid,
		SessionTimeout:   30 * time.Second,
		RebalanceTimeout: 30 * time.Second,
		Start:            StartEarliest,
		OffsetOutOfRange: OutOfRangeFail,
	}
}

// Validate reports every problem, each prefixed with its YAML path. It
// checks the configuration only: it neither connects nor reads the secret
// or certificate files (New does).
func (c Config) Validate() error {
	errs := c.validateClient()
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New(`kafka.topics: at least one event topic is required, e.g. ["events"]`))
	}
	for i, t := range c.Topics {
		if err := validTopic(t); err != nil {
			errs = append(errs, fmt.Errorf("kafka.topics[%d]: %w", i, err))
		}
		for _, u := range c.Topics[:i] {
			if u == t {
				errs = append(errs, fmt.Errorf("kafka.topics[%d]: %q is listed twice; list each topic once", i, t))
				break
			}
		}
	}
	if c.Group == "" {
		errs = append(errs, errors.New(`kafka.group: a consumer group id is required, e.g. "deid"`))
	}
	if c.SessionTimeout < time.Second || c.SessionTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("kafka.session_timeout: must be between 1s and 5m, e.g. 30s (got %s)", c.SessionTimeout))
	}
	if c.RebalanceTimeout < time.Second {
		errs = append(errs, fmt.Errorf("kafka.rebalance_timeout: must be at least 1s, e.g. 30s (got %s)", c.RebalanceTimeout))
	}
	if c.PartialsTopic != "" {
		if err := validTopic(c.PartialsTopic); err != nil {
			errs = append(errs, fmt.Errorf("kafka.partials_topic: %w", err))
		}
	} else if c.Group != "" {
		if err := validTopic(c.Partials()); err != nil {
			errs = append(errs, fmt.Errorf("kafka.partials_topic: the default %q is no topic name: %w; set kafka.partials_topic", c.Partials(), err))
		}
	}
	for _, t := range c.Topics {
		if t == c.Partials() {
			errs = append(errs, fmt.Errorf("kafka.partials_topic: %q is also an event topic (kafka.topics); close records need a topic of their own", t))
		}
	}
	if c.PublisherGroup != "" && c.PublisherGroup == c.Group {
		errs = append(errs, fmt.Errorf("kafka.publisher_group: %q is also kafka.group; the publishers need a group of their own, e.g. %q", c.Group, c.Group+".publish"))
	}
	if c.Start != StartEarliest && c.Start != StartLatest {
		errs = append(errs, fmt.Errorf("kafka.start: must be %q or %q (got %q)", StartEarliest, StartLatest, c.Start))
	}
	return errors.Join(errs...)
}

// validateClient checks what every reader of deid needs, joining no group
// or one: the connection (kafkaconn) and the fetch settings.
func (c Config) validateClient() []error {
	var errs []error
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.FetchMinBytes < 1 {
		errs = append(errs, fmt.Errorf("kafka.fetch_min_bytes: must be at least 1 (got %d)", c.FetchMinBytes))
	}
	if c.FetchMaxBytes < 1<<10 || c.FetchMaxBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("kafka.fetch_max_bytes: must be between 1024 and 1073741824, e.g. 1048576 (got %d)", c.FetchMaxBytes))
	} else if c.FetchMinBytes > c.FetchMaxBytes {
		errs = append(errs, fmt.Errorf("kafka.fetch_min_bytes: must not exceed fetch_max_bytes (%d > %d)", c.FetchMinBytes, c.FetchMaxBytes))
	}
	if c.FetchMaxWait < time.Millisecond || c.FetchMaxWait > time.Minute {
		errs = append(errs, fmt.Errorf("kafka.fetch_max_wait: must be between 1ms and 1m, e.g. 500ms (got %s)", c.FetchMaxWait))
	}
	switch c.RecordParser {
	case ParserDeid, ParserKafkaGo:
	default:
		errs = append(errs, fmt.Errorf("kafka.record_parser: must be %q or %q (got %q)", ParserDeid, ParserKafkaGo, c.RecordParser))
	}
	switch c.OffsetOutOfRange {
	case OutOfRangeFail, OutOfRangeEarliest, OutOfRangeLatest:
	default:
		errs = append(errs, fmt.Errorf("kafka.offset_out_of_range: must be %q, %q or %q (got %q)",
			OutOfRangeFail, OutOfRangeEarliest, OutOfRangeLatest, c.OffsetOutOfRange))
	}
	return errs
}

// validTopic applies Kafka's rules for topic names.
func validTopic(t string) error {
	if t == "" {
		return errors.New("a topic name must not be empty")
	}
	if len(t) > 249 {
		return fmt.Errorf("topic name %.20q… is longer than 249 characters", t)
	}
	if t == "." || t == ".." {
		return fmt.Errorf("%q is not a valid topic name", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q may only contain ASCII letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}

// ValidateConnection reports the problems of the connection part of the
// configuration (brokers, client_id, tls, sasl, timeouts, retries) and of
// the fetch settings only: what a client that joins no group needs, such
// as the settings follower. A client that only produces checks the
// connection alone (kafkaconn.Config.Validate).
func (c Config) ValidateConnection() error { return errors.Join(c.validateClient()...) }
