package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	kafka "github.com/segmentio/kafka-go"

	"github.com/mya/deid/internal/kafkaconn"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

// BareConsumerCommand is the deid-bench subcommand that runs BareConsumer.
const BareConsumerCommand = "bare-consumer"

// ConsumerConfig says what the bare consumer reads.
type ConsumerConfig struct {
	Brokers []string
	Topic   string
	Group   string
}

// Args are deid-bench's arguments to run the bare consumer on c as a child
// process; ParseConsumerArgs reads them back.
func (c ConsumerConfig) Args() []string {
	return []string{BareConsumerCommand, "--brokers", strings.Join(c.Brokers, ","), "--topic", c.Topic, "--group", c.Group}
}

// ParseConsumerArgs reads the bare consumer's arguments (after the
// subcommand's name).
func ParseConsumerArgs(args []string) (ConsumerConfig, error) {
	var c ConsumerConfig
	fs := flag.NewFlagSet(BareConsumerCommand, flag.ContinueOnError)
	brokers := fs.String("brokers", "", "Kafka brokers, comma-separated")
	fs.StringVar(&c.Topic, "topic", "", "the topic to read to its end offsets")
	fs.StringVar(&c.Group, "group", "", "the consumer group to join (a fresh one reads from the start)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%s: unexpected argument %q", BareConsumerCommand, fs.Arg(0))
	}
	if *brokers == "" || c.Topic == "" || c.Group == "" {
		return c, fmt.Errorf("%s: --brokers, --topic and --group are required", BareConsumerCommand)
	}
	c.Brokers = strings.Split(*brokers, ",")
	return c, nil
}

// ConsumeCounts is what the bare consumer read.
type ConsumeCounts struct {
	Records    int64 `json:"records"`
	Bytes      int64 `json:"value_bytes"`
	Partitions int   `json:"partitions"`
	Fetches    int64 `json:"fetches"`
}

// parseConsumeCounts reads the counts the bare consumer prints.
func parseConsumeCounts(stdout string) (ConsumeCounts, error) {
	var c ConsumeCounts
	if err := json.Unmarshal([]byte(stdout), &c); err != nil {
		return c, fmt.Errorf("the bare consumer's counts: %w: %.200q", err, stdout)
	}
	return c, nil
}

// BareConsumer is the floor under deid in Kafka mode: it reads c.Topic to
// the end offsets it finds, through the same kafka-go API as deid's Kafka
// source (sources/kafka) with the same settings (deid's defaults), and does
// nothing with the records but count them and sum their values' lengths.
// It joins c.Group as a kafka-go ConsumerGroup member and takes the first
// generation's assignment; each assigned partition is read by its own
// goroutine, as deid runs one worker per partition, over a Conn to the
// partition's leader, one batch read (Seek, ReadBatchWith with deid's
// min/max bytes and max wait) at a time, each record's value read into a
// fetch-sized buffer as deid's reader does, through connections dialed as
// deid dials them (kafkaconn.BufferedDial). It commits nothing.
func BareConsumer(ctx context.Context, c ConsumerConfig) (ConsumeCounts, error) {
	kc := kafkasrc.DefaultConfig()
	dialer := &kafka.Dialer{ClientID: "deid-bench", Timeout: kc.DialTimeout, DialFunc: kafkaconn.BufferedDial(30 * time.Second)}
	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:      c.Group,
		Brokers: c.Brokers,
		Dialer:  dialer,
		Topics:  []string{c.Topic},
		// As deid's source: a tenth of the session, between 100ms and 3s.
		HeartbeatInterval:      min(max(kc.SessionTimeout/10, 100*time.Millisecond), 3*time.Second),
		SessionTimeout:         kc.SessionTimeout,
		RebalanceTimeout:       kc.RebalanceTimeout,
		JoinGroupBackoff:       kc.RetryBackoffMax,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 10 * time.Second,
		StartOffset:            kafka.FirstOffset,
		Timeout:                kc.RequestTimeout,
	})
	if err != nil {
		return ConsumeCounts{}, err
	}
	defer g.Close()
	gen, err := nextGeneration(ctx, g, kc.RetryBudget)
	if err != nil {
		return ConsumeCounts{}, fmt.Errorf("joining group %s: %w", c.Group, err)
	}
	parts := gen.Assignments[c.Topic]
	counts := make([]ConsumeCounts, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, a := range parts {
		wg.Go(func() { counts[i], errs[i] = readPartition(ctx, dialer, c.Brokers[0], c.Topic, a.ID, &kc) })
	}
	wg.Wait()
	total := ConsumeCounts{Partitions: len(parts)}
	for _, n := range counts {
		total.Records += n.Records
		total.Bytes += n.Bytes
		total.Fetches += n.Fetches
	}
	return total, errors.Join(errs...)
}

