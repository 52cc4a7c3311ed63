package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

// testConfig returns a configuration for c with short timeouts, a fresh
// group and the given topics.
func testConfig(t testing.TB, c *kafkatest.Cluster, topics ...string) kafkasrc.Config {
	cfg := kafkasrc.DefaultConfig()
	cfg.Brokers = c.Brokers
	cfg.Topics = topics
	cfg.Group = kafkatest.Name(t, "group")
	cfg.ClientID = "deid-test"
	cfg.SessionTimeout = 6 * time.Second
	cfg.RebalanceTimeout = 10 * time.Second
	cfg.FetchMaxWait = 100 * time.Millisecond
	cfg.RetryBackoff = 20 * time.Millisecond
	cfg.RetryBackoffMax = 200 * time.Millisecond
	cfg.RetryBudget = 20 * time.Second
	cfg.RequestTimeout = 5 * time.Second
	cfg.DialTimeout = 2 * time.Second
	return cfg
}

// newSource builds a source closed at cleanup.
func newSource(t testing.TB, cfg kafkasrc.Config, opts ...kafkasrc.Option) *kafkasrc.Source {
	t.Helper()
	s, err := kafkasrc.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func assign(t testing.TB, s *kafkasrc.Source) pipeline.Generation {
	t.Helper()
	g, err := s.Assign(ctxT(t))
	if err != nil {
		t.Fatalf("Assign: %v", err)
	}
	return g
}

func open(t testing.TB, g pipeline.Generation, resume func(pipeline.PartitionID) (int64, bool)) []pipeline.PartitionReader {
	t.Helper()
	rs, err := g.Open(ctxT(t), resume)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		for _, r := range rs {
			r.Close()
		}
	})
	return rs
}

// rec is a record as the tests compare them.
type rec struct {
	Partition int32
	Offset    int64
	Value     string
}

func (r rec) String() string { return fmt.Sprintf("%d@%d=%s", r.Partition, r.Offset, r.Value) }

// produceInBatches produces msgs n at a time, so the partitions hold many
// small record batches and a reader needs many fetches.
func produceInBatches(t testing.TB, brokers []string, topic string, msgs []kafkatest.Message, n int) []kafkatest.Message {
	t.Helper()
	return produceInBatchesWith(t, brokers, topic, msgs, n)
}

// produceInBatchesWith is produceInBatches with the producer's options
// changed (kafkatest.ProduceWith).
func produceInBatchesWith(t testing.TB, brokers []string, topic string, msgs []kafkatest.Message, n int, opts ...kgo.Opt) []kafkatest.Message {
	t.Helper()
	var out []kafkatest.Message
	for len(msgs) > 0 {
		k := min(n, len(msgs))
		out = append(out, kafkatest.ProduceWith(t, brokers, topic, msgs[:k], opts...)...)
		msgs = msgs[k:]
	}
	return out
}

func recsOf(msgs []kafkatest.Message) []rec {
	out := make([]rec, len(msgs))
	for i, m := range msgs {
		out[i] = rec{m.Partition, m.Offset, string(m.Value)}
	}
	return out
}

// readN reads from r until it has n records, copying them (the reader owns
// its buffers), checking the records are in offset order.
func readN(t testing.TB, r pipeline.PartitionReader, n int) []rec {
	t.Helper()
	ctx := ctxT(t)
	var out []rec
	for len(out) < n {
		batch, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("%s: Next after %d of %d records: %v", r.ID(), len(out), n, err)
		}
		if len(batch) == 0 {
			t.Fatalf("%s: Next returned an empty batch and no error", r.ID())
		}
		for _, b := range batch {
			if b.Pos.Source != r.ID().Source || b.Pos.Partition != r.ID().Partition {
				t.Fatalf("%s: record at %s", r.ID(), b.Pos)
			}
			if len(out) > 0 && b.Pos.Offset <= out[len(out)-1].Offset {
				t.Fatalf("%s: offset %d after %d", r.ID(), b.Pos.Offset, out[len(out)-1].Offset)
			}
			out = append(out, rec{b.Pos.Partition, b.Pos.Offset, string(b.Value)})
		}
	}
	if len(out) > n {
		t.Fatalf("%s: read %d records, want %d: %v", r.ID(), len(out), n, out)
	}
	return out
}

// readToEOF reads r until io.EOF.
func readToEOF(t testing.TB, r pipeline.PartitionReader) []rec {
	t.Helper()
	ctx := ctxT(t)
	var out []rec
	for {
		batch, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			if len(batch) != 0 {
				t.Fatalf("%s: io.EOF with %d records", r.ID(), len(batch))
			}
			return out
		}
		if err != nil {
			t.Fatalf("%s: Next: %v", r.ID(), err)
		}
		for _, b := range batch {
			out = append(out, rec{b.Pos.Partition, b.Pos.Offset, string(b.Value)})
		}
	}
}

// expectBlocks checks that Next has nothing to return within d.
func expectBlocks(t testing.TB, r pipeline.PartitionReader, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	batch, err := r.Next(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || len(batch) != 0 {
		t.Fatalf("%s: Next = %d records, %v; want it to block until the context ends", r.ID(), len(batch), err)
	}
}

// logWatch is a logger whose tests can wait for a message to be logged.
type logWatch struct {
	log *zap.Logger
	mu  sync.Mutex
	chs map[string]chan struct{}
}

func newLogWatch(t testing.TB) *logWatch {
	w := &logWatch{chs: map[string]chan struct{}{}}
	obs, _ := observer.New(zapcore.InfoLevel)
	core := zapcore.RegisterHooks(obs, func(e zapcore.Entry) error {
		for _, key := range []string{e.Message, e.Level.String()} {
			ch := w.ch(key)
			w.mu.Lock()
			select {
			case <-ch:
			default:
				close(ch)
			}
			w.mu.Unlock()
		}
		return nil
	})
	w.log = zap.New(core)
	return w
}

func (w *logWatch) ch(msg string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := w.chs[msg]
	if ch == nil {
		ch = make(chan struct{})
		w.chs[msg] = ch
	}
	return ch
}

// wait blocks until msg has been logged, or, given a level name such as
// "warn", until anything has been logged at that level.
func (w *logWatch) wait(t testing.TB, msg string) {
	t.Helper()
	select {
	case <-w.ch(msg):
	case <-time.After(kafkatest.Timeout):
		t.Fatalf("nothing logged %q within %s", msg, kafkatest.Timeout)
	}
}

// collector gathers what settings apply calls, and can hold apply back.
type collector struct {
	mu   sync.Mutex
	got  []setting
	gate func(value string) // called before recording; may block
}

type setting struct {
	Key       string
	Value     string
	Tombstone bool
	Offset    int64
}

func (c *collector) apply(key, value []byte, pos pipeline.Position) error {
	if c.gate != nil {
		c.gate(string(value))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, setting{Key: string(key), Value: string(value), Tombstone: value == nil, Offset: pos.Offset})
	return nil
}

func (c *collector) all() []setting {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]setting(nil), c.got...)
}
