package kafkadlq_test

import (
	"context"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/kafkadlq"
)

func config(t *testing.T, c *kafkatest.Cluster) kafkadlq.Config {
	cfg := kafkadlq.DefaultConfig()
	cfg.Kafka.Brokers = c.Brokers
	cfg.Kafka.Group = kafkatest.Name(t, "group")
	cfg.Kafka.RetryBackoff, cfg.Kafka.RetryBackoffMax = 10*time.Millisecond, 50*time.Millisecond
	cfg.Kafka.RequestTimeout = 5 * time.Second
	return cfg
}

func newSink(t *testing.T, cfg kafkadlq.Config) *kafkadlq.Sink {
	t.Helper()
	s, err := kafkadlq.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fakeWriter returns a fake broker, the configuration of a sink on a fresh
// one-partition dead-letter topic of it (edit, when not nil, changes it
// first) and a writer of that sink.
func fakeWriter(t *testing.T, edit func(*kafkadlq.Config)) (*kafkatest.Cluster, kafkadlq.Config, pipeline.DeadLetterWriter) {
	t.Helper()
	c := kafkatest.Fake(t)
	cfg := config(t, c)
	if edit != nil {
		edit(&cfg)
	}
	cfg.Topic = kafkatest.Name(t, "dlq")
	kafkatest.CreateTopic(t, c.Brokers, cfg.Topic, 1, false)
	w, err := newSink(t, cfg).Writer(pipeline.PartitionID{Source: "events"})
	if err != nil {
		t.Fatalf("Writer: %v", err)
	}
	return c, cfg, w
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func headers(kv ...string) []kafkatest.Header {
	var out []kafkatest.Header
	for i := 0; i < len(kv); i += 2 {
		out = append(out, kafkatest.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return out
}

func TestDeadLettersKeepTheirBytesReasonAndPosition(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		cfg := config(t, c)
		kafkatest.CreateTopic(t, c.Brokers, cfg.Kafka.Group+".dead-letters", 3, false)
		s := newSink(t, cfg)
		if s.Topic() != cfg.Kafka.Group+".dead-letters" {
			t.Errorf("topic %q, want <group>.dead-letters", s.Topic())
		}
		w, err := s.Writer(pipeline.PartitionID{Source: "events", Partition: 3})
		if err != nil {
			t.Fatal(err)
		}
		// Bytes that are not text survive as they are; the caller's buffer
		// is reused after Write.
		buf := []byte("{\"event_id\":\"e1\",\xff\x00\n truncated")
		pos := pipeline.Position{Source: "events", Partition: 3, Offset: 41}
		if err := w.Write(pipeline.Record{Pos: pos, Value: buf}, pipeline.Malformed("invalid_json", "", "unexpected byte 0xff")); err != nil {
			t.Fatal(err)
		}
		want0 := append([]byte(nil), buf...)
		copy(buf, "XXXXXXXX")
		pos.Offset = 42
		if err := w.Write(pipeline.Record{Pos: pos, Value: []byte(`{"event_id":"e2","payload":{"impressions":-3}}`)},
			pipeline.Malformed("negative_counter", "payload.impressions", "-3 < 0")); err != nil {
			t.Fatal(err)
		}
		pos.Offset = 43
		if err := w.Write(pipeline.Record{Pos: pos}, pipeline.Malformed("invalid_json", "", "empty record")); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctxT(t)); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		got := kafkatest.ReadAll(t, c.Brokers, s.Topic())
		first := got[0].Partition
		for i := range got {
			if got[i].Partition != first {
				t.Errorf("dead letters of one source partition on partitions %d and %d", first, got[i].Partition)
			}
			got[i].Partition, got[i].Offset = 0, int64(i)
		}
		key := []byte("events[3]")
		want := []kafkatest.Message{
			{Offset: 0, Key: key, Value: want0, Headers: headers("deid.reason", "invalid_json", "deid.field", "",
				"deid.detail", "unexpected byte 0xff", "deid.source.topic", "events", "deid.source.partition", "3", "deid.source.offset", "41")},
			{Offset: 1, Key: key, Value: []byte(`{"event_id":"e2","payload":{"impressions":-3}}`), Headers: headers("deid.reason", "negative_counter",
				"deid.field", "payload.impressions", "deid.detail", "-3 < 0", "deid.source.topic", "events", "deid.source.partition", "3", "deid.source.offset", "42")},
			{Offset: 2, Key: key, Value: nil, Headers: headers("deid.reason", "invalid_json", "deid.field", "",
				"deid.detail", "empty record", "deid.source.topic", "events", "deid.source.partition", "3", "deid.source.offset", "43")},
		}
		// kafka-go writes an empty header value as empty, franz-go reads it
		// back as empty or nil: compare as strings.
		if diff := gocmp.Diff(want, got, gocmp.Transformer("bytes", func(b []byte) string { return string(b) })); diff != "" {
			t.Errorf("dead letters (-want +got):\n%s", diff)
		}
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := w.Write(pipeline.Record{Pos: pos}, pipeline.Malformed("invalid_json", "", "")); err == nil {
			t.Error("Write after Close succeeded")
		}
	})
}

func TestFlushFailsClearlyAndKeepsTheDeadLetters(t *testing.T) {
	c, cfg, w := fakeWriter(t, nil)
	if err := w.Write(pipeline.Record{Value: []byte("x")}, pipeline.Malformed("invalid_json", "", "")); err != nil {
		t.Fatal(err)
	}
	h := c.Kfake(t).Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: cfg.Topic, Err: kerr.TopicAuthorizationFailed, Count: -1})
	err := w.Flush(ctxT(t))
	if err == nil || !strings.HasPrefix(err.Error(), "producing 1 to "+cfg.Topic+": ") || !strings.Contains(err.Error(), "Topic Authorization Failed") {
		t.Fatalf("Flush = %v, want the broker's refusal naming the topic", err)
	}
	// Once the broker takes it, the same dead letter goes out.
	h.Remove()
	if err := w.Flush(ctxT(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := kafkatest.ReadAll(t, c.Brokers, cfg.Topic); len(got) != 1 || string(got[0].Value) != "x" {
		t.Errorf("dead letters %v, want the one buffered", got)
	}
}

func TestConfigValidation(t *testing.T) {
	cfg := kafkadlq.DefaultConfig()
	cfg.Kafka.Group = ""
	cfg.Topic = ""
	err := cfg.Validate()
	want := `kafka.brokers: at least one broker is required, e.g. ["127.0.0.1:9092"]` + "\n" +
		`dead_letters.topic: required when kafka.group is empty, e.g. "deid.dead-letters"`
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v\nwant %s", err, want)
	}
	cfg.Kafka.Brokers = []string{"127.0.0.1:9092"}
	cfg.Topic = "dead letters"
	if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), `dead_letters.topic: "dead letters" is not a Kafka topic name`) {
		t.Errorf("Validate = %v", err)
	}
	cfg.Topic, cfg.Kafka.Group = "", "deid"
	if err := cfg.Validate(); err != nil || cfg.TopicName() != "deid.dead-letters" {
		t.Errorf("Validate = %v, topic %q", err, cfg.TopicName())
	}
}