// nextGeneration waits for the group's first generation, retrying what
// deid's source retries (the coordinator loading or moving, a rebalance) for
// up to budget.
func nextGeneration(ctx context.Context, g *kafka.ConsumerGroup, budget time.Duration) (*kafka.Generation, error) {
	deadline := time.Now().Add(budget)
	for {
		gen, err := g.Next(ctx)
		if err == nil {
			return gen, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) || !retriable(err) {
			return nil, err
		}
	}
}

// retriable tells whether a failure to join is worth another try.
func retriable(err error) bool {
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary() || errors.Is(err, kafka.RebalanceInProgress)
	}
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.As(err, &ne)
}

// readPartition reads one partition from its first offset to the end offset
// it finds, as deid's partition reader does with StopAtEnd.
func readPartition(ctx context.Context, d *kafka.Dialer, boot, topic string, id int, kc *kafkasrc.Config) (ConsumeCounts, error) {
	var c ConsumeCounts
	conn, err := d.DialLeader(ctx, "tcp", boot, topic, id)
	if err != nil {
		return c, fmt.Errorf("%s[%d]: %w", topic, id, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetDeadline(time.Now().Add(kc.RequestTimeout))
	next, end, err := conn.ReadOffsets()
	if err != nil {
		return c, fmt.Errorf("%s[%d]: offsets: %w", topic, id, err)
	}
	arena := make([]byte, kc.FetchMaxBytes)
	for next < end {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		conn.SetDeadline(time.Now().Add(kc.FetchMaxWait + kc.RequestTimeout))
		if _, err := conn.Seek(next, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
			return c, fmt.Errorf("%s[%d]: seeking to %d: %w", topic, id, next, err)
		}
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: kc.FetchMinBytes, MaxBytes: kc.FetchMaxBytes,
			MaxWait: kc.FetchMaxWait})
		c.Fetches++
		n, used, grow := 0, 0, 0
		var readErr error
		for {
			size, err := batch.Read(arena[used:])
			if err != nil {
				if errors.Is(err, io.ErrShortBuffer) && n == 0 && size > len(arena) {
					grow = size
				}
				readErr = err
				break
			}
			off := batch.Offset() - 1
			if off < next || off >= end {
				// A fetch returns whole record batches: skip what was not
				// asked for.
				continue
			}
			n++
			c.Records++
			c.Bytes += int64(size)
			used += size
			next = off + 1
		}
		closeErr := batch.Close()
		if after := batch.Offset(); after > next {
			next = after
		}
		if grow > 0 {
			arena = make([]byte, max(grow, 2*len(arena)))
		}
		if n > 0 {
			continue // anything after the records shows again on the next fetch
		}
		// An empty fetch (nothing within max wait) or a record that needs
		// the larger buffer: fetch again. Anything else is a failure: the
		// benchmark's broker is local and quiet, so nothing is retried.
		for _, err := range []error{readErr, closeErr} {
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, kafka.RequestTimedOut) &&
				!errors.Is(err, io.ErrShortBuffer) {
				return c, fmt.Errorf("%s[%d]: reading at offset %d: %w", topic, id, next, err)
			}
		}
	}
	return c, nil
}