// A broker that goes away and comes back within kafka.retry_budget — a
// restart — does not fail a Flush: it retries, and every dead letter gets
// out once the broker is back.
func TestFlushRidesOutABrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a broker restart; not with -short")
	}
	c, cfg, w := fakeWriter(t, func(cfg *kafkadlq.Config) {
		cfg.Kafka.RequestTimeout, cfg.Kafka.DialTimeout = time.Second, 500*time.Millisecond
		cfg.Kafka.RetryBudget = 30 * time.Second
	})
	for _, v := range []string{"a", "b", "c"} {
		if err := w.Write(pipeline.Record{Value: []byte(v)}, pipeline.Malformed("invalid_json", "", "")); err != nil {
			t.Fatal(err)
		}
	}
	c.Stop(t)
	// Longer than kafka-go's own attempts last (3 here, ~1 s at most).
	back := time.AfterFunc(3*time.Second, func() { c.Start(t) })
	defer back.Stop()
	if err := w.Flush(ctxT(t)); err != nil {
		t.Fatalf("Flush across a broker restart: %v", err)
	}
	var got []string
	for _, m := range kafkatest.ReadAll(t, c.Brokers, cfg.Topic) {
		got = append(got, string(m.Value))
	}
	if diff := gocmp.Diff([]string{"a", "b", "c"}, got); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
}

// A broker that stays away longer than kafka.retry_budget fails the Flush,
// saying so, and the dead letters stay buffered.
func TestFlushGivesUpAfterTheRetryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the retry budget; not with -short")
	}
	c, cfg, w := fakeWriter(t, func(cfg *kafkadlq.Config) {
		cfg.Kafka.RequestTimeout, cfg.Kafka.DialTimeout = 500*time.Millisecond, 200*time.Millisecond
		cfg.Kafka.RetryBudget = time.Second
	})
	if err := w.Write(pipeline.Record{Value: []byte("x")}, pipeline.Malformed("invalid_json", "", "")); err != nil {
		t.Fatal(err)
	}
	c.Stop(t)
	err := w.Flush(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "kafka.retry_budget") {
		t.Fatalf("Flush = %v, want a failure naming the retry budget", err)
	}
	c.Start(t)
	kafkatest.EndOffsets(t, c.Brokers, cfg.Topic) // serving again
	var ferr error
	for range 5 { // each Flush has a budget of 1s only
		if ferr = w.Flush(ctxT(t)); ferr == nil {
			break
		}
	}
	if ferr != nil {
		t.Fatalf("Flush once the broker is back: %v", ferr)
	}
	if got := kafkatest.ReadAll(t, c.Brokers, cfg.Topic); len(got) != 1 || string(got[0].Value) != "x" {
		t.Errorf("dead letters %v, want the one buffered", got)
	}
}
